"""The finishing threads' fork check without a ``getpid`` per job (issue 9, no fsync).

``syncbatch.current_pid`` is kept current by an at-fork hook; the ThreadBatcher's hand-over
reads it, and starts a thread (under its lock) only when none waits and fewer than its
``workers`` run.
"""

from __future__ import annotations

import asyncio
import os
import threading
from pathlib import Path

import anyio
import pytest

from aiodimse.net import syncbatch
from aiodimse.net.filesink import FileSink, SyncBatch, SyncBatcher, ThreadBatcher


def test_current_pid_is_this_process() -> None:
    assert syncbatch.current_pid() == os.getpid()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork on this platform")
def test_current_pid_follows_a_fork() -> None:
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report what it sees, then leave at once
        try:
            os.write(write, f"{syncbatch.current_pid()} {os.getpid()}".encode())
        finally:
            os._exit(0)
    os.close(write)
    try:
        seen = os.read(read, 100).decode().split()
    finally:
        os.close(read)
        os.waitpid(pid, 0)
    assert seen[0] == seen[1] == str(pid)
    assert syncbatch.current_pid() == os.getpid() != pid


def test_many_jobs_at_once_use_at_most_the_workers_and_all_finish(tmp_path: Path) -> None:
    """Hand-overs while the thread is busy or waiting start no other thread; every job
    (60, in bursts from several loop iterations) is written and named."""

    async def main() -> tuple[list[bool], int, set[str]]:
        limiter = anyio.CapacityLimiter(4)
        batcher = ThreadBatcher(SyncBatcher(limiter), workers=1, idle_timeout=30)
        names: set[str] = set()
        most = 0

        async def one(i: int) -> bool:
            nonlocal most
            sink = FileSink(tmp_path / f"{i}.part", limiter=limiter, defer_finish=True,
                            durable=False)  # fmt: skip
            await sink.write(memoryview(b"%d" % i * 100))
            await sink.close()
            await asyncio.sleep(0.001 * (i % 3))  # arrivals spread over loop iterations

            def keep(s: FileSink, batch: SyncBatch) -> bool:
                names.add(threading.current_thread().name)
                return s.commit_sync(tmp_path / f"{i}.dcm", batch=batch)

            placed = await sink.finish(keep, batcher=batcher)
            most = max(most, len(batcher.threads))
            return placed

        try:
            results = await asyncio.gather(*(one(i) for i in range(60)))
        finally:
            batcher.close()
        return list(results), most, names

    results, most, names = asyncio.run(main())
    assert all(results) and most == 1 and names == {"aiodimse-sync-batcher"}
    for i in range(60):
        assert (tmp_path / f"{i}.dcm").read_bytes() == b"%d" % i * 100
