"""Association-level robustness (ROBUSTNESS.md 13-21, 39-40, 43, 47-48) over real sockets.

Each test puts a hand-driven raw peer (:mod:`tests.net.badpeer`) on one end of a loopback
TCP connection and aiodimse's anyio shell (``AE.serve`` / ``AE.associate`` / ``Channel``) on
the other, on asyncio and trio. Timeouts are small (0.3-2 s) so the file stays fast; every
wait is bounded by ``anyio.fail_after``.
"""

from __future__ import annotations

import gc
import select
import socket
import struct
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import anyio
import anyio.abc
import psutil
import pytest

import aiodimse
from aiodimse.association.connection import Association as CoreAssociation
from aiodimse.association.connection import Role
from aiodimse.association.negotiation import negotiate
from aiodimse.config import Timeouts
from aiodimse.constants import VERIFICATION_SOP_CLASS
from aiodimse.dimse.messages import CEchoRQ, CEchoRSP
from aiodimse.errors import (
    AssociationAborted,
    AssociationRejected,
    DicomError,
    DicomTimeoutError,
    NetworkError,
)
from aiodimse.net.channel import Channel
from aiodimse.pdu import (
    PDU,
    AAbort,
    AAssociateAC,
    AAssociateRJ,
    AAssociateRQ,
    AReleaseRP,
    AReleaseRQ,
    PresentationContextAC,
    encode_pdu,
)
from aiodimse.services.server import Server

from .badpeer import (
    RawPeer,
    accept_ac,
    command_of,
    command_pdata,
    connect,
    raw_acceptor,
    verification_rq,
)

pytestmark = pytest.mark.anyio

LINUX = sys.platform.startswith("linux")
EXPLICIT_VR_BIG_ENDIAN = "1.2.840.10008.1.2.2"


def _fds() -> int:
    return int(psutil.Process().num_fds())


def _rss() -> int:
    return int(psutil.Process().memory_info().rss)


async def _fds_settle_to(baseline: int, within: float = 3.0) -> int:
    """Wait (bounded) until this process has at most ``baseline`` open fds; return the count."""
    try:
        await _until(lambda: _fds() <= baseline, within)
    except TimeoutError:
        pass
    return _fds()


async def _until(condition: Callable[[], bool], within: float) -> None:
    """Bounded wait for a fact with no event to wait on (a counter, the fd table)."""
    with anyio.fail_after(within):
        while not condition():  # noqa: ASYNC110 - nothing to wait on but the fact
            await anyio.sleep(0.01)


async def _associate(peer: RawPeer, rq: AAssociateRQ | None = None) -> AAssociateAC:
    """As a raw requestor: send a valid Verification RQ and expect an AC."""
    await peer.send_pdu(rq or verification_rq())
    ac = await peer.receive_pdu()
    assert isinstance(ac, AAssociateAC), ac
    assert ac.presentation_contexts[0].result == 0
    return ac


async def _expect_closed(peer: RawPeer, within: float) -> list[PDU]:
    """Every PDU the other end sends before it closes, which must happen within ``within``."""
    return await peer.receive_all_until_closed(timeout=within)


def _rst(peer: RawPeer) -> None:
    """Make the next close of ``peer`` a TCP reset (SO_LINGER on, 0 s)."""
    sock = peer.stream.extra(anyio.abc.SocketAttribute.raw_socket)
    linger = struct.pack("HH" if sys.platform == "win32" else "ii", 1, 0)  # on, 0 s
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)


def _server_side_socket(peer: RawPeer) -> socket.socket:
    """The accepted socket at the other end of ``peer`` (searched among live sockets)."""
    want = peer.stream.extra(anyio.abc.SocketAttribute.local_address)
    for obj in gc.get_objects():
        if isinstance(obj, socket.socket) and obj.fileno() != -1:
            try:
                if obj.getpeername() == want:
                    return obj
            except OSError:
                continue
    raise AssertionError(f"no socket connected to {want}")


def _unread(peer: RawPeer) -> int:
    """Bytes waiting in ``peer``'s receive queue (Linux: FIONREAD)."""
    import fcntl
    import termios

    sock = peer.stream.extra(anyio.abc.SocketAttribute.raw_socket)
    return int(struct.unpack("i", fcntl.ioctl(sock.fileno(), termios.FIONREAD, b"\0" * 4))[0])


async def _steady(sample: Callable[[], object], *, hold: float, within: float) -> None:
    """Wait (bounded by ``within``) until ``sample()`` has not changed for ``hold`` seconds."""
    with anyio.fail_after(within):
        last, since = sample(), anyio.current_time()
        while anyio.current_time() - since < hold:
            await anyio.sleep(0.05)
            now = sample()
            if now != last:
                last, since = now, anyio.current_time()


def _writable(sock: socket.socket) -> bool:
    """Whether ``sock`` has room in its send buffer now."""
    return bool(select.select([], [sock], [], 0)[1])


async def _echo_ok(port: int, called: str = "SCP") -> None:
    """A well-behaved client is served (C-ECHO success) within 5 s."""
    with anyio.fail_after(5):
        async with aiodimse.AE("GOOD").associate("127.0.0.1", port, called_ae=called) as a:
            assert (await a.echo()).code == 0x0000


