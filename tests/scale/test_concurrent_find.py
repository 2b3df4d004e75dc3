"""Several C-FINDs at once on one association, within the negotiated window (PS3.7 D.3.3.3).

The SCP's backend holds each query in a :class:`Gate` until the expected number are being
performed at once, so a requestor that sent them one at a time would never finish.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import anyio
import pytest
from pydicom.dataset import Dataset

import aiodimse
from aiodimse import QueryLevel, QueryModel
from aiodimse.services.contexts import VERIFICATION
from aiodimse.services.qr_models import find_contexts
from tests.scale.scale_support import Gate

pytestmark = pytest.mark.anyio


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def study(pid: str, n: int) -> Dataset:
    ds = Dataset()
    ds.PatientID = pid
    ds.StudyInstanceUID = f"1.2.826.0.1.3680043.9.9999.5.{pid[1:]}.{n}"
    return ds


@pytest.mark.parametrize(("granted", "expected"), [(16, 4), (2, 2)])
async def test_finds_run_concurrently_up_to_the_window(granted: int, expected: int) -> None:
    gate = Gate(expected)
    active = 0
    most = 0

    async def backend(
        identifier: Dataset, model: QueryModel, level: QueryLevel | None
    ) -> AsyncIterator[Dataset]:
        nonlocal active, most
        active += 1
        most = max(most, active)
        try:
            if gate.waiting < expected:
                await gate.wait()
            for n in range(5):
                yield study(str(identifier.PatientID), n)
                await anyio.lowlevel.checkpoint()
        finally:
            active -= 1

    scp_ae = aiodimse.AE("FIND_SCP", max_operations_performed=granted)
    aiodimse.enable_find(scp_ae, backend)
    scu = aiodimse.AE("FIND_SCU", max_operations_invoked=16)
    found: dict[str, list[str]] = {}

    async def query(assoc: aiodimse.Association, pid: str) -> None:
        async with assoc.find({"PatientID": pid, "StudyInstanceUID": ""}) as results:
            found[pid] = [str(ds.StudyInstanceUID) async for ds in results]
        assert results.status is not None and results.status.code == 0x0000

    with anyio.fail_after(20):
        async with scp_ae.serve("127.0.0.1", 0) as server:
            async with scu.associate(
                "127.0.0.1",
                server.port,
                called_ae="FIND_SCP",
                contexts=[*find_contexts(), VERIFICATION],
            ) as assoc:
                assert assoc.operations_window == granted
                async with anyio.create_task_group() as tg:
                    for k in range(4):
                        tg.start_soon(query, assoc, f"P{k}")
    assert most == expected
    # Each query got exactly its own matches: responses routed by Message ID.
    for k in range(4):
        assert found[f"P{k}"] == [str(study(f"P{k}", n).StudyInstanceUID) for n in range(5)]
