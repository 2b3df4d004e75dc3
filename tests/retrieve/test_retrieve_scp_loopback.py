"""aiodimse as SCU (Association.get/move, MoveCoordinator) against the aiodimse qrscp
(file index + retrieve_scp), on asyncio and trio."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import pydicom
import pytest

import aiodimse
from aiodimse.services.file_index import FileIndex
from aiodimse.services.find_scp import enable_find
from aiodimse.services.move_coordinator import MoveCoordinator
from aiodimse.services.qr_models import QueryModel
from aiodimse.services.retrieve_scp import MoveDestination, RetrieveSCP, enable_retrieve
from aiodimse.services.retrieve_scu import get_contexts, move_contexts
from tests.support import datagen
from tests.support.peers import free_port

pytestmark = pytest.mark.anyio


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def studies(tmp_path: Path) -> list[list[datagen.Generated]]:
    """Two studies (seeds 41, 42) of three instances each, in one db directory."""
    out = []
    for seed in (41, 42):
        specs = [datagen.Spec(kind=k, seed=seed) for k in (datagen.Kind.CT, datagen.Kind.MR)]
        specs.append(datagen.Spec(kind=datagen.Kind.SC, seed=seed))
        out.append(datagen.write_corpus(tmp_path / "db" / str(seed), specs))
    return out


@asynccontextmanager
async def qrscp(
    db: Path, table: dict[str, MoveDestination]
) -> AsyncIterator[tuple[int, RetrieveSCP]]:
    index = FileIndex(db)
    await index.open()
    ae = aiodimse.AE("QRSCP")
    enable_find(ae, index)
    scp = enable_retrieve(ae, index, move_destinations=table)
    try:
        async with ae.serve("127.0.0.1", 0) as server:
            yield server.port, scp
    finally:
        index.close()


def uids(files: list[datagen.Generated]) -> set[str]:
    return {f.sop_instance_uid for f in files}


async def test_get_study_with_aiodimse_scu(
    tmp_path: Path, studies: list[list[datagen.Generated]]
) -> None:
    study = studies[0]
    async with qrscp(tmp_path / "db", {}) as (port, _):
        scu = aiodimse.AE("GETSCU")
        async with scu.associate(
            "127.0.0.1", port, called_ae="QRSCP", contexts=get_contexts()
        ) as assoc:
            q = {"StudyInstanceUID": study[0].study_instance_uid}
            async with assoc.get(q, level="STUDY", directory=tmp_path / "got") as op:
                got = [inst async for inst in op]
    assert {g.sop_instance_uid for g in got} == uids(study)
    assert op.status is not None and op.status.code == 0x0000
    assert (op.counts.completed, op.counts.failed, op.counts.warning) == (3, 0, 0)
    for g in got:
        src = next(f for f in study if f.sop_instance_uid == g.sop_instance_uid)
        assert pydicom.dcmread(g.path).PixelData == pydicom.dcmread(src.path).PixelData


async def test_concurrent_moves_to_our_coordinator_are_correlated(
    tmp_path: Path, studies: list[list[datagen.Generated]]
) -> None:
    """Our C-MOVE SCP sets Move Originator AE Title/Message ID (PS3.7 9.1.1.1), which the
    coordinator uses to hand each instance to the move that caused it."""
    coord_port = free_port()
    table = {"MOVESCU": MoveDestination(host="127.0.0.1", port=coord_port)}
    async with qrscp(tmp_path / "db", table) as (port, _):
        scu = aiodimse.AE("MOVESCU")
        coordinator = MoveCoordinator(
            scu, port=coord_port, host="127.0.0.1", base_directory=tmp_path / "moves"
        )
        results: dict[int, set[str]] = {}
        async with coordinator.running():

            async def one(n: int) -> None:
                async with scu.associate(
                    "127.0.0.1", port, called_ae="QRSCP", contexts=move_contexts()
                ) as assoc:
                    q = {"StudyInstanceUID": studies[n][0].study_instance_uid}
                    async with assoc.move(
                        q, destination="MOVESCU", level="STUDY", coordinator=coordinator
                    ) as op:
                        results[n] = {i.sop_instance_uid async for i in op}
                    assert op.status is not None and op.status.code == 0x0000
                    assert op.counts.completed == 3

            async with anyio.create_task_group() as tg:
                tg.start_soon(one, 0)
                tg.start_soon(one, 1)
    assert results == {0: uids(studies[0]), 1: uids(studies[1])}


async def test_model_patient_root_get_series(
    tmp_path: Path, studies: list[list[datagen.Generated]]
) -> None:
    target = studies[1][1]  # the MR series of seed 42
    async with qrscp(tmp_path / "db", {}) as (port, scp):
        scu = aiodimse.AE("GETSCU")
        contexts = get_contexts(models=[QueryModel.PATIENT_ROOT])
        async with scu.associate("127.0.0.1", port, called_ae="QRSCP", contexts=contexts) as assoc:
            q = {
                "PatientID": target.patient_id,
                "StudyInstanceUID": target.study_instance_uid,
                "SeriesInstanceUID": target.series_instance_uid,
            }
            async with assoc.get(
                q, model="patient", level="SERIES", directory=tmp_path / "got"
            ) as op:
                got = [inst.sop_instance_uid async for inst in op]
    assert got == [target.sop_instance_uid]
    assert scp.operations == 1