# -- 14: A-ASSOCIATE-RQ on an established association ------------------------------------------


async def test_case_14_associate_rq_on_established_association() -> None:
    """PS3.8 Table 9-10, Sta6 + Evt6 -> AA-8: A-ABORT(2,2), then the server closes (ARTIM)."""
    scp = aiodimse.AE("SCP", timeouts=Timeouts(acse=0.3))
    async with scp.serve("127.0.0.1", 0) as server:
        async with await connect(server.port) as peer:
            await _associate(peer)
            await peer.send_pdu(verification_rq())
            start = anyio.current_time()
            received = await _expect_closed(peer, within=3)
            elapsed = anyio.current_time() - start
            assert received == [AAbort(source=2, reason=2)]
            assert elapsed < 0.3 + 1.0  # ARTIM (acse) bounds the wait for our close
        await _echo_ok(server.port)
        await _until(lambda: not (server.active or server.pending), 3)


@pytest.mark.parametrize("unexpected", ["associate_rq", "associate_ac"])
async def test_case_14_unexpected_associate_pdu_as_requestor(unexpected: str) -> None:
    """Sta6 + Evt3/Evt6 on our SCU while it awaits a response: AA-8, the call fails."""
    seen: list[PDU] = []
    script_done = anyio.Event()

    async def acceptor(peer: RawPeer) -> None:
        rq = await peer.receive_pdu()
        assert isinstance(rq, AAssociateRQ)
        await peer.send_pdu(accept_ac(rq))
        assert isinstance(command_of(await peer.receive_pdu()), CEchoRQ)
        await peer.send_pdu(verification_rq() if unexpected == "associate_rq" else accept_ac(rq))
        seen.extend(await _expect_closed(peer, within=3))
        script_done.set()

    async with raw_acceptor(acceptor) as port:
        scu = aiodimse.AE("SCU", timeouts=Timeouts(acse=0.3))
        with anyio.fail_after(3):
            with pytest.raises(AssociationAborted) as info:
                async with scu.associate("127.0.0.1", port, called_ae="RAW") as assoc:
                    await assoc.echo(timeout=5)
            await script_done.wait()
    assert info.value.retryable
    assert seen == [AAbort(source=2, reason=2)]


# -- 15: P-DATA after we sent A-RELEASE-RQ (Sta7) ----------------------------------------------


async def test_case_15_pdata_after_our_release_rq_is_delivered() -> None:
    """pynetdicom #998: a C-ECHO-RSP sent after our A-RELEASE-RQ still reaches the caller."""
    seen: list[PDU | None] = []
    echo_rq_seen = anyio.Event()

    async def acceptor(peer: RawPeer) -> None:
        rq = await peer.receive_pdu()
        assert isinstance(rq, AAssociateRQ)
        await peer.send_pdu(accept_ac(rq))
        echo = command_of(await peer.receive_pdu())
        assert isinstance(echo, CEchoRQ)
        echo_rq_seen.set()
        release = await peer.receive_pdu()
        seen.append(release)
        assert isinstance(release, AReleaseRQ)
        # Sta7 on the other side: a P-DATA first, then the release answer.
        rsp = CEchoRSP(
            message_id_being_responded_to=echo.message_id,
            status=0x0000,
            affected_sop_class_uid=VERIFICATION_SOP_CLASS,
        )
        await peer.send_bytes(encode_pdu(command_pdata(1, rsp)) + encode_pdu(AReleaseRP()))
        seen.extend(await _expect_closed(peer, within=3))
        script_done.set()

    script_done = anyio.Event()
    statuses: list[int] = []
    async with raw_acceptor(acceptor) as port:
        scu = aiodimse.AE("SCU", timeouts=Timeouts(acse=2))
        with anyio.fail_after(5):
            async with scu.associate("127.0.0.1", port, called_ae="RAW") as assoc:

                async def echo() -> None:
                    statuses.append((await assoc.echo()).code)

                async with anyio.create_task_group() as tg:
                    tg.start_soon(echo)
                    await echo_rq_seen.wait()
                    await assoc.release()  # while the echo is outstanding
                assert not assoc.is_established
        with anyio.fail_after(3):
            await script_done.wait()
    assert statuses == [0x0000]
    assert seen == [AReleaseRQ()]  # nothing after the release: no abort, we closed


# -- 16: release collision -----------------------------------------------------------------------


async def test_case_16_release_collision_as_requestor() -> None:
    """Sta7 + Evt12 (AR-8 -> Sta9): we answer RP, get the peer's RP, close: a release."""
    after_rp: list[list[PDU]] = []

    async def acceptor(peer: RawPeer) -> None:
        rq = await peer.receive_pdu()
        assert isinstance(rq, AAssociateRQ)
        await peer.send_pdu(accept_ac(rq))
        ours = await peer.receive_pdu()
        assert isinstance(ours, AReleaseRQ)
        await peer.send_pdu(AReleaseRQ())  # the collision
        answer = await peer.receive_pdu()
        assert isinstance(answer, AReleaseRP)  # requestor answers first (AR-9)
        await peer.send_pdu(AReleaseRP())  # acceptor's answer (AR-4)
        after_rp.append(await _expect_closed(peer, within=3))  # requestor closes (AR-3)

    async with raw_acceptor(acceptor) as port:
        scu = aiodimse.AE("SCU", timeouts=Timeouts(acse=2))
        with anyio.fail_after(5):
            async with scu.associate("127.0.0.1", port, called_ae="RAW") as assoc:
                assert assoc.is_established
            # The block ended without an exception: the collision completed as a release.
            assert not assoc.is_established
        await _until(lambda: bool(after_rp), 3)
    assert after_rp == [[]]  # nothing after the release: closed, no abort


