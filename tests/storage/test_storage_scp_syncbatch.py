"""Grouped fsyncs of the storage SCP (issue 9): :class:`SyncBatcher` and deferred sinks.

Several instances finishing at once share one worker-thread trip: every file is written and
fsynced before any step runs, each directory is fsynced once after the renames, and every
caller gets its result only after its own file is durable.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import anyio
import pytest
from pydicom.uid import ExplicitVRLittleEndian

import aiodimse
from aiodimse.net import filesink, syncbatch
from aiodimse.net.filesink import FileSink, SinkState, SyncBatch, SyncBatcher, ThreadBatcher
from aiodimse.services.storage_scp import StorageOptions, enable_storage
from tests.storage.scu_helper import contexts_for, store_bytes
from tests.storage.test_storage_scp import CT, ct_bytes

pytestmark = pytest.mark.anyio


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def _deferred(path: Path, limiter: anyio.CapacityLimiter, **kw: object) -> FileSink:
    return FileSink(path, limiter=limiter, defer_finish=True, write_size=1 << 20, **kw)  # type: ignore[arg-type]


async def test_close_of_a_deferred_sink_writes_nothing_until_finish(tmp_path: Path) -> None:
    sink = _deferred(tmp_path / "t.part", anyio.CapacityLimiter(2), prefix=b"P")
    await sink.write(memoryview(b"data"))
    await sink.close()
    assert not sink.path.exists()  # the reader was not held up by the disk
    with pytest.raises(RuntimeError):
        await sink.commit(tmp_path / "x.dcm")  # not durable yet: refused

    def keep(s: FileSink, batch: SyncBatch) -> bool:
        return s.commit_sync(tmp_path / "final.dcm", batch=batch)

    assert await sink.finish(keep)
    assert (tmp_path / "final.dcm").read_bytes() == b"Pdata"
    assert sink.state is SinkState.COMMITTED and not sink.path.exists()


@pytest.mark.parametrize("kind", ["anyio-threads", "own-thread"])
async def test_concurrent_finishes_share_trips_and_each_is_durable_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    events: list[tuple[str, object]] = []
    real_fsync, real_dir = os.fsync, filesink.fsync_directory

    def fsync(fd: int) -> None:
        if not stat.S_ISDIR(os.fstat(fd).st_mode):  # directories are counted below
            events.append(("fsync", fd))
        real_fsync(fd)

    def fsync_directory(directory: Path) -> None:
        events.append(("dir", directory))
        real_dir(directory)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(filesink, "fsync_directory", fsync_directory)
    monkeypatch.setattr(syncbatch, "fsync_directory", fsync_directory)
    limiter = anyio.CapacityLimiter(4)
    batcher: SyncBatcher | ThreadBatcher = SyncBatcher(limiter)
    if kind == "own-thread":
        batcher = ThreadBatcher(SyncBatcher(limiter))
    count = 12
    sinks = [_deferred(tmp_path / f"{i}.part", limiter) for i in range(count)]
    for i, sink in enumerate(sinks):
        await sink.write(memoryview(b"x" * (1000 + i)))
        await sink.close()
    answered: list[int] = []

    def keep(i: int) -> object:
        def step(s: FileSink, batch: SyncBatch) -> int:
            # The file's own fsync happened before its step, in this trip.
            assert any(e[0] == "fsync" for e in events)
            s.commit_sync(tmp_path / "out" / f"{i}.dcm", batch=batch)
            events.append(("step", i))
            return i

        return step

    async def finish(i: int) -> None:
        answered.append(await sinks[i].finish(keep(i), batcher=batcher))  # type: ignore[arg-type]

    async with anyio.create_task_group() as tg:
        for i in range(count):
            tg.start_soon(finish, i)
    assert sorted(answered) == list(range(count))
    assert batcher.jobs == count
    assert batcher.trips < count  # grouped: the first trip takes one, the next the rest
    for i in range(count):
        assert (tmp_path / "out" / f"{i}.dcm").read_bytes() == b"x" * (1000 + i)
    fsyncs = [e for e in events if e[0] == "fsync"]
    assert len(fsyncs) == count
    # Directory fsyncs come after the steps of their trip, and once per trip per directory.
    dirs = [e for e in events if e[0] == "dir"]
    assert 1 <= len(dirs) <= batcher.trips * 2  # out/ and, when out/ was created, its parent
    assert events[-1][0] == "dir"


async def test_a_write_error_reaches_the_step_and_removes_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sink = _deferred(tmp_path / "t.part", anyio.CapacityLimiter(2))

    def denied(self: FileSink) -> object:
        raise PermissionError(13, "Permission denied", str(self.path))

    monkeypatch.setattr(FileSink, "_open", denied)
    await sink.write(memoryview(b"abc"))
    await sink.close()
    error = await sink.finish(lambda s, _b: s.error)
    assert isinstance(error, PermissionError)
    assert not sink.path.exists()


async def test_a_step_that_raises_fails_only_its_own_caller(tmp_path: Path) -> None:
    limiter = anyio.CapacityLimiter(2)
    batcher = SyncBatcher(limiter)
    good, bad = _deferred(tmp_path / "g.part", limiter), _deferred(tmp_path / "b.part", limiter)
    for s in (good, bad):
        await s.write(memoryview(b"z"))
        await s.close()
    results: dict[str, object] = {}

    def boom(_s: FileSink, _b: SyncBatch) -> None:
        raise ValueError("refused")

    async def run_bad() -> None:
        try:
            await bad.finish(boom, batcher=batcher)
        except ValueError as exc:
            results["bad"] = exc

    async def run_good() -> None:
        results["good"] = await good.finish(lambda s, _b: s.path.exists(), batcher=batcher)

    async with anyio.create_task_group() as tg:
        tg.start_soon(run_bad)
        tg.start_soon(run_good)
    assert isinstance(results["bad"], ValueError) and results["good"] is True


async def test_scp_with_a_window_groups_fsyncs_and_answers_after_durability(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Pipelined C-STOREs (asynchronous operations window) reach the SCP together: their
    fsyncs share trips; each response comes only after its file is in place."""
    synced: set[str] = set()
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        real_fsync(fd)
        name = os.readlink(f"/proc/self/fd/{fd}") if os.path.exists("/proc/self/fd") else ""
        synced.add(os.path.basename(name))

    monkeypatch.setattr(os, "fsync", fsync)
    scp = aiodimse.AE("STORE_SCP", max_operations_performed=16)
    storage = enable_storage(scp, StorageOptions(output_directory=tmp_path / "root"))
    count = 24
    items = [ct_bytes(seed=i) for i in range(count)]

    async with scp.serve("127.0.0.1", 0) as server:
        scu = aiodimse.AE("SCU", max_operations_invoked=16)
        ctx = contexts_for([CT], ExplicitVRLittleEndian)
        async with scu.associate("127.0.0.1", server.port, contexts=ctx) as a:
            statuses: list[int] = []

            async def one(data: bytes, uid: str) -> None:
                rsp = await store_bytes(a, data, sop_class_uid=CT, sop_instance_uid=uid)
                # Answered only once the file is in its place.
                assert (tmp_path / "root" / f"{uid}.dcm").exists() or rsp.status != 0
                statuses.append(rsp.status)

            async with anyio.create_task_group() as tg:
                for data, spec in items:
                    tg.start_soon(one, data, spec.sop_instance_uid)
    assert statuses == [0] * count
    batcher = storage.batcher()
    assert batcher.jobs == count
    assert batcher.trips < count, (batcher.trips, batcher.jobs)
