"""Hypothesis properties of the command-set codec.

* decode(encode(m)) == m for every message class with arbitrary valid field values;
* every encoding is well formed: group length first and exact, tags ascending, each once;
* decode raises nothing but CommandDecodeError on arbitrary bytes, on truncated or mutated
  valid encodings, and on random element soups (ROBUSTNESS 24).
"""

from __future__ import annotations

import struct

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aiodimse.dimse.command_codec import decode_command, encode_command
from aiodimse.dimse.messages import DimseMessage
from aiodimse.errors import CommandDecodeError
from tests.dimse.strategies_messages import any_message

PROPS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPS
@given(any_message())
def test_round_trip(message: DimseMessage) -> None:
    raw = encode_command(message)
    decoded = decode_command(raw)
    assert decoded == message
    assert type(decoded) is type(message)
    assert decoded.has_dataset is (message.command_data_set_type != 0x0101)
    assert encode_command(decoded) == raw


@PROPS
@given(any_message())
def test_encoding_is_well_formed(message: DimseMessage) -> None:
    raw = encode_command(message)
    group, element, length = struct.unpack_from("<HHI", raw, 0)
    assert (group, element, length) == (0, 0, 4)
    assert struct.unpack_from("<I", raw, 8)[0] == len(raw) - 12
    offset, last = 0, -1
    while offset < len(raw):
        group, element, length = struct.unpack_from("<HHI", raw, offset)
        assert group == 0
        assert element > last
        assert length % 2 == 0
        last = element
        offset += 8 + length
    assert offset == len(raw)


def _decode_or_typed_error(raw: bytes) -> None:
    try:
        message = decode_command(raw)
    except CommandDecodeError as exc:
        status = exc.status
        assert status is None or 0 <= status <= 0xFFFF
        return
    # Whatever decodes is a valid message that we can send back out.
    encode_or_local_error(message)


def encode_or_local_error(message: DimseMessage) -> None:
    from aiodimse.errors import LocalProtocolError

    try:
        encode_command(message)
    except LocalProtocolError:
        pass  # e.g. a peer's 70-character UID: decodable, but we would not send it


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=300))
def test_arbitrary_bytes_raise_only_command_decode_error(raw: bytes) -> None:
    _decode_or_typed_error(raw)


_ELEMENT_NUMBERS = (
    *(0x0000, 0x0001, 0x0002, 0x0003, 0x0100, 0x0110, 0x0120, 0x0600, 0x0700, 0x0800),
    *(0x0900, 0x0901, 0x0902, 0x0903, 0x1000, 0x1001, 0x1002, 0x1005, 0x1008),
    *(0x1020, 0x1023, 0x1030, 0x1031, 0x4000, 0xFFFF),
)
_elements = st.lists(
    st.tuples(
        st.sampled_from([0x0000, 0x0000, 0x0000, 0x0008, 0xFFFF]),
        st.sampled_from(_ELEMENT_NUMBERS),
        st.one_of(
            st.binary(max_size=12),
            st.sampled_from([b"\x01\x00", b"\x30\x00", b"\x01\x80", b"\xff\x0f", b"\x01\x01"]),
        ),
    ),
    max_size=12,
)


@settings(max_examples=500, deadline=None)
@given(_elements, st.booleans())
def test_element_soup_raises_only_command_decode_error(
    elements: list[tuple[int, int, bytes]], sort: bool
) -> None:
    if sort:
        elements = sorted(elements, key=lambda e: (e[0], e[1]))
    raw = b"".join(struct.pack("<HHI", g, e, len(v)) + v for g, e, v in elements)
    _decode_or_typed_error(raw)


@PROPS
@given(any_message(), st.data())
def test_truncated_and_mutated_encodings(message: DimseMessage, data: st.DataObject) -> None:
    raw = encode_command(message)
    cut = data.draw(st.integers(min_value=0, max_value=len(raw) - 1), label="cut")
    _decode_or_typed_error(raw[:cut])
    mutated = bytearray(raw)
    for _ in range(data.draw(st.integers(min_value=1, max_value=4), label="flips")):
        index = data.draw(st.integers(min_value=0, max_value=len(raw) - 1))
        mutated[index] = data.draw(st.integers(min_value=0, max_value=255))
    _decode_or_typed_error(bytes(mutated))
