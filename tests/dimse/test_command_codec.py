"""Command-set codec: what decoding rejects, what it tolerates, and what encoding refuses.

Raw command sets here are built with ``struct`` by the small helpers below, independently of
the codec under test. ROBUSTNESS cases 24 and 25 are named in the test names.
"""

from __future__ import annotations

import struct

import pytest

from aiodimse.dimse.command_codec import decode_command, encode_command
from aiodimse.dimse.messages import (
    CCancelRQ,
    CEchoRQ,
    CEchoRSP,
    CFindRSP,
    CGetRSP,
    CMoveRQ,
    CStoreRQ,
    CStoreRSP,
    NGetRQ,
    NSetRQ,
)
from aiodimse.errors import CommandDecodeError, DimseError, LocalProtocolError

CT = "1.2.840.10008.5.1.4.1.1.2"
VERIFICATION = "1.2.840.10008.1.1"


def us(value: int) -> bytes:
    return struct.pack("<H", value)


def ui(text: str) -> bytes:
    raw = text.encode("ascii")
    return raw + b"\x00" if len(raw) % 2 else raw


def elem(element: int, value: bytes, *, group: int = 0) -> bytes:
    return struct.pack("<HHI", group, element, len(value)) + value


def command(*elements: bytes, group_length: bool = True) -> bytes:
    body = b"".join(elements)
    if not group_length:
        return body
    return elem(0x0000, struct.pack("<I", len(body))) + body


def store_rq_elements(**override: bytes | None) -> list[bytes]:
    """The elements of a valid C-STORE-RQ (message ID 9); override[name]=None drops one."""
    parts = {
        "affected_sop_class_uid": elem(0x0002, ui(CT)),
        "command_field": elem(0x0100, us(0x0001)),
        "message_id": elem(0x0110, us(9)),
        "priority": elem(0x0700, us(0)),
        "command_data_set_type": elem(0x0800, us(0x0001)),
        "affected_sop_instance_uid": elem(0x1000, ui("1.2.3")),
    }
    for key, value in override.items():
        parts[key] = value  # type: ignore[assignment]
    return [p for p in parts.values() if p is not None]


STORE_RQ = CStoreRQ(message_id=9, affected_sop_class_uid=CT, affected_sop_instance_uid="1.2.3")


def decode_error(raw: bytes) -> CommandDecodeError:
    with pytest.raises(CommandDecodeError) as info:
        decode_command(raw)
    return info.value


def test_helpers_build_a_valid_c_store_rq() -> None:
    raw = command(*store_rq_elements())
    assert raw == encode_command(STORE_RQ)
    assert decode_command(raw) == STORE_RQ


# ------------------------------------------------------------------ ROBUSTNESS 24: structure


def test_robustness_24_non_group_0000_tag_is_rejected_and_answerable() -> None:
    raw = command(*store_rq_elements(), elem(0x0016, ui(CT), group=0x0008))
    err = decode_error(raw)
    assert "group 0000" in str(err)
    # The request is identifiable, so it can be answered: Cannot understand (PS3.4 B.2.3).
    assert err.status == 0xC000
    assert err.message_id == 9
    assert err.command_field == 0x0001
    assert isinstance(err, DimseError)


def test_robustness_24_non_group_0000_tag_first_is_not_answerable() -> None:
    raw = elem(0x0016, ui(CT), group=0x0008) + command(*store_rq_elements())
    err = decode_error(raw)
    assert err.status is None
    assert err.message_id is None


def test_robustness_24_tags_out_of_order() -> None:
    parts = store_rq_elements()
    parts[4], parts[5] = parts[5], parts[4]  # (0000,1000) before (0000,0800)
    err = decode_error(command(*parts))
    assert "ascending" in str(err)
    assert err.status == 0xC000


def test_robustness_24_duplicate_tag() -> None:
    parts = store_rq_elements()
    parts.insert(3, elem(0x0110, us(10)))
    err = decode_error(command(*parts))
    assert "repeated" in str(err)


