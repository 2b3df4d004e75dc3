"""A dataset sent as file regions is handed to the sender without awaiting.

``RegionReader`` is a plain iterator as well as an async one (the same chunks);
``_Paced.regions()`` gives the same slices as the async pacing and counts each when the next
is asked for; ``store_many`` then writes the command with the first data PDU (one gathered
write, then ``sendfile``) and the short last PDU in one more write: two writes per instance
instead of three, the bytes unchanged.
"""

from __future__ import annotations

import hashlib
import socket
from pathlib import Path

import anyio
import pytest
from pydicom.uid import ExplicitVRLittleEndian

from aiodimse.dimse.file_region import FileRegion
from aiodimse.net import sendfile as sendfile_mod
from aiodimse.net.filesource import (
    DicomFileInfo,
    Prefetched,
    prefetch_datasets,
    read_file_info,
)
from aiodimse.net.sendfile import SENDFILE_SUPPORTED
from aiodimse.services.store_pacing import _Meter, _Paced
from aiodimse.services.store_regions import RegionReader
from tests.storage.storage_scu_support import RecordingSCP, contexts_for, store_many_to
from tests.support import datagen

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
def big_file(tmp_path_factory: pytest.TempPathFactory) -> DicomFileInfo:
    gen = datagen.write_streamed(tmp_path_factory.mktemp("h1iter"), (5 << 20) // 2, seed=11)
    return read_file_info(gen.path)


def _key(piece: object) -> tuple[str, object, int]:
    """What a piece is: a region (offset), or bytes (the bytes); and its length."""
    if isinstance(piece, FileRegion):
        return ("region", piece.offset, piece.length)
    assert isinstance(piece, bytes | memoryview)
    return ("bytes", bytes(piece), len(piece))


@pytest.mark.parametrize("with_head", [False, True])
@pytest.mark.parametrize("chunk", [1 << 19, 1 << 20, 3 << 20])
async def test_region_reader_iterates_alike_with_and_without_await(
    big_file: DicomFileInfo, chunk: int, with_head: bool
) -> None:
    def head() -> Prefetched | None:
        return prefetch_datasets([big_file], head_size=1 << 20)[0] if with_head else None

    async with RegionReader(big_file, chunk_size=chunk, prefetched=head()) as a:
        got_async = [_key(p) async for p in a]
    async with RegionReader(big_file, chunk_size=chunk, prefetched=head()) as b:
        got_sync = [_key(p) for p in b]
        assert b.bytes_read == big_file.dataset_length
    assert got_sync == got_async
    assert sum(k[2] for k in got_sync) == big_file.dataset_length


@pytest.mark.parametrize("chunk", [1 << 19, 1 << 20])
@pytest.mark.parametrize("slice_size", [(1 << 20) - 6, 3 << 20, 8 << 20])
async def test_paced_regions_are_the_async_slices_counted_alike(
    big_file: DicomFileInfo, chunk: int, slice_size: int
) -> None:
    total = big_file.dataset_length

    async def run(sync: bool) -> tuple[list[tuple[str, object, int]], list[int]]:
        meter = _Meter(None, total)
        counted: list[int] = []
        async with RegionReader(big_file, chunk_size=chunk) as reader:
            paced = _Paced(
                reader,
                slice_size=slice_size,
                scope=anyio.CancelScope(),
                timeout=None,
                meter=meter,
                planned=total,
            )
            pieces: list[tuple[str, object, int]] = []
            if sync:
                for p in paced.regions():
                    counted.append(meter.sent)
                    pieces.append(_key(p))
            else:
                async for p in paced:
                    counted.append(meter.sent)
                    pieces.append(_key(p))
            paced.settle()
            counted.append(meter.sent)
        return pieces, counted

    sync_pieces, sync_counted = await run(True)
    async_pieces, async_counted = await run(False)
    assert sync_pieces == async_pieces
    # Each slice counted when the next is asked for, the last one by settle().
    assert sync_counted == async_counted
    assert sync_counted[0] == 0 and sync_counted[-1] == total
    # Slices end on slice boundaries of the dataset; merged regions never exceed one.
    assert all(k[0] == "region" and k[2] <= slice_size for k in sync_pieces)


@pytest.mark.fd_callbacks  # file regions go by sendfile on the native transport
@pytest.mark.skipif(not SENDFILE_SUPPORTED, reason="no os.sendfile + MSG_MORE")
@pytest.mark.parametrize("window", [1, 4])
async def test_a_region_instance_goes_in_two_writes(
    big_file: DicomFileInfo, tmp_path: Path, window: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A 4 MiB PDU holds all but the last bytes of a dataset a bit longer than 4 MiB.
    info = read_file_info(datagen.write_streamed(tmp_path, 4 << 20, seed=12).path)
    peer_max = 4 << 20
    assert peer_max - 6 < info.dataset_length < peer_max + (64 << 10)
    writes: list[list[str]] = []
    real = sendfile_mod.write_with_regions

    async def spy(sock: socket.socket, parts: list[object], wait: object) -> None:
        writes.append(["R" if isinstance(p, FileRegion) else "B" for p in parts])
        await real(sock, parts, wait)  # type: ignore[arg-type]

    monkeypatch.setattr("aiodimse.net.transport.write_with_regions", spy)
    ts = (ExplicitVRLittleEndian, info.transfer_syntax_uid)
    scp = RecordingSCP(contexts=contexts_for([info.sop_class_uid], ts), max_pdu=peer_max)
    files = [info] * 3
    results = await store_many_to(scp, files, window=window)
    assert all(r.ok for r in results), [r.describe() for r in results]
    assert len(writes) == 2 * len(files)
    for first, last in zip(writes[::2], writes[1::2], strict=True):
        # The command PDU's buffers, the first data PDU's headers, its region ...
        assert first[-1] == "R" and first.count("R") == 1 and len(first) >= 4
        # ... then the last data PDU: its headers and the short rest of the file.
        assert last[-1] == "R" and last.count("R") == 1
    digest = hashlib.sha256(info.path.read_bytes()[info.dataset_offset :]).hexdigest()
    assert [a.sha256 for a in scp.arrived] == [digest] * len(files)
