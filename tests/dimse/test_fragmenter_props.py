"""Property: fragment -> wire bytes -> PDUDecoder (any split) -> assembler is the identity.

For any dataset (0..300 KB), any peer maximum >= 8, any split of the dataset source into
chunks and any split of the resulting byte stream into reads, the real PDU decoder
(:class:`aiodimse.pdu.decoder.PDUDecoder`) and the :class:`MessageAssembler` give back the
command and exactly the dataset bytes, and no P-DATA-TF exceeds the maximum.
"""

from __future__ import annotations

import asyncio
import itertools
import random
from collections.abc import AsyncIterator

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from aiodimse.config import Limits
from aiodimse.dimse.assembler import (
    AssemblerEvent,
    CommandReceived,
    DataFragment,
    MessageAssembler,
    MessageComplete,
)
from aiodimse.dimse.command_codec import encode_command
from aiodimse.dimse.fragmenter import Fragmenter
from aiodimse.dimse.messages import CStoreRQ
from aiodimse.pdu import PDataTF, pdata_tf_parts
from aiodimse.pdu.decoder import PDUDecoder

STORE = CStoreRQ(
    message_id=9,
    affected_sop_class_uid="1.2.840.10008.5.1.4.1.1.7",
    affected_sop_instance_uid="1.2.826.0.1.3680043.2.1125.1.1",
)
COMMAND = encode_command(STORE)


def cuts(draw: st.DrawFn, total: int, most: int) -> list[int]:
    points = draw(st.lists(st.integers(0, total), max_size=most))
    return sorted(set(points))


def pieces(data: bytes, points: list[int]) -> list[bytes]:
    bounds = [0, *points, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(bounds)]


@st.composite
def cases(draw: st.DrawFn) -> tuple[int, bytes, list[bytes], bool, int, bool]:
    peer_max = draw(st.one_of(st.integers(8, 64), st.integers(65, 70_000), st.just(0)))
    effective = 1024 * 1024 if peer_max == 0 else peer_max
    # Keep the number of PDUs (and the test's run time) bounded.
    most = min(300_000, (effective - 6) * 1500)
    size = draw(st.integers(0, most))
    data = random.Random(draw(st.integers(0, 2**32))).randbytes(size)
    chunks = pieces(data, cuts(draw, size, 30))
    join = draw(st.sampled_from([1, 2, 64, 4096]))
    return peer_max, data, chunks, draw(st.booleans()), join, draw(st.booleans())


async def _aiter(chunks: list[bytes]) -> AsyncIterator[bytes]:
    for c in chunks:
        yield c


async def _collect(frag: Fragmenter, chunks: list[bytes]) -> list[PDataTF]:
    return [pdu async for pdu in frag.apdus(1, COMMAND, _aiter(chunks))]


_BIG = random.Random(1).randbytes(300_000)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@example(
    case=(16_384, _BIG, pieces(_BIG, [1, 4095, 70_001, 200_000]), False, 4096, False),
    read_cuts=[3, 5, 16_389, 100_000],
)
@example(case=(0, _BIG, [_BIG], True, 4096, True), read_cuts=[])
@example(case=(8, _BIG[:3001], pieces(_BIG[:3001], [7, 1000]), True, 2, False), read_cuts=[1])
@given(case=cases(), read_cuts=st.lists(st.integers(0, 2**31), max_size=20))
def test_fragment_decode_assemble_roundtrip(
    case: tuple[int, bytes, list[bytes], bool, int, bool], read_cuts: list[int]
) -> None:
    peer_max, data, chunks, together, join, use_async = case
    frag = Fragmenter(peer_max, command_and_data_in_one_pdu=together, join_threshold=join)
    if use_async:
        pdus = asyncio.run(_collect(frag, chunks))
    else:
        pdus = list(frag.pdus(1, COMMAND, chunks if len(chunks) != 1 else data))

    wire = bytearray()
    for pdu in pdus:
        assert sum(6 + len(p.data) for p in pdu.pdvs) <= frag.max_pdu_length
        for part in pdata_tf_parts(pdu.pdvs):
            wire += part

    # Any split of the byte stream into reads.
    points = sorted({c % (len(wire) + 1) for c in read_cuts})
    decoder = PDUDecoder(Limits(max_pdu_length=max(frag.max_pdu_length, 13)))
    asm = MessageAssembler([1])
    events: list[AssemblerEvent] = []
    for piece in pieces(bytes(wire), points):
        decoder.feed(piece)
        while (got := decoder.next_pdu()) is not None:
            assert isinstance(got, PDataTF)
            events.extend(asm.receive_pdata(got))
    assert decoder.buffered_bytes == 0

    assert events[0] == CommandReceived(context_id=1, message=STORE)
    assert events[-1] == MessageComplete(context_id=1)
    frags = [e for e in events[1:-1] if isinstance(e, DataFragment)]
    assert len(frags) == len(events) - 2
    assert b"".join(bytes(f.data) for f in frags) == data
    assert [f.last for f in frags] == [False] * (len(frags) - 1) + [True]