def _as_transport(stream: anyio.abc.SocketStream) -> Any:
    """What ``Channel`` takes: an anyio stream, or a transport wrapping one (newer shell)."""
    try:
        from aiodimse.net.transport import StreamTransport
    except ImportError:  # pragma: no cover - the shell before net.transport existed
        return stream
    return StreamTransport(stream)


@asynccontextmanager
async def _channel_acceptor(
    ae: aiodimse.AE,
) -> AsyncIterator[tuple[int, anyio.abc.ObjectReceiveStream[Channel]]]:
    """The anyio shell as acceptor, one Channel per connection, handed to the test."""
    policy = Server(ae).policy()
    send, receive = anyio.create_memory_object_stream[Channel](4)
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    port = listener.extra(anyio.abc.SocketAttribute.local_port)

    async def handle(stream: anyio.abc.SocketStream) -> None:
        core = CoreAssociation(
            Role.ACCEPTOR, limits=ae.limits, artim_timeout=ae.timeouts.acse or 30
        )
        channel = Channel(
            _as_transport(stream), core, limits=ae.limits, timeouts=ae.timeouts, peer="raw"
        )

        async def on_associate(rq: AAssociateRQ) -> AAssociateAC | AAssociateRJ:
            answer = negotiate(rq, policy)
            return answer

        channel.on_associate = on_associate
        core.transport_connected(anyio.current_time())
        await send.send(channel)
        await channel.run()

    async with listener, send, receive, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, handle)
        try:
            yield port, receive
        finally:
            tg.cancel_scope.cancel()


async def test_case_16_release_collision_as_acceptor() -> None:
    """Sta7 + Evt12 on the acceptor (AR-8 -> Sta10): the peer's RP, our RP, its close."""
    ae = aiodimse.AE("SCP", timeouts=Timeouts(acse=2))
    async with _channel_acceptor(ae) as (port, channels):
        async with await connect(port) as peer:
            await _associate(peer)
            channel = await channels.receive()
            await _until(lambda: channel.is_established, 3)
            seen: list[PDU] = []

            async def raw_requestor() -> None:
                ours = await peer.receive_pdu()
                assert isinstance(ours, AReleaseRQ)
                await peer.send_pdu(AReleaseRQ())  # the collision
                await peer.send_pdu(AReleaseRP())  # requestor answers first (AR-9)
                answer = await peer.receive_pdu()
                assert isinstance(answer, AReleaseRP)  # acceptor's answer (AR-4)
                seen.append(answer)
                await peer.aclose()  # the requestor closes (AR-3)

            with anyio.fail_after(5):
                async with anyio.create_task_group() as tg:
                    tg.start_soon(raw_requestor)
                    await channel.release()  # returns once the transport is closed
            assert channel.is_closed
            assert channel.error is None  # a release, not an abort
            assert seen == [AReleaseRP()]


# -- 17: a peer that never answers our A-RELEASE-RQ ------------------------------------------


async def test_case_17_release_never_answered_times_out_and_aborts() -> None:
    seen: list[PDU] = []

    async def acceptor(peer: RawPeer) -> None:
        rq = await peer.receive_pdu()
        assert isinstance(rq, AAssociateRQ)
        await peer.send_pdu(accept_ac(rq))
        seen.extend(await _expect_closed(peer, within=5))  # never answers anything

    acse = 0.3
    async with raw_acceptor(acceptor) as port:
        scu = aiodimse.AE("SCU", timeouts=Timeouts(acse=acse))
        with anyio.fail_after(5):
            async with scu.associate("127.0.0.1", port, called_ae="RAW") as assoc:
                start = anyio.current_time()
            elapsed = anyio.current_time() - start
            assert not assoc.is_established
        assert acse * 0.9 <= elapsed < acse + 1.0
        await _until(lambda: len(seen) >= 2, 3)
    assert seen == [AReleaseRQ(), AAbort(source=0, reason=0)]


# -- 18/19: after RJ or RELEASE-RP the peer does not close: ARTIM closes it ------------------


async def test_case_18_19_rejected_peer_that_stays_is_closed_by_artim() -> None:
    scp = aiodimse.AE("SCP", require_called_aet=True, timeouts=Timeouts(acse=0.3))
    async with scp.serve("127.0.0.1", 0) as server:
        async with await connect(server.port) as peer:
            await peer.send_pdu(verification_rq(called="WRONG"))
            start = anyio.current_time()
            received = await _expect_closed(peer, within=3)  # we never close
            elapsed = anyio.current_time() - start
        assert received == [AAssociateRJ(result=1, source=1, reason=7)]
        assert elapsed < 0.3 + 1.0
        await _until(lambda: not (server.pending or server.active), 3)
        assert server.total_rejected == 1
        await _echo_ok(server.port)


