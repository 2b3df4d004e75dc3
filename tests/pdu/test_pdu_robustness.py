"""ROBUSTNESS.md cases 1-12 at PDU level, one named test per case."""

from __future__ import annotations

import struct

import pytest

from aiodimse.config import Limits
from aiodimse.constants import AbortReason, AbortSource
from aiodimse.errors import PDUDecodeError, PDUEncodeError, PDULengthError
from aiodimse.pdu import (
    PDV,
    AAssociateRQ,
    MaximumLength,
    PDataTF,
    PDUDecoder,
    PresentationContextRQ,
    decode_pdu,
    encode_pdu,
)
from aiodimse.pdu.decoder import FEED_BUFFER_SIZE, READ_SIZE
from tests.pdu import vectors as v

INVALID = AbortReason.INVALID_PDU_PARAMETER_VALUE
#: A P-DATA-TF is waited for whole (case 3 as written; the streamed case is in
#: tests/bulk_perf/test_pdata_streaming.py).
NO_STREAMING = 1 << 40


def header(pdu_type: int, length: int) -> bytes:
    return struct.pack(">BBI", pdu_type, 0, length)


def feed_and_fail(data: bytes, limits: Limits | None = None) -> PDUDecodeError:
    decoder = PDUDecoder(limits or Limits())
    decoder.feed(data)
    with pytest.raises(PDUDecodeError) as info:
        decoder.next_pdu()
    assert info.value.abort_source == AbortSource.SERVICE_PROVIDER
    return info.value


def associate_with_user_info(sub_items: bytes) -> bytes:
    """The golden RQ with its user information item replaced by ``sub_items``."""
    fixed = v.A_ASSOCIATE_RQ[6:74]
    body = (
        fixed
        + v.APPLICATION_CONTEXT
        + v.PRESENTATION_CONTEXT_RQ
        + struct.pack(">BBH", 0x50, 0, len(sub_items))
        + sub_items
    )
    return header(0x01, len(body)) + body


# --- 1 ---------------------------------------------------------------------------------


@pytest.mark.parametrize("pdu_type", range(1, 8))
def test_case_01_length_ffffffff_refused_before_body(pdu_type: int) -> None:
    decoder = PDUDecoder()
    decoder.feed(header(pdu_type, 0xFFFFFFFF) + b"\x00" * 10)
    with pytest.raises(PDULengthError) as info:
        decoder.next_pdu()
    assert info.value.abort_reason == INVALID
    assert decoder.buffer_capacity <= FEED_BUFFER_SIZE


def test_case_01_association_pdu_capped() -> None:
    limits = Limits(max_association_pdu_length=1024 * 1024)
    err = feed_and_fail(header(0x01, 1024 * 1024 + 1), limits)
    assert isinstance(err, PDULengthError)
    # At the cap the header is accepted, but memory follows the bytes that arrived.
    decoder = PDUDecoder(limits)
    decoder.feed(header(0x01, 1024 * 1024) + bytes(100))
    assert decoder.next_pdu() is None
    assert decoder.buffer_capacity <= FEED_BUFFER_SIZE


# --- 2 ---------------------------------------------------------------------------------


def test_case_02_p_data_longer_than_our_maximum() -> None:
    limits = Limits(max_pdu_length=16384)
    err = feed_and_fail(header(0x04, 16385), limits)
    assert isinstance(err, PDULengthError)
    assert err.abort_reason == INVALID
    # Exactly the maximum is fine.
    pdu = PDataTF(pdvs=(PDV(context_id=1, is_command=False, is_last=True, data=bytes(16378)),))
    assert decode_pdu(encode_pdu(pdu), limits) == pdu


# --- 3 ---------------------------------------------------------------------------------


