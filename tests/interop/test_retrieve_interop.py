"""C-MOVE and C-GET as SCU against Orthanc (a real Q/R SCP), with our move coordinator.

Orthanc knows our AE as the modality ``mine`` (AE title, 127.0.0.1, our Storage SCP port), so
a C-MOVE with destination ``MOVESCU`` comes back to our coordinator.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import anyio
import pydicom
import pytest

import aiodimse
from aiodimse import MoveCoordinator
from aiodimse.dimse.messages import CStoreRQ
from aiodimse.net.channel import Channel, Received
from aiodimse.services.retrieve_scu import get_contexts, move_contexts
from tests.support import datagen, orthanc_peer, peers
from tests.support.datasets import Kind, Spec

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def specs(seed: int) -> list[Spec]:
    """One study per seed: two series (CT, MR) of two small instances each."""
    return [
        Spec(seed=seed, kind=kind, rows=rows, columns=8, patient_id=f"RETR-{seed}")
        for kind in (Kind.CT, Kind.MR)
        for rows in (8, 10)
    ]


STORE_PORT = peers.free_port()


@pytest.fixture(scope="module")
def orthanc_retrieve(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[orthanc_peer.OrthancPeer]:
    exe = peers.require_peer("Orthanc", "Orthanc")
    server = orthanc_peer.start_orthanc(
        tmp_path_factory.mktemp("orthanc-retrieve"),
        binary=exe,
        modalities={
            "mine": ("MOVESCU", "127.0.0.1", STORE_PORT),
            "getter": ("GETSCU", "127.0.0.1", 1),
        },
    )
    try:
        for seed in (1, 2, 3):
            for spec in specs(seed):
                server.rest.upload(datagen.file_bytes(spec))
        yield server
    finally:
        server.stop()


def uids(seed: int) -> set[str]:
    return {str(s.sop_instance_uid) for s in specs(seed)}


async def test_movescu_study_into_our_coordinator(
    orthanc_retrieve: orthanc_peer.OrthancPeer, tmp_path: Path
) -> None:
    ae = aiodimse.AE("MOVESCU")
    coordinator = MoveCoordinator(ae, port=STORE_PORT, base_directory=tmp_path / "moves")
    study = str(specs(1)[0].study_instance_uid)
    async with coordinator.running():
        async with ae.associate(
            "127.0.0.1", orthanc_retrieve.port, called_ae="ORTHANC", contexts=move_contexts()
        ) as assoc:
            with anyio.fail_after(30):
                async with assoc.move(
                    {"StudyInstanceUID": study}, destination="MOVESCU", coordinator=coordinator
                ) as op:
                    got = [i async for i in op]
                    for inst in got:
                        ds = pydicom.dcmread(inst.path)
                        assert ds.StudyInstanceUID == study
    assert {i.sop_instance_uid for i in got} == uids(1)
    assert op.status is not None and op.status.code == 0
    assert op.counts.completed == 4 and op.counts.failed == 0


async def test_getscu_series(orthanc_retrieve: orthanc_peer.OrthancPeer, tmp_path: Path) -> None:
    ae = aiodimse.AE("GETSCU")
    series = specs(2)[2].series_instance_uid  # the MR series of study 2
    wanted = {str(s.sop_instance_uid) for s in specs(2) if s.series_instance_uid == series}
    async with ae.associate(
        "127.0.0.1", orthanc_retrieve.port, called_ae="ORTHANC", contexts=get_contexts()
    ) as assoc:
        with anyio.fail_after(30):
            async with assoc.get(
                {
                    "StudyInstanceUID": str(specs(2)[0].study_instance_uid),
                    "SeriesInstanceUID": str(series),
                },
                level="SERIES",
                directory=tmp_path / "out",
            ) as op:
                got = [i async for i in op]
    assert {i.sop_instance_uid for i in got} == wanted and len(wanted) == 2
    assert op.status is not None and op.status.code == 0 and op.counts.completed == 2
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(
        f"{u}.dcm" for u in wanted
    )


async def test_two_concurrent_moves_correlated(
    orthanc_retrieve: orthanc_peer.OrthancPeer, tmp_path: Path
) -> None:
    ae = aiodimse.AE("MOVESCU")
    coordinator = MoveCoordinator(ae, port=STORE_PORT, base_directory=tmp_path / "moves")
    results: dict[int, set[str]] = {}
    originators: list[tuple[str | None, int | None]] = []
    inner = None

    async def spy(ae_: aiodimse.AE, channel: Channel, received: Received) -> None:
        msg = received.message
        assert isinstance(msg, CStoreRQ)
        originators.append(
            (msg.move_originator_application_entity_title, msg.move_originator_message_id)
        )
        assert inner is not None
        await inner(ae_, channel, received)

    async def one(seed: int) -> None:
        async with ae.associate(
            "127.0.0.1", orthanc_retrieve.port, called_ae="ORTHANC", contexts=move_contexts()
        ) as assoc:
            study = str(specs(seed)[0].study_instance_uid)
            async with assoc.move(
                {"StudyInstanceUID": study}, destination="MOVESCU", coordinator=coordinator
            ) as op:
                results[seed] = {i.sop_instance_uid async for i in op}

    async with coordinator.running():
        inner = ae.request_handlers[CStoreRQ]
        ae.request_handlers[CStoreRQ] = spy
        with anyio.fail_after(60):
            async with anyio.create_task_group() as tg:
                tg.start_soon(one, 1)
                tg.start_soon(one, 3)
    assert results == {1: uids(1), 3: uids(3)}
    # How Orthanc lets us correlate (reported in the closing note).
    print("Orthanc move originators:", sorted(set(originators), key=str), file=sys.stderr)


async def test_move_outlasts_per_response_timeout(
    orthanc_retrieve: orthanc_peer.OrthancPeer, tmp_path: Path
) -> None:
    # Our Storage SCP answers each C-STORE after 0.3 s, so Orthanc's pending responses come
    # ~0.3 s apart; the whole move (4 instances) takes > 1 s with a 0.8 s per-response limit.
    ae = aiodimse.AE("MOVESCU")
    coordinator = MoveCoordinator(ae, port=STORE_PORT, base_directory=tmp_path / "moves")
    async with coordinator.running():
        inner = ae.request_handlers[CStoreRQ]

        async def slow(ae_: aiodimse.AE, channel: Channel, received: Received) -> None:
            await anyio.sleep(0.3)
            await inner(ae_, channel, received)

        ae.request_handlers[CStoreRQ] = slow
        async with ae.associate(
            "127.0.0.1", orthanc_retrieve.port, called_ae="ORTHANC", contexts=move_contexts()
        ) as assoc:
            start = anyio.current_time()
            async with assoc.move(
                {"StudyInstanceUID": str(specs(2)[0].study_instance_uid)},
                destination="MOVESCU",
                coordinator=coordinator,
                timeout=0.8,
            ) as op:
                got = {i.sop_instance_uid async for i in op}
            elapsed = anyio.current_time() - start
    assert got == uids(2)
    assert elapsed > 0.8, elapsed
    assert op.status is not None and op.status.code == 0


async def test_move_unknown_destination_orthanc(
    orthanc_retrieve: orthanc_peer.OrthancPeer,
) -> None:
    ae = aiodimse.AE("MOVESCU")
    async with ae.associate(
        "127.0.0.1", orthanc_retrieve.port, called_ae="ORTHANC", contexts=move_contexts()
    ) as assoc:
        async with assoc.move(
            {"StudyInstanceUID": str(specs(1)[0].study_instance_uid)}, destination="NOBODY"
        ) as op:
            with pytest.raises(aiodimse.RetrieveFailed) as info:
                async for _ in op:
                    pass
    print("Orthanc unknown destination:", info.value, file=sys.stderr)
    assert info.value.status.category.name == "FAILURE"


def test_cli_movescu_store_and_getscu(
    orthanc_retrieve: orthanc_peer.OrthancPeer, tmp_path: Path
) -> None:
    study = str(specs(3)[0].study_instance_uid)
    out = tmp_path / "new" / "dir"
    base = [sys.executable, "-m", "aiodimse"]
    moved = subprocess.run(
        [*base, "movescu", "127.0.0.1", str(orthanc_retrieve.port), "-aec", "ORTHANC",
         "-k", "QueryRetrieveLevel=STUDY", "-k", f"StudyInstanceUID={study}",
         "-aem", "MOVESCU", "--store", "--store-port", str(STORE_PORT), "-od", str(out)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert moved.returncode == 0, moved.stderr
    assert sorted(p.name for p in out.iterdir()) == sorted(f"{u}.dcm" for u in uids(3))
    got_dir = tmp_path / "get"
    got = subprocess.run(
        [*base, "getscu", "127.0.0.1", str(orthanc_retrieve.port), "-aet", "GETSCU",
         "-aec", "ORTHANC", "-k", "QueryRetrieveLevel=STUDY", "-k", f"StudyInstanceUID={study}",
         "-od", str(got_dir)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert got.returncode == 0, got.stderr
    assert len(list(got_dir.iterdir())) == 4
    bad = subprocess.run(
        [*base, "movescu", "127.0.0.1", str(orthanc_retrieve.port), "-aec", "ORTHANC",
         "-k", f"StudyInstanceUID={study}", "-aem", "NOBODY"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert bad.returncode == 1
    assert bad.stderr.count("\n") == 1 and "C-MOVE" in bad.stderr


async def test_dcmqrscp_move_and_get(
    dcmqrscp_factory: Callable[..., peers.Peer], tmp_path: Path
) -> None:
    # dcmtk's Q/R SCP: a move into our coordinator (correlation method noted) and a C-GET.
    files = [
        datagen.write_file(spec, tmp_path / "src", f"{n}.dcm").path
        for n, spec in enumerate(specs(4))
    ]
    store_port = peers.free_port()
    qr = dcmqrscp_factory(files, move_destinations={"mine": ("MOVESCU", "127.0.0.1", store_port)})
    ae = aiodimse.AE("MOVESCU")
    coordinator = MoveCoordinator(ae, port=store_port, base_directory=tmp_path / "moves")
    originators: list[tuple[str | None, int | None]] = []
    study = str(specs(4)[0].study_instance_uid)
    async with coordinator.running():
        inner = ae.request_handlers[CStoreRQ]

        async def spy(ae_: aiodimse.AE, channel: Channel, received: Received) -> None:
            msg = received.message
            assert isinstance(msg, CStoreRQ)
            originators.append(
                (msg.move_originator_application_entity_title, msg.move_originator_message_id)
            )
            await inner(ae_, channel, received)

        ae.request_handlers[CStoreRQ] = spy
        async with ae.associate(
            "127.0.0.1", qr.port, called_ae="QRSCP", contexts=move_contexts()
        ) as assoc:
            with anyio.fail_after(30):
                async with assoc.move(
                    {"StudyInstanceUID": study}, destination="MOVESCU", coordinator=coordinator
                ) as op:
                    moved = {i.sop_instance_uid async for i in op}
    assert moved == uids(4) and op.status is not None and op.status.code == 0
    print("dcmqrscp move originators:", sorted(set(originators), key=str), file=sys.stderr)
    getter = aiodimse.AE("GETSCU")
    async with getter.associate(
        "127.0.0.1", qr.port, called_ae="QRSCP", contexts=get_contexts()
    ) as assoc:
        with anyio.fail_after(30):
            async with assoc.get({"StudyInstanceUID": study}) as gop:
                got = {i.sop_instance_uid async for i in gop}
    assert got == uids(4) and gop.status is not None and gop.status.code == 0
