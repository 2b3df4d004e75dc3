"""The pipelined batch's pump (``store_pipeline.Pump``): on asyncio, a batch whose files all
go whole from memory is sent by one task, answers handled as they come.

Contract: every file arrives byte-identical, at most ``window``
outstanding, one result per item in input order; a failure status with
``continue_on_error=False`` leaves the items not yet started unsent; a peer's A-ABORT fails
the outstanding ones and leaves the rest unsent (retryable); cancelling the batch aborts the
association (requests would stay unanswered). Elsewhere (trio) the senders do the same job.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import anyio
import pytest
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian

import aiodimse
from aiodimse.dimse.messages import CStoreRQ
from aiodimse.net.channel import Channel
from aiodimse.net.filesource import DicomFileInfo, read_file_info
from aiodimse.net.outbound import Outbound
from aiodimse.services import store_pipeline
from aiodimse.services.storage_contexts import propose_contexts
from aiodimse.services.storage_scu import StoreResult
from aiodimse.services.store_batch import NOT_SENT_ASSOCIATION_ENDED
from tests.storage.storage_scu_support import RecordingSCP, contexts_for
from tests.support import datagen

pytestmark = [
    pytest.mark.anyio,
    # The pump needs Channel.send_request (net/outbound.py); until then the senders work.
    pytest.mark.skipif(
        not hasattr(Outbound, "send_request"), reason="Channel.send_request not there yet"
    ),
]

LIMIT = 20.0
COUNT = 24


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> list[DicomFileInfo]:
    directory = tmp_path_factory.mktemp("pump")
    return [
        read_file_info(datagen.write_file(datagen.Spec(seed=s), directory).path)
        for s in range(COUNT)
    ]


@pytest.fixture
def pumps(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many batches a Pump ran."""
    ran: list[int] = []
    original = store_pipeline.Pump.run

    async def run(self: store_pipeline.Pump) -> None:
        ran.append(1)
        await original(self)

    monkeypatch.setattr(store_pipeline.Pump, "run", run)
    return ran


@dataclass
class _SCP(RecordingSCP):
    """Also remembers its channel (to abort from ``status_for``) and how many requests it
    was performing at once."""

    channel: Channel | None = None
    active: int = 0
    most: int = 0
    answered: int = 0
    first_six: anyio.Event = field(default_factory=anyio.Event)  # 6 answered

    async def _handle(self, ae: aiodimse.AE, channel: Channel, received: Any) -> None:
        self.channel = channel
        self.active += 1
        self.most = max(self.most, self.active)
        try:
            await super()._handle(ae, channel, received)
            self.answered += 1
            if self.answered == 6:
                self.first_six.set()
        finally:
            self.active -= 1


def _scp(files: list[DicomFileInfo]) -> _SCP:
    ts = (ExplicitVRLittleEndian, ImplicitVRLittleEndian)
    return _SCP(contexts=contexts_for([f.sop_class_uid for f in files], ts))


async def _send(
    scp: _SCP, files: list[DicomFileInfo], *, window: int, **kwargs: Any
) -> list[StoreResult]:
    scu = aiodimse.AE("SCU", max_operations_invoked=window)
    with anyio.fail_after(LIMIT):
        async with scp.ae.serve("127.0.0.1", 0) as server:
            async with scu.associate(
                "127.0.0.1", server.port, contexts=propose_contexts(files)
            ) as assoc:
                return await assoc.store_many(files, window=window, **kwargs)


def _index(uid: str, files: list[DicomFileInfo]) -> int:
    return [f.sop_instance_uid for f in files].index(uid)


@pytest.mark.parametrize("anyio_backend", ["asyncio", "trio"])
@pytest.mark.parametrize("window", [2, 16])
async def test_every_file_byte_identical_in_order(
    files: list[DicomFileInfo], window: int, anyio_backend: str, pumps: list[int]
) -> None:
    scp = _scp(files)
    slow = anyio.Event()

    async def status_for(rq: CStoreRQ) -> tuple[int, str | None]:
        if _index(rq.affected_sop_instance_uid, files) == 0:
            with anyio.move_on_after(0.5):
                await slow.wait()  # the window fills behind the first one
        elif scp.active >= window:
            slow.set()
        return 0, None

    scp.status_for = status_for
    results = await _send(scp, files, window=window)
    assert pumps == ([1] if anyio_backend == "asyncio" else [])
    assert [r.sop_instance_uid for r in results] == [f.sop_instance_uid for f in files]
    for r, f in zip(results, files, strict=True):
        assert r.ok and r.bytes_sent == f.dataset_length
    # (The SCP's handlers may start in another order than the requests came: trio.)
    arrived = {a.sop_instance_uid: a for a in scp.arrived}
    assert len(arrived) == len(scp.arrived) == COUNT
    for info in files:
        data = info.path.read_bytes()[info.dataset_offset :]
        assert arrived[info.sop_instance_uid].sha256 == hashlib.sha256(data).hexdigest()
    assert 1 < scp.most <= window