def test_case_03_short_body_waits_with_memory_proportional_to_bytes_received() -> None:
    limits = Limits(max_pdu_length=64 * 1024 * 1024)
    decoder = PDUDecoder(limits, stream_above=NO_STREAMING)
    decoder.feed(header(0x04, 64 * 1024 * 1024))
    for _ in range(10):
        decoder.feed(bytes(1000))
        assert decoder.next_pdu() is None
    assert decoder.buffered_bytes == 6 + 10_000
    assert decoder.buffer_capacity <= FEED_BUFFER_SIZE
    # Zero-copy path: each buffer is at most twice the bytes held plus one read.
    decoder = PDUDecoder(limits, stream_above=NO_STREAMING)
    received = 0
    for _ in range(20):
        view = decoder.get_buffer()
        chunk = header(0x04, 64 * 1024 * 1024) if received == 0 else bytes(READ_SIZE)
        view[: len(chunk)] = chunk
        decoder.buffer_updated(len(chunk))
        received += len(chunk)
        assert decoder.next_pdu() is None
        assert decoder.buffer_capacity <= 2 * received + 2 * 1024 * 1024


# --- 4 ---------------------------------------------------------------------------------

CLIENT_HELLO = bytes.fromhex("16030100c4010000c00303") + bytes(32)


@pytest.mark.parametrize(
    "data",
    [
        header(0x00, 4) + bytes(4),
        header(0x08, 4) + bytes(4),
        header(0xFF, 0xFFFFFFFF),
        b"GET / HTTP/1.1\r\nHost: pacs\r\n\r\n",
        CLIENT_HELLO,
    ],
    ids=["type00", "type08", "typeFF", "http", "tls_client_hello"],
)
def test_case_04_unknown_pdu_type(data: bytes) -> None:
    err = feed_and_fail(data)
    assert err.abort_reason == AbortReason.UNRECOGNIZED_PDU
    # The first byte is enough: no waiting for a header, no allocation from a length.
    err = feed_and_fail(data[:1])
    assert err.abort_reason == AbortReason.UNRECOGNIZED_PDU


# --- 5 ---------------------------------------------------------------------------------


@pytest.mark.parametrize("pdu_type", [0x03, 0x05, 0x06, 0x07])
@pytest.mark.parametrize("length", [0, 3, 5, 0x10000])
def test_case_05_fixed_size_pdus_with_length_not_4(pdu_type: int, length: int) -> None:
    err = feed_and_fail(header(pdu_type, length) + bytes(min(length, 16)))
    assert isinstance(err, PDULengthError)
    assert err.abort_reason == INVALID


# --- 6 ---------------------------------------------------------------------------------


@pytest.mark.parametrize("pdv_length", [0, 1, 0xFFFFFFFF, 9, 0x80000000])
def test_case_06_bad_pdv_item_length(pdv_length: int) -> None:
    body = struct.pack(">IBB", pdv_length, 1, 3) + bytes(2)  # 8 bytes: room for 6 only
    err = feed_and_fail(header(0x04, len(body)) + body)
    assert isinstance(err, PDULengthError)
    assert err.abort_reason == INVALID


def test_case_06_truncated_second_pdv_header() -> None:
    body = struct.pack(">IBB", 2, 1, 3) + b"\x00\x00\x00"
    assert feed_and_fail(header(0x04, len(body)) + body).abort_reason == INVALID


def test_case_06_pdu_too_short_for_any_pdv() -> None:
    assert feed_and_fail(header(0x04, 5) + bytes(5)).abort_reason == INVALID


# --- 7 ---------------------------------------------------------------------------------


@pytest.mark.parametrize("context_id", [0, 2, 254])
def test_case_07_even_or_zero_context_id_is_decoded_for_the_upper_layer(context_id: int) -> None:
    # The codec represents what the peer sent; the assembler/negotiation rejects it.
    wire = bytearray(v.P_DATA_TF)
    wire[10] = context_id
    pdu = decode_pdu(bytes(wire))
    assert isinstance(pdu, PDataTF)
    assert pdu.pdvs[0].context_id == context_id
    rq = bytearray(v.A_ASSOCIATE_RQ)
    rq[74 + 25 + 4] = context_id  # first byte of the presentation context item body
    decoded = decode_pdu(bytes(rq))
    assert isinstance(decoded, AAssociateRQ)
    assert decoded.presentation_contexts[0].context_id == context_id


