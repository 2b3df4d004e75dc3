"""A long P-DATA-TF handed out in pieces while it arrives (aiodimse.pdu.decoder).

The pieces must carry exactly the PDVs of the whole PDU: same context IDs and command
bits, the data concatenated in order, the last-fragment bit only on a PDV's final piece,
every piece but a PDV's final one even-sized and at least PIECE_MIN; item errors are those
of a whole P-DATA-TF; memory follows the reads, not the declared length.
"""

from __future__ import annotations

import random
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aiodimse.config import Limits
from aiodimse.constants import AbortReason
from aiodimse.dimse.assembler import DataFragment, MessageAssembler, MessageComplete
from aiodimse.dimse.command_codec import encode_command
from aiodimse.dimse.messages import CStoreRQ
from aiodimse.errors import PDULengthError
from aiodimse.pdu import PDV, AReleaseRQ, PDataTF, PDUDecoder, encode_pdu
from aiodimse.pdu.decoder import PIECE_MIN, STREAM_PDU
from aiodimse.pdu.pdus import PDU

BIG = Limits(max_pdu_length=64 * 1024 * 1024)
INVALID = AbortReason.INVALID_PDU_PARAMETER_VALUE
#: (context ID, command?, last?, data) of a PDV, comparable across pieces.
Flat = tuple[int, bool, bool, bytes]


