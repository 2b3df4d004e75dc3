"""``aiodimse qrscp`` in-process and its SQLite file index (aiodimse.services.file_index)."""

from __future__ import annotations

import argparse
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage
from pynetdicom import AE as PynAE
from pynetdicom import build_role, evt
from pynetdicom.sop_class import StudyRootQueryRetrieveInformationModelGet

import aiodimse
from aiodimse import QueryLevel, QueryModel
from aiodimse.apps.qrscp import build, parse_move_dest
from aiodimse.services.file_index import INDEX_NAME, FileIndex
from aiodimse.services.qr_models import find_contexts
from tests.support import datagen

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def q(level: str, **keys: Any) -> Dataset:
    ds = Dataset()
    ds.QueryRetrieveLevel = level
    for k, v in keys.items():
        setattr(ds, k, v)
    return ds


def sc(
    uid: str, *, study: str, series: str, pid: str, name: str = "Doe^Jane", **kw: Any
) -> Dataset:
    ds = Dataset()
    ds.file_meta = pydicom.dataset.FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = SecondaryCaptureImageStorage
    ds.SOPInstanceUID = uid
    ds.StudyInstanceUID = study
    ds.SeriesInstanceUID = series
    ds.PatientID = pid
    ds.PatientName = name
    ds.Modality = kw.pop("Modality", "OT")
    for k, v in kw.items():
        setattr(ds, k, v)
    return ds


