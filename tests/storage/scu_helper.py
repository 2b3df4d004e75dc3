"""A minimal C-STORE SCU for SCP tests, built on the Channel API (independent of the SCU half)."""

from __future__ import annotations

from collections.abc import Iterable

import aiodimse
from aiodimse.dimse.messages import CStoreRQ, CStoreRSP
from aiodimse.services.contexts import Context


async def store_bytes(
    assoc: aiodimse.Association,
    dataset: bytes | Iterable[bytes],
    *,
    sop_class_uid: str,
    sop_instance_uid: str,
    transfer_syntax: str | None = None,
    timeout: float = 30.0,
) -> CStoreRSP:
    """Send one C-STORE-RQ with ``dataset`` (encoded bytes) and return the C-STORE-RSP."""
    channel = assoc._channel
    cid = assoc.context_for(sop_class_uid, transfer_syntax)
    mid = channel.next_message_id()
    rq = CStoreRQ(
        message_id=mid,
        affected_sop_class_uid=sop_class_uid,
        affected_sop_instance_uid=sop_instance_uid,
    )
    async with channel.expect_responses(mid) as responses:
        await channel.send_message(cid, rq, dataset)
        received = await channel.next_response(responses, timeout, "the C-STORE response")
    rsp = received.message
    assert isinstance(rsp, CStoreRSP)
    return rsp


def contexts_for(sop_classes: Iterable[str], transfer_syntax: str) -> list[Context]:
    """One context per SOP class with ``transfer_syntax``, plus Verification."""
    out = [Context(abstract_syntax=s, transfer_syntaxes=(transfer_syntax,)) for s in sop_classes]
    return [*dict.fromkeys(out), Context(abstract_syntax="1.2.840.10008.1.1")]


def raw_store_command(sop_class_uid: str, sop_instance_uid: bytes, message_id: int) -> bytes:
    """A C-STORE-RQ command set encoded by hand (PS3.7 6.3.1, Implicit VR LE), so that the
    Affected SOP Instance UID can carry bytes our own encoder refuses (``\\``, 65+ chars)."""
    import struct

    def elem(tag: int, value: bytes) -> bytes:
        return struct.pack("<HHI", tag >> 16, tag & 0xFFFF, len(value)) + value

    def ui(text: bytes) -> bytes:
        return text + b"\x00" if len(text) % 2 else text

    body = b"".join(
        [
            elem(0x00000002, ui(sop_class_uid.encode())),
            elem(0x00000100, struct.pack("<H", 0x0001)),  # C-STORE-RQ
            elem(0x00000110, struct.pack("<H", message_id)),
            elem(0x00000700, struct.pack("<H", 0)),
            elem(0x00000800, struct.pack("<H", 0x0000)),  # a dataset follows
            elem(0x00001000, ui(sop_instance_uid)),
        ]
    )
    return elem(0x00000000, struct.pack("<I", len(body))) + body


async def send_raw(
    channel: object, cid: int, command: bytes, dataset: bytes, *, last: bool = True
) -> None:
    """Command PDV, then dataset PDVs of 16000 bytes (the last flagged only if ``last``)."""
    import anyio

    from aiodimse.net.channel import Channel
    from aiodimse.pdu import PDV, PDataTF

    assert isinstance(channel, Channel)
    pdus = [PDataTF(pdvs=(PDV(context_id=cid, is_command=True, is_last=True, data=command),))]
    step = 16000
    for i in range(0, len(dataset), step):
        final = last and i + step >= len(dataset)
        chunk = dataset[i : i + step]
        pdus.append(
            PDataTF(pdvs=(PDV(context_id=cid, is_command=False, is_last=final, data=chunk),))
        )
    for pdu in pdus:
        channel._send_pdu(pdu, anyio.current_time())
        await channel._flush()
