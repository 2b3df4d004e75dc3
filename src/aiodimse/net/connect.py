"""Opening and accepting TCP connections, with errors translated into words once."""

from __future__ import annotations

import asyncio
import errno
import functools
import ipaddress
import logging
import socket
import sys

import anyio
import anyio.abc

from ..errors import DicomTimeoutError, NetworkError
from .loop import asyncio_loop
from .transport import (
    SocketTransport,
    StreamTransport,
    Transport,
    begin_connect,
    connect_socket,
    finish_connect,
    is_inet,
)

log = logging.getLogger("aiodimse.net")


async def open_tcp(host: str, port: int, *, timeout: float | None) -> Transport:
    """Connect to ``host:port`` within ``timeout`` seconds; raise :class:`NetworkError`."""
    try:
        sock = await _connect_native(host, port, timeout)
        if sock is None:
            with anyio.fail_after(timeout):
                sock = await connect_socket(host, port)
    except TimeoutError:
        raise DicomTimeoutError(f"TCP connection to {host}:{port}", timeout or 0) from None
    except OSError as exc:
        root = _root_cause(exc)
        if isinstance(root, ConnectionRefusedError):
            raise NetworkError(f"connection refused by {host}:{port}") from exc
        raise NetworkError(f"cannot connect to {host}:{port}: {_oserror_words(root)}") from exc
    configure_socket(sock)
    try:
        return await socket_transport(sock)
    except OSError as exc:
        raise NetworkError(f"connection to {host}:{port} lost: {_oserror_words(exc)}") from exc


#: asyncio loop class -> whether it watches sockets with add_reader (see below).
_WATCHES_SOCKETS: dict[type[asyncio.AbstractEventLoop], bool] = {}


def _ignore() -> None:
    pass


def loop_watches_sockets(sock: socket.socket) -> bool:
    """Whether the running event loop can watch ``sock`` with ``add_reader``: True on
    selector loops, uvloop and outside asyncio (trio waits on sockets itself); False on
    Windows' proactor loop (asked once per loop class)."""
    loop = asyncio_loop()
    if loop is None:
        return True
    kind = type(loop)
    known = _WATCHES_SOCKETS.get(kind)
    if known is None:
        fd = sock.fileno()
        try:
            loop.add_reader(fd, _ignore)
        except NotImplementedError:
            known = False
        else:
            loop.remove_reader(fd)
            known = True
        _WATCHES_SOCKETS[kind] = known
    return known


async def socket_transport(sock: socket.socket) -> Transport:
    """The transport over a connected socket. On a loop that cannot watch sockets
    (Windows' proactor) the socket becomes an anyio socket stream over the loop's own
    overlapped I/O, rather than a :class:`SocketTransport` waiting through anyio's
    selector thread (whose concurrent read and write waits on one socket fail there).
    Raises :class:`OSError` (the socket closed) if the peer is already gone."""
    from_socket = getattr(anyio.abc.SocketStream, "from_socket", None)  # newer anyio 4.x
    if from_socket is None or loop_watches_sockets(sock):
        return SocketTransport(sock)
    try:
        stream: anyio.abc.SocketStream = await from_socket(sock)
    except ValueError as exc:  # anyio checks the peer: it reset or closed already
        sock.close()
        raise ConnectionResetError(errno.ENOTCONN, f"connection closed before use ({exc})") from exc
    return StreamTransport(stream, sock)


async def _connect_native(host: str, port: int, timeout: float | None) -> socket.socket | None:
    """On asyncio (Python 3.11+) and an address literal: connect with the loop's own writer
    callback and ``asyncio.timeout``, lighter than anyio's ``wait_writable`` and
    ``fail_after`` for a short association. ``None``: not applicable (trio, a host name,
    a loop without ``add_writer`` such as Windows' proactor); the caller uses anyio."""
    if sys.version_info < (3, 11):
        return None
    if asyncio_loop() is None:
        return None
    family = _literal_family(host)
    if family is None:
        return None
    sock, done = begin_connect(family, (host, port))
    if done:  # established at once (loopback): no wait, no timer
        return sock
    try:
        async with asyncio.timeout(timeout):
            await finish_connect(sock, _wait_writable_native)
    except NotImplementedError:  # no add_writer (Windows' proactor loop)
        sock.close()
        return None
    except BaseException:
        sock.close()
        raise
    return sock


@functools.lru_cache(maxsize=64)
def _literal_family(host: str) -> socket.AddressFamily | None:
    """The address family of an IP address literal; ``None`` for a host name."""
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return None
    return socket.AF_INET6 if ip.version == 6 else socket.AF_INET


async def _wait_writable_native(sock: socket.socket) -> None:
    loop = asyncio.get_running_loop()
    fd = sock.fileno()
    writable: asyncio.Future[None] = loop.create_future()
    loop.add_writer(fd, _set_none, writable)
    try:
        await writable
    finally:
        loop.remove_writer(fd)


def _set_none(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


def configure_socket(sock: socket.socket | None) -> None:
    """TCP_NODELAY (no Nagle delay on our small PDUs) and keepalive; never SO_RCVBUF
    (setting it disables the kernel's receive-buffer autotuning on Linux)."""
    if sock is None or not is_inet(sock):
        return
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        if sys.platform.startswith("linux"):
            # Probe a dead peer after 60 s idle, every 15 s, 4 times (Linux defaults: 2 h).
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, 60)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, 15)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT, 4)
    except OSError as exc:  # pragma: no cover - exotic platforms
        log.debug("socket options not set: %s", exc)


def _root_cause(exc: OSError) -> OSError:
    """anyio wraps the attempts' errors: ``OSError(...) from cause`` (or a group of them)."""
    cause: object = exc.__cause__
    group = getattr(cause, "exceptions", None)  # an ExceptionGroup (no builtin on 3.10)
    if group:
        cause = group[-1]
    return cause if isinstance(cause, OSError) else exc


def _oserror_words(exc: OSError) -> str:
    if exc.errno == errno.ECONNRESET:
        return "connection reset by peer"
    if exc.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH):
        return "host unreachable"
    if isinstance(exc, socket.gaierror):
        return f"host name not resolved ({exc.strerror})"
    return exc.strerror or str(exc)
