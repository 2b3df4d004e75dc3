"""C-ECHO both ways over real loopback sockets, on asyncio and trio."""

from __future__ import annotations

import socket
import sys

import anyio
import pytest

import aiodimse
from aiodimse.config import Timeouts
from aiodimse.errors import AssociationRejected, DicomTimeoutError, NetworkError

pytestmark = pytest.mark.anyio


async def test_echo_roundtrip_and_negotiated_values() -> None:
    scp = aiodimse.AE("ECHO_SCP")
    seen: list[aiodimse.EchoRequest] = []

    async def on_echo(req: aiodimse.EchoRequest) -> int:
        seen.append(req)
        return 0x0000

    scp.on_echo = on_echo
    async with scp.serve("127.0.0.1", 0) as server:
        scu = aiodimse.AE("ECHO_SCU")
        async with scu.associate("127.0.0.1", server.port, called_ae="ECHO_SCP") as assoc:
            status = await assoc.echo()
            assert status.code == 0x0000
            assert status.category.name == "SUCCESS"
            assert assoc.peer_max_pdu == scp.limits.max_pdu_length
            n = assoc.negotiated
            assert n.peer_implementation_class_uid == scp.implementation_class_uid
            status2 = await assoc.echo()
            assert status2.code == 0
        assert server.total_associations == 1
    assert [r.calling_ae_title for r in seen] == ["ECHO_SCU", "ECHO_SCU"]
    assert seen[0].message_id != seen[1].message_id


async def test_handler_status_is_returned() -> None:
    scp = aiodimse.AE("ECHO_SCP")

    async def busy(req: aiodimse.EchoRequest) -> int:
        return 0x0110  # processing failure

    scp.on_echo = busy
    async with scp.serve("127.0.0.1", 0) as server:
        async with aiodimse.AE("A").associate("127.0.0.1", server.port) as assoc:
            status = await assoc.echo()
    assert status.code == 0x0110
    assert status.category.name == "FAILURE"


async def test_connection_refused_is_reported_in_words() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(NetworkError, match="refused") as info:
        async with aiodimse.AE("A").associate("127.0.0.1", port):
            pass
    assert info.value.retryable


async def test_wrong_called_ae_rejected_in_words() -> None:
    scp = aiodimse.AE("RIGHT", require_called_aet=True)
    async with scp.serve("127.0.0.1", 0) as server:
        with pytest.raises(AssociationRejected, match="called AE title not recognized") as info:
            async with aiodimse.AE("A").associate("127.0.0.1", server.port, called_ae="WRONG"):
                pass
        assert (info.value.result, info.value.source, info.value.reason) == (1, 1, 7)
        assert not info.value.retryable
        # the right title is accepted
        async with aiodimse.AE("A").associate("127.0.0.1", server.port, called_ae="RIGHT") as a:
            assert (await a.echo()).code == 0


async def test_calling_ae_allow_list() -> None:
    scp = aiodimse.AE("SCP", require_calling_aets=["FRIEND"])
    async with scp.serve("127.0.0.1", 0) as server:
        with pytest.raises(AssociationRejected, match="calling AE title not recognized"):
            async with aiodimse.AE("STRANGER").associate("127.0.0.1", server.port):
                pass
        async with aiodimse.AE("FRIEND").associate("127.0.0.1", server.port) as a:
            assert (await a.echo()).code == 0


async def test_over_association_limit_is_transient_rejection() -> None:
    """ROBUSTNESS 21: over the limit, RJ result 2 source 3 reason 2, never a drop."""
    scp = aiodimse.AE("SCP", max_associations=1)
    async with scp.serve("127.0.0.1", 0) as server:
        async with aiodimse.AE("ONE").associate("127.0.0.1", server.port) as first:
            with pytest.raises(AssociationRejected, match="local limit exceeded") as info:
                async with aiodimse.AE("TWO").associate("127.0.0.1", server.port):
                    pass
            assert (info.value.result, info.value.source, info.value.reason) == (2, 3, 2)
            assert info.value.retryable
            assert (await first.echo()).code == 0


