"""Golden vectors: decode(vector) == value and encode(value) == vector, for every type."""

from __future__ import annotations

import pytest

from aiodimse.pdu import (
    PDUDecoder,
    UserInformationSubItem,
    decode_item,
    decode_pdu,
    encode_item,
    encode_pdu,
    pdu_type_name,
)
from aiodimse.pdu.pdus import PDU
from tests.pdu.vectors import PDU_VECTORS, STREAM, SUB_ITEM_VECTORS


@pytest.mark.parametrize(("name", "wire", "value"), PDU_VECTORS, ids=[v[0] for v in PDU_VECTORS])
def test_pdu_vector_decodes(name: str, wire: bytes, value: PDU) -> None:
    assert decode_pdu(wire) == value


@pytest.mark.parametrize(("name", "wire", "value"), PDU_VECTORS, ids=[v[0] for v in PDU_VECTORS])
def test_pdu_vector_encodes(name: str, wire: bytes, value: PDU) -> None:
    assert encode_pdu(value) == wire
    assert encode_pdu(value, strict=False) == wire


@pytest.mark.parametrize(
    ("name", "wire", "value"), SUB_ITEM_VECTORS, ids=[v[0] for v in SUB_ITEM_VECTORS]
)
def test_sub_item_vector(name: str, wire: bytes, value: UserInformationSubItem) -> None:
    assert decode_item(wire) == value
    assert encode_item(value) == wire


def test_stream_of_all_vectors_decodes_in_order() -> None:
    decoder = PDUDecoder()
    decoder.feed(STREAM)
    got = []
    while (pdu := decoder.next_pdu()) is not None:
        got.append(pdu)
    assert got == [v for _, _, v in PDU_VECTORS]
    assert decoder.buffered_bytes == 0


def test_pdu_type_names() -> None:
    names = [pdu_type_name(v) for _, _, v in PDU_VECTORS]
    assert names == [
        "A-ASSOCIATE-RQ",
        "A-ASSOCIATE-AC",
        "A-ASSOCIATE-RJ",
        "P-DATA-TF",
        "A-RELEASE-RQ",
        "A-RELEASE-RP",
        "A-ABORT",
    ]
