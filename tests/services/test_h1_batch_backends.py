"""A pipelined ``store_many`` on both anyio backends: the batch's one-shot events are the
channel's ``Signal`` on asyncio and ``anyio.Event`` elsewhere (trio); either way every
instance arrives byte-identical, with one result per item in input order."""

from __future__ import annotations

import hashlib

import anyio
import anyio.lowlevel
import pytest
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian

import aiodimse
from aiodimse.net.filesource import DicomFileInfo, read_file_info
from aiodimse.net.waits import Signal
from aiodimse.services import store_pacing
from aiodimse.services.storage_contexts import propose_contexts
from tests.storage.storage_scu_support import RecordingSCP, contexts_for
from tests.support import datagen

pytestmark = pytest.mark.anyio


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> list[DicomFileInfo]:
    directory = tmp_path_factory.mktemp("h1backends")
    small = [
        read_file_info(datagen.write_file(datagen.Spec(seed=s), directory).path) for s in range(5)
    ]
    big = read_file_info(datagen.write_streamed(directory, 3 << 19, seed=21).path)
    return [*small[:2], big, *small[2:], big]


async def test_event_factory_matches_the_backend(anyio_backend: str) -> None:
    make = store_pacing._event_factory()
    event = make()
    assert isinstance(event, Signal) == (anyio_backend == "asyncio")
    async with anyio.create_task_group() as tg:
        tg.start_soon(event.wait)
        await anyio.lowlevel.checkpoint()
        event.set()


@pytest.mark.parametrize("window", [1, 4])
async def test_pipelined_batch_on_both_backends(files: list[DicomFileInfo], window: int) -> None:
    ts = (ExplicitVRLittleEndian, ImplicitVRLittleEndian)
    scp = RecordingSCP(contexts=contexts_for([f.sop_class_uid for f in files], ts))
    scu = aiodimse.AE("SCU", max_operations_invoked=window)
    got: list[str] = []
    async with scp.ae.serve("127.0.0.1", 0) as server:
        async with scu.associate(
            "127.0.0.1", server.port, contexts=propose_contexts(files)
        ) as assoc:
            results = await assoc.store_many(
                files, window=window, on_result=lambda r: got.append(r.sop_instance_uid)
            )
    assert [r.sop_instance_uid for r in results] == [f.sop_instance_uid for f in files]
    assert all(r.ok for r in results), [r.describe() for r in results]
    assert sorted(got) == sorted(f.sop_instance_uid for f in files)
    # (The SCP records each instance when its handler ends: the order may differ.)
    assert len(scp.arrived) == len(files)
    by_uid = {a.sop_instance_uid: a.sha256 for a in scp.arrived}
    for info in files:
        data = info.path.read_bytes()[info.dataset_offset :]
        assert by_uid[info.sop_instance_uid] == hashlib.sha256(data).hexdigest()
