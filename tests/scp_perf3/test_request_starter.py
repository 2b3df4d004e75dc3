"""C-STORE performed without a task (asyncio): the storage SCP's request starter.

Contract: an instance the storage SCP keeps as it came (no handler, no conversion) is
started from the read callback and answered from its worker thread's completion, with the
same outcome as :meth:`StorageSCP.handle_store` (stored bytes, statuses, statistics); a
handler the application put in place of ``handle_store`` is never bypassed; the end of
the association waits for an instance being finished (it is kept, counted, and nothing
fails), like it waits for a handler's task.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path

import anyio
import pytest
from pydicom.uid import ExplicitVRLittleEndian

import aiodimse
from aiodimse.dimse.messages import CStoreRQ, CStoreRSP
from aiodimse.net.channel import Channel, Received, RequestDone
from aiodimse.net.waits import TaskSet
from aiodimse.services.storage_scp import StorageOptions, enable_storage
from tests.storage.scu_helper import contexts_for, store_bytes
from tests.storage.test_storage_scp import CT, ct_bytes

pytestmark = pytest.mark.anyio

WINDOW = 8


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # the starter needs the channel's TaskSet and the batcher's thread


async def _store_all(port: int, items: list[tuple[bytes, str]], window: int) -> list[int]:
    scu = aiodimse.AE("SCU", max_operations_invoked=window)
    statuses: list[int] = []
    ctx = contexts_for([CT], ExplicitVRLittleEndian)
    async with scu.associate("127.0.0.1", port, contexts=ctx) as assoc:

        async def one(data: bytes, uid: str) -> None:
            rsp = await store_bytes(assoc, data, sop_class_uid=CT, sop_instance_uid=uid)
            statuses.append(rsp.status)

        async with anyio.create_task_group() as tg:
            for data, uid in items:
                tg.start_soon(one, data, uid)
    return statuses


def _items(n: int) -> list[tuple[bytes, str]]:
    out = []
    for i in range(n):
        data, spec = ct_bytes(seed=i)
        out.append((data, str(spec.sop_instance_uid)))
    return out


async def test_instances_are_started_without_a_task_and_stored_whole(tmp_path: Path) -> None:
    scp = aiodimse.AE("STORE_SCP", max_operations_performed=WINDOW)
    storage = enable_storage(scp, StorageOptions(output_directory=tmp_path))
    starter = scp.request_starters[CStoreRQ]
    took: list[bool] = []

    def counting(channel: Channel, received: Received, done: RequestDone) -> bool:
        ok = starter(channel, received, done)
        took.append(ok)
        return ok

    scp.request_starters[CStoreRQ] = counting
    items = _items(12)
    with anyio.fail_after(20):
        async with scp.serve("127.0.0.1", 0) as server:
            statuses = await _store_all(server.port, items, WINDOW)
    assert statuses == [0] * len(items)
    assert took == [True] * len(items)  # every one performed without a task of its own
    for data, uid in items:
        assert (tmp_path / f"{uid}.dcm").read_bytes().endswith(data)
    assert storage.stats.stored == len(items) and storage.stats.failed == 0
    assert storage.stats.bytes_received >= sum(len(d) for d, _ in items)


async def test_a_handler_put_in_place_of_the_storage_scps_is_not_bypassed(
    tmp_path: Path,
) -> None:
    scp = aiodimse.AE("STORE_SCP", max_operations_performed=WINDOW)
    enable_storage(scp, StorageOptions(output_directory=tmp_path))
    handled: list[str] = []

    async def mine(ae: aiodimse.AE, channel: Channel, received: Received) -> None:
        rq = received.message
        assert isinstance(rq, CStoreRQ)
        handled.append(rq.affected_sop_instance_uid)
        await channel.send_message(
            received.context_id,
            CStoreRSP(
                message_id_being_responded_to=rq.message_id,
                affected_sop_class_uid=rq.affected_sop_class_uid,
                affected_sop_instance_uid=rq.affected_sop_instance_uid,
                status=0xB000,  # a warning only this handler gives
            ),
        )

    scp.request_handlers[CStoreRQ] = mine
    items = _items(5)
    with anyio.fail_after(20):
        async with scp.serve("127.0.0.1", 0) as server:
            statuses = await _store_all(server.port, items, WINDOW)
    assert statuses == [0xB000] * len(items)
    assert sorted(handled) == sorted(uid for _, uid in items)


async def test_the_associations_end_waits_for_an_instance_being_finished(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    scp = aiodimse.AE("STORE_SCP", max_operations_performed=WINDOW)
    storage = enable_storage(scp, StorageOptions(output_directory=tmp_path))
    in_thread = threading.Event()
    release = threading.Event()
    keep = storage._check_and_keep

    def slow_keep(*args: object) -> object:
        in_thread.set()
        release.wait(10)
        return keep(*args)  # type: ignore[arg-type]

    storage._check_and_keep = slow_keep  # type: ignore[method-assign]
    (data, uid), = _items(1)
    caplog.set_level(logging.WARNING, logger="aiodimse")
    with anyio.fail_after(20):
        async with scp.serve("127.0.0.1", 0, shutdown_timeout=10) as server:
            scu = aiodimse.AE("SCU", max_operations_invoked=WINDOW)
            ctx = contexts_for([CT], ExplicitVRLittleEndian)
            async with scu.associate("127.0.0.1", server.port, contexts=ctx) as assoc:
                async with anyio.create_task_group() as tg:

                    async def store() -> None:
                        with pytest.raises(aiodimse.errors.DicomError):
                            await store_bytes(assoc, data, sop_class_uid=CT, sop_instance_uid=uid)

                    tg.start_soon(store)
                    await anyio.to_thread.run_sync(in_thread.wait, 10)
                    await assoc.abort()  # while the SCP's worker thread holds the instance
            # The thread goes on a little later; the server's end must wait for it.
            threading.Timer(0.3, release.set).start()
    # Left the server: the instance was finished first, and kept as usual.
    assert (tmp_path / f"{uid}.dcm").read_bytes().endswith(data)
    assert storage.stats.stored == 1
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text


async def test_a_task_set_counts_held_work_as_running_and_waits_for_it() -> None:
    group = TaskSet("peer")
    assert not group.running()
    group.hold()
    assert group.running()
    ended: list[str] = []

    async def end_later(then: Callable[[], None]) -> None:
        await anyio.sleep(0.05)
        ended.append("held")
        then()

    async with anyio.create_task_group() as tg:
        tg.start_soon(end_later, group.unhold)
        assert group.cancel()  # something to wait for: the held work
        await group.wait()
        ended.append("waited")
    assert ended == ["held", "waited"]
    assert not group.running()