async def test_case_19_released_peer_that_stays_is_closed_by_artim() -> None:
    """AR-4: after our A-RELEASE-RP, ARTIM runs (Sta13); a peer that never closes is closed."""
    scp = aiodimse.AE("SCP", timeouts=Timeouts(acse=0.3))
    async with scp.serve("127.0.0.1", 0) as server:
        async with await connect(server.port) as peer:
            await _associate(peer)
            await peer.send_pdu(AReleaseRQ())
            start = anyio.current_time()
            received = await _expect_closed(peer, within=3)
            elapsed = anyio.current_time() - start
        assert received == [AReleaseRP()]
        assert elapsed < 0.3 + 1.0
        await _until(lambda: server.active == 0, 3)


# -- 20: an A-ASSOCIATE-AC accepting what we never proposed ----------------------------------


@pytest.mark.parametrize("fault", ["unproposed_context_id", "unoffered_transfer_syntax"])
async def test_case_20_ac_accepting_what_we_never_proposed(fault: str) -> None:
    seen: list[PDU] = []

    async def acceptor(peer: RawPeer) -> None:
        rq = await peer.receive_pdu()
        assert isinstance(rq, AAssociateRQ)
        proposed = rq.presentation_contexts[0]
        if fault == "unproposed_context_id":
            pc = PresentationContextAC(
                context_id=proposed.context_id + 2,
                result=0,
                transfer_syntax=proposed.transfer_syntaxes[0],
            )
        else:
            assert EXPLICIT_VR_BIG_ENDIAN not in proposed.transfer_syntaxes
            pc = PresentationContextAC(
                context_id=proposed.context_id, result=0, transfer_syntax=EXPLICIT_VR_BIG_ENDIAN
            )
        await peer.send_pdu(accept_ac(rq, contexts=(pc,)))
        seen.extend(await _expect_closed(peer, within=3))

    established: list[bool] = []
    async with raw_acceptor(acceptor) as port:
        scu = aiodimse.AE("SCU", timeouts=Timeouts(acse=1))
        with anyio.fail_after(5):
            with pytest.raises(DicomError) as info:
                async with scu.associate("127.0.0.1", port, called_ae="RAW"):
                    established.append(True)
        assert isinstance(info.value, AssociationAborted), repr(info.value)
        assert not isinstance(info.value, AssociationRejected | DicomTimeoutError)
        await _until(lambda: bool(seen), 3)
    assert established == []  # never reported established
    assert len(seen) == 1 and isinstance(seen[0], AAbort), seen
    assert seen[0].source == 2  # AA-8: service provider


# -- 21: called AE not recognised -> RJ 1/1/7, exact bytes --------------------------------------


async def test_case_21_called_ae_not_recognized_exact_rj_bytes() -> None:
    scp = aiodimse.AE("SCP", require_called_aet=True, timeouts=Timeouts(acse=0.3))
    async with scp.serve("127.0.0.1", 0) as server:
        async with await connect(server.port) as peer:
            await peer.send_pdu(verification_rq(called="NOT_THE_SCP"))
            data = await peer.receive_raw_until_closed(timeout=3)
        # PS3.8 9.3.4: type 03H, reserved, length 4, reserved, result 1, source 1, reason 7.
        assert data == bytes([0x03, 0x00, 0, 0, 0, 4, 0x00, 0x01, 0x01, 0x07])


# -- unknown PDU types on the server port ------------------------------------------------------


#: ROBUSTNESS 4: what arrives on a DICOM port that is not DICOM.
NOT_A_PDU = {
    "http": b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
    "tls_client_hello": bytes.fromhex("16030100a5010000a10303") + bytes(32),
    "ff_4gib": b"\xff\x00\xff\xff\xff\xff",  # unknown type, 4 GiB declared
    "type_00": b"\x00\x00\x00\x00\x00\x10",
    "type_08": b"\x08\x00\x00\x00\x00\x04\x00\x00\x00\x00",
    "rq_4gib": b"\x01\x00\xff\xff\xff\xff",  # known type, length over the cap
}


async def test_case_4_unknown_pdu_type_on_server_port() -> None:
    """ROBUSTNESS 4 at the socket: judged at the header, answered at once, others served.

    Sta2 + Evt19 is AA-1 (PS3.8 Table 9-10): A-ABORT, ARTIM, Sta13; the peer gets the
    A-ABORT at once (nothing waits for the declared length) and the close within ARTIM.
    All payloads go on concurrent connections to one server.
    """
    acse = 0.6
    scp = aiodimse.AE("SCP", timeouts=Timeouts(acse=acse))
    results: dict[str, tuple[PDU | None, list[PDU], float]] = {}

    async def one(name: str, payload: bytes, port: int) -> None:
        async with await connect(port) as peer:
            await peer.send_bytes(payload)
            start = anyio.current_time()
            first = await peer.receive_pdu(timeout=acse / 2)  # well before ARTIM
            rest = await _expect_closed(peer, within=acse + 1.0)
            results[name] = (first, rest, anyio.current_time() - start)

    async with scp.serve("127.0.0.1", 0) as server:
        rss_before = _rss()
        async with anyio.create_task_group() as tg:
            for name, payload in NOT_A_PDU.items():
                tg.start_soon(one, name, payload, server.port)
            await _echo_ok(server.port)  # served meanwhile
        assert _rss() - rss_before < 16 * 1024 * 1024  # nothing allocated from a length
        await _echo_ok(server.port)
        await _until(lambda: server.pending == 0, 3)
    assert sorted(results) == sorted(NOT_A_PDU)
    for name, (first, rest, elapsed) in results.items():
        assert first is None or isinstance(first, AAbort), (name, first)
        assert rest == [], (name, rest)
        assert elapsed < acse + 1.0, (name, elapsed)