async def test_silent_connections_do_not_block_and_artim_closes_them() -> None:
    """ROBUSTNESS 18 and 39: TCP accepted then silence; ARTIM closes it, others are served."""
    scp = aiodimse.AE("SCP", max_associations=1, timeouts=Timeouts(acse=0.5))
    async with scp.serve("127.0.0.1", 0) as server:
        silent = [await anyio.connect_tcp("127.0.0.1", server.port) for _ in range(5)]
        async with aiodimse.AE("A").associate("127.0.0.1", server.port) as assoc:
            assert (await assoc.echo()).code == 0
        with anyio.fail_after(5):
            for s in silent:
                with pytest.raises((anyio.EndOfStream, anyio.BrokenResourceError)):
                    await s.receive()
                await s.aclose()
        # The slot of every silent connection was freed.
        await anyio.wait_all_tasks_blocked()
        assert server.pending == 0


async def test_trickling_association_request_is_bounded_by_artim() -> None:
    """ARTIM runs from accept until a *complete* A-ASSOCIATE-RQ (issue 4, ROBUSTNESS 40)."""
    scp = aiodimse.AE("SCP", timeouts=Timeouts(acse=0.5))
    async with scp.serve("127.0.0.1", 0) as server:
        s = await anyio.connect_tcp("127.0.0.1", server.port)
        start = anyio.current_time()
        # A-ASSOCIATE-RQ header promising 200 bytes, then one byte every 0.1 s.
        await s.send(b"\x01\x00\x00\x00\x00\xc8")
        with anyio.fail_after(5):
            try:
                while True:
                    await s.send(b"\x00")
                    await anyio.sleep(0.1)
            except (anyio.BrokenResourceError, OSError):
                pass
            else:  # pragma: no cover
                pass
        assert anyio.current_time() - start < 4
        await s.aclose()


async def test_echo_timeout_aborts_and_names_the_timer() -> None:
    scp = aiodimse.AE("SCP")
    release = anyio.Event()

    async def slow(req: aiodimse.EchoRequest) -> int:
        await release.wait()
        return 0

    scp.on_echo = slow
    async with scp.serve("127.0.0.1", 0) as server:
        with pytest.raises(DicomTimeoutError, match="C-ECHO response") as info:
            async with aiodimse.AE("A").associate("127.0.0.1", server.port) as assoc:
                await assoc.echo(timeout=0.2)
        assert info.value.retryable
        release.set()


async def test_tcp_nodelay_is_set_on_both_ends() -> None:
    from aiodimse.net.connect import open_tcp

    async with aiodimse.AE("SCP").serve("127.0.0.1", 0) as server:
        transport = await open_tcp("127.0.0.1", server.port, timeout=5)
        sock = transport.raw_socket
        assert sock is not None
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) != 0
        # The accepted end (server internals, inspected on purpose). A loopback connect
        # is established at once: the server accepts when the loop next polls.
        with anyio.fail_after(5):
            while not server._channels:  # noqa: ASYNC110 - the fact has no event
                await anyio.sleep(0.001)
        (channel,) = server._channels
        accepted = channel._transport.raw_socket
        assert accepted is not None
        assert accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
        assert accepted.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) != 0
        if hasattr(socket, "TCP_KEEPIDLE") and sys.platform.startswith("linux"):
            # Set on the listener and inherited by the accepted socket (Linux).
            assert accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE) == 60
            assert accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT) == 4
        await transport.aclose()


async def test_many_concurrent_associations_on_one_loop() -> None:
    scp = aiodimse.AE("SCP")
    async with scp.serve("127.0.0.1", 0) as server:
        results: list[int] = []

        async def one() -> None:
            async with aiodimse.AE("A").associate("127.0.0.1", server.port) as assoc:
                for _ in range(3):
                    results.append((await assoc.echo()).code)

        async with anyio.create_task_group() as tg:
            for _ in range(50):
                tg.start_soon(one)
    assert results == [0] * 150


async def test_over_an_existing_stream() -> None:
    """A caller's own connection (a tunnel) can carry the association."""
    async with aiodimse.AE("SCP").serve("127.0.0.1", 0) as server:
        stream = await anyio.connect_tcp("127.0.0.1", server.port)
        async with aiodimse.AE("A").associate("tunnel", 0, stream=stream) as assoc:
            assert (await assoc.echo()).code == 0
