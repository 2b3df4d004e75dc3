"""Properties of the incremental decoder: splits, garbage, memory, zero copy, stickiness."""

from __future__ import annotations

import itertools
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aiodimse.config import Limits
from aiodimse.errors import LocalProtocolError, PDUDecodeError
from aiodimse.pdu import PDV, PDataTF, PDUDecoder, encode_pdu
from aiodimse.pdu.decoder import (
    BUFFER_SIZE,
    FEED_BUFFER_SIZE,
    PDU_SLACK,
    READ_SIZE,
    SMALL_PDU,
)
from aiodimse.pdu.pdus import PDU
from tests.pdu import strategies as s
from tests.pdu.vectors import PDU_VECTORS, STREAM

EXPECTED = [v for _, _, v in PDU_VECTORS]


def drain(decoder: PDUDecoder) -> list[PDU]:
    out = []
    while (pdu := decoder.next_pdu()) is not None:
        out.append(pdu)
    return out


def decode_chunks(chunks: list[bytes], limits: Limits | None = None) -> list[PDU]:
    decoder = PDUDecoder(limits or Limits())
    out: list[PDU] = []
    for chunk in chunks:
        decoder.feed(chunk)
        out.extend(drain(decoder))
    assert decoder.buffered_bytes == 0
    return out


def decode_zero_copy(data: bytes, read_size: int) -> list[PDU]:
    """Like a BufferedProtocol transport: write into get_buffer(), then buffer_updated()."""
    decoder = PDUDecoder()
    out: list[PDU] = []
    pos = 0
    while pos < len(data):
        view = decoder.get_buffer(-1)
        assert len(view) >= READ_SIZE
        n = min(len(view), read_size, len(data) - pos)
        view[:n] = data[pos : pos + n]
        decoder.buffer_updated(n)
        pos += n
        out.extend(drain(decoder))
    return out


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    bounds = [0, *points, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(bounds)]


def test_whole_stream() -> None:
    assert decode_chunks([STREAM]) == EXPECTED


def test_byte_by_byte() -> None:
    assert decode_chunks([STREAM[i : i + 1] for i in range(len(STREAM))]) == EXPECTED


def test_with_trailing_partial_pdu() -> None:
    decoder = PDUDecoder()
    decoder.feed(STREAM + STREAM[:10])
    assert drain(decoder) == EXPECTED
    assert decoder.buffered_bytes == 10
    decoder.feed(STREAM[10:])
    assert drain(decoder) == EXPECTED


@pytest.mark.parametrize("read_size", [1, 7, 100, 4096, READ_SIZE])
def test_zero_copy_path(read_size: int) -> None:
    data = STREAM * 3
    assert decode_zero_copy(data, read_size) == EXPECTED * 3


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(min_value=0), max_size=20))
def test_random_chunking_of_vectors(cuts: list[int]) -> None:
    assert decode_chunks(split(STREAM, cuts)) == EXPECTED


@settings(max_examples=40, deadline=None)
@given(st.lists(s.pdus, min_size=1, max_size=4), st.lists(st.integers(min_value=0), max_size=8))
def test_random_chunking_of_generated_pdus(pdus: list[PDU], cuts: list[int]) -> None:
    data = b"".join(encode_pdu(p) for p in pdus)
    assert decode_chunks(split(data, cuts)) == pdus


