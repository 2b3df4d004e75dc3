"""The pipelined batch's senders (``store_batch._Batch._sender``): up to ``window``
long-lived tasks, each claiming the next instance in input order once its own answer came.

Contract: requests go out in input order from at most ``window`` tasks (no task per
instance, no spawner task handing instances over); every instance gets its result; a
sender blocked waiting for a claim does not hold up the others' answers.
"""

from __future__ import annotations

import anyio
import pytest

from aiodimse.net.channel import Channel
from aiodimse.net.outbound import Outbound
from tests.scale.scale_support import WindowSCP, make_instance, session

pytestmark = pytest.mark.anyio

LIMIT = 20.0


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.mark.parametrize("window", [1, 3, 16])
async def test_requests_in_order_from_at_most_window_tasks(
    window: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    tasks: list[int] = []
    original = Outbound.request_one

    async def recording(self: Channel, *args: object, **kwargs: object) -> object:
        tasks.append(anyio.get_current_task().id)
        return await original(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Outbound, "request_one", recording)

    async def hook(index: int, channel: Channel) -> int | None:
        await anyio.lowlevel.checkpoint()
        return None

    scp = WindowSCP(hook=hook)
    items = [make_instance(i) for i in range(40)]
    with anyio.fail_after(LIMIT):
        async with session(scp) as assoc:
            results = await assoc.store_many(items, window=window)
    assert [r.sop_instance_uid for r in results] == [str(d.SOPInstanceUID) for d in items]
    assert all(r.ok for r in results)
    assert scp.arrived == list(range(40))  # PS3.8 E.1: whole messages, in input order
    assert len(tasks) == 40
    assert 1 <= len(set(tasks)) <= window
    assert scp.max_active <= window


async def test_a_stop_after_a_failure_leaves_the_rest_unsent() -> None:
    async def hook(index: int, channel: Channel) -> int | None:
        return 0xA700 if index == 5 else None  # out of resources for instance 5

    scp = WindowSCP(hook=hook)
    items = [make_instance(i) for i in range(30)]
    with anyio.fail_after(LIMIT):
        async with session(scp) as assoc:
            results = await assoc.store_many(items, window=4, continue_on_error=False)
    assert len(results) == 30
    assert all(r.ok for r in results[:5]) and results[5].status == 0xA700
    # Those already claimed when 5 failed are answered; every later one is not sent.
    sent = [r for r in results[6:] if r.sent]
    # (The requests already out when 5's answer came; the SCP may answer them first.)
    assert all(r.sent for r in results[6 : 6 + len(sent)])
    unsent = results[6 + len(sent) :]
    assert unsent and all(r.error == "not sent: stopped after a failure" for r in unsent)
    assert scp.arrived == list(range(6 + len(sent)))