# -- 39: hundreds of idle and half-open connections ------------------------------------------


async def test_case_39_idle_connections_bounded_and_resources_return_to_baseline() -> None:
    n_silent, n_header, n_partial_rq = 150, 100, 50
    total = n_silent + n_header + n_partial_rq
    acse = 1.5
    scp = aiodimse.AE("SCP", timeouts=Timeouts(acse=acse))
    async with scp.serve("127.0.0.1", 0) as server:
        await _echo_ok(server.port)  # warm up whatever the loop allocates lazily
        await _until(lambda: not server._channels, 3)  # its connection closed: idle now
        await _fds_settle_to(0, within=0.2)
        fd_baseline = _fds() if LINUX else 0
        rss_baseline = _rss()

        peers: list[RawPeer] = []
        try:
            for i in range(total):
                peer = await connect(server.port)
                peers.append(peer)
                if i < n_silent:
                    continue
                if i < n_silent + n_header:
                    await peer.send_bytes(b"\x01\x00\x00\x00")  # 4 of 6 header bytes
                else:
                    # A-ASSOCIATE-RQ header promising 200 bytes, then 10 of them.
                    await peer.send_bytes(b"\x01\x00\x00\x00\x00\xc8" + bytes(10))
            await _until(lambda: server.pending >= total, acse * 0.7)
            # Other clients are still served while all of them wait.
            await _echo_ok(server.port)
            assert server.pending == total
            # ARTIM closes every one of them (they never close themselves).
            with anyio.fail_after(acse + 3):
                for peer in peers:
                    assert await peer.receive_all_until_closed(timeout=acse + 3) == []
        finally:
            for peer in peers:
                await peer.aclose()
        await _until(lambda: server.pending == 0, 3)
        assert server.active == 0
        if LINUX:
            assert await _fds_settle_to(fd_baseline) == fd_baseline
        assert _rss() - rss_baseline < 20 * 1024 * 1024
        await _echo_ok(server.port)


# -- 40: idle and trickling established associations ----------------------------------------


async def test_case_40_idle_established_association_closed_by_network_timeout() -> None:
    network = 0.4
    scp = aiodimse.AE("SCP", timeouts=Timeouts(acse=5, network=network))
    async with scp.serve("127.0.0.1", 0) as server:
        async with await connect(server.port) as peer:
            await _associate(peer)
            start = anyio.current_time()
            received = await _expect_closed(peer, within=network + 2)
            elapsed = anyio.current_time() - start
        assert network * 0.9 <= elapsed < network + 1.0
        assert len(received) == 1 and isinstance(received[0], AAbort), received
        await _until(lambda: server.active == 0, 3)
        await _echo_ok(server.port)


async def test_case_40_activity_keeps_association_alive_past_network_timeout() -> None:
    """Timeouts.network counts time with no byte received: whole PDUs keep it open."""
    network = 0.25
    scp = aiodimse.AE("SCP", timeouts=Timeouts(acse=5, network=network))
    async with scp.serve("127.0.0.1", 0) as server:
        async with await connect(server.port) as peer:
            await _associate(peer)
            start = anyio.current_time()
            for message_id in range(1, 6):  # 5 echoes network/2 apart: longer than network
                rq = CEchoRQ(message_id=message_id, affected_sop_class_uid=VERIFICATION_SOP_CLASS)
                await peer.send_pdu(command_pdata(1, rq))
                rsp = command_of(await peer.receive_pdu(timeout=2))
                assert isinstance(rsp, CEchoRSP) and rsp.message_id_being_responded_to == message_id
                await anyio.sleep(network / 2)
            assert anyio.current_time() - start > 2 * network
            await peer.send_pdu(AReleaseRQ())
            assert await _expect_closed(peer, within=3) == [AReleaseRP()]


async def test_case_40_slow_handler_is_not_an_idle_association() -> None:
    network = 0.2
    scp = aiodimse.AE("SCP", timeouts=Timeouts(acse=5, network=network))

    async def slow(req: aiodimse.EchoRequest) -> int:
        await anyio.sleep(network * 2.5)
        return 0x0000

    scp.on_echo = slow
    async with scp.serve("127.0.0.1", 0) as server:
        with anyio.fail_after(5):
            async with aiodimse.AE("SCU").associate("127.0.0.1", server.port) as assoc:
                assert (await assoc.echo()).code == 0x0000


