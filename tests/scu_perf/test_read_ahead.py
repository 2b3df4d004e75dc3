"""The Storage SCU's read-ahead: files read before their turn, in few worker-thread trips.

``prefetch_datasets`` and ``DatasetReader(prefetched=...)`` directly, then ``store_many``
against an aiodimse SCP (``tests.storage.storage_scu_support.RecordingSCP``): what arrives
is byte-identical to the files' datasets, the files are read in far fewer thread trips than
there are files, and a batch that stops early leaves no file open.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import anyio
import pytest
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian

import aiodimse
from aiodimse.net import filesource
from aiodimse.net.filesource import (
    DatasetReader,
    DicomFileInfo,
    FileChanged,
    Prefetched,
    prefetch_datasets,
    read_file_info,
)
from aiodimse.services import store_batch
from aiodimse.services.storage_contexts import propose_contexts
from tests.storage.storage_scu_support import RecordingSCP, contexts_for, store_many_to
from tests.support import datagen

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def dataset_part(info: DicomFileInfo) -> bytes:
    return info.path.read_bytes()[info.dataset_offset :]


@pytest.fixture(scope="module")
def small_files(tmp_path_factory: pytest.TempPathFactory) -> list[DicomFileInfo]:
    directory = tmp_path_factory.mktemp("small")
    return [
        read_file_info(datagen.write_file(datagen.Spec(seed=s), directory).path) for s in range(12)
    ]


@pytest.fixture(scope="module")
def big_file(tmp_path_factory: pytest.TempPathFactory) -> DicomFileInfo:
    gen = datagen.write_streamed(tmp_path_factory.mktemp("big"), (5 << 20) // 2, seed=3)
    return read_file_info(gen.path)


# ------------------------------------------------------------------ prefetch_datasets


def test_prefetch_reads_small_datasets_whole_and_closes_them(
    small_files: list[DicomFileInfo],
) -> None:
    got = prefetch_datasets(small_files)
    assert [p.info for p in got] == small_files
    for pre, info in zip(got, small_files, strict=True):
        assert pre.error is None and pre.fp is None
        assert pre.head == dataset_part(info)


def test_prefetch_keeps_a_large_file_open_after_its_head(big_file: DicomFileInfo) -> None:
    (pre,) = prefetch_datasets([big_file], head_size=1 << 20)
    try:
        assert pre.error is None and pre.fp is not None
        assert pre.head == dataset_part(big_file)[: 1 << 20]
        assert pre.fp.tell() == big_file.dataset_offset + (1 << 20)
    finally:
        pre.close()
    assert pre.fp is None


def test_prefetch_reports_a_changed_or_missing_file_in_its_place(
    small_files: list[DicomFileInfo], tmp_path: Path
) -> None:
    changed = tmp_path / "changed.dcm"
    changed.write_bytes(small_files[0].path.read_bytes())
    info = read_file_info(changed)
    with changed.open("ab") as fp:
        fp.write(b"\0\0")
    missing = read_file_info(small_files[1].path)
    gone = DicomFileInfo(
        path=tmp_path / "gone.dcm",
        file_size=missing.file_size,
        mtime_ns=missing.mtime_ns,
        dataset_offset=missing.dataset_offset,
        transfer_syntax_uid=missing.transfer_syntax_uid,
        sop_class_uid=missing.sop_class_uid,
        sop_instance_uid=missing.sop_instance_uid,
    )
    got = prefetch_datasets([info, small_files[2], gone])
    assert isinstance(got[0].error, FileChanged) and got[0].fp is None
    assert got[1].error is None and got[1].head == dataset_part(small_files[2])
    assert got[2].error is not None and "cannot open" in got[2].error.reason


# ------------------------------------------------------------------ DatasetReader


@pytest.mark.parametrize("read_ahead", [0, 1])
async def test_reader_continues_a_prefetched_large_file(
    big_file: DicomFileInfo, read_ahead: int
) -> None:
    (pre,) = prefetch_datasets([big_file], head_size=1 << 20)
    fp = pre.fp
    assert fp is not None
    async with DatasetReader(big_file, prefetched=pre, read_ahead=read_ahead) as reader:
        assert pre.fp is None  # taken over
        data = b"".join([bytes(c) async for c in reader])
    assert data == dataset_part(big_file)
    assert reader.bytes_read == big_file.dataset_length
    assert fp.closed


async def test_reader_raises_the_prefetch_error(
    small_files: list[DicomFileInfo], tmp_path: Path
) -> None:
    copy = tmp_path / "c.dcm"
    copy.write_bytes(small_files[3].path.read_bytes())
    info = read_file_info(copy)
    os.truncate(copy, info.file_size - 2)
    (pre,) = prefetch_datasets([info])
    async with DatasetReader(info, prefetched=pre) as reader:
        with pytest.raises(FileChanged):
            await reader.__anext__()


async def test_reader_refuses_another_files_prefetch(small_files: list[DicomFileInfo]) -> None:
    (pre,) = prefetch_datasets([small_files[0]])
    with pytest.raises(ValueError, match="another file"):
        DatasetReader(small_files[1], prefetched=pre)


async def test_last_read_closes_the_file_in_its_own_trip(big_file: DicomFileInfo) -> None:
    trips: list[object] = []
    real = anyio.to_thread.run_sync

    async def counting(func: object, *args: object, **kw: object) -> object:
        trips.append(getattr(func, "__name__", func))
        return await real(func, *args, **kw)  # type: ignore[arg-type]

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(anyio.to_thread, "run_sync", counting)
        async with DatasetReader(big_file, read_ahead=0) as reader:
            n = sum([len(c) async for c in reader])
    assert n == big_file.dataset_length
    assert "close" not in trips  # closed by the last read, no trip of its own
    assert trips.count("_read_chunk") == 3  # 2.5 MiB in 1 MiB chunks


# ------------------------------------------------------------------ store_many


def _scp(infos: list[DicomFileInfo], **kw: object) -> RecordingSCP:
    ts = (ExplicitVRLittleEndian, ImplicitVRLittleEndian)
    return RecordingSCP(contexts=contexts_for([i.sop_class_uid for i in infos], ts), **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize("window", [1, 4])
async def test_store_many_sends_read_ahead_files_byte_identical_in_few_trips(
    small_files: list[DicomFileInfo],
    big_file: DicomFileInfo,
    window: int,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    batches: list[int] = []
    real = filesource.prefetch_datasets

    def counting(infos: list[DicomFileInfo], **kw: int) -> list[Prefetched]:
        batches.append(len(infos))
        return real(infos, **kw)

    monkeypatch.setattr(store_batch, "prefetch_datasets", counting)
    files = [*small_files[:6], big_file, *small_files[6:]]
    scp = _scp(files)
    results = await store_many_to(scp, files, window=window)
    assert all(r.ok for r in results), [r.describe() for r in results]
    assert sum(batches) == len(files) and len(batches) < len(files) // 2
    by_uid = {a.sop_instance_uid: a for a in scp.arrived}
    for info in files:
        got = by_uid[info.sop_instance_uid]
        assert got.sha256 == hashlib.sha256(dataset_part(info)).hexdigest()
        assert got.length == info.dataset_length


async def test_a_batch_that_stops_early_leaves_no_file_open(
    small_files: list[DicomFileInfo],
    big_file: DicomFileInfo,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    opened: list[Prefetched] = []
    real = filesource.prefetch_datasets

    def tracking(infos: list[DicomFileInfo], **kw: int) -> list[Prefetched]:
        got = real(infos, **kw)
        opened.extend(p for p in got if p.fp is not None)
        return got

    monkeypatch.setattr(store_batch, "prefetch_datasets", tracking)
    # Several large files: their heads are read ahead and held open while the first fails.
    files = [small_files[0], big_file, big_file, big_file, *small_files[1:4]]

    async def refuse(rq: object) -> tuple[int, str | None]:
        return 0xA700, "full"

    scp = _scp(files, status_for=refuse)
    async with scp.ae.serve("127.0.0.1", 0) as server:
        async with aiodimse.AE("SCU").associate(
            "127.0.0.1", server.port, contexts=propose_contexts(files)
        ) as assoc:
            results = await assoc.store_many(files, continue_on_error=False)
    assert results[0].status == 0xA700
    assert all(not r.sent for r in results[1:])
    assert opened, "the read-ahead should have opened a large file"
    assert all(p.fp is None for p in opened)


def test_prefetch_without_pread_reads_the_same(
    small_files: list[DicomFileInfo], big_file: DicomFileInfo, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Windows has no ``os.pread``: the seek-and-read fallback gives the same bytes."""
    monkeypatch.delattr(os, "pread", raising=False)
    got = prefetch_datasets([*small_files[:3], big_file], head_size=1 << 20)
    try:
        for pre, info in zip(got, [*small_files[:3], big_file], strict=True):
            assert pre.error is None
            assert pre.head == dataset_part(info)[: 1 << 20]
        assert got[-1].fp is not None
        assert got[-1].fp.read() == dataset_part(big_file)[1 << 20 :]
    finally:
        for pre in got:
            pre.close()
