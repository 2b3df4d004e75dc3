"""Byte transports under a :class:`~aiodimse.net.channel.Channel`.

:class:`SocketTransport` is the fast path for plain TCP: it waits with
``anyio.wait_readable``/``wait_writable`` (asyncio, trio; on Windows' proactor loop anyio
provides them with a selector thread) and then

* **receives without copies**: ``recv_into`` writes straight into the PDU decoder's own
  buffer (``Association.get_buffer``), so P-DATA PDVs are views of the bytes the kernel
  delivered; reads are sized adaptively (64 KiB while messages are small, up to 1 MiB
  while reads keep filling the buffer) so a thousand idle associations stay small;
* **sends gathered**: ``sendmsg`` writes a PDU header and its payload views in one system
  call (one write per PDU, no join); where ``sendmsg`` does not exist (Windows) the parts
  are joined. A part that is a :class:`~aiodimse.dimse.file_region.FileRegion` (a stored
  dataset sent as it is) is written with ``os.sendfile`` (:mod:`aiodimse.net.sendfile`).

On asyncio (and uvloop) the socket stays registered with the event loop for as long as
the association reads: a loop callback reads straight into the decoder's buffer
(``Association.buffer_filled``) and wakes the reader, whose task then runs the state machine
(``Association.process_received``). No reader is added and removed per wait. While the
reader is busy (a slow disk), reading stops before more than :data:`MAX_PENDING` bytes wait
for it, so memory stays bounded and the peer is slowed down by TCP. On trio and on event loops
without ``add_reader`` (Windows' proactor) the transport waits with
``anyio.wait_readable`` instead.

:class:`StreamTransport` wraps any anyio byte stream (a caller's own connection, a tunnel,
TLS) with one copy per read.
"""

from __future__ import annotations

import _socket
import asyncio
import errno
import ipaddress
import os
import socket
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Final, Protocol

import anyio
import anyio.abc
import anyio.lowlevel

from ..association.connection import Association as CoreAssociation
from ..dimse.file_region import FileRegion
from .loop import asyncio_loop
from .sendfile import SENDFILE_SUPPORTED, drop_sent, has_regions, write_with_regions

#: Read sizes: start small, double while reads fill the buffer (bulk transfer), up to MAX.
MIN_READ = 64 * 1024
MAX_READ = 1024 * 1024
#: At most this many bytes read by the callback wait for the reader: reading stops when one
#: more read could pass it. Two full reads, so a bulk transfer whose reader keeps up does not
#: remove and re-add the socket's reader after every full read (~3 times per 4 MiB instance
#: when it stopped at one read).
MAX_PENDING = 2 * MAX_READ
#: A sender yields to the event loop at least once per this many bytes written, or per
#: :data:`YIELD_WRITES` writes, whichever comes first: bulk data (large PDUs) makes few
#: trips through the loop, a stream of small messages still yields every few dozen.
YIELD_EVERY = 1024 * 1024
YIELD_WRITES = 32

_HAS_SENDMSG = hasattr(socket.socket, "sendmsg")
_IN_PROGRESS = {errno.EINPROGRESS, errno.EWOULDBLOCK, errno.EAGAIN, 10035}  # 10035: Windows


_FAMILY = _socket.socket.family  # the C attribute: an int (socket.socket's makes an enum)
_INET = (socket.AF_INET, socket.AF_INET6)


def is_inet(sock: socket.socket) -> bool:
    """Whether ``sock`` is an IPv4 or IPv6 socket (TCP options apply)."""
    return _FAMILY.__get__(sock) in _INET


class Transport(Protocol):
    """What a channel needs from the bytes underneath."""

    @property
    def raw_socket(self) -> socket.socket | None: ...

    async def receive(self, core: CoreAssociation, now: float) -> int:
        """Wait for bytes, hand them to ``core``; return how many (0: the peer closed)."""
        ...

    async def send(self, parts: Sequence[bytes | memoryview]) -> None: ...

    async def aclose(self) -> None: ...


