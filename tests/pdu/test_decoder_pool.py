"""Receive buffers go back to a shared pool when a connection ends (``PDUDecoder.recycle``)
and the next decoders take them instead of allocating, but only when nothing handed out
still refers to them (a PDV's data is never overwritten by another connection's bytes)."""

from __future__ import annotations

import sys
from collections.abc import Iterator

import pytest

from aiodimse.pdu import PDV, PDataTF, PDUDecoder, encode_pdu
from aiodimse.pdu import decoder as decoder_module
from aiodimse.pdu.decoder import POOLED_SIZE

pytestmark = pytest.mark.skipif(
    sys.implementation.name != "cpython", reason="buffer reuse is proven on CPython only"
)

ECHO = encode_pdu(PDataTF(pdvs=(PDV(context_id=1, is_command=True, is_last=True, data=b"x" * 80),)))


@pytest.fixture(autouse=True)
def empty_pool() -> Iterator[None]:
    saved = decoder_module._POOL[:]
    decoder_module._POOL.clear()
    yield
    decoder_module._POOL[:] = saved


def _receive(decoder: PDUDecoder, data: bytes) -> PDataTF:
    view = decoder.get_buffer(POOLED_SIZE)
    view[: len(data)] = data
    del view
    decoder.buffer_updated(len(data))
    pdu = decoder.next_pdu()
    assert isinstance(pdu, PDataTF)
    return pdu


def test_a_recycled_buffer_is_taken_by_the_next_decoder() -> None:
    first = PDUDecoder()
    pdu = _receive(first, ECHO)
    del pdu
    assert first.buffer_capacity == POOLED_SIZE
    first.recycle()
    assert first.buffer_capacity == 0 and len(decoder_module._POOL) == 1
    second = PDUDecoder()
    assert _receive(second, ECHO).pdvs[0].data == b"x" * 80
    assert not decoder_module._POOL  # taken, not allocated anew
    assert second.buffer_capacity == POOLED_SIZE


def test_a_buffer_still_seen_by_a_pdv_is_not_recycled() -> None:
    first = PDUDecoder()
    kept = _receive(first, ECHO)
    first.recycle()
    assert not decoder_module._POOL and first.buffer_capacity == POOLED_SIZE
    # Another connection's bytes never land under the PDV we still hold.
    second = PDUDecoder()
    _receive(
        second,
        encode_pdu(
            PDataTF(pdvs=(PDV(context_id=1, is_command=True, is_last=True, data=b"y" * 80),))
        ),
    )
    assert bytes(kept.pdvs[0].data) == b"x" * 80


def test_unconsumed_bytes_keep_the_buffer_and_decoding_goes_on_after_recycling() -> None:
    decoder = PDUDecoder()
    view = decoder.get_buffer(POOLED_SIZE)
    view[:10] = ECHO[:10]
    del view
    decoder.buffer_updated(10)
    decoder.recycle()  # part of a PDU is buffered: nothing given back
    assert not decoder_module._POOL
    assert decoder.buffered_bytes == 10
    decoder.feed(ECHO[10:])
    pdu = decoder.next_pdu()
    assert isinstance(pdu, PDataTF)
    del pdu
    decoder.recycle()
    assert len(decoder_module._POOL) == 1
    assert _receive(decoder, ECHO).pdvs[0].data == b"x" * 80  # a buffer again


def test_the_pool_is_bounded() -> None:
    decoder = PDUDecoder()
    pdu = _receive(decoder, ECHO)
    del pdu
    decoder_module._POOL.extend(bytearray(POOLED_SIZE) for _ in range(decoder_module.POOL_MAX))
    decoder.recycle()  # full: the decoder keeps its buffer
    assert len(decoder_module._POOL) == decoder_module.POOL_MAX
    assert decoder.buffer_capacity == POOLED_SIZE
