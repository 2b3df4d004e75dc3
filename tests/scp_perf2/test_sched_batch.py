"""Helper threads of the storage SCP run under ``SCHED_BATCH`` on Linux (no wake-up
preemption of the event loop's thread; same share of the CPU); elsewhere nothing changes.

Contract: the finishing thread (``ThreadBatcher``), the writer loops (``WRITERS``) and the
nameless-file maker (``AnonymousFiles``) each run under ``SCHED_BATCH``; the event loop's
thread keeps its own policy.
"""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path

import anyio
import pytest

from aiodimse.net import nameless
from aiodimse.net.filesink import AnonymousFiles, FileSink, SyncBatch
from aiodimse.net.syncbatch import WRITERS, SyncBatcher, ThreadBatcher, disfavor_wakeup

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.skipif(
        not sys.platform.startswith("linux") or not hasattr(os, "SCHED_BATCH"),
        reason="SCHED_BATCH is Linux's",
    ),
]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def test_the_finishing_thread_runs_under_sched_batch(tmp_path: Path) -> None:
    loop_policy = os.sched_getscheduler(0)
    batcher = ThreadBatcher(SyncBatcher(anyio.CapacityLimiter(2)), workers=1, idle_timeout=30)
    sink = FileSink(tmp_path / ".t.part", limiter=anyio.CapacityLimiter(2), defer_finish=True)
    await sink.write(memoryview(b"x"))
    await sink.close()
    seen: list[int] = []

    def then(s: FileSink, batch: SyncBatch) -> bool:
        seen.append(os.sched_getscheduler(0))
        return s.commit_sync(tmp_path / "a.dcm", batch=batch)

    try:
        assert await sink.finish(then, batcher=batcher)
    finally:
        batcher.close()
    assert seen == [os.SCHED_BATCH]
    assert os.sched_getscheduler(0) == loop_policy != os.SCHED_BATCH  # the loop's unchanged


def test_writer_threads_and_the_nameless_file_maker_run_under_sched_batch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[int] = []
    done = threading.Event()

    def job() -> None:
        seen.append(os.sched_getscheduler(0))
        done.set()

    WRITERS.submit(job)
    assert done.wait(10)
    assert seen == [os.SCHED_BATCH]

    made: list[int] = []
    started = threading.Event()

    def spy() -> None:
        disfavor_wakeup()
        made.append(os.sched_getscheduler(0))
        started.set()

    monkeypatch.setattr(nameless, "disfavor_wakeup", spy)
    pool = AnonymousFiles(tmp_path, size=2)
    try:
        fd = pool.take()
        if fd is None:
            pytest.skip("no O_TMPFILE on this file system")
        os.close(fd)
        assert started.wait(10)  # the maker thread set its policy first thing
        assert made == [os.SCHED_BATCH]
    finally:
        pool.close()


def test_disfavor_wakeup_changes_only_the_calling_thread() -> None:
    before = os.sched_getscheduler(0)
    seen: list[int] = []

    def run() -> None:
        disfavor_wakeup()
        seen.append(os.sched_getscheduler(0))

    t = threading.Thread(target=run)
    t.start()
    t.join()
    assert seen == [os.SCHED_BATCH]
    assert os.sched_getscheduler(0) == before
