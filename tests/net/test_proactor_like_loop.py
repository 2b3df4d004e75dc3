"""Loops that cannot watch sockets (Windows' proactor: no ``add_reader``/``add_writer``).

aiodimse then runs each connection over an anyio socket stream on the loop's own I/O
instead of waiting on the socket through anyio's selector thread (concurrent read and
write waits on one socket fail there). These tests run on a selector loop that refuses
the fd-callback API the way the proactor does (tests/support/loops.py), in the normal
pass of the suite, so the Windows code path is exercised on Linux CI.
"""

from __future__ import annotations

import asyncio
import socket
import struct
from pathlib import Path

import anyio
import pytest

import aiodimse
from aiodimse.net.connect import loop_watches_sockets, open_tcp
from aiodimse.net.filesource import read_file_info
from aiodimse.net.transport import StreamTransport
from aiodimse.services.storage_contexts import propose_contexts
from tests.net.accept_checks import failing_handler_is_logged_and_the_server_goes_on
from tests.storage.storage_scu_support import RecordingSCP, contexts_for
from tests.support import datagen, loops

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> object:
    return ("asyncio", {"loop_factory": loops.NoFdCallbacksLoop})


async def test_the_loop_is_recognised_and_connections_use_streams() -> None:
    a, b = socket.socketpair()
    try:
        assert not loop_watches_sockets(a)
    finally:
        a.close()
        b.close()
    async with aiodimse.AE("SCP").serve("127.0.0.1", 0) as server:
        transport = await open_tcp("127.0.0.1", server.port, timeout=5)
        assert isinstance(transport, StreamTransport)
        sock = transport.raw_socket  # the socket under the stream, options set on it
        assert sock is not None and sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
        await transport.aclose()


async def test_echo_both_ways_and_the_acceptor_side_uses_a_stream() -> None:
    async with aiodimse.AE("SCP").serve("127.0.0.1", 0) as server:
        async with aiodimse.AE("SCU").associate("127.0.0.1", server.port) as assoc:
            for _ in range(3):
                assert (await assoc.echo()).is_success
            (channel,) = server._channels
            assert isinstance(channel.transport, StreamTransport)


async def test_many_pipelined_stores_with_reads_and_writes_at_once(tmp_path: Path) -> None:
    """Window 16, 3 MiB instances: the SCU writes P-DATA while responses come back on the
    same socket (the case that failed through anyio's selector thread)."""
    gens = [datagen.write_streamed(tmp_path / f"{i}", 3 << 20, seed=40 + i) for i in range(6)]
    infos = [read_file_info(g.path) for g in gens]
    scp = RecordingSCP(contexts=contexts_for([infos[0].sop_class_uid], datagen.TRANSFER_SYNTAXES))
    async with scp.ae.serve("127.0.0.1", 0) as server:
        scu = aiodimse.AE("SCU", max_operations_invoked=16)
        contexts = propose_contexts(infos)
        async with scu.associate("127.0.0.1", server.port, contexts=contexts) as assoc:
            assert assoc.operations_window == 16
            with anyio.fail_after(60):  # through the selector thread this hung
                results = await assoc.store_many(infos)
    assert [r.ok for r in results] == [True] * len(infos)
    assert sorted(a.length for a in scp.arrived) == sorted(i.dataset_length for i in infos)


def test_default_selector_loop_watches_sockets() -> None:
    async def check() -> bool:
        a, b = socket.socketpair()
        try:
            return loop_watches_sockets(a)
        finally:
            a.close()
            b.close()

    loop = asyncio.SelectorEventLoop()  # whatever policy the run installed
    try:
        assert loop.run_until_complete(check())
    finally:
        loop.close()


class _Recording:
    """Just enough of an anyio byte stream to see what StreamTransport writes."""

    def __init__(self) -> None:
        self.writes: list[object] = []

    async def send(self, item: bytes) -> None:
        self.writes.append(item)


async def test_stream_writes_gather_small_parts_and_never_hold_caller_buffers() -> None:
    rec = _Recording()
    transport = StreamTransport(rec)  # type: ignore[arg-type]
    reused = bytearray(b"x" * (200 * 1024))
    header, small = b"\x04\x00" + bytes(4), b"s" * 100
    await transport.send([header, small])  # one PDU of small parts: one write
    await transport.send([header, memoryview(reused), small, small])
    assert [len(w) for w in rec.writes] == [106, 6, 200 * 1024, 200]  # type: ignore[arg-type]
    assert all(type(w) is bytes for w in rec.writes)
    reused[:] = b"y" * len(reused)  # the caller reuses its buffer: what was sent stays
    assert rec.writes[2] == b"x" * (200 * 1024)
    assert b"".join(rec.writes[1:]) == header + b"x" * (200 * 1024) + small + small  # type: ignore[arg-type]


async def test_a_peer_gone_before_use_is_an_oserror_not_a_crash() -> None:
    """The requestor resets right after connecting (ROBUSTNESS 47): wrapping the accepted
    socket raises OSError, which the acceptor treats as one lost connection."""
    from aiodimse.net.connect import socket_transport

    listener = socket.create_server(("127.0.0.1", 0))
    client = socket.create_connection(listener.getsockname()[:2])
    accepted, _ = listener.accept()
    client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    client.close()  # RST
    with anyio.fail_after(5):
        while True:  # the reset reaches the accepted socket
            try:
                accepted.getpeername()
            except OSError:
                break
            await anyio.sleep(0.001)
    with pytest.raises(OSError, match="closed before use"):
        await socket_transport(accepted)
    assert accepted.fileno() == -1  # closed
    listener.close()


async def test_a_failing_connection_handler_is_logged_and_the_server_goes_on(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The anyio accept loop (this loop, trio) keeps serving when one connection's handler
    raises, as the native accept path does."""
    await failing_handler_is_logged_and_the_server_goes_on(monkeypatch, caplog)