async def test_case_40_trickled_pdata_is_cut_off_by_a_per_pdu_deadline() -> None:
    network = 0.2
    scp = aiodimse.AE("SCP", timeouts=Timeouts(acse=5, network=network, pdu=network))
    async with scp.serve("127.0.0.1", 0) as server:
        async with await connect(server.port) as peer:
            await _associate(peer)
            rq = CEchoRQ(message_id=1, affected_sop_class_uid=VERIFICATION_SOP_CLASS)
            data = encode_pdu(command_pdata(1, rq))
            assert len(data) > 60  # one byte per network/3: 4 s, far beyond the idle timeout
            closed = False
            start = anyio.current_time()
            with anyio.move_on_after(5 * network):
                for i in range(len(data) - 1):  # never the last byte
                    try:
                        await peer.send_bytes(data[i : i + 1])
                    except (anyio.BrokenResourceError, OSError):
                        closed = True
                        break
                    await anyio.sleep(network / 3)
            if not closed:
                try:
                    await peer.receive_all_until_closed(timeout=0.2)
                except TimeoutError:
                    pass
                closed = peer.closed_by_other_end
            elapsed = anyio.current_time() - start
        assert closed and elapsed < 5 * network
        assert server.active == 0


# -- 43: shutdown with associations active --------------------------------------------------


async def test_case_43_shutdown_with_active_association_is_bounded() -> None:
    """``AE.serve`` takes no shutdown_timeout; ``Server.shutdown_timeout`` is set on the object."""
    scp = aiodimse.AE("SCP", timeouts=Timeouts(acse=2))
    shutdown_timeout = 0.5
    peers: list[RawPeer] = []
    try:
        with anyio.fail_after(5):
            async with scp.serve("127.0.0.1", 0) as server:
                assert server.shutdown_timeout == 10.0  # the default
                server.shutdown_timeout = shutdown_timeout
                for _ in range(3):
                    peer = await connect(server.port)
                    peers.append(peer)
                    await _associate(peer)
                assert server.active == 3
                start = anyio.current_time()
            elapsed = anyio.current_time() - start
        assert shutdown_timeout * 0.9 <= elapsed < shutdown_timeout + 1.0
        # Every aborted connection is off the books (on asyncio they ran without tasks).
        assert server.active == 0 and server.pending == 0 and not server._channels
        for peer in peers:
            received = await _expect_closed(peer, within=1)
            assert all(isinstance(p, AAbort) for p in received) and len(received) <= 1, received
    finally:
        for peer in peers:
            await peer.aclose()


async def test_case_43_shutdown_waits_for_an_association_that_releases() -> None:
    """Graceful part: an association that releases within shutdown_timeout is not aborted."""
    scp = aiodimse.AE("SCP", timeouts=Timeouts(acse=2))
    statuses: list[int] = []
    established = anyio.Event()
    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            async with scp.serve("127.0.0.1", 0) as server:
                server.shutdown_timeout = 3.0

                async def client() -> None:
                    async with aiodimse.AE("SCU").associate("127.0.0.1", server.port) as a:
                        established.set()
                        await anyio.sleep(0.3)  # still busy when the server starts to stop
                        statuses.append((await a.echo()).code)

                tg.start_soon(client)
                await established.wait()
                start = anyio.current_time()
            elapsed = anyio.current_time() - start
    assert statuses == [0x0000]  # the client's work and release completed normally
    assert 0.2 < elapsed < 3.0  # waited for it, did not run into shutdown_timeout


@pytest.mark.skipif(not LINUX, reason="uses FIONREAD and Linux socket-buffer behaviour")
async def test_case_43_shutdown_deadline_holds_with_peers_that_do_not_read() -> None:
    """Peers that stopped reading hold our send path; shutdown still ends in bounded time.

    Each peer (small TCP window) pipelines echo requests and reads nothing, so the server's
    response sends block. Shutdown may then spend ``shutdown_timeout`` plus one
    ``Timeouts.abort`` for the abort attempts, not one ``Timeouts.abort`` per association.
    """
    n_peers, abort, shutdown_timeout = 3, 0.4, 0.2
    scp = aiodimse.AE("SCP", timeouts=Timeouts(acse=5, abort=abort))
    burst = _echo_burst(600)  # ~60 KB of responses: far more than both buffers hold
    peers: list[RawPeer] = []
    try:
        async with scp.serve("127.0.0.1", 0) as server:
            server.shutdown_timeout = shutdown_timeout
            server_socks = []
            for _ in range(n_peers):
                peer = await connect(server.port, rcvbuf=4096)
                peers.append(peer)
                await _associate(peer)
                # A small send buffer at the server's end too (no autotuning to 4 MiB).
                server_sock = _server_side_socket(peer)
                server_sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
                server_socks.append(server_sock)
                with anyio.move_on_after(1):  # if the server stops reading, some stays unsent
                    await peer.send_bytes(burst)
            # The precondition: every server-side socket is full, so a response send blocks.
            await _until(lambda: not any(_writable(s) for s in server_socks), 5)
            # Zero-window probes let a few bytes through at first (persist timer backoff):
            # wait until no peer's receive queue has grown for 0.3 s.
            await _steady(lambda: [_unread(p) for p in peers], hold=0.3, within=3)
            assert not any(_writable(s) for s in server_socks)
            start = anyio.current_time()
        elapsed = anyio.current_time() - start
    finally:
        for peer in peers:
            await peer.aclose()
    # Serial aborts take shutdown_timeout + n_peers * abort (1.4 s here).
    assert elapsed < shutdown_timeout + abort + 0.5, elapsed