async def test_a_failure_status_stops_the_rest(
    files: list[DicomFileInfo], pumps: list[int], anyio_backend: str
) -> None:
    scp = _scp(files)

    async def status_for(rq: CStoreRQ) -> tuple[int, str | None]:
        return (0xA700, "full") if _index(rq.affected_sop_instance_uid, files) == 5 else (0, None)

    scp.status_for = status_for
    results = await _send(scp, files, window=4, continue_on_error=False)
    assert pumps == ([1] if anyio_backend == "asyncio" else [])
    assert len(results) == COUNT and all(r.ok for r in results[:5])
    assert results[5].status == 0xA700 and results[5].retryable
    sent = [r for r in results[6:] if r.sent]
    # (The requests already out when 5's answer came; the SCP may answer them first.)
    assert all(r.sent for r in results[6 : 6 + len(sent)])
    unsent = results[6 + len(sent) :]
    assert unsent and all(r.error == "not sent: stopped after a failure" for r in unsent)
    assert len(scp.arrived) == 6 + len(sent)


async def test_the_peer_aborting_mid_window(
    files: list[DicomFileInfo], pumps: list[int], anyio_backend: str
) -> None:
    scp = _scp(files)

    async def status_for(rq: CStoreRQ) -> tuple[int, str | None]:
        index = _index(rq.affected_sop_instance_uid, files)
        if index >= 6:
            await scp.first_six.wait()  # 0-5 answered first (handlers run concurrently)
        if index == 6:
            assert scp.channel is not None
            await scp.channel.abort()
        return 0, None

    scp.status_for = status_for
    results = await _send(scp, files, window=4)
    assert pumps == ([1] if anyio_backend == "asyncio" else [])
    assert len(results) == COUNT and all(r.ok for r in results[:6])
    # Instance 6 is never answered; others outstanding with it may have been (the SCP's
    # handlers run concurrently), every other one fails, retryable.
    assert not results[6].ok and results[6].retryable
    failed = [r for r in results if not r.ok]
    assert all(r.retryable for r in failed) and len(failed) >= COUNT - 6 - 3
    assert any(r.error and r.error.startswith(NOT_SENT_ASSOCIATION_ENDED) for r in failed)
    assert len(scp.arrived) <= 6 + 4


async def test_cancelling_the_batch_aborts_the_association(
    files: list[DicomFileInfo], pumps: list[int], anyio_backend: str
) -> None:
    scp = _scp(files)
    stuck = anyio.Event()

    async def status_for(rq: CStoreRQ) -> tuple[int, str | None]:
        if _index(rq.affected_sop_instance_uid, files) >= 3:
            stuck.set()
            await anyio.sleep_forever()  # never answered
        return 0, None

    scp.status_for = status_for
    scu = aiodimse.AE("SCU", max_operations_invoked=4)
    with anyio.fail_after(LIMIT):
        async with scp.ae.serve("127.0.0.1", 0) as server:
            async with scu.associate(
                "127.0.0.1", server.port, contexts=propose_contexts(files)
            ) as assoc:
                async with anyio.create_task_group() as tg:

                    async def batch() -> None:
                        await assoc.store_many(files, window=4)

                    tg.start_soon(batch)
                    await stuck.wait()
                    tg.cancel_scope.cancel()
                assert assoc.is_closed  # aborted: the unanswered requests end with it
    assert pumps == ([1] if anyio_backend == "asyncio" else [])


async def test_a_stalled_pump_times_out_and_aborts(
    files: list[DicomFileInfo], pumps: list[int], anyio_backend: str
) -> None:
    scp = _scp(files)

    async def status_for(rq: CStoreRQ) -> tuple[int, str | None]:
        if _index(rq.affected_sop_instance_uid, files) >= 2:
            await anyio.sleep_forever()  # never answered
        return 0, None

    scp.status_for = status_for
    results = await _send(scp, files, window=4, timeout=0.5)
    assert pumps == ([1] if anyio_backend == "asyncio" else [])
    assert all(r.ok for r in results[:2])
    assert all(not r.ok and r.retryable for r in results[2:])
    assert "progress of the pipelined C-STOREs" in (results[2].error or "")


async def test_a_raising_callback_surfaces_as_itself(
    files: list[DicomFileInfo], pumps: list[int], anyio_backend: str
) -> None:
    class Boom(Exception):
        pass

    def on_result(result: StoreResult) -> None:
        raise Boom(result.sop_instance_uid)

    def progress(sent: int, total: int) -> None:
        raise Boom("progress")

    for kwargs in ({"on_result": on_result}, {"progress": progress}):
        with pytest.raises(Boom):
            await _send(_scp(files), files, window=4, **kwargs)
    assert pumps == ([1, 1] if anyio_backend == "asyncio" else [])
