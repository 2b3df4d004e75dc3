"""On asyncio a requestor's channel starts its reader task only when there is work for it
(``Channel.start_lazily``): a short association runs on the transport's read callback alone,
and whatever the callback cannot do (the peer closing or aborting, a partial PDU's timer)
still starts the reader and is handled as before."""

from __future__ import annotations

import asyncio

import anyio
import pytest

import aiodimse
from aiodimse.config import Timeouts
from aiodimse.dimse.messages import CEchoRQ, CEchoRSP
from aiodimse.errors import AssociationAborted, AssociationError, DicomError
from aiodimse.pdu import AAbort, AAssociateRQ, AReleaseRP, AReleaseRQ, PDataTF, encode_pdu

from .badpeer import RawPeer, accept_ac, command_of, command_pdata, raw_acceptor

pytestmark = pytest.mark.anyio


def _readers() -> list[asyncio.Task[object]]:
    return [t for t in asyncio.all_tasks() if t.get_coro().__qualname__ == "Channel.run"]  # type: ignore[union-attr]


async def _accept(peer: RawPeer) -> None:
    rq = await peer.receive_pdu()
    assert isinstance(rq, AAssociateRQ)
    await peer.send_pdu(accept_ac(rq))


async def _answer_echo(peer: RawPeer) -> None:
    rq = command_of(await peer.receive_pdu())
    assert isinstance(rq, CEchoRQ)
    rsp = CEchoRSP(
        message_id_being_responded_to=rq.message_id,
        status=0,
        affected_sop_class_uid=rq.affected_sop_class_uid,
    )
    await peer.send_pdu(command_pdata(1, rsp))


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
@pytest.mark.fd_callbacks  # asserts the loop-callback path itself
async def test_short_association_runs_without_a_reader_task() -> None:
    done = anyio.Event()

    async def acceptor(peer: RawPeer) -> None:
        await _accept(peer)
        for _ in range(3):
            await _answer_echo(peer)
        assert isinstance(await peer.receive_pdu(), AReleaseRQ)
        await peer.send_pdu(AReleaseRP())
        assert await peer.receive_all_until_closed(timeout=3) == []
        done.set()

    async with raw_acceptor(acceptor) as port:
        with anyio.fail_after(5):
            async with aiodimse.AE("SCU").associate("127.0.0.1", port, called_ae="RAW") as a:
                for _ in range(3):
                    assert (await a.echo()).is_success
                    assert _readers() == []
            await done.wait()


@pytest.mark.parametrize("how", ["abort", "close"])
async def test_peer_ending_the_association_while_idle_is_noticed(how: str) -> None:
    """The peer aborts (A-ABORT) or just closes the connection while we hold the
    association without an operation: the callback starts the reader, which ends it."""
    ended = anyio.Event()

    async def acceptor(peer: RawPeer) -> None:
        await _accept(peer)
        await _answer_echo(peer)
        if how == "abort":
            await peer.send_pdu(AAbort(source=0, reason=0))
        ended.set()  # returning closes the connection

    expected = AssociationAborted if how == "abort" else DicomError
    async with raw_acceptor(acceptor) as port:
        with anyio.fail_after(5):
            with pytest.raises(expected):
                async with aiodimse.AE("SCU").associate("127.0.0.1", port, called_ae="RAW") as a:
                    await a.echo()
                    await ended.wait()
                    with anyio.fail_after(3):
                        while a.is_established:  # noqa: ASYNC110 - the fact has no event
                            await anyio.sleep(0.01)
                    await a.echo()


async def test_partial_pdu_while_idle_runs_the_pdu_timer() -> None:
    """Half a PDU and silence, with no request outstanding: the PDU timer (which needs the
    reader) aborts the association."""
    seen: list[object] = []

    async def acceptor(peer: RawPeer) -> None:
        await _accept(peer)
        await _answer_echo(peer)
        wire = encode_pdu(
            command_pdata(
                1,
                CEchoRSP(
                    message_id_being_responded_to=999,
                    status=0,
                    affected_sop_class_uid="1.2.840.10008.1.1",
                ),
            )
        )
        await peer.send_bytes(wire[:9])
        seen.extend(await peer.receive_all_until_closed(timeout=3))
        script_done.set()

    script_done = anyio.Event()
    scu = aiodimse.AE("SCU", timeouts=Timeouts(pdu=0.3))
    async with raw_acceptor(acceptor) as port:
        with anyio.fail_after(5):
            async with scu.associate("127.0.0.1", port, called_ae="RAW") as a:
                await a.echo()
                with anyio.fail_after(3):
                    while a.is_established:  # noqa: ASYNC110 - the fact has no event
                        await anyio.sleep(0.01)
                with pytest.raises(AssociationError):
                    await a.echo()
            await script_done.wait()
    assert seen and isinstance(seen[0], AAbort)
    assert not any(isinstance(p, PDataTF) for p in seen)
