"""Fewer hand-offs per stored instance (issue 9): the jobs of one event-loop iteration reach
the finishing thread together, a cancelled caller still waits for its job, a durable trip
starts every file's writeback before the first fsync, and the group 0002 check copies
nothing for a dataset that cannot start with group 0002."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import anyio
import anyio.lowlevel
import pytest

from aiodimse.net import filesink
from aiodimse.net.filesink import FileSink, SinkState, SyncBatch, SyncBatcher, ThreadBatcher
from aiodimse.services.storage_scp_meta import echo_class_uid, group2_marker, group2_skipper

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def _closed(
    path: Path, limiter: anyio.CapacityLimiter, data: bytes, *, durable: bool = True
) -> FileSink:
    sink = FileSink(path, limiter=limiter, defer_finish=True, durable=durable)
    await sink.write(memoryview(data))
    await sink.close()
    return sink


def _keep(target: Path) -> object:
    def step(s: FileSink, b: SyncBatch) -> bool:
        return s.commit_sync(target, batch=b)

    return step


async def test_jobs_of_one_loop_iteration_share_one_trip(tmp_path: Path) -> None:
    limiter = anyio.CapacityLimiter(2)
    batcher = ThreadBatcher(SyncBatcher(limiter), workers=1, idle_timeout=30)
    count = 6
    sinks = [await _closed(tmp_path / f"{i}.part", limiter, bytes([i]) * 100) for i in range(count)]

    async def finish(i: int) -> None:
        assert await sinks[i].finish(_keep(tmp_path / f"{i}.dcm"), batcher=batcher)  # type: ignore[arg-type]

    async with anyio.create_task_group() as tg:  # all reach the batcher in one iteration
        for i in range(count):
            tg.start_soon(finish, i)
    batcher.close()
    assert (batcher.trips, batcher.jobs) == (1, count)
    for i in range(count):
        assert (tmp_path / f"{i}.dcm").read_bytes() == bytes([i]) * 100
    # The next iteration's jobs are a new hand-over: a trip of their own.
    batcher2 = ThreadBatcher(SyncBatcher(limiter), workers=1, idle_timeout=30)
    for i in range(2):
        sink = await _closed(tmp_path / f"n{i}.part", limiter, b"n")
        await sink.finish(_keep(tmp_path / f"n{i}.dcm"), batcher=batcher2)  # type: ignore[arg-type]
    batcher2.close()
    assert (batcher2.trips, batcher2.jobs) == (2, 2)


async def test_a_cancelled_caller_waits_until_its_job_ended(tmp_path: Path) -> None:
    limiter = anyio.CapacityLimiter(2)
    batcher = ThreadBatcher(SyncBatcher(limiter), workers=1, idle_timeout=30)
    sink = await _closed(tmp_path / "a.part", limiter, b"payload")
    entered, release = threading.Event(), threading.Event()

    def slow_keep(s: FileSink, b: SyncBatch) -> bool:
        entered.set()
        release.wait(10)
        return s.commit_sync(tmp_path / "a.dcm", batch=b)

    events: list[str] = []

    async def caller(scope: anyio.CancelScope) -> None:
        with scope:
            try:
                await sink.finish(slow_keep, batcher=batcher)
                events.append("returned")
            except anyio.get_cancelled_exc_class():
                events.append(f"cancelled with the sink {sink.state.value}")
                raise

    scope = anyio.CancelScope()
    async with anyio.create_task_group() as tg:
        tg.start_soon(caller, scope)
        await anyio.to_thread.run_sync(entered.wait, 10)
        scope.cancel()
        for _ in range(20):  # the caller gets many chances to leave early: it must not
            await anyio.lowlevel.checkpoint()
        assert events == []
        release.set()
    batcher.close()
    # It left only once its job ended: the file is whole and named, nothing half-done.
    assert events == ["cancelled with the sink committed"]
    assert (tmp_path / "a.dcm").read_bytes() == b"payload"


@pytest.mark.skipif(not hasattr(os, "posix_fadvise"), reason="no posix_fadvise here")
@pytest.mark.parametrize("durable", [True, False])
async def test_a_durable_trip_starts_all_writeback_before_the_fsyncs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, durable: bool
) -> None:
    calls: list[tuple[str, int]] = []
    real_fadvise, real_fsync = os.posix_fadvise, os.fsync

    def fadvise(fd: int, offset: int, length: int, advice: int) -> None:
        calls.append(("fadvise", advice))
        real_fadvise(fd, offset, length, advice)

    def fsync(fd: int) -> None:
        calls.append(("fsync", 0))
        real_fsync(fd)

    monkeypatch.setattr(os, "posix_fadvise", fadvise)
    monkeypatch.setattr(os, "fsync", fsync)
    limiter = anyio.CapacityLimiter(2)
    batcher = ThreadBatcher(SyncBatcher(limiter), workers=1, idle_timeout=30)
    count = 3
    sinks = [
        await _closed(tmp_path / f"{i}.part", limiter, b"x" * 5000, durable=durable)
        for i in range(count)
    ]

    async def finish(i: int) -> None:
        await sinks[i].finish(_keep(tmp_path / f"{i}.dcm"), batcher=batcher)  # type: ignore[arg-type]

    async with anyio.create_task_group() as tg:
        for i in range(count):
            tg.start_soon(finish, i)
    batcher.close()
    assert batcher.trips == 1
    files = [c for c in calls if c[0] == "fadvise" or c[1] == 0][: 2 * count]
    if durable:
        # Every file's writeback first, then the file fsyncs (the directory's follows).
        assert files == [("fadvise", os.POSIX_FADV_DONTNEED)] * count + [("fsync", 0)] * count
    else:
        assert calls == []
    for i in range(count):
        assert (tmp_path / f"{i}.dcm").read_bytes() == b"x" * 5000
        assert sinks[i].state is SinkState.COMMITTED


@pytest.mark.parametrize(
    ("data", "skipped"),
    [
        (b"\x08\x00\x16\x00" + b"x" * 100, 0),  # (0008,0016) first: the usual dataset
        (b"\x02\x00\x10\x00" + b"y" * 100, 4),  # starts like group 0002: asked
    ],
)
async def test_the_leading_skip_is_asked_only_when_the_marker_opens_the_data(
    tmp_path: Path, data: bytes, skipped: int
) -> None:
    asked: list[bytes] = []

    def skip(head: bytes) -> int:
        asked.append(head)
        return 4

    sink = FileSink(
        tmp_path / "s.part",
        limiter=anyio.CapacityLimiter(1),
        leading_skip=skip,
        skip_marker=b"\x02\x00",
        hold=64,
    )
    await sink.write(memoryview(data))
    await sink.close()
    assert sink.skipped == skipped
    assert asked == ([data[:64]] if skipped else [])
    assert sink.head == data  # the head is as received either way
    await sink.commit(tmp_path / "s.dcm")
    assert (tmp_path / "s.dcm").read_bytes() == data[skipped:]


def test_the_group2_marker_is_the_group_number_as_encoded() -> None:
    assert group2_marker("1.2.840.10008.1.2") == b"\x02\x00"  # implicit little endian
    assert group2_marker("1.2.840.10008.1.2.1") == b"\x02\x00"
    assert group2_marker("1.2.840.10008.1.2.2") == b"\x00\x02"  # explicit big endian
    # The skipper parses only what the marker lets through, and agrees with it.
    element = b"\x02\x00\x10\x00UI\x04\x001.2\x00"
    assert group2_skipper("1.2.840.10008.1.2.1")(element + b"\x08\x00\x16\x00") == len(element)
    assert group2_skipper("1.2.840.10008.1.2.1")(b"\x08\x00\x16\x00UI") == 0


def test_echo_class_uid_is_echo_uid() -> None:
    assert echo_class_uid("1.2.840.10008.5.1.4.1.1.2\x00") == "1.2.840.10008.5.1.4.1.1.2"
    assert echo_class_uid("1.2\\3") is None
    assert echo_class_uid("x" * 65) is None


def test_filesink_knows_whether_fadvise_exists() -> None:
    assert filesink._FADVISE == hasattr(os, "posix_fadvise")


async def test_jobs_handed_over_after_close_still_finish(tmp_path: Path) -> None:
    limiter = anyio.CapacityLimiter(2)
    batcher = ThreadBatcher(SyncBatcher(limiter), workers=1, idle_timeout=30)
    sinks = [await _closed(tmp_path / f"{i}.part", limiter, b"late") for i in range(3)]

    async def finish(i: int) -> None:
        assert await sinks[i].finish(_keep(tmp_path / f"{i}.dcm"), batcher=batcher)  # type: ignore[arg-type]

    async def close() -> None:
        batcher.close()  # same iteration: the jobs are pending, not yet handed over

    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            for i in range(3):
                tg.start_soon(finish, i)
            tg.start_soon(close)
    assert [(tmp_path / f"{i}.dcm").read_bytes() for i in range(3)] == [b"late"] * 3
    assert batcher.jobs == 3 and batcher.fallback.jobs == 0


async def test_no_thread_to_be_had_fails_the_jobs_instead_of_hanging(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    limiter = anyio.CapacityLimiter(2)
    batcher = ThreadBatcher(SyncBatcher(limiter), workers=1, idle_timeout=30)
    sinks = [await _closed(tmp_path / f"{i}.part", limiter, b"z") for i in range(2)]

    def refuse(self: threading.Thread) -> None:
        raise RuntimeError("can't start new thread")

    monkeypatch.setattr(threading.Thread, "start", refuse)
    failures: list[str] = []

    async def finish(i: int) -> None:
        with pytest.raises(RuntimeError, match="start new thread"):
            await sinks[i].finish(_keep(tmp_path / f"{i}.dcm"), batcher=batcher)  # type: ignore[arg-type]
        failures.append(str(i))

    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            for i in range(2):
                tg.start_soon(finish, i)
    assert sorted(failures) == ["0", "1"] and batcher.threads == []
    monkeypatch.undo()  # threads again: the batcher works as before
    sink = await _closed(tmp_path / "ok.part", limiter, b"ok")
    assert await sink.finish(_keep(tmp_path / "ok.dcm"), batcher=batcher)  # type: ignore[arg-type]
    batcher.close()
    assert (tmp_path / "ok.dcm").read_bytes() == b"ok"
    for s in sinks:
        await s.discard()