class SocketTransport:
    """A connected, non-blocking TCP socket (see the module docstring)."""

    __slots__ = (
        "_backlog",
        "_closed",
        "_core",
        "_eof",
        "_error",
        "_fast",
        "_fast_eof",
        "_loop",
        "_mode",
        "_pending",
        "_read_size",
        "_ready",
        "_registered",
        "_sock",
        "_unyielded",
        "_waiter",
        "_wake",
        "_writers",
        "_writes",
        "last_read",
    )

    def __init__(self, sock: socket.socket, loop: asyncio.AbstractEventLoop | None = None) -> None:
        """``loop``: the asyncio loop to read on through its callbacks, when created outside
        a task of it (an acceptor's loop callback); found out at the first read otherwise."""
        sock.setblocking(False)
        self._sock = sock
        self._read_size = MIN_READ
        self._ready = False  # the last read filled its buffer: more is probably waiting
        self._closed = False
        self._unyielded = 0  # bytes sent since the last trip through the event loop
        self._writes = 0  # writes since the last trip through the event loop
        # The callback path (asyncio): see the module docstring.
        self._mode = 0 if loop is None else 1  # 0 undecided, 1 loop callback, 2 anyio.wait_readable
        self._loop: asyncio.AbstractEventLoop | None = loop
        self._core: CoreAssociation | None = None
        self._registered = False
        self._waiter: asyncio.Future[None] | None = None
        # Set by read_ahead() until the channel's reader exists (called once to start it).
        self._wake: Callable[[], None] | None = None
        self._pending = 0  # bytes read by the callback, not yet processed by the reader
        self._eof = False
        self._error: OSError | None = None
        #: The channel's fast path (see :meth:`set_fast_path`).
        self._fast: Callable[[], bool] | None = None
        self._fast_eof: Callable[[OSError | None], bool] | None = None
        #: Bytes :meth:`write_nowait` could not write yet; :meth:`send` writes them first.
        self._backlog: list[memoryview | FileRegion] = []
        self._writers = 0  # tasks waiting for room to write
        #: Bytes of the last read (the channel re-arms no TCP_QUICKACK after a bulk read).
        self.last_read = 0

    @property
    def raw_socket(self) -> socket.socket | None:
        return self._sock

    def set_fast_path(
        self,
        fast: Callable[[], bool] | None,
        eof: Callable[[OSError | None], bool] | None = None,
    ) -> None:
        """``fast()`` is called from the read callback (asyncio) when bytes arrived while
        the reader waits; True: it handled them, the reader stays asleep. ``eof(error)``
        likewise when the peer closed the connection (or it broke) before any reader
        existed (:meth:`read_ahead`); True: handled, no reader is woken. ``None`` removes
        them (the channel does so when it ends: they are its bound methods)."""
        self._fast = fast
        self._fast_eof = eof

    def read_ahead(
        self, core: CoreAssociation, wake: Callable[[], None], *, at_once: bool = False
    ) -> bool:
        """asyncio: start reading in the loop's callback before any reader waits. Bytes go
        to ``core`` and to the fast path (:meth:`set_fast_path`, required); the first time
        the fast path cannot handle them (or the peer closes, or reading must pause),
        ``wake()`` is called once, and from then on a reader must call :meth:`receive`.
        ``at_once``: also read now what may have arrived already. False (nothing changed)
        where reading in a callback is not possible."""
        if self._mode == 0:
            self._mode = self._choose_mode()
        if self._mode != 1 or self._fast is None or self._closed:
            return False
        self._core = core
        try:
            self._resume()
        except NotImplementedError:  # Windows' proactor loop: a reader from the start
            self._mode = 2
            return False
        self._wake = wake
        if at_once:
            self._on_readable()
        return True

    def has_backlog(self) -> bool:
        return bool(self._backlog)

    @property
    def sends_file_regions(self) -> bool:
        """Whether :meth:`send` takes :class:`FileRegion` parts (``os.sendfile``)."""
        return SENDFILE_SUPPORTED

    def write_nowait(self, parts: Sequence[bytes | memoryview]) -> bool:
        """Write ``parts`` now, without waiting; what the socket does not take is kept, in
        order, and written first by the next :meth:`send`. True when all went out."""
        if not self._backlog and self._write_now(parts) is not None:
            return not self._backlog
        # Behind a backlog, or file regions (written by send() only: it may wait): keep
        # them, in order.
        self._backlog.extend(
            p if isinstance(p, FileRegion) else memoryview(p) for p in parts if len(p)
        )
        return False

    def _write_now(self, parts: Sequence[bytes | memoryview]) -> int | None:
        """With no backlog: one non-blocking write of ``parts``, what the socket does not
        take kept in the backlog; returns the bytes handed over (written or kept), or
        ``None`` (nothing done) when ``parts`` hold a file region."""
        out: list[bytes | memoryview] = []
        size = 0
        for p in parts:
            if isinstance(p, FileRegion):
                return None
            n = len(p)
            if n:
                out.append(p)
                size += n
        if size:
            sent = self._write_some(out)
            if sent < size:  # the socket is full: the rest goes first in the next send()
                views = [memoryview(p) for p in out]
                drop_sent(views, sent)
                self._backlog.extend(views)
        return size

    def _write_some(self, views: Sequence[bytes | memoryview]) -> int:
        """One non-blocking write of ``views``: the number of bytes sent (0 if full)."""
        try:
            if len(views) == 1:
                return self._sock.send(views[0])
            if not _HAS_SENDMSG:
                return self._sock.send(b"".join(views))
            return self._sock.sendmsg(views)
        except (BlockingIOError, InterruptedError):
            return 0

    async def receive(self, core: CoreAssociation, now: float) -> int:
        if self._mode != 2:
            if self._mode == 0:
                self._mode = self._choose_mode()
            if self._mode == 1:
                return await self._receive_via_callback(core, now)
        sock = self._sock
        while True:
            if self._ready:
                await anyio.lowlevel.checkpoint()  # fairness: never monopolise the loop
            else:
                # Wait *before* asking for a buffer: an idle connection holds none.
                await anyio.wait_readable(sock)
            buf = core.get_buffer(self._read_size)
            asked = min(self._read_size, len(buf))  # shorter while a small PDU is pending
            try:
                n = sock.recv_into(buf, asked)
            except (BlockingIOError, InterruptedError):
                self._ready = False
                continue
            finally:
                del buf
            self.last_read = n
            if n == asked:
                self._ready = True
                if asked == self._read_size:
                    self._read_size = min(self._read_size * 2, MAX_READ)
            else:
                self._ready = False
            if n:
                core.buffer_updated(n, now)
            return n

    def _choose_mode(self) -> int:
        """1 (loop callback) inside an asyncio task, else 2 (anyio: trio)."""
        loop = asyncio_loop()
        if loop is None:
            return 2
        self._loop = loop
        return 1

    async def _receive_via_callback(self, core: CoreAssociation, now: float) -> int:
        if self._closed:
            raise anyio.ClosedResourceError
        self._core = core
        if self._pending == 0 and self._error is None and not self._eof:
            loop = self._loop
            assert loop is not None  # set with mode 1
            if not self._registered:
                try:
                    self._resume()
                except NotImplementedError:  # Windows' proactor loop: the anyio path
                    self._mode = 2
                    return await self.receive(core, now)
            waiter = self._waiter = loop.create_future()
            try:
                await waiter
            finally:
                self._waiter = None
        n, self._pending = self._pending, 0
        if n:
            core.process_received(now)
            if not self._registered and not self._eof and not self._closed:
                self._resume()
            return n
        if self._error is not None:
            raise self._error
        return 0  # end of stream

    def _resume(self) -> None:
        assert self._loop is not None
        self._loop.add_reader(self._sock.fileno(), self._on_readable)
        self._registered = True  # stays registered while the reader keeps up

    def _pause(self) -> None:
        if self._registered:
            self._registered = False
            assert self._loop is not None
            self._loop.remove_reader(self._sock.fileno())

    def _on_readable(self) -> None:
        """Loop callback: read into the decoder's buffer, wake the reader."""
        core = self._core
        if core is None or self._closed:  # pragma: no cover - registered after both are set
            self._pause()
            return
        size = self._read_size
        buf = core.get_buffer(size)
        asked = min(size, len(buf))  # shorter while a small PDU is pending
        try:
            n = self._sock.recv_into(buf, asked)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._error = exc
            n = 0
        finally:
            del buf
        waiter = self._waiter
        self.last_read = n
        if n:
            core.buffer_filled(n)
            self._pending += n
            if n == size:
                self._read_size = min(size * 2, MAX_READ)
            elif n < asked // 4 and size > MIN_READ:
                self._read_size = size // 2  # small messages again: smaller reads
            if self._pending + self._read_size > MAX_PENDING:
                self._pause()  # the reader is behind: TCP slows the peer down
            elif (
                self._fast is not None
                and self._pending == n
                and (self._wake is not None or (waiter is not None and not waiter.done()))
            ):
                # The reader waits (or does not exist yet) with nothing else pending: let
                # the channel handle the bytes here if it can, saving the reader's trip
                # through the event loop.
                if self._fast():
                    self._pending = 0
                    return
        else:
            self._eof = True
            self._pause()
            eof = self._fast_eof
            if eof is not None and waiter is None and self._wake is not None and eof(self._error):
                self._wake = None
                return
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        elif self._wake is not None:  # read_ahead(): now the reader is needed
            wake, self._wake = self._wake, None
            wake()

    def send_nowait(self, parts: Sequence[bytes | memoryview]) -> bool:
        """:meth:`send` for when it would not wait: True when ``parts`` were written (what
        the socket did not take is kept, in order, for the next :meth:`send`: see
        :meth:`has_backlog`); False, nothing done, when :meth:`send` must do it (a backlog,
        file regions, or this sender's turn to yield to the event loop)."""
        if self._backlog or self._writes + 1 >= YIELD_WRITES or self._unyielded >= YIELD_EVERY:
            return False
        size = self._write_now(parts)
        if size is None:  # file regions: send() writes them
            return False
        if size:
            self._unyielded += size
            self._writes += 1
        return True

    async def send(self, parts: Sequence[bytes | memoryview]) -> None:
        """Write all of ``parts``; waits only when the socket is full. A sender that never
        fills the socket still yields to the event loop every :data:`YIELD_EVERY` bytes or
        :data:`YIELD_WRITES` writes, so a fast producer (a C-FIND SCP streaming matches)
        cannot starve the association's reader (which must see a C-CANCEL) or other
        associations."""
        sock = self._sock
        if not parts and not self._backlog:
            return
        if SENDFILE_SUPPORTED and (has_regions(parts) or has_regions(self._backlog)):
            await self._send_regions(parts)
            return
        if self._backlog:  # left by write_nowait: it goes first
            # Only views here: regions went to _send_regions above.
            views = [p for p in self._backlog if isinstance(p, memoryview)]
            views += [memoryview(p) for p in parts if len(p)]
            self._backlog = []
            if not _HAS_SENDMSG:
                views = [memoryview(b"".join(views))]
        elif not _HAS_SENDMSG or len(parts) == 1:
            views = [memoryview(b"".join(parts) if len(parts) > 1 else parts[0])]
        else:
            views = [memoryview(p) for p in parts if len(p)]
        while views:
            try:
                if len(views) == 1:
                    sent = sock.send(views[0])
                else:
                    sent = sock.sendmsg(views)
            except (BlockingIOError, InterruptedError):
                self._writers += 1
                try:
                    await anyio.wait_writable(sock)
                finally:
                    self._writers -= 1
                continue
            drop_sent(views, sent)
        self._unyielded += sum(len(p) for p in parts)
        self._writes += 1
        if self._unyielded >= YIELD_EVERY or self._writes >= YIELD_WRITES:
            self._unyielded = self._writes = 0
            await anyio.lowlevel.checkpoint()

    async def _send_regions(self, parts: Sequence[bytes | memoryview | FileRegion]) -> None:
        """:meth:`send` for parts holding file regions (:mod:`aiodimse.net.sendfile`)."""
        todo: list[bytes | memoryview | FileRegion] = [*self._backlog, *parts]
        self._backlog = []
        await write_with_regions(self._sock, todo, self._wait_writable)
        self._unyielded += sum(len(p) for p in parts)
        self._writes += 1
        if self._unyielded >= YIELD_EVERY or self._writes >= YIELD_WRITES:
            self._unyielded = self._writes = 0
            await anyio.lowlevel.checkpoint()

    async def _wait_writable(self) -> None:
        self._writers += 1
        try:
            await anyio.wait_writable(self._sock)
        finally:
            self._writers -= 1

    @property
    def closes_at_once(self) -> bool:
        """:meth:`aclose` will not wait (the callback path with no task waiting to write)."""
        return self._mode == 1 and self._writers == 0

    def close_now(self) -> bool:
        """Close without waiting, when nothing waits on the socket (:attr:`closes_at_once`
        and no reader waiting). False: not closed, :meth:`aclose` must do it."""
        if self._closed:
            return True
        if not self.closes_at_once or self._waiter is not None or self._backlog:
            return False
        self._closed = True
        self._wake = None
        self._pause()
        self._sock.close()
        return True

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._wake = None
        self._pause()
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_exception(anyio.ClosedResourceError())
        if self.closes_at_once:
            self._sock.close()  # nobody waits on the socket: no wake-ups, no checkpoint
            return
        anyio.notify_closing(self._sock)
        self._sock.close()
        await anyio.lowlevel.checkpoint()