def _echo_burst(n: int) -> bytes:
    """``n`` C-ECHO-RQ P-DATA-TF PDUs (message IDs 1..n) on context 1, back to back."""
    return b"".join(
        encode_pdu(
            command_pdata(1, CEchoRQ(message_id=i, affected_sop_class_uid=VERIFICATION_SOP_CLASS))
        )
        for i in range(1, n + 1)
    )


# -- PS3.7 D.3.3.3: requests beyond the negotiated window --------------------------------------


async def test_pipelined_requests_beyond_the_window_are_bounded() -> None:
    """A peer that negotiated no window (1 outstanding) but pipelines 200 requests.

    Accepted outcomes: handled one at a time (reading stops meanwhile), or an abort.
    Not accepted: 200 handlers running at once (unbounded tasks and memory per peer).
    """
    scp = aiodimse.AE("SCP", timeouts=Timeouts(acse=5))
    gate = anyio.Event()
    running = 0
    peak = 0

    async def held(req: aiodimse.EchoRequest) -> int:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        try:
            await gate.wait()
        finally:
            running -= 1
        return 0x0000

    scp.on_echo = held
    async with scp.serve("127.0.0.1", 0) as server:
        async with await connect(server.port) as peer:
            ac = await _associate(peer)
            assert ac.user_information.sub_items  # no 53H item: the window is 1/1
            burst = _echo_burst(200)
            await peer.send_bytes(burst)
            with anyio.move_on_after(0.3):
                await _until(lambda: peak > scp.limits.max_async_operations, 0.3)
            observed = peak
            gate.set()
    assert observed <= scp.limits.max_async_operations, observed


# -- 47: the peer disconnects or resets mid handshake / mid operation -------------------------


@pytest.mark.parametrize("how", ["close", "reset"])
@pytest.mark.parametrize("when", ["before_ac", "mid_ac", "awaiting_echo_rsp"])
async def test_case_47_peer_disconnects(when: str, how: str) -> None:
    async def acceptor(peer: RawPeer) -> None:
        rq = await peer.receive_pdu()
        assert isinstance(rq, AAssociateRQ)
        if when == "mid_ac":
            await peer.send_bytes(encode_pdu(accept_ac(rq))[:20])
        elif when == "awaiting_echo_rsp":
            await peer.send_pdu(accept_ac(rq))
            assert isinstance(command_of(await peer.receive_pdu()), CEchoRQ)
        if how == "reset":
            _rst(peer)
        # returning closes the connection

    fd_baseline = _fds() if LINUX else 0
    reached_echo: list[bool] = []
    async with raw_acceptor(acceptor) as port:
        scu = aiodimse.AE("SCU", timeouts=Timeouts(acse=5))
        with anyio.fail_after(3):  # well under acse and the echo timeout: nothing waits on them
            with pytest.raises(DicomError) as info:
                async with scu.associate("127.0.0.1", port, called_ae="RAW") as assoc:
                    reached_echo.append(True)
                    await assoc.echo(timeout=10)
    assert isinstance(info.value, NetworkError | AssociationAborted), repr(info.value)
    assert info.value.retryable
    assert reached_echo == ([True] if when == "awaiting_echo_rsp" else [])
    if LINUX:
        assert await _fds_settle_to(fd_baseline) == fd_baseline


