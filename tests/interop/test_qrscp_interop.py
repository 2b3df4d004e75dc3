"""dcmtk storescu/findscu/getscu/movescu against ``aiodimse qrscp`` (a subprocess).

Files go in with dcmtk ``storescu``; C-FIND answers are parsed from ``findscu -X`` output
files; ``getscu -od`` and ``movescu`` (into a dcmtk ``storescp`` given with
``--move-dest``) must bring back exactly the instances of the study/series asked for.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pydicom
import pytest

from tests.support import datagen
from tests.support.peers import Peer, launch_peer, require_peer, start_dcmtk_storescp

pytestmark = pytest.mark.interop


def _run(argv: list[str], timeout: float = 30.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> list[datagen.Generated]:
    """Two studies of one patient (seeds 11, 12; CT and MR series), one SC of another (13)."""
    specs = [
        datagen.Spec(kind=k, seed=s) for s in (11, 12) for k in (datagen.Kind.CT, datagen.Kind.MR)
    ]
    specs.append(datagen.Spec(kind=datagen.Kind.SC, seed=13, patient_id="OTHER-7"))
    return datagen.write_corpus(tmp_path_factory.mktemp("qr-src"), specs)


@pytest.fixture(scope="module")
def dest(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Peer]:
    require_peer("dcmtk", "storescp")
    with start_dcmtk_storescp(tmp_path_factory.mktemp("dest"), ae_title="DEST") as peer:
        yield peer


@pytest.fixture(scope="module")
def qrscp(
    tmp_path_factory: pytest.TempPathFactory, dest: Peer, corpus: list[datagen.Generated]
) -> Iterator[Peer]:
    work = tmp_path_factory.mktemp("qrscp")
    db = work / "db" / "new"  # created by qrscp

    def argv(port: int) -> list[str]:
        return [
            sys.executable,
            "-m",
            "aiodimse",
            "qrscp",
            str(port),
            "-aet",
            "QRSCP",
            "--db-dir",
            str(db),
            "--move-dest",
            f"DEST=127.0.0.1:{dest.port}",
            "--no-fsync",
            "-v",
        ]

    peer = launch_peer(
        name="qrscp", ae_title="QRSCP", workdir=work, version="aiodimse", make_argv=argv
    )
    peer.output_dir = db
    with peer:
        r = _run(
            ["storescu", "-aec", "QRSCP", "127.0.0.1", str(peer.port)]
            + [str(f.path) for f in corpus]
        )
        assert r.returncode == 0, r.stderr
        yield peer


def _find(port: int, workdir: Path, *keys: str, model: str = "-S") -> list[pydicom.Dataset]:
    out = workdir / "find-out"
    out.mkdir(exist_ok=True)
    for old in out.iterdir():
        old.unlink()
    argv = ["findscu", model, "-aec", "QRSCP", "-X", "-od", str(out), "127.0.0.1", str(port)]
    for k in keys:
        argv += ["-k", k]
    r = _run(argv)
    assert r.returncode == 0, r.stderr + r.stdout
    return [pydicom.dcmread(p) for p in sorted(out.iterdir())]


def test_findscu_study_and_series_levels(
    qrscp: Peer, corpus: list[datagen.Generated], tmp_path: Path
) -> None:
    studies = _find(
        qrscp.port,
        tmp_path,
        "QueryRetrieveLevel=STUDY",
        "PatientID=AIODIMSE-0001",
        "StudyInstanceUID",
        "NumberOfStudyRelatedInstances",
        "ModalitiesInStudy",
    )
    want = {f.study_instance_uid for f in corpus if f.patient_id == "AIODIMSE-0001"}
    # One answer per study, not per instance.
    assert sorted(str(s.StudyInstanceUID) for s in studies) == sorted(want)
    for s in studies:
        n = sum(f.study_instance_uid == s.StudyInstanceUID for f in corpus)
        assert int(s.NumberOfStudyRelatedInstances) == n
        assert set(s.ModalitiesInStudy) >= {"CT", "MR"}
    study = corpus[0].study_instance_uid
    series = _find(
        qrscp.port,
        tmp_path,
        "QueryRetrieveLevel=SERIES",
        "PatientID=AIODIMSE-0001",
        f"StudyInstanceUID={study}",
        "SeriesInstanceUID",
        "Modality=MR",
        model="-P",
    )
    assert [str(s.SeriesInstanceUID) for s in series] == [
        f.series_instance_uid
        for f in corpus
        if f.study_instance_uid == study and f.spec.kind is datagen.Kind.MR
    ]
    wild = _find(qrscp.port, tmp_path, "QueryRetrieveLevel=PATIENT", "PatientID=OTH*", model="-P")
    assert [str(p.PatientID) for p in wild] == ["OTHER-7"]


def test_getscu_study_into_od(qrscp: Peer, corpus: list[datagen.Generated], tmp_path: Path) -> None:
    study = corpus[2].study_instance_uid  # seed 12: CT + MR
    out = tmp_path / "got"
    out.mkdir()
    r = _run(
        [
            "getscu",
            "-S",
            "-aec",
            "QRSCP",
            "-od",
            str(out),
            "127.0.0.1",
            str(qrscp.port),
            "-k",
            "QueryRetrieveLevel=STUDY",
            "-k",
            f"StudyInstanceUID={study}",
        ]
    )
    assert r.returncode == 0, r.stderr + r.stdout
    got = {str(pydicom.dcmread(p).SOPInstanceUID): p for p in out.iterdir()}
    want = {f.sop_instance_uid: f for f in corpus if f.study_instance_uid == study}
    assert set(got) == set(want)
    for uid, path in got.items():
        assert pydicom.dcmread(path).PixelData == pydicom.dcmread(want[uid].path).PixelData


def test_movescu_series_to_dcmtk_storescp(
    qrscp: Peer, dest: Peer, corpus: list[datagen.Generated]
) -> None:
    target = corpus[0]  # seed 11 CT series
    before = set(dest.received_files())
    r = _run(
        [
            "movescu",
            "-S",
            "-v",
            "-aec",
            "QRSCP",
            "-aem",
            "DEST",
            "127.0.0.1",
            str(qrscp.port),
            "-k",
            "QueryRetrieveLevel=SERIES",
            "-k",
            f"StudyInstanceUID={target.study_instance_uid}",
            "-k",
            f"SeriesInstanceUID={target.series_instance_uid}",
        ]
    )
    assert r.returncode == 0, r.stderr + r.stdout
    assert "Final Move Response (Success)" in r.stderr + r.stdout
    new = [p for p in dest.wait_for_files(len(before) + 1) if p not in before]
    assert [str(pydicom.dcmread(p).SOPInstanceUID) for p in new] == [target.sop_instance_uid]


def test_movescu_unknown_destination(qrscp: Peer, corpus: list[datagen.Generated]) -> None:
    r = _run(
        [
            "movescu",
            "-S",
            "-aec",
            "QRSCP",
            "-aem",
            "NOBODY",
            "127.0.0.1",
            str(qrscp.port),
            "-k",
            "QueryRetrieveLevel=STUDY",
            "-k",
            f"StudyInstanceUID={corpus[0].study_instance_uid}",
        ]
    )
    assert "MoveDestinationUnknown" in r.stderr + r.stdout


def test_stored_files_and_index_under_db_dir(qrscp: Peer, corpus: list[datagen.Generated]) -> None:
    assert qrscp.output_dir is not None
    names = sorted(p.name for p in qrscp.output_dir.iterdir())
    assert names == sorted(
        [f"{f.sop_instance_uid}.dcm" for f in corpus] + ["aiodimse-index.sqlite3"]
    )