#: :class:`StreamTransport` joins parts smaller than this into one write.
_GATHER_MAX: Final = 64 * 1024


class StreamTransport:
    """Any anyio byte stream (one copy per read into the decoder). ``sock``: the socket
    under the stream, when known (asyncio streams expose only a wrapper of it)."""

    __slots__ = ("_sock", "_stream")

    def __init__(self, stream: anyio.abc.ByteStream, sock: socket.socket | None = None) -> None:
        self._stream = stream
        self._sock = sock

    @property
    def raw_socket(self) -> socket.socket | None:
        if self._sock is not None:
            return self._sock
        sock = self._stream.extra(anyio.abc.SocketAttribute.raw_socket, None)
        return sock if isinstance(sock, socket.socket) else None

    async def receive(self, core: CoreAssociation, now: float) -> int:
        try:
            data = await self._stream.receive(MAX_READ)
        except anyio.EndOfStream:
            return 0
        core.receive_data(data, now)
        return len(data)

    async def send(self, parts: Sequence[bytes | memoryview]) -> None:
        """Small parts gathered into one write (a PDU's header with its payload), a large
        part written on its own: never a copy of a whole PDU. Each write is immutable
        ``bytes``: a stream may keep what it could not send yet (asyncio's transports do)
        while the caller reuses its buffers."""
        small: list[bytes | memoryview] = []
        size = 0
        for part in parts:
            if len(part) >= _GATHER_MAX:
                if small:
                    await self._stream.send(b"".join(small))
                    small, size = [], 0
                await self._stream.send(part if isinstance(part, bytes) else bytes(part))
                continue
            small.append(part)
            size += len(part)
            if size >= _GATHER_MAX:
                await self._stream.send(b"".join(small))
                small, size = [], 0
        if small:
            await self._stream.send(b"".join(small))

    async def aclose(self) -> None:
        await self._stream.aclose()


