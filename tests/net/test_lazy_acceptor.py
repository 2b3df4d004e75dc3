"""An acceptor's channel run lazily (``Channel.start_lazily(at_once=True)``, what the server
does on asyncio): an A-ASSOCIATE-RQ already waiting in the socket is answered at once,
before any await; a short association then runs and ends on the read callback alone, with
no reader task, and tells its owner it has finished (``on_finished``)."""

from __future__ import annotations

import asyncio
import socket

import anyio
import pytest

import aiodimse
from aiodimse.association.connection import Association, Role
from aiodimse.net.channel import Channel
from aiodimse.net.transport import SocketTransport
from aiodimse.pdu import AAssociateAC, AAssociateRJ, AAssociateRQ
from aiodimse.pdu.codec import encode_pdu
from aiodimse.pdu.decode import decode_body
from tests.net.badpeer import accept_ac, verification_rq

pytestmark = [pytest.mark.anyio, pytest.mark.fd_callbacks]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # reading in the loop's callback exists on asyncio only


def _acceptor(sock: socket.socket, answers: list[AAssociateRQ]) -> Channel:
    ae = aiodimse.AE("SCP")
    core = Association(Role.ACCEPTOR, limits=ae.limits, artim_timeout=30.0)
    channel = Channel(SocketTransport(sock), core, limits=ae.limits, timeouts=ae.timeouts)

    def decide(rq: AAssociateRQ) -> AAssociateAC | AAssociateRJ:
        answers.append(rq)
        return accept_ac(rq)

    channel.decide_association = decide
    ae.configure_channel(channel)
    core.transport_connected(channel.now())
    return channel


def _read_pdu(sock: socket.socket) -> bytes:
    sock.settimeout(5)
    head = sock.recv(6, socket.MSG_WAITALL)
    length = int.from_bytes(head[2:6], "big")
    return head + sock.recv(length, socket.MSG_WAITALL)


def _ac(pdu: bytes) -> AAssociateAC:
    assert pdu[0] == 0x02, pdu[:6].hex()
    ac = decode_body(0x02, pdu[6:])
    assert isinstance(ac, AAssociateAC)
    return ac


async def _peer_reads(sock: socket.socket) -> bytes:
    """The peer's next PDU, read in a thread (the loop must go on serving meanwhile)."""
    return await anyio.to_thread.run_sync(_read_pdu, sock)


def _readers() -> list[asyncio.Task[object]]:
    return [t for t in asyncio.all_tasks() if t.get_coro().__qualname__ == "Channel.run"]  # type: ignore[union-attr]


async def _until(finished: anyio.Event) -> None:
    with anyio.fail_after(5):
        await finished.wait()


async def test_a_waiting_request_is_answered_before_any_await_and_the_end_needs_no_task() -> None:
    ours, peer = socket.socketpair()
    rq = verification_rq()
    peer.sendall(encode_pdu(rq))
    answers: list[AAssociateRQ] = []
    channel = _acceptor(ours, answers)
    finished = anyio.Event()
    channel.on_finished = finished.set
    assert channel.start_lazily(at_once=True)
    # No await since: the A-ASSOCIATE-AC is in the peer's socket already.
    assert answers == [rq]
    assert _ac(_read_pdu(peer)).calling_ae_title == rq.calling_ae_title
    peer.sendall(bytes.fromhex("05000000000400000000"))  # A-RELEASE-RQ
    assert await _peer_reads(peer) == bytes.fromhex("06000000000400000000")  # RP
    peer.close()
    await _until(finished)
    assert channel.is_closed and not _readers() and channel.on_finished is None
    assert ours.fileno() == -1  # the channel closed its socket


async def test_nothing_waiting_then_the_read_callback_answers() -> None:
    ours, peer = socket.socketpair()
    answers: list[AAssociateRQ] = []
    channel = _acceptor(ours, answers)
    finished = anyio.Event()
    channel.on_finished = finished.set
    assert channel.start_lazily(at_once=True)
    assert answers == []
    peer.setblocking(False)
    with pytest.raises(BlockingIOError):
        peer.recv(1)  # nothing was sent
    peer.setblocking(True)
    peer.sendall(encode_pdu(verification_rq()))
    assert _ac(await _peer_reads(peer)).called_ae_title == "SCP"
    peer.sendall(bytes.fromhex("05000000000400000000"))
    assert await _peer_reads(peer) == bytes.fromhex("06000000000400000000")
    assert not _readers()
    peer.close()
    await _until(finished)
    assert len(answers) == 1 and channel.is_closed and not _readers()


async def test_artim_expiring_starts_the_reader_which_ends_the_connection() -> None:
    """No A-ASSOCIATE-RQ: ARTIM runs on a loop timer; when it expires the reader starts,
    closes the connection (PS3.8 9.2.3, AA-2 in Sta2) and the owner is told."""
    ours, peer = socket.socketpair()
    ae = aiodimse.AE("SCP")
    core = Association(Role.ACCEPTOR, limits=ae.limits, artim_timeout=0.2)
    channel = Channel(SocketTransport(ours), core, limits=ae.limits, timeouts=ae.timeouts)
    channel.decide_association = accept_ac
    ae.configure_channel(channel)
    core.transport_connected(channel.now())
    finished = anyio.Event()
    channel.on_finished = finished.set
    assert channel.start_lazily(at_once=True)
    assert not _readers()
    await _until(finished)
    assert channel.is_closed and "ARTIM" in str(channel.error)
    peer.settimeout(5)
    assert peer.recv(1) == b""  # closed, nothing sent
    peer.close()