def test_robustness_24_group_length_not_first_is_out_of_order() -> None:
    body = b"".join(store_rq_elements())
    raw = body[: 8 + len(ui(CT))] + elem(0x0000, struct.pack("<I", len(body)))
    raw += body[8 + len(ui(CT)) :]
    decode_error(raw)


def test_robustness_24_unknown_command_field() -> None:
    err = decode_error(command(*store_rq_elements(command_field=elem(0x0100, us(0x0042)))))
    assert err.status == 0x0211  # PS3.7 C.5: Unrecognized operation
    assert err.command_field == 0x0042
    assert err.message_id == 9
    assert err.offending_element == (0x00000100,)


def test_robustness_24_unknown_response_command_field_is_not_answered() -> None:
    err = decode_error(command(*store_rq_elements(command_field=elem(0x0100, us(0x8042)))))
    assert err.status is None
    assert err.command_field == 0x8042


def test_robustness_24_unknown_command_field_without_message_id_is_not_answerable() -> None:
    err = decode_error(command(elem(0x0100, us(0x7777)), elem(0x0800, us(0x0101))))
    assert err.status is None


def test_robustness_24_missing_command_field() -> None:
    err = decode_error(command(*store_rq_elements(command_field=None)))
    assert err.status is None
    assert "Command Field" in str(err)


def test_robustness_24_missing_message_id_is_not_answerable() -> None:
    err = decode_error(command(*store_rq_elements(message_id=None)))
    assert "Message ID" in str(err)
    assert err.status is None
    assert err.command_field == 0x0001


def test_robustness_24_missing_affected_sop_class_uid() -> None:
    err = decode_error(command(*store_rq_elements(affected_sop_class_uid=None)))
    assert "affected_sop_class_uid" in str(err)
    assert err.status == 0xC000
    assert err.offending_element == (0x00000002,)
    assert err.message_id == 9


def test_robustness_24_missing_field_in_c_echo_rq_answers_missing_attribute() -> None:
    raw = command(elem(0x0100, us(0x0030)), elem(0x0110, us(3)), elem(0x0800, us(0x0101)))
    err = decode_error(raw)
    assert err.status == 0x0120  # PS3.7 C.5: Missing attribute
    assert err.offending_element == (0x00000002,)


def test_robustness_24_missing_field_in_n_get_rq() -> None:
    raw = command(
        elem(0x0003, ui("1.2.3")),
        elem(0x0100, us(0x0110)),
        elem(0x0110, us(3)),
        elem(0x0800, us(0x0101)),
    )
    err = decode_error(raw)
    assert err.status == 0x0120
    assert err.offending_element == (0x00001001,)


def test_robustness_24_zero_length_mandatory_value_is_missing() -> None:
    err = decode_error(command(*store_rq_elements(affected_sop_instance_uid=elem(0x1000, b""))))
    assert err.offending_element == (0x00001000,)


def test_robustness_24_missing_command_data_set_type() -> None:
    err = decode_error(command(*store_rq_elements(command_data_set_type=None)))
    assert err.offending_element == (0x00000800,)


def test_robustness_24_response_errors_are_never_answered() -> None:
    raw = command(elem(0x0100, us(0x8001)), elem(0x0120, us(9)), elem(0x0800, us(0x0101)))
    err = decode_error(raw)  # no Status
    assert err.status is None
    assert err.offending_element == (0x00000900,)


def test_robustness_24_c_cancel_without_message_id_being_responded_to() -> None:
    err = decode_error(command(elem(0x0100, us(0x0FFF)), elem(0x0800, us(0x0101))))
    assert err.status is None


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(b"\x00\x00\x00\x00\x04\x00", id="truncated-header"),
        pytest.param(b"\x00\x00\x00\x00\x04\x00\x00\x00\x10", id="truncated-value"),
        pytest.param(b"\x00\x00\x00\x00\xff\xff\xff\xff", id="length-0xFFFFFFFF"),
        pytest.param(command(*store_rq_elements())[:-1], id="last-byte-missing"),
        pytest.param(command(*store_rq_elements()) + b"\x00", id="trailing-byte"),
    ],
)
def test_robustness_24_length_overruns(raw: bytes) -> None:
    decode_error(raw)


