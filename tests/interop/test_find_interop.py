"""C-FIND interop: aiodimse SCU against Orthanc and dcmtk dcmqrscp, dcmtk findscu against us.

Orthanc answers C-FIND only from calling AEs in its DicomModalities unless
DicomAlwaysAllowFind is set (both cases tested). Our own Orthanc here uses
``DefaultEncoding: Utf8``, so its answers come back as ISO_IR 192; the session Orthanc
answers in ISO_IR 100 (its Latin-1 default); both are decoded by the data set's own
Specific Character Set.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pydicom
import pytest

import aiodimse
from aiodimse import QueryModel
from aiodimse.services.contexts import VERIFICATION
from aiodimse.services.qr_models import find_contexts
from tests.find.backend import ListBackend
from tests.support import datagen, orthanc_peer, peers
from tests.support.datasets import Charset, Kind, Spec

pytestmark = pytest.mark.anyio

UMLAUT = "Müller^Jürgen"
#: (patient name, patient ID, charset) of the patients loaded; two studies each.
PATIENTS = [
    (UMLAUT, "MUELLER-L1", Charset.LATIN1),
    (UMLAUT, "MUELLER-U8", Charset.UTF8),
    ("Strauß^Jörg", "STRAUSS", Charset.LATIN1),
    ("Иванов^Иван", "IVANOV", Charset.UTF8),
    *[(f"Doe^John{i}", f"DOE{i}", Charset.DEFAULT) for i in range(8)],
]
STUDIES_PER_PATIENT = 2
KINDS = (Kind.CT, Kind.MR)  # one series each per study
SYNTAXES = (pydicom.uid.ExplicitVRLittleEndian, pydicom.uid.ImplicitVRLittleEndian)


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


def loaded_specs() -> list[Spec]:
    specs = []
    for p, (name, pid, charset) in enumerate(PATIENTS):
        for s in range(STUDIES_PER_PATIENT):
            for kind in KINDS:
                for ts in SYNTAXES:  # two instances per series
                    specs.append(
                        Spec(
                            kind=kind,
                            transfer_syntax=ts,
                            charset=charset,
                            patient_name=name,
                            patient_id=pid,
                            seed=100 + p * STUDIES_PER_PATIENT + s,
                            rows=8,
                            columns=8,
                        )
                    )
    return specs


@pytest.fixture(scope="module")
def loaded_orthanc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[orthanc_peer.OrthancPeer]:
    """An Orthanc with DicomAlwaysAllowFind and UTF-8 answers, loaded via REST."""
    exe = peers.require_peer("Orthanc", "Orthanc")
    server = orthanc_peer.start_orthanc(
        tmp_path_factory.mktemp("orthanc-find"),
        binary=exe,
        extra_config={"DicomAlwaysAllowFind": True, "DefaultEncoding": "Utf8"},
    )
    try:
        for spec in loaded_specs():
            server.rest.upload(datagen.file_bytes(spec))
        yield server
    finally:
        server.stop()


def contexts() -> list[Any]:
    return [*find_contexts(), VERIFICATION]


async def run_find(
    assoc: aiodimse.Association, query: dict[str, Any], **kw: Any
) -> list[pydicom.Dataset]:
    async with assoc.find(query, **kw) as results:
        out = [ds async for ds in results]
    assert results.status is not None and results.status.is_success
    return out


async def test_orthanc_every_level_both_models(loaded_orthanc: orthanc_peer.OrthancPeer) -> None:
    specs = loaded_specs()
    studies = {s.study_instance_uid for s in specs}
    async with aiodimse.AE("FINDSCU").associate(
        "127.0.0.1", loaded_orthanc.port, called_ae="ORTHANC", contexts=contexts()
    ) as assoc:
        found = await run_find(assoc, {"StudyInstanceUID": "", "PatientID": ""})
        assert {d.StudyInstanceUID for d in found} == studies
        study = sorted(studies)[0]
        series = await run_find(
            assoc, {"StudyInstanceUID": study, "SeriesInstanceUID": "", "Modality": ""},
            level="SERIES",
        )  # fmt: skip
        want = {s.series_instance_uid for s in specs if s.study_instance_uid == study}
        assert {d.SeriesInstanceUID for d in series} == want
        assert {d.Modality for d in series} == {"CT", "MR"}
        one = sorted(want)[0]
        images = await run_find(
            assoc,
            {"StudyInstanceUID": study, "SeriesInstanceUID": one, "SOPInstanceUID": ""},
            level="INSTANCE",
        )
        assert {d.SOPInstanceUID for d in images} == {
            s.sop_instance_uid for s in specs if s.series_instance_uid == one
        }
        assert all(d.QueryRetrieveLevel == "IMAGE" for d in images)
        patients = await run_find(
            assoc, {"PatientID": "", "PatientName": ""}, model="patient", level="PATIENT"
        )
        assert {(str(d.PatientName), d.PatientID) for d in patients} == {
            (n, i) for n, i, _ in PATIENTS
        }
        p_studies = await run_find(
            assoc, {"PatientID": "STRAUSS", "StudyInstanceUID": ""}, model="patient", level="STUDY"
        )
        assert len(p_studies) == STUDIES_PER_PATIENT


@pytest.mark.parametrize("charset", [None, "ISO_IR 192"])
async def test_orthanc_umlaut_query_finds_both_charsets(
    loaded_orthanc: orthanc_peer.OrthancPeer, charset: str | None
) -> None:
    async with aiodimse.AE("FINDSCU").associate(
        "127.0.0.1", loaded_orthanc.port, called_ae="ORTHANC", contexts=contexts()
    ) as assoc:
        found = await run_find(
            assoc,
            {"PatientName": "Müller*", "PatientID": "", "StudyDescription": ""},
            charset=charset,
        )
        other = await run_find(assoc, {"PatientName": "Иванов*", "PatientID": ""})
    # ISO_IR 100 data and ISO_IR 192 data both match, two studies each.
    assert sorted(d.PatientID for d in found) == ["MUELLER-L1"] * 2 + ["MUELLER-U8"] * 2
    assert {str(d.PatientName) for d in found} == {UMLAUT}
    assert {d.StudyDescription for d in found} == {"Prüfung Übersicht"}
    assert {d.SpecificCharacterSet for d in found} == {"ISO_IR 192"}
    assert {str(d.PatientName) for d in other} == {"Иванов^Иван"}


async def test_orthanc_early_break_sends_cancel(
    loaded_orthanc: orthanc_peer.OrthancPeer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="aiodimse.find")
    async with aiodimse.AE("FINDSCU").associate(
        "127.0.0.1", loaded_orthanc.port, called_ae="ORTHANC", contexts=contexts()
    ) as assoc:
        async with assoc.find({"SOPInstanceUID": ""}, level="IMAGE") as results:
            async for _ in results:
                if results.count == 3:
                    break
        assert results.cancel_sent
        assert f"C-CANCEL sent for message {results.message_id}" in caplog.text
        # Orthanc computes all answers first and may have sent them all before the
        # C-CANCEL arrived: its final status is Cancel or Success.
        assert results.status is not None and results.status.code in (0xFE00, 0x0000)
        assert assoc.is_established
        again = await run_find(assoc, {"PatientID": "STRAUSS"}, model="patient", level="PATIENT")
        assert [d.PatientID for d in again] == ["STRAUSS"]


async def test_orthanc_refuses_unknown_calling_ae_without_always_allow(
    orthanc: orthanc_peer.OrthancPeer,
) -> None:
    """The session Orthanc has no DicomAlwaysAllowFind; it answers ISO_IR 100 (Latin-1)."""
    orthanc.rest.upload(datagen.file_bytes(Spec(seed=7, rows=8, columns=8)))
    query = {"PatientName": "Müller*", "PatientID": ""}
    # Orthanc 1.12 answers a C-FIND from an AE not in DicomModalities with A-ABORT.
    with pytest.raises(aiodimse.AssociationAborted) as info:
        async with aiodimse.AE("STRANGER").associate(
            "127.0.0.1", orthanc.port, called_ae="ORTHANC", contexts=contexts()
        ) as assoc:
            await run_find(assoc, query)
    refused = info.value
    orthanc.rest.set_modality("findtest", "KNOWNSCU", 104)
    async with aiodimse.AE("KNOWNSCU").associate(
        "127.0.0.1", orthanc.port, called_ae="ORTHANC", contexts=contexts()
    ) as assoc:
        found = await run_find(assoc, query)
    assert [str(d.PatientName) for d in found] == [UMLAUT]
    assert found[0].SpecificCharacterSet == "ISO_IR 100"
    logging.getLogger("tests").info("Orthanc refused the unknown AE with: %s", refused)


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "aiodimse", "findscu", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_cli_findscu_against_orthanc(
    loaded_orthanc: orthanc_peer.OrthancPeer, tmp_path: Path
) -> None:
    port = str(loaded_orthanc.port)
    res = _cli(
        "127.0.0.1", port, "-aec", "ORTHANC", "-k", "PatientName=Müller*", "-k", "PatientID",
        "--json", "-w", "-od", str(tmp_path),
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    lines = [json.loads(line) for line in res.stdout.splitlines()]
    assert len(lines) == 4
    assert {line["00100010"]["Value"][0]["Alphabetic"] for line in lines} == {UMLAUT}
    written = sorted(tmp_path.glob("rsp*.dcm"))
    assert [p.name for p in written][:2] == ["rsp000001.dcm", "rsp000002.dcm"]
    assert str(pydicom.dcmread(written[0]).PatientName) == UMLAUT
    res = _cli("127.0.0.1", port, "-P", "-k", "QueryRetrieveLevel=PATIENT", "-k", "PatientID=DOE1")
    assert res.returncode == 0, res.stderr
    assert "PatientID=DOE1" in res.stdout and res.stdout.startswith("#1 ")
    res = _cli("127.0.0.1", port, "-k", "QueryRetrieveLevel=PATIENT")  # no PATIENT in study root
    assert res.returncode == 1 and res.stderr.startswith("E: ")


async def test_dcmtk_findscu_against_our_scp(tmp_path: Path) -> None:
    exe = peers.require_peer("dcmtk findscu", "findscu")
    latin1 = pydicom.Dataset()
    latin1.SpecificCharacterSet = "ISO_IR 100"
    latin1.PatientName = UMLAUT
    latin1.PatientID = "P1"
    latin1.StudyInstanceUID = "1.2.3.4"
    doe = pydicom.Dataset()
    doe.PatientName = "Doe^John"
    doe.PatientID = "P2"
    doe.StudyInstanceUID = "1.2.3.5"
    backend = ListBackend([latin1, doe])
    ae = aiodimse.AE("OUR_SCP")
    aiodimse.enable_find(ae, backend, models=[QueryModel.STUDY_ROOT, QueryModel.PATIENT_ROOT])
    out = tmp_path / "rsp"
    out.mkdir()
    async with ae.serve("127.0.0.1", 0) as server:
        res = await anyio.run_process(
            [exe, "-S", "-aec", "OUR_SCP", "-X", "-od", str(out),
             "-k", "QueryRetrieveLevel=STUDY", "-k", "PatientName=M*", "-k", "PatientID",
             "-k", "StudyInstanceUID", "127.0.0.1", str(server.port)],
            check=False,
        )  # fmt: skip
    assert res.returncode == 0, res.stderr.decode(errors="replace")
    files = sorted(out.glob("rsp*.dcm"))
    assert len(files) == 1
    got = pydicom.dcmread(files[0])
    assert str(got.PatientName) == UMLAUT and got.PatientID == "P1"
    assert backend.queries[0][1] is QueryModel.STUDY_ROOT


async def test_dcmqrscp_as_second_scp(
    tmp_path: Path, dcmqrscp_factory: Any, make_dicom: Any
) -> None:
    files = [
        make_dicom(patient_name=UMLAUT, patient_id="DQ1", seed=201, rows=8, columns=8).path,
        make_dicom(
            patient_name="Doe^Jane", charset=Charset.DEFAULT, patient_id="DQ2", seed=202,
            rows=8, columns=8,
        ).path,
    ]  # fmt: skip
    peer = dcmqrscp_factory(files)
    async with aiodimse.AE("FINDSCU").associate(
        "127.0.0.1", peer.port, called_ae="QRSCP", contexts=contexts()
    ) as assoc:
        found = await run_find(assoc, {"PatientName": "", "PatientID": "", "StudyInstanceUID": ""})
        assert sorted(d.PatientID for d in found) == ["DQ1", "DQ2"]
        found = await run_find(assoc, {"PatientID": "DQ2", "StudyInstanceUID": ""})
        assert [d.PatientID for d in found] == ["DQ2"]


async def test_pynetdicom_scu_cancels_our_scp() -> None:
    """pynetdicom as an independent SCU: its C-CANCEL (Message ID Being Responded To = its
    Message ID) stops our backend promptly; final status 0xFE00 and nothing after it."""
    from pynetdicom import AE as PynetdicomAE
    from pynetdicom.sop_class import StudyRootQueryRetrieveInformationModelFind as StudyFind

    from tests.find.test_find_loopback import Endless

    # pynetdicom reads responses into an unbounded queue (no backpressure), so a backend
    # that never waits would run far ahead; this one produces 10, then waits for its source.
    backend = Endless(stall_after=10)
    ae = aiodimse.AE("OUR_SCP")
    scp = aiodimse.enable_find(ae, backend, models=[QueryModel.STUDY_ROOT])

    def client(port: int) -> list[int]:
        pae = PynetdicomAE(ae_title="PYNETDICOM")
        pae.add_requested_context(StudyFind)
        assoc = pae.associate("127.0.0.1", port, ae_title="OUR_SCP")
        assert assoc.is_established
        query = pydicom.Dataset()
        query.QueryRetrieveLevel = "STUDY"
        query.PatientID = ""
        statuses = []
        try:
            for status, _ in assoc.send_c_find(query, StudyFind, msg_id=4321):
                statuses.append(int(status.Status))
                if len(statuses) == 3:
                    cid = assoc.accepted_contexts[0].context_id
                    assoc.send_c_cancel(4321, cid)
        finally:
            assoc.release()
            pae.shutdown()
        return statuses

    async with ae.serve("127.0.0.1", 0) as server:
        statuses = await anyio.to_thread.run_sync(client, server.port)
        with anyio.fail_after(5):
            await backend.closed.wait()
    assert statuses == [0xFF00] * 10 + [0xFE00]  # the 10 already sent, then Cancel
    assert backend.produced == 10
    assert backend.cancelled_in_pull  # the waiting backend was cancelled, not left running
    assert scp.cancelled == 1