def decode_any(chunks: list[bytes]) -> list[PDU]:
    """Feed chunks; return PDUs until a PDUDecodeError. Any other exception fails the test."""
    decoder = PDUDecoder(Limits(max_pdu_length=4096, max_association_pdu_length=4096))
    out: list[PDU] = []
    peak = biggest = 0
    try:
        for chunk in chunks:
            decoder.feed(chunk)
            # Memory bound: what the decoder holds follows what it received, never a
            # declared length: at most twice the most it ever held unconsumed, plus a
            # chunk-sized allowance and a constant.
            peak = max(peak, decoder.buffered_bytes)
            biggest = max(biggest, len(chunk))
            assert decoder.buffer_capacity <= 2 * peak + 2 * biggest + FEED_BUFFER_SIZE
            out.extend(drain(decoder))
    except PDUDecodeError as exc:
        assert exc.abort_reason in (1, 2, 4, 5, 6)
        with pytest.raises(PDUDecodeError) as again:
            decoder.next_pdu()
        assert again.value is exc
    return out


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300), st.lists(st.integers(min_value=0), max_size=6))
def test_arbitrary_bytes_give_pdus_or_decode_error(data: bytes, cuts: list[int]) -> None:
    decode_any(split(data, cuts))


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from([v for _, v, _ in PDU_VECTORS]),
    st.lists(st.tuples(st.integers(min_value=0), st.integers(0, 255)), min_size=1, max_size=4),
    st.integers(min_value=0),
    st.lists(st.integers(min_value=0), max_size=4),
)
def test_mutated_vectors_give_pdus_or_decode_error(
    vector: bytes, flips: list[tuple[int, int]], cut: int, cuts: list[int]
) -> None:
    data = bytearray(vector)
    for pos, value in flips:
        data[pos % len(data)] = value
    data = data[: max(1, cut % (len(data) + 1))]
    for pdu in decode_any(split(bytes(data), cuts)):
        # Whatever decodes re-encodes (leniently) to something that decodes to it again.
        again = decode_chunks([encode_pdu(pdu, strict=False)], Limits(max_pdu_length=1 << 20))
        assert again == [pdu]


def test_pdv_data_are_views_into_the_buffer_and_never_overwritten() -> None:
    payload = bytes(range(256)) * 64  # 16 KiB
    pdu = PDataTF(pdvs=(PDV(context_id=1, is_command=False, is_last=False, data=payload),))
    wire = encode_pdu(pdu)
    decoder = PDUDecoder(Limits(max_pdu_length=1 << 20))
    kept: list[PDV] = []
    for _ in range(200):  # 3.2 MiB through the decoder: several fresh buffers
        view = decoder.get_buffer()
        view[: len(wire)] = wire
        decoder.buffer_updated(len(wire))
        got = decoder.next_pdu()
        assert isinstance(got, PDataTF)
        kept.append(got.pdvs[0])
    for pdv in kept:
        assert isinstance(pdv.data, memoryview)
        assert pdv.data == payload


def _push_through(
    decoder: PDUDecoder, wire: bytes, times: int, keep: list[PDV], sizehint: int = -1
) -> None:
    for _ in range(times):
        view = decoder.get_buffer(sizehint)
        view[: len(wire)] = wire
        del view
        decoder.buffer_updated(len(wire))
        got = decoder.next_pdu()
        assert isinstance(got, PDataTF)
        keep.extend(got.pdvs)


@pytest.mark.skipif(sys.implementation.name != "cpython", reason="reuse needs CPython")
def test_buffer_without_views_is_reused_and_with_views_is_not() -> None:
    payload = bytes(range(256)) * 256  # 64 KiB
    wire = encode_pdu(
        PDataTF(pdvs=(PDV(context_id=1, is_command=False, is_last=True, data=payload),))
    )
    decoder = PDUDecoder(Limits(max_pdu_length=1 << 20))
    dropped: list[PDV] = []
    _push_through(decoder, wire, 100, dropped)  # 6.4 MiB, PDVs kept
    assert decoder.buffers_allocated > 3
    assert all(p.data == payload for p in dropped)
    dropped.clear()  # no view left now
    before = decoder.buffers_allocated
    scratch: list[PDV] = []
    for _ in range(100):
        _push_through(decoder, wire, 1, scratch)
        scratch.clear()
    assert decoder.buffers_allocated <= before + 1


