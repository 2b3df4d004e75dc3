"""Our C-GET/C-MOVE SCU against our own retrieve SCP (services.retrieve_scp), over loopback."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from pydicom.dataset import Dataset

import aiodimse
from aiodimse import MoveCoordinator, QueryLevel, QueryModel
from aiodimse.services.retrieve_scp import enable_retrieve
from aiodimse.services.retrieve_scu import get_contexts, move_contexts
from tests.retrieve.test_retrieve_scu_support import CT, corpus
from tests.support.peers import free_port

pytestmark = pytest.mark.anyio


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


DATA = corpus()


async def backend(
    identifier: Dataset, model: QueryModel, level: QueryLevel
) -> AsyncIterator[Dataset]:
    for ds in DATA:
        if ds.StudyInstanceUID == identifier.get("StudyInstanceUID"):
            yield ds


async def test_get_and_move_against_our_scp(tmp_path: Path) -> None:
    port = free_port()
    scp_ae = aiodimse.AE("OUR_QR")
    enable_retrieve(
        scp_ae, backend, move_destinations={"MOVESCU": ("127.0.0.1", port)},
        storage_sop_classes=[CT],
    )  # fmt: skip
    scu = aiodimse.AE("MOVESCU")
    coordinator = MoveCoordinator(scu, port=port, host="127.0.0.1", base_directory=tmp_path)
    async with scp_ae.serve("127.0.0.1", 0) as server, coordinator.running():
        async with scu.associate(
            "127.0.0.1", server.port, called_ae="OUR_QR",
            contexts=[*get_contexts(storage_sop_classes=[CT]), *move_contexts()],
        ) as assoc:  # fmt: skip
            async with assoc.get({"StudyInstanceUID": "1.2.826.0.1.9.1"}) as op:
                got = sorted([i.sop_instance_uid async for i in op])
            assert got == [f"1.2.826.0.1.9.1.1.{i}" for i in (1, 2, 3)]
            assert op.status is not None and op.status.code == 0 and op.counts.completed == 3
            async with assoc.move(
                {"StudyInstanceUID": "1.2.826.0.1.9.2"},
                destination="MOVESCU",
                coordinator=coordinator,
            ) as mop:
                moved = sorted([i.sop_instance_uid async for i in mop])
            assert moved == [f"1.2.826.0.1.9.2.1.{i}" for i in (1, 2, 3)]
            assert mop.status is not None and mop.status.code == 0
            async with assoc.move(
                {"StudyInstanceUID": "1.2.826.0.1.9.2"}, destination="NOBODY"
            ) as bad:
                with pytest.raises(aiodimse.RetrieveFailed) as info:
                    async for _ in bad:
                        pass
            assert info.value.unknown_destination
