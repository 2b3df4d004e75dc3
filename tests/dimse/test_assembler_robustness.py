"""ROBUSTNESS.md cases 22-27 (DIMSE message assembly), one named test (group) each."""

from __future__ import annotations

import logging
import struct

import pytest

from aiodimse.constants import AbortReason
from aiodimse.dimse.assembler import (
    CommandReceived,
    DataFragment,
    MalformedCommand,
    MessageAssembler,
    MessageComplete,
)
from aiodimse.dimse.command_codec import encode_command
from aiodimse.dimse.fragmenter import Fragmenter, MaxPDULengthTooSmall
from aiodimse.dimse.messages import CCancelRQ, CEchoRQ, CEchoRSP, CFindRQ, CStoreRQ, DimseMessage
from aiodimse.dimse.operations import OperationTracker
from aiodimse.errors import AssemblyError, CommandDecodeError, LocalProtocolError
from aiodimse.pdu import PDV

ECHO = CEchoRQ(message_id=1, affected_sop_class_uid="1.2.840.10008.1.1")
STORE = CStoreRQ(
    message_id=2,
    affected_sop_class_uid="1.2.840.10008.5.1.4.1.1.7",
    affected_sop_instance_uid="1.2.3.4",
)


def cmd_pdvs(cid: int, message: DimseMessage, *, max_pdu: int = 1000) -> list[PDV]:
    return [p for pdu in Fragmenter(max_pdu).pdus(cid, encode_command(message)) for p in pdu.pdvs]


def data_pdv(cid: int, last: bool, data: bytes = b"\x00\x00") -> PDV:
    return PDV(context_id=cid, is_command=False, is_last=last, data=data)


def feed(asm: MessageAssembler, pdvs: list[PDV]) -> list[object]:
    out: list[object] = []
    for p in pdvs:
        out.extend(asm.receive_pdv(p))
    return out


# -- 22: dataset before command; command after data began; second command -----------------


def test_robustness_22_dataset_fragment_before_any_command() -> None:
    with pytest.raises(AssemblyError) as info:
        MessageAssembler([1]).receive_pdv(data_pdv(1, True))
    assert info.value.abort_reason == AbortReason.UNEXPECTED_PDU_PARAMETER


def test_robustness_22_command_after_dataset_fragments_began() -> None:
    asm = MessageAssembler([1])
    feed(asm, [*cmd_pdvs(1, STORE), data_pdv(1, False)])
    with pytest.raises(AssemblyError) as info:
        feed(asm, cmd_pdvs(1, ECHO))
    assert info.value.abort_reason == AbortReason.UNEXPECTED_PDU_PARAMETER


def test_robustness_22_second_command_before_first_dataset_ended() -> None:
    asm = MessageAssembler([1])
    feed(asm, cmd_pdvs(1, STORE))  # announces a dataset, none sent yet
    with pytest.raises(AssemblyError):
        feed(asm, cmd_pdvs(1, STORE))


def test_robustness_22_dataset_fragment_inside_command() -> None:
    asm = MessageAssembler([1])
    first = cmd_pdvs(1, STORE, max_pdu=40)
    assert len(first) > 1
    feed(asm, first[:1])
    with pytest.raises(AssemblyError):
        asm.receive_pdv(data_pdv(1, False))


# -- 23: one context per message; no interleaving -----------------------------------------


def test_robustness_23_pdvs_of_one_message_under_different_contexts() -> None:
    asm = MessageAssembler([1, 3])
    feed(asm, cmd_pdvs(1, STORE))
    with pytest.raises(AssemblyError) as info:
        asm.receive_pdv(data_pdv(3, True))
    assert info.value.abort_reason == AbortReason.UNEXPECTED_PDU_PARAMETER