def begin_connect(
    family: int, addr: Any, *, kind: int = socket.SOCK_STREAM, proto: int = socket.IPPROTO_TCP
) -> tuple[socket.socket, bool]:
    """A non-blocking socket with its connect to ``addr`` started; True when it is already
    established (a loopback connect usually is: then there is nothing to wait for). The
    socket is closed if this raises."""
    sock = socket.socket(family, kind, proto)
    try:
        sock.setblocking(False)
        err = sock.connect_ex(addr)
        if err in _IN_PROGRESS:
            try:
                sock.getpeername()
            except OSError:
                return sock, False  # still connecting (or failed: finish_connect says)
            return sock, True
        if err:
            raise OSError(err, os.strerror(err))
        return sock, True
    except BaseException:
        sock.close()
        raise


async def finish_connect(
    sock: socket.socket, wait_writable: Callable[[socket.socket], Awaitable[object]]
) -> None:
    """Wait (``wait_writable(sock)``: anyio's, or the loop's own) until the connect that
    :func:`begin_connect` started has finished; raise its error. Does not close ``sock``."""
    await wait_writable(sock)
    err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
    if err:
        raise OSError(err, os.strerror(err))


async def connect_one(
    family: int,
    addr: Any,
    wait_writable: Callable[[socket.socket], Awaitable[object]],
    *,
    kind: int = socket.SOCK_STREAM,
    proto: int = socket.IPPROTO_TCP,
) -> socket.socket:
    """A non-blocking TCP connection to one address; ``wait_writable(sock)`` waits for the
    connect to finish (anyio's, or the loop's own). The socket is closed on any error."""
    sock, done = begin_connect(family, addr, kind=kind, proto=proto)
    if not done:
        try:
            await finish_connect(sock, wait_writable)
        except BaseException:
            sock.close()
            raise
    return sock


