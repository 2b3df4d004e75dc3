"""TaskSet.perform: requests run in workers reused from one request to the next.

A worker is a task that, its job done, waits for the next one; the channel's requests
(C-STOREs arriving one after another on an association) then cost one task and one anyio
cancel scope per worker, not per request. These tests pin what must not change with it:
concurrency, anyio cancellation (shielded sections finish), failures logged, no task left.
"""

from __future__ import annotations

import asyncio
import logging

import anyio
import pytest

from aiodimse.net.waits import TaskSet

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # TaskSet is the channel's task set on asyncio


async def _settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_sequential_jobs_share_one_worker() -> None:
    group = TaskSet("peer")
    ran_in: list[asyncio.Task[object] | None] = []

    async def job() -> None:
        ran_in.append(asyncio.current_task())

    for _ in range(4):
        group.perform(job)
        await _settle()
    assert len(ran_in) == 4
    assert len(set(map(id, ran_in))) == 1  # the same task every time
    assert not group.running()  # a waiting worker has no work
    assert group.cancel()  # but it is a task to wait for
    await group.wait()
    assert not group.running()


async def test_overlapping_jobs_run_concurrently() -> None:
    group = TaskSet("peer")
    release = asyncio.Event()
    started: list[int] = []

    async def job(n: int) -> None:
        started.append(n)
        await release.wait()

    group.perform(lambda: job(1))
    group.perform(lambda: job(2))
    await _settle()
    assert sorted(started) == [1, 2]  # the second did not wait for the first
    assert group.running()
    release.set()
    await _settle()
    assert not group.running()
    group.perform(lambda: job(3))  # one of the two waiting workers takes it
    await _settle()
    assert started[-1] == 3
    group.cancel()
    await group.wait()


async def test_cancel_respects_a_shielded_section() -> None:
    group = TaskSet("peer")
    inside = asyncio.Event()
    finished: list[str] = []

    async def job() -> None:
        with anyio.CancelScope(shield=True):
            inside.set()
            await asyncio.sleep(0.02)
            finished.append("shielded part")
        await asyncio.sleep(10)  # cancelled here
        finished.append("never")

    group.perform(job)
    await inside.wait()
    assert group.cancel()
    with anyio.fail_after(5):
        await group.wait()
    assert finished == ["shielded part"]


async def test_cancel_before_the_worker_starts() -> None:
    group = TaskSet("peer")
    ran: list[int] = []

    async def job() -> None:
        ran.append(1)
        await asyncio.sleep(10)

    group.perform(job)
    group.cancel()
    with anyio.fail_after(5):
        await group.wait()
    assert not group.running()


async def test_a_failing_job_is_logged_and_the_next_gets_a_worker(
    caplog: pytest.LogCaptureFixture,
) -> None:
    group = TaskSet("the-peer")
    done: list[str] = []

    async def bad() -> None:
        raise RuntimeError("boom")

    async def good() -> None:
        done.append("good")

    with caplog.at_level(logging.ERROR, logger="aiodimse.net"):
        group.perform(bad)
        await _settle()
    assert any("the-peer" in r.getMessage() for r in caplog.records)
    group.perform(good)
    await _settle()
    assert done == ["good"]
    group.cancel()
    await group.wait()
