"""``Fragmenter.abatches`` and the one-PDU fast paths of ``Fragmenter.pdus``.

Oracle: the wire bytes of :meth:`Fragmenter.apdus` (the packer, unchanged), and pynetdicom's
P-DATA-TF decoder for the fast paths. ``abatches`` must give exactly the same PDUs, grouped:
the command's PDUs never alone when a data PDU follows, a plain dataset grouped by
``BATCH_BYTES``, every group non-empty.
"""

from __future__ import annotations

import asyncio
import itertools
import random
from collections.abc import AsyncIterator

from hypothesis import given, settings
from hypothesis import strategies as st
from pynetdicom.pdu import P_DATA_TF

from aiodimse.dimse.command_codec import encode_command
from aiodimse.dimse.fragmenter import BATCH_BYTES, BATCH_PDUS, Fragmenter
from aiodimse.dimse.messages import CStoreRQ
from aiodimse.pdu import PDataTF, pdata_tf_parts

COMMAND = encode_command(
    CStoreRQ(
        message_id=7,
        affected_sop_class_uid="1.2.840.10008.5.1.4.1.1.7",
        affected_sop_instance_uid="1.2.826.0.1.3680043.2.1125.1.2",
    )
)


def wire(pdus: list[PDataTF]) -> bytes:
    return b"".join(bytes(part) for pdu in pdus for part in pdata_tf_parts(pdu.pdvs))


async def chunked(chunks: list[bytes]) -> AsyncIterator[bytes]:
    for c in chunks:
        await asyncio.sleep(0)
        yield c


async def collect_batches(
    frag: Fragmenter, dataset: bytes | list[bytes] | None, as_async: bool
) -> list[list[PDataTF]]:
    source = chunked(dataset) if as_async and isinstance(dataset, list) else dataset
    return [b async for b in frag.abatches(1, COMMAND, source)]


async def collect_apdus(frag: Fragmenter, dataset: bytes | list[bytes] | None) -> list[PDataTF]:
    source = chunked(dataset) if isinstance(dataset, list) else dataset
    return [p async for p in frag.apdus(1, COMMAND, source)]


@settings(max_examples=120, deadline=None)
@given(
    peer_max=st.one_of(st.integers(8, 300), st.integers(300, 70_000)),
    size=st.integers(0, 200_000),
    cuts=st.lists(st.integers(0, 200_000), max_size=12),
    seed=st.integers(0, 2**32),
    together=st.booleans(),
    as_chunks=st.booleans(),
)
def test_abatches_gives_the_same_pdus_grouped(
    peer_max: int, size: int, cuts: list[int], seed: int, together: bool, as_chunks: bool
) -> None:
    if (size // max(1, peer_max - 6)) > 3000:
        size = 3000 * (peer_max - 6)  # bound the run time
    data = random.Random(seed).randbytes(size)
    points = sorted({c for c in cuts if c <= size})
    bounds = [0, *points, size]
    chunks = [data[a:b] for a, b in itertools.pairwise(bounds)]
    frag = Fragmenter(peer_max, command_and_data_in_one_pdu=together)
    dataset: bytes | list[bytes] = chunks if as_chunks else data
    expected = asyncio.run(collect_apdus(frag, dataset))
    batches = asyncio.run(collect_batches(frag, dataset, as_chunks))
    assert all(batches)
    flat = [p for b in batches for p in b]
    assert wire(flat) == wire(expected)
    first = batches[0]
    # The command never goes alone while data PDUs can join it in the same write (sharing
    # one PDU, a tiny maximum may leave the command's last fragment a PDU of its own).
    if not together:
        assert any(not pdv.is_command for p in first for pdv in p.pdvs)
    for b in batches:
        assert len(b) <= BATCH_PDUS
    if not as_chunks:
        for b in batches[:-1]:
            full = sum(6 + len(v.data) for p in b for v in p.pdvs) >= BATCH_BYTES
            assert full or len(b) == BATCH_PDUS
        assert batches == [list(g) for g in [*frag.batches(1, COMMAND, data)]]


def test_abatches_without_dataset_is_one_group() -> None:
    frag = Fragmenter(16_384)
    (batch,) = asyncio.run(collect_batches(frag, None, False))
    assert wire(batch) == wire(list(frag.pdus(1, COMMAND, None)))


def test_a_small_message_is_one_command_pdu_and_one_data_pdu() -> None:
    data = random.Random(1).randbytes(65_537)  # odd: the only (last) fragment may be odd
    frag = Fragmenter(131_072)
    cmd_pdu, data_pdu = frag.pdus(3, COMMAND, data)
    for pdu, is_command, payload in ((cmd_pdu, True, COMMAND), (data_pdu, False, data)):
        raw = wire([pdu])
        oracle = P_DATA_TF()
        oracle.decode(raw)
        (item,) = oracle.presentation_data_value_items
        assert item.presentation_context_id == 3
        value = item.presentation_data_value
        assert value is not None
        assert value[0] == (0x03 if is_command else 0x02)  # last fragment, command or data
        assert value[1:] == payload


def test_one_pdu_fast_path_respects_the_maximum() -> None:
    data = bytes(1000)
    frag = Fragmenter(1006)  # exactly one PDV of 1000 bytes fits
    assert len(list(frag.pdus(1, COMMAND, data))) == 2
    frag = Fragmenter(1005)  # one byte short: two data PDUs
    pdus = list(frag.pdus(1, COMMAND, data))
    assert len(pdus) == 3
    assert all(sum(6 + len(v.data) for v in p.pdvs) <= 1005 for p in pdus)