def test_robustness_23_second_message_interleaved_before_first_complete() -> None:
    asm = MessageAssembler([1, 3])
    first = cmd_pdvs(1, STORE, max_pdu=40)
    feed(asm, first[:1])  # command of message 1 still incomplete
    with pytest.raises(AssemblyError):
        feed(asm, cmd_pdvs(3, ECHO))


@pytest.mark.parametrize("cid", [0, 2, 5, 255])
def test_robustness_23_context_id_even_zero_or_not_accepted(cid: int) -> None:
    asm = MessageAssembler([1, 3])
    with pytest.raises(AssemblyError) as info:
        asm.receive_pdv(PDV(context_id=cid, is_command=True, is_last=True, data=b"\x00\x00"))
    assert info.value.abort_reason == AbortReason.INVALID_PDU_PARAMETER_VALUE


# -- 24: malformed command sets: typed error, status or abort, assembler still usable -----


def _elem(group: int, elem: int, value: bytes) -> bytes:
    return struct.pack("<HHI", group, elem, len(value)) + value


def _us(v: int) -> bytes:
    return struct.pack("<H", v)


GOOD_ECHO = encode_command(ECHO)
BAD_COMMANDS = {
    # A data element (group 0008) inside the command set (PS3.7 6.3.1).
    "non_group_0000": GOOD_ECHO + _elem(0x0008, 0x0016, b"1.2\x00"),
    # (0000,0110) before (0000,0100): not in ascending order.
    "out_of_order": _elem(0, 0x0002, b"1.2.840.10008.1.1\x00")
    + _elem(0, 0x0110, _us(7))
    + _elem(0, 0x0100, _us(0x0030))
    + _elem(0, 0x0800, _us(0x0101)),
    "unknown_command_field": _elem(0, 0x0002, b"1.2.840.10008.1.1\x00")
    + _elem(0, 0x0100, _us(0x0031))
    + _elem(0, 0x0110, _us(7))
    + _elem(0, 0x0800, _us(0x0101)),
    "missing_message_id": _elem(0, 0x0002, b"1.2.840.10008.1.1\x00")
    + _elem(0, 0x0100, _us(0x0030))
    + _elem(0, 0x0800, _us(0x0101)),
    "missing_affected_sop_class": _elem(0, 0x0100, _us(0x0001))
    + _elem(0, 0x0110, _us(7))
    + _elem(0, 0x0800, _us(0x0001))
    + _elem(0, 0x1000, b"1.2.3\x00"),
    "truncated": GOOD_ECHO[:-3],
    "length_overrun": _elem(0, 0x0100, _us(0x0030))[:-2] + b"\xff\xff\xff\xff",
}


@pytest.mark.parametrize("name", sorted(BAD_COMMANDS))
def test_robustness_24_malformed_command_is_typed_error(name: str) -> None:
    raw = BAD_COMMANDS[name]
    if len(raw) % 2:
        raw += b"\x00"
    asm = MessageAssembler([1])
    with pytest.raises(MalformedCommand) as info:
        asm.receive_pdv(PDV(context_id=1, is_command=True, is_last=True, data=raw))
    err = info.value
    assert isinstance(err, CommandDecodeError)
    assert err.context_id == 1
    # Either it can be answered (status and Message ID known) or it must be aborted.
    assert (err.status is not None and err.message_id is not None) or err.status is None
    assert isinstance(err.abort_reason, int)
    # The assembler stays usable: a following valid message is delivered.
    events = feed(asm, cmd_pdvs(1, ECHO))
    assert events == [CommandReceived(context_id=1, message=ECHO), MessageComplete(context_id=1)]


def test_robustness_24_answerable_command_carries_status_and_message_id() -> None:
    raw = BAD_COMMANDS["missing_affected_sop_class"]
    with pytest.raises(MalformedCommand) as info:
        MessageAssembler([1]).receive_pdv(
            PDV(context_id=1, is_command=True, is_last=True, data=raw)
        )
    assert info.value.message_id == 7 and info.value.status is not None