@pytest.mark.parametrize("context_id", [0, 2, 254])
def test_case_07_we_never_send_an_even_or_zero_context_id(context_id: int) -> None:
    pc = PresentationContextRQ(
        context_id=context_id, abstract_syntax="1.2", transfer_syntaxes=("1.2",)
    )
    rq = AAssociateRQ(called_ae_title="A", calling_ae_title="B", presentation_contexts=(pc,))
    with pytest.raises(PDUEncodeError):
        encode_pdu(rq)
    pdv = PDV(context_id=context_id, is_command=True, is_last=True, data=b"")
    with pytest.raises(PDUEncodeError):
        encode_pdu(PDataTF(pdvs=(pdv,)))
    with pytest.raises(PDUEncodeError):
        PresentationContextRQ(context_id=256, abstract_syntax="1.2", transfer_syntaxes=())


# --- 8 ---------------------------------------------------------------------------------


def test_case_08_sub_item_overruns_user_information() -> None:
    sub = b"\x52\x00\x00\x40" + b"1.2.3"  # claims 64 bytes, has 5
    assert feed_and_fail(associate_with_user_info(sub)).abort_reason == INVALID


def test_case_08_item_overruns_pdu() -> None:
    data = bytearray(v.A_ASSOCIATE_RQ)
    data[74 + 2 : 74 + 4] = b"\xff\xff"  # application context item length 65535
    assert feed_and_fail(bytes(data)).abort_reason == INVALID


def test_case_08_sub_item_overruns_presentation_context() -> None:
    data = bytearray(v.A_ASSOCIATE_RQ)
    abstract = 74 + 25 + 8  # abstract syntax sub-item header
    data[abstract + 2 : abstract + 4] = b"\x00\x50"
    assert feed_and_fail(bytes(data)).abort_reason == INVALID


def test_case_08_related_general_sop_class_overrun() -> None:
    sub = (
        b"\x57\x00\x00\x0e"
        + b"\x00\x03"
        + b"1.2"
        + b"\x00\x03"
        + b"1.2"
        + b"\x00\x02"
        + b"\x00\x09"  # a related UID of 9 bytes inside a 2-byte field
    )
    assert feed_and_fail(associate_with_user_info(sub)).abort_reason == INVALID


# --- 9 ---------------------------------------------------------------------------------


@pytest.mark.parametrize("length", [0, 2, 3, 5, 8])
def test_case_09_maximum_length_item_length_not_4(length: int) -> None:
    sub = struct.pack(">BBH", 0x51, 0, length) + bytes(length)
    assert feed_and_fail(associate_with_user_info(sub)).abort_reason == INVALID


def test_case_09_two_maximum_length_items() -> None:
    err = feed_and_fail(associate_with_user_info(v.MAXIMUM_LENGTH * 2))
    assert err.abort_reason == AbortReason.UNEXPECTED_PDU_PARAMETER


@pytest.mark.parametrize("cut", [1, 2, 3, 5, 10])
def test_case_09_truncated_role_selection(cut: int) -> None:
    body = v.ROLE_SELECTION[4:-cut] if cut < len(v.ROLE_SELECTION) - 4 else b""
    sub = struct.pack(">BBH", 0x54, 0, len(body)) + body
    assert feed_and_fail(associate_with_user_info(sub)).abort_reason == INVALID


def test_case_09_role_selection_with_extra_bytes() -> None:
    body = v.ROLE_SELECTION[4:] + b"\x00"
    sub = struct.pack(">BBH", 0x54, 0, len(body)) + body
    assert feed_and_fail(associate_with_user_info(sub)).abort_reason == INVALID