def test_robustness_24_value_length_overrun_inside_command() -> None:
    parts = store_rq_elements()
    bad = bytearray(parts[5])
    bad[4:8] = struct.pack("<I", 1000)
    err = decode_error(command(*parts[:5], bytes(bad)))
    assert "overruns" in str(err)
    assert err.status == 0xC000  # already knew Command Field and Message ID


@pytest.mark.parametrize("length", [1, 3, 4])
def test_robustness_24_us_of_wrong_length(length: int) -> None:
    err = decode_error(command(*store_rq_elements(priority=elem(0x0700, b"\x01" * length))))
    assert err.offending_element == (0x00000700,)
    assert err.status == 0xC000


def test_robustness_24_missing_priority() -> None:
    """Priority is M in C-STORE-RQ (PS3.7 Table 9.1-1) though our class defaults it."""
    for priority in (None, elem(0x0700, b"")):
        err = decode_error(command(*store_rq_elements(priority=priority)))
        assert err.offending_element == (0x00000700,)
        assert err.status == 0xC000


def test_robustness_24_mistyped_value_in_n_set_rq_answers_mistyped_argument() -> None:
    raw = command(
        elem(0x0003, ui("1.2.3")),
        elem(0x0100, us(0x0120)),
        elem(0x0110, us(4)),
        elem(0x0800, b"\x01\x00\x00"),
        elem(0x1001, ui("1.2.3.4")),
    )
    assert decode_error(raw).status == 0x0212  # PS3.7 C.5: Mistyped argument


def test_robustness_24_message_id_of_wrong_length() -> None:
    err = decode_error(command(*store_rq_elements(message_id=elem(0x0110, b"\x01\x00\x00\x00"))))
    assert err.status is None  # without a Message ID the request cannot be answered


def test_robustness_24_at_length_not_multiple_of_four() -> None:
    raw = command(
        elem(0x0100, us(0x8001)),
        elem(0x0120, us(1)),
        elem(0x0800, us(0x0101)),
        elem(0x0900, us(0xA900)),
        elem(0x0901, b"\x10\x00\x10\x00\x20\x00"),
    )
    assert decode_error(raw).offending_element == (0x00000901,)


def test_robustness_24_group_length_of_wrong_size() -> None:
    raw = elem(0x0000, b"\x10\x00") + b"".join(store_rq_elements())
    decode_error(raw)


def test_robustness_24_non_ascii_uid() -> None:
    raw = command(*store_rq_elements(affected_sop_instance_uid=elem(0x1000, b"1.2.\xe9")))
    err = decode_error(raw)
    assert err.status == 0xC000
    assert err.offending_element == (0x00001000,)


def test_robustness_24_empty_input() -> None:
    assert decode_error(b"").status is None


# ------------------------------------------------------------------ ROBUSTNESS 25


@pytest.mark.parametrize("cdst", [0x0001, 0xFEFE, 0x0000, 0x0102, 0xFFFF])
def test_robustness_25_any_value_but_0101_means_a_dataset_follows(cdst: int) -> None:
    raw = command(
        elem(0x0002, ui(VERIFICATION)),
        elem(0x0100, us(0x0030)),
        elem(0x0110, us(1)),
        elem(0x0800, us(cdst)),
    )
    message = decode_command(raw)
    assert message.has_dataset is True
    assert message.command_data_set_type == cdst
    assert encode_command(message) == raw  # the raw value round-trips


