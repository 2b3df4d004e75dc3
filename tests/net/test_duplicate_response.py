"""A peer that answers one request twice (ROBUSTNESS 26): the first response completes the
operation, the second is logged and ignored, and the association goes on normally."""

from __future__ import annotations

import logging

import anyio
import pytest

import aiodimse
from aiodimse.constants import VERIFICATION_SOP_CLASS
from aiodimse.dimse.messages import CEchoRQ, CEchoRSP
from aiodimse.pdu import PDU, AAssociateRQ, AReleaseRP, AReleaseRQ, encode_pdu

from .badpeer import RawPeer, accept_ac, command_of, command_pdata, raw_acceptor

pytestmark = pytest.mark.anyio


def _rsp(rq: CEchoRQ, status: int) -> bytes:
    rsp = CEchoRSP(
        message_id_being_responded_to=rq.message_id,
        status=status,
        affected_sop_class_uid=VERIFICATION_SOP_CLASS,
    )
    return encode_pdu(command_pdata(1, rsp))


@pytest.mark.parametrize("together", [True, False], ids=["one-write", "two-writes"])
async def test_second_response_to_one_request_is_ignored(
    together: bool, caplog: pytest.LogCaptureFixture, anyio_backend_name: str
) -> None:
    seen: list[PDU | None] = []
    done = anyio.Event()

    async def acceptor(peer: RawPeer) -> None:
        rq = await peer.receive_pdu()
        assert isinstance(rq, AAssociateRQ)
        await peer.send_pdu(accept_ac(rq))
        first = command_of(await peer.receive_pdu())
        assert isinstance(first, CEchoRQ)
        # Success, then a second (failure) answer to the same Message ID.
        if together:
            await peer.send_bytes(_rsp(first, 0x0000) + _rsp(first, 0xC000))
        else:
            await peer.send_bytes(_rsp(first, 0x0000))
            await peer.send_bytes(_rsp(first, 0xC000))
        second = command_of(await peer.receive_pdu())
        assert isinstance(second, CEchoRQ)
        await peer.send_bytes(_rsp(second, 0x0000))
        release = await peer.receive_pdu()
        seen.append(release)
        await peer.send_pdu(AReleaseRP())
        done.set()

    caplog.set_level(logging.WARNING, logger="aiodimse")
    statuses: list[int] = []
    async with raw_acceptor(acceptor) as port:
        scu = aiodimse.AE("SCU")
        with anyio.fail_after(5):
            async with scu.associate("127.0.0.1", port, called_ae="RAW") as assoc:
                statuses.append((await assoc.echo()).code)
                statuses.append((await assoc.echo()).code)
            await done.wait()
    assert statuses == [0x0000, 0x0000]
    assert seen and isinstance(seen[0], AReleaseRQ)
    if anyio_backend_name == "asyncio":
        # On asyncio a one-response request waits on a future, which knows it was answered
        # already; elsewhere the extra response goes to the request's closed stream.
        ignored = [r for r in caplog.records if "second response" in r.getMessage()]
        assert ignored, "the extra response was not reported"
