"""The storage SCP on asyncio and trio: a store, and a handler cancelled by a lost peer."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest
from pydicom.uid import ExplicitVRLittleEndian

import aiodimse
from aiodimse.services.storage_scp import StorageOptions, StoredInstance, enable_storage
from tests.storage.scu_helper import contexts_for, store_bytes
from tests.support import datagen

pytestmark = pytest.mark.anyio


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def _files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.rglob("*") if p.is_file())


async def test_store_in_tree_layout(tmp_path: Path) -> None:
    scp = aiodimse.AE("STORE_SCP")
    enable_storage(
        scp, aiodimse.StorageOptions(output_directory=tmp_path, layout=aiodimse.Layout.TREE)
    )
    spec = datagen.Spec(kind=datagen.Kind.SC, seed=4)
    data = datagen.dataset_bytes(spec)
    async with scp.serve("127.0.0.1", 0) as server:
        ctx = contexts_for([spec.sop_class_uid], ExplicitVRLittleEndian)
        async with aiodimse.AE("SCU").associate("127.0.0.1", server.port, contexts=ctx) as a:
            rsp = await store_bytes(
                a, data, sop_class_uid=spec.sop_class_uid, sop_instance_uid=spec.sop_instance_uid
            )
    assert rsp.status == 0
    (path,) = _files(tmp_path)
    assert path.relative_to(tmp_path).parts == (
        spec.patient_id,
        spec.study_instance_uid,
        spec.series_instance_uid,
        f"{spec.sop_instance_uid}.dcm",
    )


async def test_robustness_47_peer_lost_while_handler_runs(tmp_path: Path) -> None:
    """The handler is cancelled with the association; the temporary file goes; no status."""
    entered = anyio.Event()
    cancelled = anyio.Event()

    async def handler(instance: StoredInstance) -> int:
        entered.set()
        try:
            await anyio.sleep_forever()
        finally:
            cancelled.set()
        return 0  # pragma: no cover

    scp = aiodimse.AE("STORE_SCP")
    enable_storage(scp, StorageOptions(output_directory=tmp_path, handler=handler))
    spec = datagen.Spec(kind=datagen.Kind.CT, seed=9)
    data = datagen.dataset_bytes(spec)
    async with scp.serve("127.0.0.1", 0) as server:
        ctx = contexts_for([spec.sop_class_uid], ExplicitVRLittleEndian)
        async with aiodimse.AE("SCU").associate("127.0.0.1", server.port, contexts=ctx) as a:
            async with anyio.create_task_group() as tg:

                async def send() -> None:
                    with pytest.raises(aiodimse.DicomError):
                        await store_bytes(
                            a,
                            data,
                            sop_class_uid=spec.sop_class_uid,
                            sop_instance_uid=spec.sop_instance_uid,
                        )

                tg.start_soon(send)
                with anyio.fail_after(10):
                    await entered.wait()
                await a.abort()
        with anyio.fail_after(10):
            await cancelled.wait()
    assert _files(tmp_path) == []