# --- 10 --------------------------------------------------------------------------------


def test_case_10_unknown_user_information_sub_items_are_ignored() -> None:
    unknown = b"\x5a\x00\x00\x03abc" + b"\xff\x00\x00\x00" + b"\x30\x00\x00\x01x"
    rq = decode_pdu(associate_with_user_info(unknown + v.MAXIMUM_LENGTH + unknown))
    assert isinstance(rq, AAssociateRQ)
    assert rq.user_information.sub_items == (MaximumLength(maximum_length=16384),)


def test_case_10_unknown_variable_items_are_skipped() -> None:
    # PS3.8 9.3.1: items of unrecognized types shall be ignored and skipped.
    unknown = b"\x60\x00\x00\x02zz"
    data = v.A_ASSOCIATE_RQ + unknown
    data = header(0x01, len(data) - 6) + data[6:]
    assert decode_pdu(data) == v.PDU_VECTORS[0][2]


def test_case_10_misplaced_known_item_is_unexpected() -> None:
    data = v.A_ASSOCIATE_RQ + v.PRESENTATION_CONTEXT_AC_ACCEPTED
    data = header(0x01, len(data) - 6) + data[6:]
    assert feed_and_fail(data).abort_reason == AbortReason.UNEXPECTED_PDU_PARAMETER


# --- 11 --------------------------------------------------------------------------------


def test_case_11_non_zero_reserved_bytes_are_accepted() -> None:
    def dirty(vector: bytes, reserved: list[int]) -> bytes:
        data = bytearray(vector)
        for i in reserved:
            data[i] = 0xA5
        return bytes(data)

    rq = v.A_ASSOCIATE_RQ
    pc = 74 + 25  # presentation context item
    ui = pc + 73  # user information item
    rq_reserved = [1, 8, 9, *range(42, 74), 75, pc + 1, pc + 5, pc + 6, pc + 7, pc + 9, ui + 1]
    rq_reserved += [ui + 5]  # Maximum Length sub-item reserved byte
    assert decode_pdu(dirty(rq, rq_reserved)) == v.PDU_VECTORS[0][2]
    ac_pc = 74 + 25
    ac_reserved = [1, 8, 9, *range(42, 74), ac_pc + 1, ac_pc + 5, ac_pc + 7]
    assert decode_pdu(dirty(v.A_ASSOCIATE_AC, ac_reserved)) == v.PDU_VECTORS[1][2]
    assert decode_pdu(dirty(v.A_ASSOCIATE_RJ, [1, 6])) == v.PDU_VECTORS[2][2]
    assert decode_pdu(dirty(v.A_RELEASE_RQ, [1, 6, 7, 8, 9])) == v.PDU_VECTORS[4][2]
    assert decode_pdu(dirty(v.A_RELEASE_RP, [1, 6, 7, 8, 9])) == v.PDU_VECTORS[5][2]
    assert decode_pdu(dirty(v.A_ABORT, [1, 6, 7])) == v.PDU_VECTORS[6][2]
    assert decode_pdu(dirty(v.P_DATA_TF, [1])) == v.PDU_VECTORS[3][2]


# --- 12 --------------------------------------------------------------------------------


@pytest.mark.parametrize("version", [0x0000, 0x0002, 0xFFFE])
def test_case_12_protocol_version_without_bit_0_is_decoded_intact(version: int) -> None:
    # Decoded as is; rejecting it (A-ASSOCIATE-RJ 1/2/2) is the negotiation layer's job.
    data = bytearray(v.A_ASSOCIATE_RQ)
    data[6:8] = version.to_bytes(2, "big")
    rq = decode_pdu(bytes(data))
    assert isinstance(rq, AAssociateRQ)
    assert rq.protocol_version == version
    assert encode_pdu(rq) == bytes(data)
