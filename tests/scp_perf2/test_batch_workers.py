"""The pipelined batch's long-lived send workers (``store_batch._Workers``) and the
instance meter's "every byte went out" mark (``_ItemMeter``).

Contract: jobs run in submission order, one at a time per worker, on at most ``width``
worker tasks however many jobs come; :meth:`close` lets the workers end once every job
submitted before it ran; the "sent all" mark wakes a waiter set before or after it waits.
"""

from __future__ import annotations

import anyio
import anyio.lowlevel
import pytest

from aiodimse.services.store_batch import _ItemMeter, _Workers
from aiodimse.services.store_pacing import _Meter

pytestmark = pytest.mark.anyio


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


async def test_jobs_run_in_order_on_at_most_width_workers() -> None:
    started: list[int] = []
    running = 0
    most = 0
    gates: dict[int, anyio.Event] = {}
    window = anyio.Semaphore(3)  # what the batch's window does: at most 3 outstanding

    async def run(index: int, r: object, meter: object) -> None:
        nonlocal running, most
        running += 1
        most = max(most, running)
        started.append(index)
        await gates[index].wait()
        running -= 1
        window.release()

    async with anyio.create_task_group() as tg:
        workers = _Workers(tg, run, 3)
        for i in range(20):
            await window.acquire()
            gates[i] = anyio.Event()
            workers.submit(i, None, None)  # type: ignore[arg-type]
            if i >= 2:
                gates[i - 2].set()  # the oldest outstanding answers
        gates[18].set()
        gates[19].set()
        workers.close()
    assert started == list(range(20))
    assert most <= 3 and workers._started <= 3


async def test_close_before_any_job_ends_idle_workers_and_runs_queued_ones() -> None:
    ran: list[int] = []

    async def run(index: int, r: object, meter: object) -> None:
        ran.append(index)  # started in submission order (they may end in any order)
        await anyio.lowlevel.checkpoint()

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            workers = _Workers(tg, run, 2)
            workers.submit(1, None, None)  # type: ignore[arg-type]
            workers.submit(2, None, None)  # type: ignore[arg-type]
            workers.submit(3, None, None)  # type: ignore[arg-type]
            workers.close()
    assert ran == [1, 2, 3]


async def test_sent_all_wakes_a_waiter_and_is_idempotent() -> None:
    batch = _Meter(None, 10)
    meter = _ItemMeter(batch, 10)
    assert not meter.sent_all
    woke: list[bool] = []

    async def wait() -> None:
        await meter.wait_sent_all()
        woke.append(True)

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(wait)
            await anyio.wait_all_tasks_blocked()
            assert woke == [] and meter._waiter is not None  # made only now: a waiter
            meter.add(4)
            assert not meter.sent_all
            meter.add(6)  # the last byte: marked, the waiter woken
        assert woke == [True] and meter.sent_all
        meter.set_sent_all()
        await meter.wait_sent_all()  # already marked: returns at once
    assert batch.sent == 10