@pytest.mark.skipif(sys.implementation.name != "cpython", reason="reuse needs CPython")
def test_short_messages_read_from_the_front_of_one_buffer() -> None:
    """A connection exchanging short PDUs (association set-up, C-ECHO, release) keeps one
    receive buffer: once all is consumed and no view is left, reads start at its front."""
    wire = encode_pdu(
        PDataTF(pdvs=(PDV(context_id=1, is_command=True, is_last=True, data=b"\x00" * 80),))
    )
    decoder = PDUDecoder()
    scratch: list[PDV] = []
    for _ in range(50):
        _push_through(decoder, wire, 1, scratch, 64 * 1024)
        assert bytes(scratch[-1].data) == b"\x00" * 80
        scratch.clear()
    assert decoder.buffers_allocated == 1
    # A view still held (e.g. a PDV the application kept) forbids the reuse.
    kept: list[PDV] = []
    _push_through(decoder, wire, 3, kept, 64 * 1024)
    assert decoder.buffers_allocated == 3
    assert all(bytes(p.data) == b"\x00" * 80 for p in kept)


def test_get_buffer_respects_sizehint_and_commit_bounds() -> None:
    decoder = PDUDecoder()
    assert len(decoder.get_buffer(-1)) >= READ_SIZE
    assert len(decoder.get_buffer(3 * BUFFER_SIZE)) >= 3 * BUFFER_SIZE
    free = len(decoder.get_buffer())
    with pytest.raises(LocalProtocolError):
        decoder.buffer_updated(free + 1)
    with pytest.raises(LocalProtocolError):
        decoder.buffer_updated(-1)


def _write(decoder: PDUDecoder, data: bytes, sizehint: int) -> None:
    view = decoder.get_buffer(sizehint)
    view[: len(data)] = data
    del view
    decoder.buffer_updated(len(data))


def test_small_pending_pdu_gets_its_rest_plus_slack_not_a_full_read() -> None:
    """Memory per association follows the PDU on its way (1,000 associations each midway
    through a 64 KiB P-DATA-TF), and the PDU still decodes whole."""
    data = bytes(range(256)) * 256  # 64 KiB of dataset
    wire = encode_pdu(PDataTF(pdvs=(PDV(context_id=1, is_command=False, is_last=True, data=data),)))
    decoder = PDUDecoder()
    first = len(decoder.get_buffer(64 * 1024))  # an idle association's first read
    decoder.buffer_updated(0)
    _write(decoder, wire[:first], 64 * 1024)  # fills the buffer; the PDU is longer
    assert decoder.next_pdu() is None  # header known: the rest is pending
    rest = len(wire) - first
    view = decoder.get_buffer(1024 * 1024)  # the transport asks for a large read
    assert len(view) == rest + PDU_SLACK  # not 1 MiB more for a PDU missing a few bytes
    del view
    _write(decoder, wire[first:], 1024 * 1024)
    (pdu,) = drain(decoder)
    assert isinstance(pdu, PDataTF) and bytes(pdu.pdvs[0].data) == data


def test_large_pending_pdu_keeps_the_callers_read_size() -> None:
    data = bytes(SMALL_PDU + 1000)
    wire = encode_pdu(PDataTF(pdvs=(PDV(context_id=1, is_command=False, is_last=True, data=data),)))
    decoder = PDUDecoder()
    _write(decoder, wire[:1000], 64 * 1024)
    assert decoder.next_pdu() is None
    assert len(decoder.get_buffer(512 * 1024)) >= 512 * 1024
    decoder.buffer_updated(0)
    _write(decoder, wire[1000:], 512 * 1024)
    (pdu,) = drain(decoder)
    assert bytes(pdu.pdvs[0].data) == data


def test_error_is_sticky_and_later_bytes_are_dropped() -> None:
    decoder = PDUDecoder()
    decoder.feed(b"\x00\x00\x00\x00\x00\x04")
    with pytest.raises(PDUDecodeError) as first:
        decoder.next_pdu()
    decoder.feed(STREAM)
    view = decoder.get_buffer()
    view[: len(STREAM)] = STREAM
    decoder.buffer_updated(len(STREAM))
    assert decoder.buffered_bytes == 0
    assert decoder.error is first.value
    with pytest.raises(PDUDecodeError) as second:
        decoder.next_pdu()
    assert second.value is first.value


def test_idle_decoder_holds_no_buffer() -> None:
    assert PDUDecoder().buffer_capacity == 0