@pytest.mark.parametrize("how", ["close", "reset"])
async def test_case_47_requestor_disconnects_mid_handshake_server_keeps_serving(how: str) -> None:
    scp = aiodimse.AE("SCP", timeouts=Timeouts(acse=5))
    async with scp.serve("127.0.0.1", 0) as server:
        full = encode_pdu(verification_rq())
        for cut in (3, 6, len(full) // 2, len(full) - 1):
            peer = await connect(server.port)
            await peer.send_bytes(full[:cut])
            if how == "reset":
                _rst(peer)
            await peer.aclose()
        await _echo_ok(server.port)
        await _until(lambda: server.pending == 0, 2)  # freed by the close, not by ARTIM (5 s)


@pytest.mark.parametrize("how", ["reset", "close", "abort_pdu", "release_rq"])
async def test_case_47_48_peer_leaves_while_scp_handler_runs(how: str) -> None:
    """The peer resets, closes, aborts or releases mid-handler: handler cancelled, slot freed."""
    scp = aiodimse.AE("SCP", timeouts=Timeouts(acse=5))
    started = anyio.Event()
    cancelled = anyio.Event()

    async def stuck(req: aiodimse.EchoRequest) -> int:
        if started.is_set():
            return 0x0000  # the next client's echo
        started.set()
        try:
            await anyio.sleep_forever()
        finally:
            cancelled.set()
        return 0x0110  # pragma: no cover

    scp.on_echo = stuck
    async with scp.serve("127.0.0.1", 0) as server:
        fd_baseline = _fds() if LINUX else 0
        peer = await connect(server.port)
        await _associate(peer)
        rq = CEchoRQ(message_id=7, affected_sop_class_uid=VERIFICATION_SOP_CLASS)
        await peer.send_pdu(command_pdata(1, rq))
        with anyio.fail_after(3):
            await started.wait()
            if how == "reset":
                _rst(peer)
            elif how == "abort_pdu":
                await peer.send_pdu(AAbort(source=0, reason=0))
            elif how == "release_rq":
                await peer.send_pdu(AReleaseRQ())
                assert await peer.receive_pdu() == AReleaseRP()
            await peer.aclose()
            await cancelled.wait()
        await _until(lambda: server.active == 0, 3)
        if LINUX:
            assert await _fds_settle_to(fd_baseline) == fd_baseline
        await _echo_ok(server.port)


# -- 48: cancellation of an SCU block from outside -------------------------------------------


@pytest.mark.parametrize("when", ["awaiting_ac", "awaiting_echo_rsp"])
async def test_case_48_cancelled_scu_block_aborts_and_leaks_nothing(when: str) -> None:
    seen: list[PDU] = []
    script_done = anyio.Event()

    async def acceptor(peer: RawPeer) -> None:
        rq = await peer.receive_pdu()
        assert isinstance(rq, AAssociateRQ)
        if when == "awaiting_echo_rsp":
            await peer.send_pdu(accept_ac(rq))
            assert isinstance(command_of(await peer.receive_pdu()), CEchoRQ)
        seen.extend(await _expect_closed(peer, within=3))  # never answers
        script_done.set()

    fd_baseline = _fds() if LINUX else 0
    reached_echo: list[bool] = []
    async with raw_acceptor(acceptor) as port:
        scu = aiodimse.AE("SCU", timeouts=Timeouts(acse=5))
        start = anyio.current_time()
        with anyio.move_on_after(0.4) as scope:
            async with scu.associate("127.0.0.1", port, called_ae="RAW") as assoc:
                reached_echo.append(True)
                await assoc.echo(timeout=None)
        elapsed = anyio.current_time() - start
        assert scope.cancelled_caught
        assert elapsed < 0.4 + 1.0
        with anyio.fail_after(3):
            await script_done.wait()
    assert reached_echo == ([True] if when == "awaiting_echo_rsp" else [])
    # The peer saw A-ABORT (service user) or just the close; never a release.
    assert seen in ([AAbort(source=0, reason=0)], []), seen
    if LINUX:
        assert await _fds_settle_to(fd_baseline) == fd_baseline


# -- issue 4: after a run of bad peers, fds and memory return to their baseline ---------------


async def test_run_of_bad_peers_resources_return_to_baseline() -> None:
    """Many misbehaving peers at once; then the server's fds and RSS are back at baseline."""
    acse, network = 0.5, 0.5
    scp = aiodimse.AE("SCP", require_called_aet=True, timeouts=Timeouts(acse=acse, network=network))
    outcomes: dict[str, int] = {}

    async def behave(kind: str, port: int) -> None:
        async with await connect(port) as peer:
            if kind == "silent":
                pass
            elif kind == "half_closed":
                await peer.send_bytes(encode_pdu(verification_rq())[:40])
                await peer.stream.send_eof()  # shut down our sending side, keep reading
            elif kind == "partial_header":
                await peer.send_bytes(b"\x01\x00\x00")
            elif kind == "http":
                await peer.send_bytes(NOT_A_PDU["http"])
            elif kind == "wrong_called_ae_stays":
                await peer.send_pdu(verification_rq(called="WRONG"))
            elif kind == "rq_twice":
                await _associate(peer)
                await peer.send_pdu(verification_rq())
            elif kind == "idle_established":
                await _associate(peer)
            elif kind == "peer_aborts":
                await _associate(peer)
                await peer.send_pdu(AAbort(source=0, reason=0))
            elif kind == "reset_mid_handshake":
                await peer.send_bytes(encode_pdu(verification_rq())[:30])
                _rst(peer)
                return
            elif kind == "reset_after_echo":
                await _associate(peer)
                rq = CEchoRQ(message_id=1, affected_sop_class_uid=VERIFICATION_SOP_CLASS)
                await peer.send_pdu(command_pdata(1, rq))
                assert isinstance(command_of(await peer.receive_pdu()), CEchoRSP)
                _rst(peer)
                return
            else:  # pragma: no cover
                raise AssertionError(kind)
            await _expect_closed(peer, within=acse + network + 2)  # the server closes
        outcomes[kind] = outcomes.get(kind, 0) + 1

    kinds = [
        "silent",
        "half_closed",
        "partial_header",
        "http",
        "wrong_called_ae_stays",
        "rq_twice",
        "idle_established",
        "peer_aborts",
        "reset_mid_handshake",
        "reset_after_echo",
    ]
    rounds = 15
    async with scp.serve("127.0.0.1", 0) as server:
        await _echo_ok(server.port)
        await _fds_settle_to(0, within=0.1)
        fd_baseline = _fds() if LINUX else 0
        rss_baseline = _rss()
        with anyio.fail_after(10):
            async with anyio.create_task_group() as tg:
                for _ in range(rounds):
                    for kind in kinds:
                        tg.start_soon(behave, kind, server.port)
                await _echo_ok(server.port)  # served while they misbehave
        await _until(lambda: server.pending == 0 and server.active == 0, 3)
        if LINUX:
            assert await _fds_settle_to(fd_baseline) == fd_baseline
        assert _rss() - rss_baseline < 20 * 1024 * 1024
        await _echo_ok(server.port)
    closed_by_server = [k for k in kinds if not k.startswith("reset")]
    assert outcomes == dict.fromkeys(closed_by_server, rounds)
