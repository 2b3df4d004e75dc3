"""Hypothesis round trips: decode(encode(x)) == x for every PDU and sub-item type."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from aiodimse.pdu import (
    PDUDecoder,
    UserInformationSubItem,
    decode_item,
    decode_pdu,
    encode_item,
    encode_pdu,
)
from aiodimse.pdu.pdus import PDU
from tests.pdu import strategies as s


@settings(max_examples=100, deadline=None)
@given(s.pdus)
def test_pdu_round_trip(pdu: PDU) -> None:
    wire = encode_pdu(pdu)
    assert decode_pdu(wire) == pdu
    # Strict and lenient encodings agree on valid values.
    assert encode_pdu(pdu, strict=False) == wire
    # Re-encoding the decoded value gives the same bytes.
    assert encode_pdu(decode_pdu(wire)) == wire


@settings(max_examples=50, deadline=None)
@given(s.a_associate_rqs)
def test_associate_rq_round_trip(pdu: PDU) -> None:
    assert decode_pdu(encode_pdu(pdu)) == pdu


@settings(max_examples=50, deadline=None)
@given(s.a_associate_acs)
def test_associate_ac_round_trip(pdu: PDU) -> None:
    assert decode_pdu(encode_pdu(pdu)) == pdu


@settings(max_examples=200, deadline=None)
@given(s.sub_items)
def test_sub_item_round_trip(item: UserInformationSubItem) -> None:
    assert decode_item(encode_item(item)) == item


@settings(max_examples=25, deadline=None)
@given(st.lists(s.pdus, min_size=1, max_size=6))
def test_stream_of_pdus_round_trip(pdus: list[PDU]) -> None:
    decoder = PDUDecoder()
    decoder.feed(b"".join(encode_pdu(p) for p in pdus))
    got = [decoder.next_pdu() for _ in pdus]
    assert got == pdus
    assert decoder.next_pdu() is None
