"""Differential tests: the fast command-set decoder/encoder against a plain reference.

``decode_command`` now tries a one-pass fast path and falls back to the full decoder. These
tests check that nothing observable changed: on hypothesis-generated command sets (valid
ones, truncations, byte mutations, reordered/duplicated/dropped elements, inserted retired,
unknown and foreign known elements, bad lengths, non-ASCII strings, wrong group lengths)
the result equals that of the module's complete decoder (``_decode_reference``, the
decoder as it was before the fast path, kept unchanged), or both raise CommandDecodeError
with the same message, status, command field, message ID and offending element; the DEBUG
log lines are the same too. The encoder is
checked against a plain reference encoder the same way (same bytes or same error).
"""

from __future__ import annotations

import logging
import struct
from dataclasses import fields
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aiodimse.dimse.command_codec import (
    COMMAND_TAGS,
    RETIRED_COMMAND_TAGS,
    _decode_reference,
    command_vr,
    decode_command,
    encode_command,
)
from aiodimse.dimse.messages import (
    CEchoRQ,
    CEchoRSP,
    CStoreRQ,
    CStoreRSP,
    DimseMessage,
)
from aiodimse.errors import CommandDecodeError, LocalProtocolError
from tests.dimse.strategies_messages import any_message

DIFF = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

_log = logging.getLogger("aiodimse.dimse.command_codec")

# ------------------------------------------------------------- reference (pre-fast-path copy)

_FIELD_TAG = {field: tag for tag, field in COMMAND_TAGS.items()}
_MAX_LEN = {"UI": 64, "LO": 64, "AE": 16}
_DEFAULTED_MANDATORY = frozenset({"command_data_set_type", "priority"})
_HEADER = struct.Struct("<HHI")
_US = struct.Struct("<H")
_UL = struct.Struct("<I")
#: The complete decoder, kept unchanged in the module: the fast path must agree with it.
_reference_decode = _decode_reference


def _reference_encode(message: DimseMessage) -> bytes:
    names = ["command_field", *(f.name for f in fields(message))]
    body = b""
    for name in sorted(names, key=lambda n: _FIELD_TAG[n]):
        tag = _FIELD_TAG[name]
        value = getattr(message, name)
        if value is None:
            continue
        vr = command_vr(tag)
        if vr == "US":
            raw = _US.pack(value)
        elif vr == "AT":
            raw = b"".join(_US.pack(t >> 16) + _US.pack(t & 0xFFFF) for t in value)
        else:
            assert vr is not None
            if len(value) > _MAX_LEN[vr]:
                raise LocalProtocolError(
                    f"{name} is {len(value)} characters, at most {_MAX_LEN[vr]} allowed (PS3.5 6.2)"
                )
            try:
                raw = value.encode("ascii")
            except UnicodeEncodeError:
                raise LocalProtocolError(
                    f"{name} must use the default character repertoire (PS3.7 6.3.1): {value!r}"
                ) from None
            if b"\\" in raw:
                raise LocalProtocolError(f"{name} must not contain a backslash: {value!r}")
            if len(raw) & 1:
                raw += b"\x00" if vr == "UI" else b" "
        body += _HEADER.pack(0, tag & 0xFFFF, len(raw)) + raw
    return _HEADER.pack(0, 0, 4) + _UL.pack(len(body)) + body


# ------------------------------------------------------------------------------- comparison