def test_robustness_24_dataset_of_malformed_command_is_dropped() -> None:
    asm = MessageAssembler([1])
    raw = BAD_COMMANDS["missing_affected_sop_class"]  # announced a dataset
    with pytest.raises(MalformedCommand):
        asm.receive_pdv(PDV(context_id=1, is_command=True, is_last=True, data=raw))
    assert feed(asm, [data_pdv(1, False), data_pdv(1, True)]) == []
    assert len(feed(asm, cmd_pdvs(1, ECHO))) == 2


# -- 25: Command Data Set Type: only 0x0101 means "no dataset" ------------------------------


@pytest.mark.parametrize("value", [0x0001, 0xFEFE, 0x0000, 0x0102])
def test_robustness_25_any_value_but_0101_means_dataset_follows(value: int) -> None:
    asm = MessageAssembler([1])
    msg = CStoreRQ(
        message_id=3,
        affected_sop_class_uid="1.2.840.10008.5.1.4.1.1.7",
        affected_sop_instance_uid="1.2.3",
        command_data_set_type=value,
    )
    events = feed(asm, cmd_pdvs(1, msg))
    assert len(events) == 1  # no MessageComplete yet: a dataset must follow
    events = feed(asm, [data_pdv(1, True, b"ab")])
    assert isinstance(events[0], DataFragment) and events[1] == MessageComplete(context_id=1)


def test_robustness_25_0101_means_no_dataset_and_data_is_refused() -> None:
    asm = MessageAssembler([1])
    find = CFindRQ(
        message_id=4,
        affected_sop_class_uid="1.2.840.10008.5.1.4.1.2.1.1",
        command_data_set_type=0x0101,
    )
    events = feed(asm, cmd_pdvs(1, find))
    assert events[-1] == MessageComplete(context_id=1)
    with pytest.raises(AssemblyError):
        asm.receive_pdv(data_pdv(1, True))


# -- 26: responses / C-CANCEL for unknown Message IDs: ignored and logged -------------------


def test_robustness_26_unknown_message_id_ignored_and_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    tracker = OperationTracker(max_invoked=4, max_performed=4)
    with caplog.at_level(logging.WARNING, logger="aiodimse.dimse"):
        assert (
            tracker.response_received(CEchoRSP(message_id_being_responded_to=999, status=0)) is None
        )
        assert tracker.cancel_received(CCancelRQ(message_id_being_responded_to=998)) is None
    assert tracker.invoked == () and tracker.performed == ()
    messages = [r.getMessage() for r in caplog.records if r.name == "aiodimse.dimse"]
    assert any("999" in m for m in messages) and any("998" in m for m in messages)


# -- 27: fragments never exceed the peer maximum; 0 capped; too small refused --------------


def test_robustness_27_fragments_never_exceed_peer_maximum() -> None:
    for peer_max in (8, 9, 100, 16_384):
        for pdu in Fragmenter(peer_max).pdus(1, encode_command(STORE), bytes(50_001)):
            assert sum(6 + len(p.data) for p in pdu.pdvs) <= peer_max


def test_robustness_27_zero_maximum_gets_sane_cap() -> None:
    frag = Fragmenter(0)
    assert 8 <= frag.max_pdu_length <= 16 * 1024 * 1024
    sizes = [
        sum(6 + len(p.data) for p in pdu.pdvs) for pdu in frag.pdus(1, b"\0\0", bytes(5_000_000))
    ]
    assert max(sizes) <= frag.max_pdu_length and len(sizes) > 2


@pytest.mark.parametrize("peer_max", [1, 2, 6, 7])
def test_robustness_27_maximum_too_small_for_pdv_header_refused(peer_max: int) -> None:
    with pytest.raises(MaxPDULengthTooSmall) as info:
        Fragmenter(peer_max)
    assert isinstance(info.value, LocalProtocolError)
    assert str(peer_max) in str(info.value)