def test_robustness_25_0101_means_no_dataset() -> None:
    raw = command(*store_rq_elements(command_data_set_type=elem(0x0800, us(0x0101))))
    message = decode_command(raw)
    assert message.has_dataset is False


def test_robustness_25_defaults() -> None:
    assert STORE_RQ.has_dataset
    assert STORE_RQ.command_data_set_type == 0x0001  # what pynetdicom sends
    assert not CEchoRQ(message_id=1, affected_sop_class_uid=VERIFICATION).has_dataset
    assert not CCancelRQ(message_id_being_responded_to=1).has_dataset


# ------------------------------------------------------------------ tolerated input


def test_group_length_may_be_absent() -> None:
    assert decode_command(command(*store_rq_elements(), group_length=False)) == STORE_RQ


def test_wrong_group_length_value_is_tolerated() -> None:
    raw = bytearray(command(*store_rq_elements()))
    raw[8:12] = struct.pack("<I", 3)
    assert decode_command(bytes(raw)) == STORE_RQ


@pytest.mark.parametrize(
    "retired",
    [
        elem(0x0001, struct.pack("<I", 0)),  # Command Length to End (retired, PS3.7 E.2)
        elem(0x0850, us(1)),  # Number of Matches (retired)
        elem(0x4000, b"AB"),  # Dialog Receiver (retired)
        elem(0x7777, b"??"),  # not in any dictionary
    ],
    ids=["0001", "0850", "4000", "7777"],
)
def test_retired_and_unknown_group_0000_tags_are_skipped(retired: bytes) -> None:
    parts = store_rq_elements()
    tag = struct.unpack_from("<HH", retired)[1]
    position = sum(1 for p in parts if struct.unpack_from("<HH", p)[1] < tag)
    parts.insert(position, retired)
    assert decode_command(command(*parts)) == STORE_RQ


def test_retired_tag_still_obeys_ordering() -> None:
    parts = [*store_rq_elements(), elem(0x0001, struct.pack("<I", 0))]
    decode_error(command(*parts))


def test_known_field_foreign_to_the_message_is_skipped() -> None:
    raw = command(
        elem(0x0002, ui(VERIFICATION)),
        elem(0x0100, us(0x8030)),
        elem(0x0120, us(5)),
        elem(0x0700, us(2)),  # Priority has no place in a C-ECHO-RSP
        elem(0x0800, us(0x0101)),
        elem(0x0900, us(0)),
        elem(0x1000, ui("1.2.3")),  # nor has an Affected SOP Instance UID
    )
    expected = CEchoRSP(
        message_id_being_responded_to=5, status=0, affected_sop_class_uid=VERIFICATION
    )
    assert decode_command(raw) == expected


def test_zero_length_optional_fields_read_as_absent() -> None:
    raw = command(
        elem(0x0100, us(0x8010)),
        elem(0x0120, us(5)),
        elem(0x0800, us(0x0101)),
        elem(0x0900, us(0xFF00)),
        elem(0x0902, b""),
        elem(0x1020, b""),
    )
    assert decode_command(raw) == CGetRSP(message_id_being_responded_to=5, status=0xFF00)


def test_padding_and_insignificant_spaces_are_removed() -> None:
    raw = command(
        elem(0x0002, b"1.2.840.10008.5.1.4.1.2.2.2 "),  # UI padded with a space (non-conformant)
        elem(0x0100, us(0x0021)),
        elem(0x0110, us(2)),
        elem(0x0600, b"  DEST\x00\x00  "),  # AE: leading spaces insignificant
        elem(0x0700, us(0)),
        elem(0x0800, us(0x0001)),
    )
    assert decode_command(raw) == CMoveRQ(
        message_id=2, affected_sop_class_uid="1.2.840.10008.5.1.4.1.2.2.2", move_destination="DEST"
    )