def pattern(n: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(n)


def pdata(*pdvs: tuple[int, bool, bool, bytes]) -> PDataTF:
    return PDataTF(
        pdvs=tuple(PDV(context_id=c, is_command=k, is_last=la, data=d) for c, k, la, d in pdvs)
    )


def read_all(data: bytes, reads: list[int], *, stream_above: int = PIECE_MIN) -> list[PDU]:
    """Write ``data`` into the decoder's own buffer in reads of the given sizes (cycled)."""
    decoder = PDUDecoder(BIG, stream_above=stream_above)
    out: list[PDU] = []
    pos = i = 0
    while pos < len(data):
        view = decoder.get_buffer(reads[i % len(reads)])
        n = min(len(view), reads[i % len(reads)], len(data) - pos)
        view[:n] = data[pos : pos + n]
        del view
        decoder.buffer_updated(n)
        pos += n
        i += 1
        while (pdu := decoder.next_pdu()) is not None:
            out.append(pdu)
    assert decoder.buffered_bytes == 0
    return out


def join_pieces(pdus: list[PDU], reference: list[PDU]) -> None:
    """Assert that ``pdus`` (pieces) carry the PDVs of ``reference`` (whole PDUs)."""
    want: list[Flat] = []
    want_other: list[PDU] = []
    for pdu in reference:
        if isinstance(pdu, PDataTF):
            want += [(p.context_id, p.is_command, p.is_last, bytes(p.data)) for p in pdu.pdvs]
        else:
            want_other.append(pdu)
    got_other = [p for p in pdus if not isinstance(p, PDataTF)]
    assert got_other == want_other
    pieces = [p for pdu in pdus if isinstance(pdu, PDataTF) for p in pdu.pdvs]
    it = iter(want)
    current: Flat | None = None
    acc = b""
    for piece in pieces:
        if current is None:
            current = next(it)
            acc = b""
        cid, command, last, data = current
        assert (piece.context_id, piece.is_command) == (cid, command)
        acc += bytes(piece.data)
        if len(acc) < len(data):
            # Not the PDV's final piece: no last bit, even, at least PIECE_MIN.
            assert not piece.is_last
            assert len(piece.data) % 2 == 0
            assert len(piece.data) >= PIECE_MIN
        else:
            assert acc == data
            assert piece.is_last == last
            current = None
    assert current is None
    assert next(it, None) is None


def test_a_long_pdata_comes_in_pieces_that_join_to_its_pdvs() -> None:
    data = pattern(3 * 1024 * 1024 + 2, 1)
    pdu = pdata((1, True, True, b"\x01" * 100), (1, False, False, data), (3, False, True, b""))
    wire = encode_pdu(pdu) + encode_pdu(AReleaseRQ())
    out = read_all(wire, [256 * 1024])
    assert len(out) > 4  # really in pieces
    join_pieces(out, [pdu, AReleaseRQ()])


def test_default_threshold_keeps_default_sized_pdus_whole() -> None:
    data = pattern(STREAM_PDU - 6, 2)
    pdu = pdata((1, False, True, data))
    assert read_all(encode_pdu(pdu), [64 * 1024], stream_above=STREAM_PDU) == [pdu]


@settings(max_examples=40, deadline=None)
@given(
    sizes=st.lists(
        st.lists(st.integers(0, 300_000), min_size=1, max_size=3), min_size=1, max_size=3
    ),
    reads=st.lists(st.integers(1, 400_000), min_size=1, max_size=4),
    seed=st.integers(0, 1000),
)
def test_any_pdus_in_any_reads_give_the_same_pdvs(
    sizes: list[list[int]], reads: list[int], seed: int
) -> None:
    reference: list[PDU] = []
    for i, pdvs in enumerate(sizes):
        reference.append(
            pdata(
                *(
                    (2 * (j % 3) + 1, j == 0 and n < 1000, j % 2 == 1, pattern(n, seed + j))
                    for j, n in enumerate(pdvs)
                )
            )
        )
        if i % 2:
            reference.append(AReleaseRQ())
    wire = b"".join(encode_pdu(p) for p in reference)
    join_pieces(read_all(wire, reads), reference)
    # And through feed() (a copy per call) in the same splits.
    decoder = PDUDecoder(BIG, stream_above=PIECE_MIN)
    out: list[PDU] = []
    pos = i = 0
    while pos < len(wire):
        n = reads[i % len(reads)]
        decoder.feed(wire[pos : pos + n])
        pos += n
        i += 1
        while (pdu := decoder.next_pdu()) is not None:
            out.append(pdu)
    join_pieces(out, reference)


def test_memory_follows_the_reads_not_the_pdu_length() -> None:
    length = 60 * 1024 * 1024
    decoder = PDUDecoder(BIG)
    header = struct.pack(">BBI", 4, 0, length) + struct.pack(">IBB", length - 4, 1, 0x02)
    read = 1024 * 1024
    received = 0
    total = 0
    peak = 0
    chunk = bytes(read)
    first = True
    while received < 6 + length:
        view = decoder.get_buffer(read)
        piece = header if first else chunk[: min(len(view), read, 6 + length - received)]
        first = False
        view[: len(piece)] = piece
        del view
        decoder.buffer_updated(len(piece))
        received += len(piece)
        while (pdu := decoder.next_pdu()) is not None:
            assert isinstance(pdu, PDataTF)
            total += sum(len(p.data) for p in pdu.pdvs)
        peak = max(peak, decoder.buffer_capacity)
        # The PDU is in progress until its last byte: the PDU timeout stays armed.
        assert decoder.buffered_bytes == (received if received < 6 + length else 0)
    assert total == length - 6
    assert peak <= 3 * read
    assert decoder.buffers_allocated <= 3  # compacted in place, not reallocated


@pytest.mark.parametrize(
    ("body", "what"),
    [
        (struct.pack(">IBB", 0, 1, 0), "below 2"),
        (struct.pack(">IBB", 1, 1, 0), "below 2"),
        (struct.pack(">IBB", 0xFFFFFFFF, 1, 0), "overruns"),
        # One whole PDV, then 4 bytes: too short for another item header.
        (struct.pack(">IBB", 300_000 - 4 - 4, 1, 2), "truncated"),
    ],
)
def test_item_errors_are_those_of_a_whole_pdata(body: bytes, what: str) -> None:
    length = 300_000
    wire = struct.pack(">BBI", 4, 0, length) + body
    wire += bytes(6 + length - len(wire))
    decoder = PDUDecoder(BIG, stream_above=PIECE_MIN)
    with pytest.raises(PDULengthError) as info:
        for i in range(0, len(wire), 100_000):
            decoder.feed(wire[i : i + 100_000])
            while decoder.next_pdu() is not None:
                pass
    assert info.value.abort_reason == INVALID
    assert what in str(info.value)
    with pytest.raises(PDULengthError):  # sticky
        decoder.next_pdu()
    assert decoder.buffered_bytes == 0


def test_a_zero_body_is_refused_at_once_not_after_the_declared_length() -> None:
    # ROBUSTNESS 3/6: a 64 MiB promise with an invalid first item fails on its first bytes.
    decoder = PDUDecoder(BIG)
    decoder.feed(struct.pack(">BBI", 4, 0, 64 * 1024 * 1024) + bytes(1000))
    with pytest.raises(PDULengthError):
        decoder.next_pdu()


def test_the_assembler_sees_the_same_dataset() -> None:
    command = encode_command(
        CStoreRQ(
            message_id=1,
            affected_sop_class_uid="1.2.840.10008.5.1.4.1.1.7",
            affected_sop_instance_uid="1.2.3",
        )
    )
    data = pattern(2 * 1024 * 1024, 3)
    wire = encode_pdu(pdata((1, True, True, bytes(command)))) + encode_pdu(
        pdata((1, False, True, data))
    )
    assembler = MessageAssembler([1])
    got = b""
    complete = 0
    for pdu in read_all(wire, [200_001]):
        assert isinstance(pdu, PDataTF)
        for ev in assembler.receive_pdata(pdu):
            if isinstance(ev, DataFragment):
                got += bytes(ev.data)
            complete += isinstance(ev, MessageComplete)
    assert got == data
    assert complete == 1


def test_stream_above_must_allow_a_piece() -> None:
    with pytest.raises(ValueError):
        PDUDecoder(stream_above=PIECE_MIN - 1)
