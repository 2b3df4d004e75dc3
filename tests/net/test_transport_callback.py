"""The socket transport's asyncio path: a loop callback reads into the decoder (issue 9).

The reader's registration stays while it keeps up; when it falls behind (a slow disk),
reading stops after ``MAX_READ`` bytes, so memory is bounded and TCP slows the peer down.
On trio the transport waits with ``anyio.wait_readable`` (the same tests pass on both).
"""

from __future__ import annotations

import socket
import struct

import anyio
import pytest

from aiodimse.association.connection import Association as CoreAssociation
from aiodimse.association.connection import Role
from aiodimse.net import loop as loop_mod
from aiodimse.net import transport as tr
from aiodimse.net.transport import SocketTransport

pytestmark = pytest.mark.anyio

_BACKENDS: list[object] = ["asyncio", "trio"]
if loop_mod.uvloop_available():
    _BACKENDS.append(pytest.param(("asyncio", {"use_uvloop": True}), id="uvloop"))


@pytest.fixture(params=_BACKENDS)
def anyio_backend(request: pytest.FixtureRequest) -> object:
    return request.param


def _pair() -> tuple[SocketTransport, socket.socket, CoreAssociation]:
    ours, peer = socket.socketpair()
    peer.setblocking(False)
    core = CoreAssociation(Role.ACCEPTOR)
    core.transport_connected(0.0)
    return SocketTransport(ours), peer, core


def _fill(peer: socket.socket, total: int) -> int:
    """Write up to ``total`` bytes without blocking; returns how many the kernel took."""
    sent = 0
    chunk = b"\x04\x00" + b"\x00" * (64 * 1024 - 2)
    while sent < total:
        try:
            sent += peer.send(chunk)
        except BlockingIOError:
            break
    return sent


@pytest.mark.fd_callbacks  # asserts the loop-callback path itself
async def test_receive_returns_what_arrived_and_eof(anyio_backend_name: str) -> None:
    transport, peer, core = _pair()
    peer.send(b"\x01\x00\x00")  # the start of an A-ASSOCIATE-RQ header
    with anyio.fail_after(5):
        assert await transport.receive(core, 0.0) == 3
    assert core.buffered_bytes == 3  # decoded as far as possible: a partial header
    peer.close()
    with anyio.fail_after(5):
        assert await transport.receive(core, 0.0) == 0
    await transport.aclose()
    expected = 2 if anyio_backend_name == "trio" else 1
    assert transport._mode == expected


async def test_a_reader_that_falls_behind_stops_the_reading(anyio_backend_name: str) -> None:
    transport, peer, core = _pair()
    peer.send(b"\x01")
    with anyio.fail_after(5):
        assert await transport.receive(core, 0.0) == 1
    # The reader is now busy elsewhere; the peer writes far more than MAX_READ.
    offered = 0
    for _ in range(200):
        offered += _fill(peer, 16 << 20)
        await anyio.sleep(0.005)
        if offered >= 8 << 20:
            break
    held = core.buffered_bytes - 1
    if anyio_backend_name == "asyncio":
        assert transport._pending == held
        assert held <= tr.MAX_READ + tr.MAX_READ  # stopped after MAX_READ (+ the last read)
        assert not transport._registered
    else:
        assert held == 0  # the anyio path reads only when asked
    assert offered > held  # the rest waits in the kernel: TCP backpressure
    with anyio.fail_after(5):
        n = await transport.receive(core, 0.0)
    assert n > 0
    if anyio_backend_name == "asyncio":
        assert transport._registered or core.buffered_bytes == 0  # reading resumed
    peer.close()
    await transport.aclose()


async def test_aclose_wakes_a_waiting_reader() -> None:
    transport, peer, core = _pair()
    outcome: list[BaseException] = []

    async def reader() -> None:
        try:
            await transport.receive(core, 0.0)
        except (anyio.ClosedResourceError, OSError) as exc:
            outcome.append(exc)

    async with anyio.create_task_group() as tg:
        tg.start_soon(reader)
        await anyio.wait_all_tasks_blocked()
        await transport.aclose()
    assert outcome and isinstance(outcome[0], anyio.ClosedResourceError | OSError)
    peer.close()


async def test_a_reset_connection_raises(anyio_backend_name: str) -> None:
    ours = socket.create_server(("127.0.0.1", 0))
    port = ours.getsockname()[1]
    client = socket.create_connection(("127.0.0.1", port))
    conn, _ = ours.accept()
    ours.close()
    transport = SocketTransport(conn)
    core = CoreAssociation(Role.ACCEPTOR)
    core.transport_connected(0.0)
    client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    client.close()  # RST
    with anyio.fail_after(5):
        try:
            n = await transport.receive(core, 0.0)
        except (OSError, anyio.BrokenResourceError):
            n = -1
    assert n in (-1, 0)  # reset reported as an error (or, rarely, as the end of stream)
    await transport.aclose()