def test_odd_length_string_values_are_accepted() -> None:
    raw = command(
        elem(0x0002, b"1.2.3"),
        elem(0x0100, us(0x0030)),
        elem(0x0110, us(1)),
        elem(0x0800, us(0x0101)),
    )
    assert decode_command(raw) == CEchoRQ(message_id=1, affected_sop_class_uid="1.2.3")


def test_non_ascii_error_comment_is_kept_with_replacement() -> None:
    raw = command(
        elem(0x0100, us(0x8020)),
        elem(0x0120, us(5)),
        elem(0x0800, us(0x0101)),
        elem(0x0900, us(0xC001)),
        elem(0x0902, "Fehler: ungültig ".encode("latin-1")),
    )
    message = decode_command(raw)
    assert isinstance(message, CFindRSP)
    assert message.error_comment == "Fehler: ung?ltig"
    encode_command(message)  # and it can be sent on


def test_multi_valued_offending_element() -> None:
    raw = command(
        elem(0x0100, us(0x8001)),
        elem(0x0120, us(1)),
        elem(0x0800, us(0x0101)),
        elem(0x0900, us(0xA900)),
        elem(0x0901, struct.pack("<4H", 0x0010, 0x0010, 0x7FE0, 0x0010)),
    )
    message = decode_command(raw)
    assert isinstance(message, CStoreRSP)
    assert message.offending_element == (0x00100010, 0x7FE00010)


# ------------------------------------------------------------------ encoding


def test_encode_group_length_first_and_correct() -> None:
    raw = encode_command(STORE_RQ)
    assert raw[:8] == b"\x00\x00\x00\x00\x04\x00\x00\x00"
    assert struct.unpack_from("<I", raw, 8)[0] == len(raw) - 12


def test_encode_omits_none_fields() -> None:
    raw = encode_command(CStoreRSP(message_id_being_responded_to=1, status=0))
    tags = []
    offset = 0
    while offset < len(raw):
        _group, element, length = struct.unpack_from("<HHI", raw, offset)
        tags.append(element)
        offset += 8 + length
    assert tags == [0x0000, 0x0100, 0x0120, 0x0800, 0x0900]


def test_encode_pads_ui_with_nul_and_ae_lo_with_space() -> None:
    raw = encode_command(
        CMoveRQ(message_id=1, affected_sop_class_uid="1.2.3", move_destination="ABC")
    )
    assert b"1.2.3\x00" in raw
    assert b"ABC " in raw
    raw = encode_command(CStoreRSP(message_id_being_responded_to=1, status=1, error_comment="x"))
    assert elem(0x0902, b"x ") in raw


@pytest.mark.parametrize(
    ("message", "needle"),
    [
        (CEchoRQ(message_id=1, affected_sop_class_uid="1." + "2" * 63), "at most 64"),
        (CMoveRQ(message_id=1, affected_sop_class_uid="1.2", move_destination="A" * 17), "16"),
        (CMoveRQ(message_id=1, affected_sop_class_uid="1.2", move_destination="DÉST"), "reper"),
        (CStoreRSP(message_id_being_responded_to=1, status=0, error_comment="a\\b"), "backslash"),
    ],
)
def test_encode_refuses_what_cannot_go_on_the_wire(message: object, needle: str) -> None:
    with pytest.raises(LocalProtocolError, match=needle):
        encode_command(message)  # type: ignore[arg-type]


def test_encode_attribute_identifier_list() -> None:
    raw = encode_command(
        NGetRQ(
            message_id=1,
            requested_sop_class_uid="1.2",
            requested_sop_instance_uid="1.2.3",
            attribute_identifier_list=(0x00100010, 0xFFFEE000),
        )
    )
    assert elem(0x1005, bytes.fromhex("10001000FEFF00E0")) in raw


def test_n_set_rq_defaults_to_dataset_present() -> None:
    message = NSetRQ(message_id=1, requested_sop_class_uid="1.2", requested_sop_instance_uid="3")
    assert message.has_dataset
    assert decode_command(encode_command(message)) == message
