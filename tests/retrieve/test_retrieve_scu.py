"""C-GET and C-MOVE as SCU (and the move coordinator) against a test-only SCP, over loopback."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import pydicom
import pytest

import aiodimse
from aiodimse import MoveCoordinator, RetrieveFailed
from aiodimse.config import Timeouts
from aiodimse.services.retrieve_scu import RetrievedInstance, get_contexts, move_contexts
from tests.retrieve.test_retrieve_scu_support import (
    Behaviour,
    RetrieveTestSCP,
    corpus,
    instance,
)
from tests.support.peers import free_port

pytestmark = pytest.mark.anyio


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@asynccontextmanager
async def peer(
    scp: RetrieveTestSCP, scu: aiodimse.AE, contexts: list[aiodimse.Context]
) -> AsyncIterator[aiodimse.Association]:
    async with scp.ae.serve("127.0.0.1", 0) as server:
        async with scu.associate(
            "127.0.0.1", server.port, called_ae="RETR_SCP", contexts=contexts
        ) as assoc:
            yield assoc


def names(directory: Path) -> list[str]:
    """The sorted entry names of ``directory`` (blocking; tiny directories only)."""
    return sorted(p.name for p in directory.iterdir())


def study(n: int) -> dict[str, str]:
    return {"StudyInstanceUID": f"1.2.826.0.1.9.{n}"}


# -- C-GET ---------------------------------------------------------------------------------------


async def test_get_study_streams_instances_to_files(tmp_path: Path) -> None:
    scp = RetrieveTestSCP(corpus())
    scu = aiodimse.AE("GETSCU")
    async with peer(scp, scu, get_contexts()) as assoc:
        async with assoc.get(study(2), level="STUDY") as op:
            got: list[RetrievedInstance] = []
            async for inst in op:
                assert inst.path.parent == op.directory
                ds = pydicom.dcmread(inst.path)
                assert ds.SOPInstanceUID == inst.sop_instance_uid
                assert ds.file_meta.TransferSyntaxUID == inst.transfer_syntax
                got.append(inst)
            temp = op.directory
        assert temp is not None and not temp.exists()  # removed when the block ended
    assert sorted(i.sop_instance_uid for i in got) == [f"1.2.826.0.1.9.2.1.{i}" for i in (1, 2, 3)]
    assert op.status is not None and op.status.code == 0x0000
    assert (op.counts.completed, op.counts.failed, op.counts.warning) == (3, 0, 0)
    assert op.failed_sop_instance_uids == ()
    assert all(i.source_ae_title == "RETR_SCP" for i in got)


async def test_get_into_directory_keeps_files_and_reports_failures(tmp_path: Path) -> None:
    out = tmp_path / "missing" / "out"
    behaviour = Behaviour(fail={"1.2.826.0.1.9.1.1.2"})
    scp = RetrieveTestSCP(corpus(), behaviour)
    async with peer(scp, aiodimse.AE("GETSCU"), get_contexts()) as assoc:
        async with assoc.get(study(1), directory=out) as op:
            names = sorted([i.path.name async for i in op])
    assert names == ["1.2.826.0.1.9.1.1.1.dcm", "1.2.826.0.1.9.1.1.3.dcm"]
    assert sorted(p.name for p in out.iterdir()) == names  # kept
    assert op.status is not None and op.status.code == 0xB000
    assert op.failed_sop_instance_uids == ("1.2.826.0.1.9.1.1.2",)
    assert (op.counts.completed, op.counts.failed) == (2, 1)


async def test_get_failure_status_is_typed(tmp_path: Path) -> None:
    scp = RetrieveTestSCP(corpus(), Behaviour(final_status=0xA702))
    async with peer(scp, aiodimse.AE("GETSCU"), get_contexts()) as assoc:
        async with assoc.get(study(1)) as op:
            with pytest.raises(RetrieveFailed) as info:
                async for _ in op:
                    pass
    assert info.value.status.code == 0xA702 and info.value.retryable
    assert not info.value.unknown_destination
    assert info.value.counts.completed == 3


async def test_get_break_sends_cancel_and_association_stays_usable(tmp_path: Path) -> None:
    behaviour = Behaviour(wait_cancel_after=1)
    scp = RetrieveTestSCP(corpus(), behaviour)
    async with peer(scp, aiodimse.AE("GETSCU"), get_contexts()) as assoc:
        async with assoc.get(study(1)) as op:
            async for _ in op:
                break
        assert op.cancel_sent and behaviour.seen_cancel
        assert op.status is not None and op.status.code == 0xFE00
        # The association goes on: a second C-GET works.
        behaviour.wait_cancel_after = 0
        async with assoc.get(study(2)) as op2:
            assert len([i async for i in op2]) == 3


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize(
    "hostile",
    ["../../escape", "..\\..\\evil", "/etc/passwd", "CON", "a" * 64, "1.2.3/../../x"],
)
async def test_get_hostile_sop_instance_uid_stays_inside(tmp_path: Path, hostile: str) -> None:
    # ROBUSTNESS 32-33: a peer-chosen UID never names a path outside the operation directory.
    out = tmp_path / "out"
    ds = instance("P9", "1.2.9", "1.2.9.1", hostile)
    scp = RetrieveTestSCP([ds])
    async with peer(scp, aiodimse.AE("GETSCU"), get_contexts()) as assoc:
        async with assoc.get({"StudyInstanceUID": "1.2.9"}, directory=out, timeout=10) as op:
            got = [i async for i in op]
    # A backslash splits a UI value (PS3.5 6.2): the dataset no longer matches the command
    # and the instance is refused (0xA900) rather than stored.
    assert len(got) == (0 if "\\" in hostile else 1)
    for inst in got:
        assert inst.path.resolve().parent == out.resolve()
        assert inst.path.name.startswith("_") and inst.path.name.endswith(".dcm")
    assert names(tmp_path) == ["out"]
    assert all(p.parent == out for p in out.rglob("*"))


async def test_get_timeout_between_responses_not_whole_operation() -> None:
    # Sub-operations every 0.15 s, six of them (~0.9 s), with a 0.5 s per-response timeout
    # and no pending responses at all: received instances count as progress.
    datasets = [instance("P1", "1.2.5", "1.2.5.1", f"1.2.5.1.{i}") for i in range(1, 7)]
    scp = RetrieveTestSCP(datasets, Behaviour(gap=0.15, pending=False))
    async with peer(scp, aiodimse.AE("GETSCU"), get_contexts()) as assoc:
        with anyio.fail_after(10):
            async with assoc.get({"StudyInstanceUID": "1.2.5"}, timeout=0.5) as op:
                assert len([i async for i in op]) == 6
    assert op.status is not None and op.status.code == 0


async def test_get_timeout_fires_when_peer_is_silent() -> None:
    datasets = [instance("P1", "1.2.5", "1.2.5.1", "1.2.5.1.1")]
    scp = RetrieveTestSCP(datasets, Behaviour(gap=2.0, pending=False))
    with pytest.raises(aiodimse.DicomTimeoutError):
        async with peer(scp, aiodimse.AE("GETSCU"), get_contexts()) as assoc:
            async with assoc.get({"StudyInstanceUID": "1.2.5"}, timeout=0.3) as op:
                async for _ in op:
                    pass


# -- C-MOVE --------------------------------------------------------------------------------------


@asynccontextmanager
async def mover(
    behaviour: Behaviour,
    tmp_path: Path,
    *,
    timeouts: Timeouts | None = None,
    datasets: list[pydicom.Dataset] | None = None,
) -> AsyncIterator[tuple[aiodimse.Association, MoveCoordinator]]:
    scu = aiodimse.AE("MOVESCU", timeouts=timeouts)
    port = free_port()
    behaviour.destinations["MOVESCU"] = port
    coordinator = MoveCoordinator(scu, port=port, host="127.0.0.1", base_directory=tmp_path / "m")
    scp = RetrieveTestSCP(corpus() if datasets is None else datasets, behaviour)
    async with coordinator.running():
        async with scp.ae.serve("127.0.0.1", 0) as server:
            async with scu.associate(
                "127.0.0.1", server.port, called_ae="RETR_SCP", contexts=move_contexts()
            ) as assoc:
                yield assoc, coordinator


@pytest.mark.parametrize("originator", [True, False])
async def test_move_to_ourselves(tmp_path: Path, originator: bool) -> None:
    behaviour = Behaviour(originator=originator)
    async with mover(behaviour, tmp_path) as (assoc, coordinator):
        async with assoc.move(study(1), destination="MOVESCU", coordinator=coordinator) as op:
            got = [i async for i in op]
            assert op.directory is not None and op.directory.parent == tmp_path / "m"
            assert all(i.path.parent == op.directory and i.path.is_file() for i in got)
            directory = op.directory
        assert not directory.exists()
    assert sorted(i.sop_instance_uid for i in got) == [f"1.2.826.0.1.9.1.1.{i}" for i in (1, 2, 3)]
    assert op.status is not None and op.status.code == 0 and op.counts.completed == 3
    assert behaviour.move_requests[0].move_destination.strip() == "MOVESCU"


@pytest.mark.parametrize("originator", [True, False])
async def test_two_concurrent_moves_each_get_their_own(tmp_path: Path, originator: bool) -> None:
    behaviour = Behaviour(originator=originator, gap=0.02)
    results: dict[int, list[str]] = {}
    async with mover(behaviour, tmp_path) as (assoc, coordinator):
        scu = coordinator.ae

        async def one(n: int, port: int) -> None:
            async with scu.associate(
                "127.0.0.1", port, called_ae="RETR_SCP", contexts=move_contexts()
            ) as a:
                async with a.move(study(n), destination="MOVESCU", coordinator=coordinator) as op:
                    results[n] = sorted([i.sop_instance_uid async for i in op])

        port = int(assoc._channel.peer.rsplit(":", 1)[1])
        async with anyio.create_task_group() as tg:
            tg.start_soon(one, 1, port)
            tg.start_soon(one, 2, port)
    assert results[1] == [f"1.2.826.0.1.9.1.1.{i}" for i in (1, 2, 3)]
    assert results[2] == [f"1.2.826.0.1.9.2.1.{i}" for i in (1, 2, 3)]


async def test_move_unknown_destination(tmp_path: Path) -> None:
    async with mover(Behaviour(), tmp_path) as (assoc, _coordinator):
        async with assoc.move(study(1), destination="NOBODY") as op:
            with pytest.raises(RetrieveFailed) as info:
                async for _ in op:
                    pass
    assert info.value.status.code == 0xA801 and info.value.unknown_destination
    assert "destination unknown" in str(info.value)


async def test_move_to_other_destination_gives_counts_only(tmp_path: Path) -> None:
    async with mover(Behaviour(), tmp_path) as (assoc, _coordinator):
        # Destination is our AE but no coordinator passed: counts only, nothing yielded.
        async with assoc.move(study(2), destination="MOVESCU") as op:
            assert [i async for i in op] == []
    assert op.status is not None and op.status.code == 0 and op.counts.completed == 3


async def test_move_pending_responses_outlast_timeout(tmp_path: Path) -> None:
    behaviour = Behaviour(gap=0.2)
    async with mover(behaviour, tmp_path) as (assoc, coordinator):
        start = anyio.current_time()
        async with assoc.move(
            study(1), destination="MOVESCU", coordinator=coordinator, timeout=0.5
        ) as op:
            assert len([i async for i in op]) == 3
        assert anyio.current_time() - start > 0.5  # longer than the per-response timeout
    assert op.status is not None and op.status.code == 0


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("originator", [True, False])
async def test_move_hostile_uid_stays_in_operation_directory(
    tmp_path: Path, originator: bool
) -> None:
    # ROBUSTNESS 32-33 for the move directories (matched and unmatched paths alike).
    hostile = ["../../../../escape", "..\\..\\evil", "/abs/path", "NUL"]
    data = [instance("P9", "1.2.9", "1.2.9.1", uid) for uid in hostile]
    async with mover(Behaviour(originator=originator), tmp_path, datasets=data) as (
        assoc,
        coordinator,
    ):
        async with assoc.move(
            {"StudyInstanceUID": "1.2.9"}, destination="MOVESCU", coordinator=coordinator
        ) as op:
            got = [i async for i in op]
            assert op.directory is not None
            for i in got:
                assert i.path.resolve().parent == op.directory.resolve()
                assert i.path.name.startswith("_")
    assert len(got) == len([h for h in hostile if "\\" not in h])
    assert names(tmp_path) == ["m"]
    assert names(tmp_path / "m") == ["unmatched"]


async def test_coordinator_sweep_removes_expired(tmp_path: Path) -> None:
    scu = aiodimse.AE("MOVESCU")
    coordinator = MoveCoordinator(scu, port=0, base_directory=tmp_path, expiry=0.001)
    await anyio.to_thread.run_sync(coordinator.install)
    stale = tmp_path / "move-1-deadbeef"
    stale.mkdir()
    (stale / "x.dcm").write_bytes(b"x")
    (tmp_path / "unmatched" / "y.dcm").write_bytes(b"y")
    await anyio.sleep(0.01)
    assert await coordinator.sweep() == 2
    assert not stale.exists() and not (tmp_path / "unmatched" / "y.dcm").exists()


async def test_unmatched_instances_land_in_each_moves_directory(tmp_path: Path) -> None:
    # No Move Originator and two moves in flight: matched from the dataset, then moved from
    # the shared "unmatched" directory into each move's own (kept) directory.
    behaviour = Behaviour(originator=False, gap=0.02)
    async with mover(behaviour, tmp_path) as (assoc, coordinator):
        port = int(assoc._channel.peer.rsplit(":", 1)[1])

        async def one(n: int) -> None:
            async with coordinator.ae.associate(
                "127.0.0.1", port, called_ae="RETR_SCP", contexts=move_contexts()
            ) as a:
                async with a.move(
                    study(n),
                    destination="MOVESCU",
                    coordinator=coordinator,
                    directory=tmp_path / f"out{n}",
                ) as op:
                    async for inst in op:
                        assert inst.path.parent == tmp_path / f"out{n}"

        async with anyio.create_task_group() as tg:
            tg.start_soon(one, 1)
            tg.start_soon(one, 2)
    for n in (1, 2):
        assert names(tmp_path / f"out{n}") == [f"1.2.826.0.1.9.{n}.1.{i}.dcm" for i in (1, 2, 3)]
    assert names(tmp_path / "m" / "unmatched") == []


async def test_coordinator_temporary_base_removed_at_exit() -> None:
    coordinator = MoveCoordinator(aiodimse.AE("MOVESCU"), port=0, host="127.0.0.1")
    async with coordinator.running():
        base = coordinator.base_directory
        assert await anyio.to_thread.run_sync(base.is_dir)
    assert not await anyio.to_thread.run_sync(base.exists)