async def connect_socket(host: str, port: int) -> socket.socket:
    """Open a non-blocking TCP connection (each resolved address in turn)."""
    infos: list[tuple[Any, Any, Any, Any, Any]]
    try:
        # An address literal needs no resolver (asyncio's runs in a worker thread).
        ip = ipaddress.ip_address(host)
        family = socket.AF_INET6 if ip.version == 6 else socket.AF_INET
        infos = [(family, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (host, port))]
    except ValueError:
        infos = list(await anyio.getaddrinfo(host, port, type=socket.SOCK_STREAM))
    last: OSError | None = None
    for family, kind, proto, _name, addr in infos:
        try:
            return await connect_one(family, addr, anyio.wait_writable, kind=kind, proto=proto)
        except OSError as exc:
            last = exc
    raise last or OSError(errno.EHOSTUNREACH, f"no address for {host}")


def listen_sockets(host: str, port: int, backlog: int = 1024) -> list[socket.socket]:
    """Bound, listening, non-blocking sockets for ``host:port`` (port 0: a free one)."""
    if host in ("", "::") and socket.has_dualstack_ipv6():
        sock = socket.create_server(
            ("::", port), family=socket.AF_INET6, backlog=backlog, dualstack_ipv6=True
        )
    else:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.create_server((host or "0.0.0.0", port), family=family, backlog=backlog)
    sock.setblocking(False)
    return [sock]
