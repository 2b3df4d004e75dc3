"""The instance meter's "every byte went out" mark (``store_batch._ItemMeter``); the
batch's senders that replaced the send workers are tested in tests/scu_perf9.

Contract: the "sent all" mark wakes a waiter set before or after it waits.
"""

from __future__ import annotations

import anyio
import anyio.lowlevel
import pytest

from aiodimse.services.store_batch import _ItemMeter
from aiodimse.services.store_pacing import _Meter

pytestmark = pytest.mark.anyio


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


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
