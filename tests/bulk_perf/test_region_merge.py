"""Contiguous file regions merged up to a slice (aiodimse.services.store_pacing._Paced).

A peer taking PDUs larger than a read chunk gets one region per PDU: the regions a
RegionReader yields one read chunk at a time are joined while they continue each other in
the same file; anything else ends the merge and comes next, unchanged.
"""

from __future__ import annotations

from typing import Any, cast

import anyio
import pytest

from aiodimse.dimse.file_region import FileRegion
from aiodimse.services.store_pacing import _Meter, _Paced

pytestmark = pytest.mark.anyio


class Source:
    """Yields the given chunks (a stand-in for a RegionReader)."""

    def __init__(self, chunks: list[bytes | FileRegion]) -> None:
        self.chunks = list(chunks)
        self.pulled = 0

    def __aiter__(self) -> Source:
        return self

    async def __anext__(self) -> bytes | FileRegion:
        if not self.chunks:
            raise StopAsyncIteration
        self.pulled += 1
        return self.chunks.pop(0)


async def pieces(chunks: list[bytes | FileRegion], slice_size: int) -> list[Any]:
    paced = _Paced(
        cast(Any, Source(chunks)),
        slice_size=slice_size,
        scope=anyio.CancelScope(),
        timeout=None,
        meter=_Meter(None, sum(len(c) for c in chunks)),
    )
    out: list[Any] = []
    async for piece in paced:
        out.append(piece if isinstance(piece, FileRegion) else bytes(piece))
    paced.settle()
    assert paced.sent == sum(len(c) for c in chunks)
    return out


def region(fd: int, offset: int, length: int, owner: object = None) -> FileRegion:
    return FileRegion(fd, offset, length, owner)


async def test_contiguous_regions_become_one_per_slice() -> None:
    owner = object()
    chunks: list[bytes | FileRegion] = [region(5, 100 + i * 10, 10, owner) for i in range(7)]
    got = await pieces(chunks, 25)
    assert [(r.offset, r.length) for r in got] == [(100, 25), (125, 25), (150, 20)]
    assert all(r.fd == 5 and r.owner is owner for r in got)


async def test_a_gap_another_file_or_bytes_end_the_merge() -> None:
    owner, other = object(), object()
    chunks: list[bytes | FileRegion] = [
        b"head",
        region(5, 0, 10, owner),
        region(5, 10, 10, owner),
        region(5, 30, 10, owner),  # a gap
        region(6, 40, 10, owner),  # another descriptor
        region(6, 50, 10, other),  # another file object
        b"tail",
    ]
    got = await pieces(chunks, 100)
    assert got == [
        b"head",
        region(5, 0, 20, owner),
        region(5, 30, 10, owner),
        region(6, 40, 10, owner),
        region(6, 50, 10, other),
        b"tail",
    ]


async def test_slices_still_end_on_slice_boundaries() -> None:
    owner = object()
    chunks: list[bytes | FileRegion] = [b"x" * 6] + [region(3, i * 8, 8, owner) for i in range(5)]
    got = await pieces(chunks, 16)
    sizes = [len(p) for p in got]
    assert sizes == [6, 10, 16, 14]  # 6 + 10 = one slice, then whole slices, then the rest
    assert [p.offset for p in got[1:]] == [0, 10, 26]
