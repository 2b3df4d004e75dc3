"""The Asynchronous Operations Window (PS3.7 D.3.3.3) between two aiodimse AEs.

Pipelining is shown without timing: the SCP's handlers wait in a :class:`Gate` that only
opens once several requests are being performed at once, so a sender that waits for each
response before the next request would never get past the first (``fail_after`` ends it).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import pytest
from pydicom.dataset import Dataset

import aiodimse
from aiodimse import QueryLevel, QueryModel
from aiodimse.net.channel import Channel
from aiodimse.services.contexts import VERIFICATION
from aiodimse.services.qr_models import find_contexts
from aiodimse.services.storage_scp import StorageOptions
from aiodimse.services.storage_scu import StoreResult
from tests.scale.scale_support import (
    CT,
    Gate,
    WindowSCP,
    make_instance,
    session,
    storage_contexts,
)

pytestmark = pytest.mark.anyio

LIMIT = 20.0  # seconds; a broken pipeline deadlocks against the gates, this ends the test


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


async def test_window_is_proposed_granted_and_clamped() -> None:
    seen: list[tuple[int, int] | None] = []

    async def record(index: int, channel: Channel) -> int | None:
        rq = channel.request
        assert rq is not None
        w = rq.user_information.asynchronous_operations_window
        seen.append(None if w is None else (w.max_operations_invoked, w.max_operations_performed))
        return None

    with anyio.fail_after(LIMIT):
        scp = WindowSCP(hook=record, max_operations_performed=8)
        async with session(scp, invoked=16) as assoc:
            assert assoc.operations_window == 8  # the acceptor lowered it
            await assoc.store(make_instance(0))
        async with session(scp, invoked=1) as assoc:
            assert assoc.operations_window == 1
            await assoc.store(make_instance(1))
        async with session(scp, invoked=0) as assoc:  # 0: "unlimited", clamped to ours
            assert assoc.operations_window == 8
            await assoc.store(make_instance(2))
    # A window of 1 proposes nothing (the standard's default).
    assert seen == [(16, 16), None, (0, 16)]


async def test_store_many_pipelines_and_answers_come_back_out_of_order() -> None:
    gate = Gate(4)
    first_answered = anyio.Event()

    async def hook(index: int, channel: Channel) -> int | None:
        if index < 4:
            await gate.wait()  # opens only with 4 requests performed at once
        if index == 0:
            await first_answered.wait()  # instance 0 is answered after instance 1
        return None

    scp = WindowSCP(hook=hook)
    completed: list[int] = []

    def on_result(result: StoreResult) -> None:
        completed.append(int(result.sop_instance_uid.rsplit(".", 1)[1]) - 1)
        if completed[-1] == 1:
            first_answered.set()

    items = [make_instance(i) for i in range(40)]
    with anyio.fail_after(LIMIT):
        async with session(scp) as assoc:
            assert assoc.operations_window == 16
            results = await assoc.store_many(items, on_result=on_result)
    assert [r.sop_instance_uid for r in results] == [str(d.SOPInstanceUID) for d in items]
    assert all(r.ok for r in results)
    assert 4 <= scp.max_active <= 16
    # The SCP answered as each completed: 1 before 0 on the wire, and the SCU saw it so.
    assert scp.answered.index(1) < scp.answered.index(0)
    assert completed.index(1) < completed.index(0)
    # Requests left in input order (one whole message at a time, PS3.8 E.1).
    assert scp.arrived == list(range(40))


async def test_window_caps_outstanding_requests() -> None:
    """``window=3`` with 16 granted, and an SCP that performs at most 2: never more."""
    for performed, window, expected in ((16, 3, 3), (2, None, 2)):
        gate = Gate(expected)

        async def hook(
            index: int, channel: Channel, gate: Gate = gate, expected: int = expected
        ) -> int | None:
            if index < expected:
                await gate.wait()
            await anyio.lowlevel.checkpoint()
            return None

        scp = WindowSCP(hook=hook, max_operations_performed=performed)
        with anyio.fail_after(LIMIT):
            async with session(scp) as assoc:
                results = await assoc.store_many(
                    [make_instance(i) for i in range(30)], window=window
                )
        assert all(r.ok for r in results)
        assert scp.max_active == expected


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_a_failure_mid_window(anyio_backend: str) -> None:
    failed = anyio.Event()

    async def hook(index: int, channel: Channel) -> int | None:
        if index == 3:
            failed.set()
            return 0xA700
        if index > 3:
            await failed.wait()
        return None

    items = [make_instance(i) for i in range(12)]
    with anyio.fail_after(LIMIT):
        # continue_on_error (the default): only that one fails.
        async with session(WindowSCP(hook=hook)) as assoc:
            results = await assoc.store_many(items)
        assert [r.ok for r in results] == [i != 3 for i in range(12)]
        assert results[3].status == 0xA700 and results[3].retryable

        failed = anyio.Event()
        async with session(WindowSCP(hook=hook)) as assoc:
            assert assoc.operations_window == 16
            results = await assoc.store_many(items, continue_on_error=False, window=4)
            assert assoc.is_established  # a failure status does not end the association
    assert [r.sop_instance_uid for r in results] == [str(d.SOPInstanceUID) for d in items]
    assert [r.ok for r in results[:3]] == [True] * 3 and results[3].status == 0xA700
    after = results[4:]
    # Requests already outstanding when the failure arrived get their real answer (here at
    # most window - 1: the later ones wait for the failure), the rest are not sent; never a
    # mix after the first "not sent".
    sent = [r for r in after if r.sent]
    assert len(sent) <= 3 and all(r.ok for r in sent)
    assert after[: len(sent)] == sent
    assert all(r.error == "not sent: stopped after a failure" for r in after[len(sent) :])
    assert not any(r.retryable for r in after[len(sent) :])


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_association_lost_mid_window(anyio_backend: str) -> None:
    fifth = anyio.Event()

    async def hook(index: int, channel: Channel) -> int | None:
        if index in (2, 3, 4):
            await fifth.wait()  # outstanding when the association dies
        if index == 5:
            fifth.set()
            await channel.abort()
        return None

    items = [make_instance(i) for i in range(10)]
    with anyio.fail_after(LIMIT):
        async with session(WindowSCP(hook=hook)) as assoc:
            results = await assoc.store_many(items, window=4)
            assert assoc.is_closed
    assert len(results) == 10
    assert [r.ok for r in results[:2]] == [True, True]
    for r in results[2:6]:  # outstanding: failed with the reason, retryable
        assert not r.sent and r.retryable and r.error and "abort" in r.error
    for r in results[6:]:
        assert not r.sent and r.retryable
        assert r.error is not None and r.error.startswith("not sent: the association ended")


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_progress_covers_the_pipelined_batch(anyio_backend: str) -> None:
    calls: list[tuple[int, int]] = []
    items = [make_instance(i, size=4000) for i in range(20)]
    with anyio.fail_after(LIMIT):
        async with session(WindowSCP()) as assoc:
            results = await assoc.store_many(items, progress=lambda s, t: calls.append((s, t)))
    total = sum(r.bytes_sent for r in results)
    assert total > 20 * 4000
    assert calls[-1] == (total, total)
    sent = [s for s, _ in calls]
    assert sent == sorted(sent)


async def test_concurrent_operations_respect_the_window() -> None:
    """Other tasks' operations share the association's window (here C-ECHO)."""
    for invoked, expected in ((1, 1), (16, 3)):
        active = 0
        most = 0
        gate = Gate(expected)

        async def on_echo(request: object, gate: Gate = gate, expected: int = expected) -> int:
            nonlocal active, most
            active += 1
            most = max(most, active)
            if expected > 1:
                await gate.wait()
            await anyio.lowlevel.checkpoint()
            active -= 1
            return 0

        scp = WindowSCP()
        scp.ae.on_echo = on_echo
        with anyio.fail_after(LIMIT):
            async with session(scp, invoked=invoked) as assoc:
                async with anyio.create_task_group() as tg:
                    for _ in range(3):
                        tg.start_soon(assoc.echo)
        assert most == expected


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_an_operation_inside_its_own_task_s_full_window_is_refused(
    anyio_backend: str,
) -> None:
    """Window 1: a C-ECHO or C-STORE inside the task's own C-FIND block would wait for
    itself forever; it is refused at once instead."""

    async def backend(
        identifier: Dataset, model: QueryModel, level: QueryLevel | None
    ) -> AsyncIterator[Dataset]:
        for n in range(3):
            ds = Dataset()
            ds.PatientID = f"P{n}"
            yield ds

    scp = WindowSCP()
    aiodimse.enable_find(scp.ae, backend)
    scu = aiodimse.AE("SCU")
    with anyio.fail_after(LIMIT):
        async with scp.ae.serve("127.0.0.1", 0) as server:
            async with scu.associate(
                "127.0.0.1",
                server.port,
                called_ae="WINDOWSCP",
                contexts=[*storage_contexts(CT), *find_contexts(), VERIFICATION],
            ) as assoc:
                assert assoc.operations_window == 1
                async with assoc.find({"PatientID": ""}) as results:
                    with pytest.raises(aiodimse.LocalProtocolError, match="whole negotiated"):
                        await assoc.echo()
                    with pytest.raises(aiodimse.LocalProtocolError):
                        await assoc.store_many([make_instance(0)])
                    found = [ds.PatientID async for ds in results]
                assert found == ["P0", "P1", "P2"]
                # After the block the association is still usable.
                assert (await assoc.echo()).code == 0
                assert (await assoc.store(make_instance(1))).ok


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_a_raising_callback_surfaces_as_itself(anyio_backend: str) -> None:
    class Boom(Exception):
        pass

    def on_result(result: StoreResult) -> None:
        raise Boom(result.sop_instance_uid)

    def progress(sent: int, total: int) -> None:
        raise Boom("progress")

    with anyio.fail_after(LIMIT):
        for kwargs in ({"on_result": on_result}, {"progress": progress}):
            async with session(WindowSCP()) as assoc:
                with pytest.raises(Boom):
                    await assoc.store_many([make_instance(i) for i in range(20)], **kwargs)


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_pipelined_into_the_library_storage_scp(anyio_backend: str, tmp_path: Path) -> None:
    """The Storage SCP (file sinks, fsync, atomic rename) performing 16 at a time."""
    scp = aiodimse.AE("STORESCP", contexts=storage_contexts(CT))
    storage = aiodimse.enable_storage(scp, StorageOptions(output_directory=tmp_path / "out"))
    items = [make_instance(i, size=20_000) for i in range(60)]
    with anyio.fail_after(LIMIT):
        async with scp.serve("127.0.0.1", 0) as server:
            scu = aiodimse.AE("SCU", max_operations_invoked=16)
            async with scu.associate(
                "127.0.0.1", server.port, called_ae="STORESCP", contexts=storage_contexts(CT)
            ) as assoc:
                assert assoc.operations_window == 16
                results = await assoc.store_many(items)
    assert all(r.ok for r in results)
    assert storage.stats.stored == 60
    stored = sorted(p.stem for p in (tmp_path / "out").glob("*.dcm"))
    assert stored == sorted(str(d.SOPInstanceUID) for d in items)


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_no_progress_timeout_is_the_batch_s_when_pipelined(anyio_backend: str) -> None:
    """The SCP writes slowly (0.1 s per PDU): 12 instances of 512 KB take ~2.4 s to get
    through its single reader, an answer every ~0.2 s. The last request is on the wire long
    before its answer comes; it must not time out (1 s) while the association moves."""
    scp = WindowSCP(sink_delay=0.1)
    scu = aiodimse.AE("SCU", max_operations_invoked=16, timeouts=aiodimse.Timeouts(store=1.0))
    items = [make_instance(i, size=512 << 10) for i in range(12)]
    with anyio.fail_after(LIMIT):
        async with scp.ae.serve("127.0.0.1", 0) as server:
            async with scu.associate(
                "127.0.0.1", server.port, called_ae="WINDOWSCP", contexts=storage_contexts(CT)
            ) as assoc:
                started = anyio.current_time()
                results = await assoc.store_many(items)
                elapsed = anyio.current_time() - started
    assert all(r.ok for r in results), [r.describe() for r in results if not r.ok]
    assert elapsed > 1.5  # longer than the timeout in total


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_a_stalled_pipeline_times_out_and_aborts(anyio_backend: str) -> None:
    never = anyio.Event()

    async def hook(index: int, channel: Channel) -> int | None:
        if index >= 2:
            await never.wait()  # the SCP stops answering
        return None

    scu = aiodimse.AE("SCU", max_operations_invoked=16, timeouts=aiodimse.Timeouts(store=0.5))
    with anyio.fail_after(LIMIT):
        async with WindowSCP(hook=hook).ae.serve("127.0.0.1", 0) as server:
            async with scu.associate(
                "127.0.0.1", server.port, called_ae="WINDOWSCP", contexts=storage_contexts(CT)
            ) as assoc:
                results = await assoc.store_many([make_instance(i) for i in range(30)], window=4)
                assert assoc.is_closed  # aborted
    assert [r.ok for r in results[:2]] == [True, True]
    outstanding = results[2:6]
    assert all(not r.sent and r.retryable for r in outstanding)
    assert all(r.error and "timed out after 0.5 s" in r.error for r in outstanding)
    assert all(
        r.error and r.error.startswith("not sent: the association ended") for r in results[6:]
    )
