"""Properties of pipelined ``store_many`` under random answers and random answer order.

For any window, statuses and handler scheduling (each SCP handler yields a random number of
times before answering, so answers come back in random order, with no wall-clock sleeps):
one result per item in input order; requests on the wire in input order; never more
outstanding than the window; and the stop rules of ``continue_on_error``.
"""

from __future__ import annotations

import anyio
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import aiodimse
from aiodimse.net.channel import Channel
from tests.scale.scale_support import CT, WindowSCP, make_instance, storage_contexts

pytestmark = pytest.mark.anyio

N = 14


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    window=st.integers(1, 6),
    failing=st.sets(st.integers(0, N - 1), max_size=3),
    yields=st.lists(st.integers(0, 30), min_size=N, max_size=N),
    continue_on_error=st.booleans(),
)
async def test_pipeline_properties(
    window: int, failing: set[int], yields: list[int], continue_on_error: bool
) -> None:
    async def hook(index: int, channel: Channel) -> int | None:
        for _ in range(yields[index]):
            await anyio.lowlevel.checkpoint()
        return 0xA700 if index in failing else None

    scp = WindowSCP(hook=hook, max_operations_performed=16)
    scu = aiodimse.AE("SCU", max_operations_invoked=16)
    items = [make_instance(i) for i in range(N)]
    with anyio.fail_after(20):
        async with scp.ae.serve("127.0.0.1", 0) as server:
            async with scu.associate(
                "127.0.0.1", server.port, called_ae="WINDOWSCP", contexts=storage_contexts(CT)
            ) as assoc:
                results = await assoc.store_many(
                    items, window=window, continue_on_error=continue_on_error
                )
    assert [r.sop_instance_uid for r in results] == [str(d.SOPInstanceUID) for d in items]
    assert scp.max_active <= window
    sent = [i for i, r in enumerate(results) if r.sent]
    assert scp.arrived == sent  # in input order, each once
    for i in sent:
        assert results[i].ok == (i not in failing)
    if continue_on_error:
        assert sent == list(range(N))
        return
    first_failure = min((i for i in sent if i in failing), default=None)
    if first_failure is None:
        assert sent == list(range(N))
        return
    # Sent: a prefix (requests started before the failure's answer came back, however many
    # completed meanwhile, each within the window); the rest: "stopped after a failure".
    assert sent == list(range(len(sent)))
    for r in results[len(sent) :]:
        assert r.error == "not sent: stopped after a failure" and not r.retryable


@settings(max_examples=15, deadline=None)
@given(
    window=st.integers(1, 6),
    abort_at=st.integers(0, N - 1),
    yields=st.lists(st.integers(0, 30), min_size=N, max_size=N),
)
async def test_association_lost_anywhere(window: int, abort_at: int, yields: list[int]) -> None:
    async def hook(index: int, channel: Channel) -> int | None:
        for _ in range(yields[index]):
            await anyio.lowlevel.checkpoint()
        if index == abort_at:
            await channel.abort()
        return None

    scp = WindowSCP(hook=hook)
    scu = aiodimse.AE("SCU", max_operations_invoked=16)
    items = [make_instance(i) for i in range(N)]
    with anyio.fail_after(20):
        async with scp.ae.serve("127.0.0.1", 0) as server:
            async with scu.associate(
                "127.0.0.1", server.port, called_ae="WINDOWSCP", contexts=storage_contexts(CT)
            ) as assoc:
                results = await assoc.store_many(items, window=window)
                assert assoc.is_closed
    assert [r.sop_instance_uid for r in results] == [str(d.SOPInstanceUID) for d in items]
    assert not results[abort_at].sent
    # Every instance is either stored (answered Success) or reported retryable, never lost.
    for i, r in enumerate(results):
        assert r.ok or (not r.sent and r.retryable), (i, r.describe())
    assert {i for i, r in enumerate(results) if r.sent} <= set(scp.answered)
    # Nothing is lost: what the SCP saw is a prefix of the input, in order.
    assert scp.arrived == list(range(len(scp.arrived)))
