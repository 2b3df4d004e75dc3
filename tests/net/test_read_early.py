"""``Channel.read_early``: an acceptor answers an A-ASSOCIATE-RQ that is already waiting
in its socket right away (asyncio), before its reader task has run once."""

from __future__ import annotations

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


async def test_a_waiting_request_is_answered_before_the_reader_runs() -> None:
    ours, peer = socket.socketpair()
    rq = verification_rq()
    peer.sendall(encode_pdu(rq))
    answers: list[AAssociateRQ] = []
    channel = _acceptor(ours, answers)
    assert channel.read_early()
    # No await since: the A-ASSOCIATE-AC is in the peer's socket already.
    assert answers == [rq]
    assert _ac(_read_pdu(peer)).calling_ae_title == rq.calling_ae_title
    # The reader started afterwards takes over: the association ends normally.
    async with anyio.create_task_group() as tg:
        tg.start_soon(channel.run)
        peer.sendall(bytes.fromhex("05000000000400000000"))  # A-RELEASE-RQ
        assert await _peer_reads(peer) == bytes.fromhex("06000000000400000000")  # RP
        peer.close()
    assert channel.is_closed
    ours.close()


async def test_nothing_waiting_then_the_reader_answers_as_usual() -> None:
    ours, peer = socket.socketpair()
    answers: list[AAssociateRQ] = []
    channel = _acceptor(ours, answers)
    assert channel.read_early()
    assert answers == []
    peer.setblocking(False)
    with pytest.raises(BlockingIOError):
        peer.recv(1)  # nothing was sent
    peer.setblocking(True)
    async with anyio.create_task_group() as tg:
        tg.start_soon(channel.run)
        peer.sendall(encode_pdu(verification_rq()))
        assert _ac(await _peer_reads(peer)).called_ae_title == "SCP"
        peer.sendall(bytes.fromhex("05000000000400000000"))
        assert await _peer_reads(peer) == bytes.fromhex("06000000000400000000")
        peer.close()
    assert len(answers) == 1
    ours.close()