def write(ds: Dataset, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path


@pytest.fixture
def index_dir(tmp_path: Path) -> Path:
    root = tmp_path / "db"
    rows = [
        ("1.1.1", "1.1", "1.1.9", "P1", "Müller^Jürgen", "20240105", "CT", "A1"),
        ("1.1.2", "1.1", "1.1.9", "P1", "Müller^Jürgen", "20240105", "CT", "A1"),
        ("1.1.3", "1.1", "1.1.8", "P1", "Müller^Jürgen", "20240105", "MR", "A1"),
        ("1.2.1", "1.2", "1.2.9", "P1", "Müller^Jürgen", "20230301", "CT", "A2"),
        ("2.1.1", "2.1", "2.1.9", "P2", "Doe^John", "20220101", "US", "B1"),
    ]
    for uid, study, series, pid, name, date, modality, acc in rows:
        write(
            sc(
                uid,
                study=study,
                series=series,
                pid=pid,
                name=name,
                StudyDate=date,
                Modality=modality,
                AccessionNumber=acc,
                SpecificCharacterSet="ISO_IR 100",
            ),
            root / f"{uid}.dcm",
        )
    return root


def uids(found: list[Dataset], key: str) -> list[str]:
    return sorted(str(d.get(key)) for d in found)


def test_index_matching_levels_and_counts(index_dir: Path) -> None:
    idx = FileIndex(index_dir)
    assert idx.open_sync() == (5, 0)
    S, P = QueryModel.STUDY_ROOT, QueryModel.PATIENT_ROOT
    find = idx.find_sync
    # One answer per entity.
    studies = find(
        q("STUDY", StudyInstanceUID="", NumberOfStudyRelatedInstances=None), S, QueryLevel.STUDY
    )
    assert uids(studies, "StudyInstanceUID") == ["1.1", "1.2", "2.1"]
    by = {str(d.StudyInstanceUID): d for d in studies}
    assert int(by["1.1"].NumberOfStudyRelatedInstances) == 3
    # Wildcards on PN (case-insensitive), ranges on dates, UID lists, modality at series.
    assert uids(
        find(q("STUDY", PatientName="müll*", StudyInstanceUID=""), S, QueryLevel.STUDY),
        "StudyInstanceUID",
    ) == ["1.1", "1.2"]
    assert uids(
        find(q("STUDY", StudyDate="20230101-20231231"), S, QueryLevel.STUDY), "StudyInstanceUID"
    ) == ["1.2"]
    assert uids(
        find(q("STUDY", StudyDate="20230302-"), S, QueryLevel.STUDY), "StudyInstanceUID"
    ) == ["1.1"]
    assert uids(
        find(q("STUDY", StudyDate="-20230301"), S, QueryLevel.STUDY), "StudyInstanceUID"
    ) == ["1.2", "2.1"]
    assert uids(
        find(q("STUDY", StudyInstanceUID="1.2\\2.1"), S, QueryLevel.STUDY), "StudyInstanceUID"
    ) == ["1.2", "2.1"]
    assert uids(
        find(q("STUDY", AccessionNumber="A?"), S, QueryLevel.STUDY), "StudyInstanceUID"
    ) == ["1.1", "1.2"]
    series = find(
        q("SERIES", StudyInstanceUID="1.1", Modality="CT", NumberOfSeriesRelatedInstances=None),
        S,
        QueryLevel.SERIES,
    )
    assert uids(series, "SeriesInstanceUID") == ["1.1.9"]
    assert int(series[0].NumberOfSeriesRelatedInstances) == 2
    images = find(
        q("IMAGE", StudyInstanceUID="1.1", SeriesInstanceUID="1.1.9", SOPInstanceUID=""),
        S,
        QueryLevel.IMAGE,
    )
    assert uids(images, "SOPInstanceUID") == ["1.1.1", "1.1.2"]
    patients = find(
        q("PATIENT", PatientID="", PatientName=None, NumberOfPatientRelatedStudies=None),
        P,
        QueryLevel.PATIENT,
    )
    assert uids(patients, "PatientID") == ["P1", "P2"]
    p1 = next(p for p in patients if p.PatientID == "P1")
    assert str(p1.PatientName) == "Müller^Jürgen" and int(p1.NumberOfPatientRelatedStudies) == 2
    # A requested key the index does not keep comes back empty; unique keys always.
    answer = find(q("STUDY", StudyInstanceUID="1.2", InstitutionName=None), S, QueryLevel.STUDY)[0]
    assert answer.InstitutionName in (None, "") and answer.StudyInstanceUID == "1.2"
    # Retrieve: instances below the matching entities, in order.
    got = idx.instances_sync(q("STUDY", StudyInstanceUID="1.1"), QueryLevel.STUDY)
    # Ordered by study, series, instance number.
    assert [i.sop_instance_uid for i in got] == ["1.1.3", "1.1.1", "1.1.2"]
    assert all(i.path.is_file() for i in got)
    idx.close()


def test_index_rebuilt_and_reconciled(index_dir: Path) -> None:
    idx = FileIndex(index_dir)
    idx.open_sync()
    idx.close()
    (index_dir / "1.1.1.dcm").unlink()
    write(sc("3.1.1", study="3.1", series="3.1.9", pid="P3"), index_dir / "sub" / "3.1.1.dcm")
    idx = FileIndex(index_dir)
    assert idx.open_sync() == (1, 1)  # new file added, vanished one forgotten
    assert idx.count_sync() == 5
    idx.close()
    (index_dir / INDEX_NAME).unlink()  # a missing database is rebuilt from the files
    idx = FileIndex(index_dir)
    assert idx.open_sync() == (5, 0)
    idx.close()


def test_tampered_index_row_never_leaves_the_root(index_dir: Path, tmp_path: Path) -> None:
    outside = write(sc("9.9.9", study="9.9", series="9.9.1", pid="X"), tmp_path / "secret.dcm")
    idx = FileIndex(index_dir)
    idx.open_sync()
    idx.close()
    with sqlite3.connect(index_dir / INDEX_NAME) as conn:
        conn.execute(
            "UPDATE instances SET path = ? WHERE sop_instance_uid = '2.1.1'", ("../secret.dcm",)
        )
    idx = FileIndex(index_dir)
    # Opened without reconciling with the files (which would re-read the real path).
    idx._conn = sqlite3.connect(index_dir / INDEX_NAME, check_same_thread=False)
    got = idx.instances_sync(q("STUDY", StudyInstanceUID="2.1"), QueryLevel.STUDY)
    assert got == [] and outside.is_file()
    idx.close()


def test_parse_move_dest() -> None:
    aet, d = parse_move_dest("STORE=127.0.0.1:104")
    assert (aet, d.host, d.port) == ("STORE", "127.0.0.1", 104)
    aet, d = parse_move_dest("V6=[::1]:11112")
    assert (d.host, d.port) == ("::1", 11112)
    for bad in ("STORE", "STORE=host", "=h:1", "S=h:0", "S=h:x", "WAYTOOLONGAETITLE17=h:1"):
        with pytest.raises(ValueError):
            parse_move_dest(bad)


def _args(db: Path, *extra: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers()
    from aiodimse.apps import qrscp

    qrscp.add_parser(sub)
    return parser.parse_args(["qrscp", "0", "--db-dir", str(db), "--no-fsync", *extra])


@asynccontextmanager
async def running(db: Path, *extra: str) -> AsyncIterator[tuple[int, FileIndex]]:
    ae, _storage, index = build(_args(db, *extra))
    await index.open()
    try:
        async with ae.serve("127.0.0.1", 0) as server:
            yield server.port, index
    finally:
        index.close()


# Even positions are also SOP Instance UIDs: those go in the command set, which must be
# ASCII and at most 64 characters (PS3.7 6.3.1), and "C:\\x" would be two UI values.
HOSTILE = ["../../x", "/etc/passwd", "..", "C:\\x", ".", "ü" * 3, "a:b", "1." * 40 + "1"]


@pytest.mark.filterwarnings("ignore::UserWarning")  # pydicom on hostile UIDs
async def test_qrscp_path_safety_store_find_get(tmp_path: Path) -> None:
    """ROBUSTNESS 32-33: hostile UIDs and Patient IDs in the tree layout stay under the root,
    are indexed, found and retrieved."""
    db = tmp_path / "a" / "db"  # created when missing
    sent = [
        sc(f"1.2.3.{n}" if n % 2 else bad, study=bad, series=bad, pid=bad)
        for n, bad in enumerate(HOSTILE)
    ]
    async with running(db, "--layout", "tree") as (port, _index):
        scu = aiodimse.AE("STORESCU")
        contexts = [
            aiodimse.services.contexts.Context(abstract_syntax=SecondaryCaptureImageStorage),
            *find_contexts(),
        ]
        async with scu.associate("127.0.0.1", port, called_ae="QRSCP", contexts=contexts) as assoc:
            for ds in sent:
                result = await assoc.store(ds)
                assert result.ok, result.describe()
                # Queryable as soon as the success came back.
                async with assoc.find(
                    {"SOPInstanceUID": ds.SOPInstanceUID, "StudyInstanceUID": ""},
                    model="study",
                    level="IMAGE",
                ) as found:
                    hits = [d async for d in found]
                assert [str(h.SOPInstanceUID) for h in hits] == [ds.SOPInstanceUID]
        files = await anyio.to_thread.run_sync(lambda: [p for p in db.rglob("*") if p.is_file()])
        root = db.resolve()
        for f in files:
            assert root in f.resolve().parents
        assert len([f for f in files if f.suffix == ".dcm"]) == len(sent)
        assert tmp_path.joinpath("a").exists() and not (tmp_path / "x").exists()
        # C-GET of one hostile study by pynetdicom.
        target = sent[0]
        got = await anyio.to_thread.run_sync(_pyn_get, port, str(target.StudyInstanceUID))
    assert got == [str(target.SOPInstanceUID)]


def _pyn_get(port: int, study: str) -> list[str]:
    received: list[str] = []

    def on_store(event: Any) -> int:
        received.append(str(event.dataset.SOPInstanceUID))
        return 0

    ae = PynAE(ae_title="GETSCU")
    ae.add_requested_context(StudyRootQueryRetrieveInformationModelGet)
    ae.add_requested_context(SecondaryCaptureImageStorage)
    assoc = ae.associate(
        "127.0.0.1",
        port,
        ae_title="QRSCP",
        ext_neg=[build_role(SecondaryCaptureImageStorage, scp_role=True)],
        evt_handlers=[(evt.EVT_C_STORE, on_store)],
    )
    assert assoc.is_established
    try:
        ident = Dataset()
        ident.QueryRetrieveLevel = "STUDY"
        ident.StudyInstanceUID = study
        final = list(assoc.send_c_get(ident, StudyRootQueryRetrieveInformationModelGet))[-1]
        assert final[0].Status == 0x0000
    finally:
        assoc.release()
    return received


async def test_qrscp_indexes_files_present_at_start_up(tmp_path: Path) -> None:
    files = datagen.write_corpus(
        tmp_path / "db", [datagen.Spec(kind=datagen.Kind.CT, seed=s) for s in (31, 32)]
    )
    async with running(tmp_path / "db") as (port, index):
        assert index.count_sync() == 2
        scu = aiodimse.AE("FINDSCU")
        async with scu.associate(
            "127.0.0.1", port, called_ae="QRSCP", contexts=find_contexts()
        ) as assoc:
            async with assoc.find({"StudyInstanceUID": ""}, model="study", level="STUDY") as found:
                studies = sorted([str(d.StudyInstanceUID) async for d in found])
    assert studies == sorted(f.study_instance_uid for f in files)


async def test_instances_stored_live_are_not_reread_at_restart(tmp_path: Path) -> None:
    db = tmp_path / "db"
    ds = sc("1.2.3.77", study="1.2.3", series="1.2.3.1", pid="LIVE")
    async with running(db) as (port, _index):
        scu = aiodimse.AE("STORESCU")
        contexts = [
            aiodimse.services.contexts.Context(abstract_syntax=SecondaryCaptureImageStorage)
        ]
        async with scu.associate("127.0.0.1", port, called_ae="QRSCP", contexts=contexts) as assoc:
            assert (await assoc.store(ds)).ok
    idx = FileIndex(db)
    assert idx.open_sync() == (0, 0)  # known: its mtime is settled, not re-read
    assert idx.open_sync() == (0, 0)
    assert idx.count_sync() == 1
    idx.close()


def test_cli_bad_move_dest_is_one_line_error(capsys: pytest.CaptureFixture[str]) -> None:
    from aiodimse.apps.__main__ import main

    assert main(["qrscp", "0", "--move-dest", "NOPORT=host", "-q"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("E: --move-dest 'NOPORT=host'")
