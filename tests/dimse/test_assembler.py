"""MessageAssembler: event order, bounds, error reasons (PS3.8 Annex E, 9.3.8)."""

from __future__ import annotations

import pytest

from aiodimse.config import Limits
from aiodimse.constants import AbortReason
from aiodimse.dimse.assembler import (
    AssemblerEvent,
    AssemblerState,
    CommandReceived,
    DataFragment,
    MessageAssembler,
    MessageComplete,
)
from aiodimse.dimse.command_codec import encode_command
from aiodimse.dimse.fragmenter import Fragmenter
from aiodimse.dimse.messages import CEchoRQ, CStoreRQ
from aiodimse.errors import AssemblyError
from aiodimse.pdu import PDV, PDataTF

ECHO = CEchoRQ(message_id=1, affected_sop_class_uid="1.2.840.10008.1.1")
STORE = CStoreRQ(
    message_id=2,
    affected_sop_class_uid="1.2.840.10008.5.1.4.1.1.7",
    affected_sop_instance_uid="1.2.3.4",
)


def pdv(cid: int, command: bool, last: bool, data: bytes | memoryview = b"\x00\x00") -> PDV:
    return PDV(context_id=cid, is_command=command, is_last=last, data=data)


def feed_all(asm: MessageAssembler, pdus: list[PDataTF]) -> list[AssemblerEvent]:
    events: list[AssemblerEvent] = []
    for pdu in pdus:
        events.extend(asm.receive_pdata(pdu))
    return events


def test_command_only_message() -> None:
    asm = MessageAssembler([1])
    events = feed_all(asm, list(Fragmenter(100).pdus(1, encode_command(ECHO))))
    assert events == [CommandReceived(context_id=1, message=ECHO), MessageComplete(context_id=1)]
    assert asm.state is AssemblerState.IDLE and asm.context_id is None


def test_command_and_dataset_stream_as_fragments() -> None:
    data = bytes(range(256)) * 100
    asm = MessageAssembler([1, 3])
    events = feed_all(asm, list(Fragmenter(4096).pdus(3, encode_command(STORE), data)))
    assert events[0] == CommandReceived(context_id=3, message=STORE)
    assert events[-1] == MessageComplete(context_id=3)
    frags = events[1:-1]
    assert all(isinstance(e, DataFragment) and e.context_id == 3 for e in frags)
    assert b"".join(bytes(e.data) for e in frags if isinstance(e, DataFragment)) == data
    assert [e.last for e in frags if isinstance(e, DataFragment)] == [False] * (len(frags) - 1) + [
        True
    ]
    assert len(frags) > 1  # never joined into one buffer


def test_data_fragment_is_a_view_of_the_pdv() -> None:
    asm = MessageAssembler([1])
    feed_all(asm, list(Fragmenter(1000).pdus(1, encode_command(STORE))))  # command only
    buf = bytearray(b"abcd")
    (frag, done) = asm.receive_pdv(pdv(1, False, True, memoryview(buf)))
    assert isinstance(frag, DataFragment) and frag.data.obj is buf
    assert done == MessageComplete(context_id=1)


def test_back_to_back_messages() -> None:
    asm = MessageAssembler([1])
    frag = Fragmenter(200)
    pdus = [
        *frag.pdus(1, encode_command(STORE), b"xy" * 300),
        *frag.pdus(1, encode_command(ECHO)),
        *frag.pdus(1, encode_command(STORE), [b"a" * 10, b"b" * 20]),
    ]
    events = feed_all(asm, pdus)
    kinds = [type(e).__name__ for e in events]
    assert kinds.count("MessageComplete") == 3
    assert kinds.count("CommandReceived") == 3


def test_command_set_length_bound() -> None:
    asm = MessageAssembler([1], limits=Limits(max_command_set_length=64))
    with pytest.raises(AssemblyError) as info:
        feed_all(asm, list(Fragmenter(30).pdus(1, encode_command(STORE))))
    assert info.value.abort_reason == AbortReason.INVALID_PDU_PARAMETER_VALUE


def test_max_dataset_length_cuts_off_endless_message() -> None:
    asm = MessageAssembler([1], max_dataset_length=10_000)
    feed_all(asm, list(Fragmenter(1000).pdus(1, encode_command(STORE))))
    events = 0
    with pytest.raises(AssemblyError) as info:
        for _ in range(100_000):  # the peer never sets the last bit
            events += len(asm.receive_pdv(pdv(1, False, False, bytes(1000))))
    assert events == 10  # exactly the bytes allowed were delivered
    assert info.value.abort_reason == AbortReason.NOT_SPECIFIED


def test_max_dataset_length_exact_fit_is_fine() -> None:
    asm = MessageAssembler([1], max_dataset_length=4)
    feed_all(asm, list(Fragmenter(1000).pdus(1, encode_command(STORE))))
    assert asm.receive_pdv(pdv(1, False, True, b"abcd"))[-1] == MessageComplete(context_id=1)


def test_error_is_sticky() -> None:
    asm = MessageAssembler([1])
    with pytest.raises(AssemblyError) as first:
        asm.receive_pdv(pdv(1, False, True))
    assert asm.state is AssemblerState.ERROR
    with pytest.raises(AssemblyError) as again:
        feed_all(asm, list(Fragmenter(100).pdus(1, encode_command(ECHO))))
    assert again.value is first.value


def test_strict_pdu_boundaries() -> None:
    two = PDataTF(
        pdvs=(
            *next(iter(Fragmenter(1000).pdus(1, encode_command(ECHO)))).pdvs,
            *next(iter(Fragmenter(1000).pdus(1, encode_command(ECHO)))).pdvs,
        )
    )
    assert len(MessageAssembler([1]).receive_pdata(two)) == 4  # lenient by default
    with pytest.raises(AssemblyError) as info:
        MessageAssembler([1], strict_pdu_boundaries=True).receive_pdata(two)
    assert info.value.abort_reason == AbortReason.UNEXPECTED_PDU_PARAMETER


@pytest.mark.parametrize("ids", [[0], [2], [257], [1, 4]])
def test_constructor_rejects_invalid_context_ids(ids: list[int]) -> None:
    with pytest.raises(ValueError):
        MessageAssembler(ids)


def test_empty_data_fragment_is_delivered() -> None:
    asm = MessageAssembler([1])
    events = feed_all(asm, list(Fragmenter(1000).pdus(1, encode_command(STORE), b"")))
    assert isinstance(events[1], DataFragment) and bytes(events[1].data) == b""
    assert events[-1] == MessageComplete(context_id=1)