class _ListHandler(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def _outcome(decode: Any, raw: bytes | bytearray | memoryview) -> tuple[object, ...]:
    try:
        message = decode(raw)
    except CommandDecodeError as exc:
        return (
            "error",
            str(exc),
            exc.status,
            exc.command_field,
            exc.message_id,
            exc.offending_element,
            exc.abort_reason,
        )
    return ("ok", type(message), message)


def _outcome_with_logs(decode: Any, raw: bytes, level: int) -> tuple[tuple[object, ...], list[str]]:
    handler = _ListHandler()
    old_level, old_propagate = _log.level, _log.propagate
    _log.addHandler(handler)
    _log.setLevel(level)
    _log.propagate = False
    try:
        return _outcome(decode, raw), handler.lines
    finally:
        _log.removeHandler(handler)
        _log.setLevel(old_level)
        _log.propagate = old_propagate


def _assert_same(raw: bytes) -> None:
    for level in (logging.DEBUG, logging.WARNING):
        expected = _outcome_with_logs(_reference_decode, raw, level)
        actual = _outcome_with_logs(decode_command, raw, level)
        assert actual == expected, raw.hex()
    # Other buffer types go through the same path.
    assert _outcome(decode_command, bytearray(raw)) == _outcome(_reference_decode, raw)
    assert _outcome(decode_command, memoryview(raw)) == _outcome(_reference_decode, raw)


def _elements_of(raw: bytes) -> list[tuple[int, bytes]]:
    out = []
    offset = 0
    while offset < len(raw):
        _, element, length = _HEADER.unpack_from(raw, offset)
        out.append((element, raw[offset + 8 : offset + 8 + length]))
        offset += 8 + length
    return out


def _join(elements: list[tuple[int, bytes]]) -> bytes:
    return b"".join(_HEADER.pack(0, e, len(v)) + v for e, v in elements)


# ------------------------------------------------------------------------------------ tests


@DIFF
@given(any_message())
def test_encode_matches_reference_and_decode_round_trips(message: DimseMessage) -> None:
    try:
        expected = _reference_encode(message)
    except LocalProtocolError as exc:
        with pytest.raises(LocalProtocolError) as info:
            encode_command(message)
        assert str(info.value) == str(exc)
        return
    assert encode_command(message) == expected
    assert encode_command(message) == expected  # second time through the caches
    _assert_same(expected)


@DIFF
@given(any_message(), st.data())
def test_truncated_and_mutated(message: DimseMessage, data: st.DataObject) -> None:
    raw = _reference_encode(message)
    cut = data.draw(st.integers(min_value=0, max_value=len(raw)), label="cut")
    _assert_same(raw[:cut])
    mutated = bytearray(raw)
    for _ in range(data.draw(st.integers(min_value=1, max_value=4), label="flips")):
        index = data.draw(st.integers(min_value=0, max_value=len(raw) - 1))
        if data.draw(st.booleans()):
            mutated[index] ^= 1 << data.draw(st.integers(min_value=0, max_value=7))
        else:
            mutated[index] = data.draw(st.integers(min_value=0, max_value=255))
    _assert_same(bytes(mutated))


_NUMBERS = sorted(
    {*(t & 0xFFFF for t in COMMAND_TAGS), *(t & 0xFFFF for t in RETIRED_COMMAND_TAGS)}
)
_extra_values = st.one_of(
    st.binary(max_size=10),
    st.sampled_from([b"", b"\x01\x00", b"\x30\x80", b"\x01\x01", b"1.2\x00", b" AE ", b"\xff\xfe"]),
)


@DIFF
@given(any_message(), st.data())
def test_reordered_duplicated_and_foreign_elements(
    message: DimseMessage, data: st.DataObject
) -> None:
    elements = _elements_of(_reference_encode(message))
    for _ in range(data.draw(st.integers(min_value=1, max_value=3), label="edits")):
        edit = data.draw(
            st.sampled_from(["swap", "dup", "drop", "insert", "empty", "regroup", "resize"])
        )
        index = data.draw(st.integers(min_value=0, max_value=len(elements) - 1))
        if edit == "swap" and len(elements) > 1:
            other = data.draw(st.integers(min_value=0, max_value=len(elements) - 1))
            elements[index], elements[other] = elements[other], elements[index]
        elif edit == "dup":
            elements.insert(index, elements[index])
        elif edit == "drop" and len(elements) > 1:
            del elements[index]
        elif edit == "insert":
            number = data.draw(st.sampled_from([*_NUMBERS, 0x0004, 0x7777, 0xFFFF]))
            elements.append((number, data.draw(_extra_values)))
            elements.sort(key=lambda e: e[0])
        elif edit == "empty":
            elements[index] = (elements[index][0], b"")
        elif edit == "regroup":
            elements[index] = (elements[index][0], data.draw(_extra_values))
        elif edit == "resize":
            number, value = elements[index]
            elements[index] = (number, value + data.draw(st.binary(min_size=1, max_size=3)))
    if data.draw(st.booleans(), label="fix group length") and elements and elements[0][0] == 0:
        rest = _join(elements[1:])
        elements[0] = (0, _UL.pack(len(rest)))
    _assert_same(_join(elements))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.sampled_from([*_NUMBERS, 0x0004]), _extra_values), max_size=10))
def test_element_soups(elements: list[tuple[int, bytes]]) -> None:
    elements.sort(key=lambda e: e[0])
    _assert_same(_join(elements))


@pytest.mark.parametrize(
    "message",
    [
        CEchoRQ(message_id=1, affected_sop_class_uid="1.2.840.10008.1.1"),
        CEchoRSP(message_id_being_responded_to=1, status=0),
        CStoreRQ(message_id=2, affected_sop_class_uid="1.2.3", affected_sop_instance_uid="1.2.3.4"),
        CStoreRSP(message_id_being_responded_to=2, status=0xA700, error_comment="full"),
    ],
)
def test_common_messages_with_oddities(message: DimseMessage) -> None:
    raw = _reference_encode(message)
    _assert_same(raw)
    elements = _elements_of(raw)
    # A retired Command Length to End, a foreign Priority / Message ID, a wrong group length.
    _assert_same(_join(sorted([*elements, (0x0001, b"\x00\x00\x00\x00")])))
    _assert_same(_join(sorted({**dict(elements), 0x0700: b"\x00\x00"}.items())))
    _assert_same(_join(sorted({**dict(elements), 0x0110: b"\x09\x00"}.items())))
    _assert_same(_join([(0, b"\x00\x00\x00\x00"), *elements[1:]]))
    # Known elements this class does not carry, empty or blank: skipped, logged at DEBUG.
    for number, value in [(0x0003, b""), (0x0600, b"  "), (0x0901, b""), (0x1002, b"")]:
        _assert_same(_join(sorted({**dict(elements), number: value}.items())))
    _assert_same(_join(elements[1:]))  # no group length at all


def test_caches_are_bounded_and_keep_bytes_right() -> None:
    from aiodimse.dimse import command_codec

    for i in range(300):
        message = CEchoRQ(message_id=i, affected_sop_class_uid=f"1.2.{i}")
        raw = encode_command(message)
        assert raw == _reference_encode(message)
        assert decode_command(raw) == message
        # An equal but distinct value, and the same bytes in another buffer, give the same.
        assert encode_command(CEchoRQ(message_id=i, affected_sop_class_uid=f"1.2.{i}")) == raw
        assert decode_command(bytearray(raw)) == message
    assert all(len(cache) <= 64 for cache in command_codec._STR_CACHES.values())
    assert len(command_codec._ENCODED) <= command_codec._CACHE_MAX
    assert len(command_codec._DECODED) <= command_codec._CACHE_MAX
    # Commands naming an instance are not remembered.
    store = CStoreRQ(message_id=1, affected_sop_class_uid="1.2", affected_sop_instance_uid="1.3")
    assert decode_command(encode_command(store)) == store
    assert store not in command_codec._ENCODED
    assert encode_command(store) not in command_codec._DECODED
