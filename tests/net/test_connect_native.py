"""open_tcp on asyncio: address literals connect through the loop's own writer callback and
``asyncio.timeout`` (``connect._connect_native``); host names and trio go through anyio.
Both report refusals and timeouts the same way."""

from __future__ import annotations

import socket
import sys

import pytest

import aiodimse.net.connect as connect
from aiodimse.errors import DicomTimeoutError, NetworkError
from aiodimse.net.transport import connect_socket

pytestmark = pytest.mark.anyio


def _full_listener() -> tuple[socket.socket, list[socket.socket]]:
    """A listener that never accepts, its backlog filled: a further SYN gets no answer."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    fillers: list[socket.socket] = []
    for _ in range(4):
        s = socket.socket()
        s.setblocking(False)
        s.connect_ex(listener.getsockname())
        fillers.append(s)
    return listener, fillers


async def test_a_connect_that_hangs_times_out_naming_the_tcp_connection() -> None:
    listener, fillers = _full_listener()
    try:
        port = listener.getsockname()[1]
        with pytest.raises(DicomTimeoutError, match=r"TCP connection to 127\.0\.0\.1") as info:
            await connect.open_tcp("127.0.0.1", port, timeout=0.3)
        assert info.value.retryable
    finally:
        for s in fillers:
            s.close()
        listener.close()


async def test_refused_in_words_on_every_path(anyio_backend: str) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    for host in ("127.0.0.1", "localhost"):
        with pytest.raises(NetworkError, match="refused"):
            await connect.open_tcp(host, port, timeout=5)


@pytest.mark.skipif(sys.version_info < (3, 11), reason="asyncio.timeout is 3.11+")
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
@pytest.mark.fd_callbacks  # the native connect path itself
async def test_literals_take_the_native_path_host_names_the_anyio_one(
    anyio_backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    used: list[str] = []

    async def spy(host: str, port: int) -> socket.socket:
        used.append(host)
        return await connect_socket(host, port)

    monkeypatch.setattr(connect, "connect_socket", spy)
    try:
        for host in ("127.0.0.1", "localhost"):
            transport = await connect.open_tcp(host, port, timeout=5)
            sock = transport.raw_socket
            assert sock is not None and sock.getpeername()[1] == port
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
            await transport.aclose()
    finally:
        server.close()
    assert used == ["localhost"]


def test_begin_connect_reports_an_established_loopback_connect() -> None:
    """A loopback connect is usually established when connect() returns: no writer
    callback and no timer are needed then (``begin_connect`` says so); a connect with no
    answer yet is left for ``finish_connect``."""
    from aiodimse.net.transport import begin_connect

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    try:
        sock, done = begin_connect(socket.AF_INET, listener.getsockname())
        try:
            assert done
            assert sock.getpeername() == listener.getsockname()
        finally:
            sock.close()
    finally:
        listener.close()
    full, fillers = _full_listener()
    try:
        sock, done = begin_connect(socket.AF_INET, full.getsockname())
        sock.close()
        assert not done  # the SYN got no answer: still connecting
    finally:
        full.close()
        for s in fillers:
            s.close()
