"""The peer fixtures work against the real peers (files arrive, REST shows them)."""

from __future__ import annotations

import io
import subprocess
from collections.abc import Callable
from pathlib import Path

import pydicom
import pytest

from tests.support import datagen, peers
from tests.support.orthanc_peer import OrthancPeer


@pytest.fixture
def ct_file(make_dicom: Callable[..., datagen.Generated]) -> datagen.Generated:
    return make_dicom(kind=datagen.Kind.CT, seed=7)


def _echoscu() -> str:
    return peers.require_peer("dcmtk echoscu", "echoscu")


def _storescu() -> str:
    return peers.require_peer("dcmtk storescu", "storescu")


def test_dcmtk_echoscu_against_storescp(dcmtk_storescp: peers.Peer) -> None:
    result = peers.run_dcmtk_echoscu(
        dcmtk_storescp.port, called_ae=dcmtk_storescp.ae_title, binary=_echoscu()
    )
    assert result.returncode == 0, result.stderr
    assert "v3.6" in dcmtk_storescp.version or "storescp" in dcmtk_storescp.version


def test_dcmtk_storescu_to_storescp_file_arrives(
    dcmtk_storescp: peers.Peer, ct_file: datagen.Generated
) -> None:
    result = peers.run_dcmtk_storescu(
        dcmtk_storescp.port, [ct_file.path], called_ae="STORESCP", binary=_storescu()
    )
    assert result.returncode == 0, result.stderr
    files = dcmtk_storescp.wait_for_files(1)
    assert len(files) == 1, dcmtk_storescp.log_text()
    ds = pydicom.dcmread(files[0])
    assert ds.SOPInstanceUID == ct_file.sop_instance_uid
    assert str(ds.PatientName) == datagen.PATIENT_NAME_UMLAUT
    assert ds.PixelData == pydicom.dcmread(ct_file.path).PixelData


def test_storescp_accepts_jpeg_with_plus_xa(
    dcmtk_storescp: peers.Peer, make_dicom: Callable[..., datagen.Generated]
) -> None:
    jpeg = make_dicom(kind=datagen.Kind.SC, transfer_syntax=pydicom.uid.JPEGBaseline8Bit)
    result = peers.run_dcmtk_storescu(
        dcmtk_storescp.port, [jpeg.path], binary=_storescu(), extra_args=["-xy"]
    )
    assert result.returncode == 0, result.stderr
    files = dcmtk_storescp.wait_for_files(1)
    assert len(files) == 1
    ds = pydicom.dcmread(files[0])
    assert ds.file_meta.TransferSyntaxUID == pydicom.uid.JPEGBaseline8Bit


def test_pynetdicom_storescp_receives_from_dcmtk_storescu(
    pynetdicom_storescp: peers.Peer, ct_file: datagen.Generated
) -> None:
    assert pynetdicom_storescp.version.startswith("pynetdicom ")
    result = peers.run_dcmtk_storescu(
        pynetdicom_storescp.port,
        [ct_file.path],
        called_ae=pynetdicom_storescp.ae_title,
        binary=_storescu(),
    )
    assert result.returncode == 0, result.stderr
    files = pynetdicom_storescp.wait_for_files(1)
    assert len(files) == 1, pynetdicom_storescp.log_text()
    ds = pydicom.dcmread(files[0])
    assert ds.SOPInstanceUID == ct_file.sop_instance_uid
    assert str(ds.PatientName) == datagen.PATIENT_NAME_UMLAUT


def test_pynetdicom_echoscu_against_orthanc(orthanc: OrthancPeer) -> None:
    peers.require_peer("pynetdicom", "python:pynetdicom")
    result = peers.run_pynetdicom_echoscu(orthanc.port, called_ae=orthanc.ae_title)
    assert result.returncode == 0, result.stderr
    # pynetdicom's echoscu exits 0 on a rejected association too: check its log.
    log = result.stdout + result.stderr
    assert "Association Accepted" in log, log
    assert "Received Echo Response (Status: 0x0000 - Success)" in log, log


def test_orthanc_receives_via_dcmtk_storescu_and_rest_lists_it(
    orthanc: OrthancPeer, make_dicom: Callable[..., datagen.Generated]
) -> None:
    assert orthanc.rest.instances() == []  # the fixture emptied it
    latin1 = make_dicom(kind=datagen.Kind.CT, charset=datagen.Charset.LATIN1, seed=11)
    utf8 = make_dicom(kind=datagen.Kind.MR, charset=datagen.Charset.UTF8, seed=11)
    result = peers.run_dcmtk_storescu(
        orthanc.port, [latin1.path, utf8.path], called_ae=orthanc.ae_title, binary=_storescu()
    )
    assert result.returncode == 0, result.stderr
    ids = orthanc.rest.instances()
    assert len(ids) == 2
    for gen in (latin1, utf8):
        oid = orthanc.rest.find_instance(gen.sop_instance_uid)
        assert oid in ids
        tags = orthanc.rest.instance_tags(oid)
        assert tags["PatientName"] == "Müller^Jürgen"
        assert tags["SOPInstanceUID"] == gen.sop_instance_uid
        assert tags["StudyDescription"] == "Prüfung Übersicht"


def test_orthanc_stores_to_our_modality(
    orthanc: OrthancPeer, dcmtk_storescp: peers.Peer, ct_file: datagen.Generated
) -> None:
    """The DicomModalities entry set at run time lets Orthanc C-STORE to another SCP."""
    oid = orthanc.rest.upload(ct_file.path.read_bytes())["ID"]
    orthanc.rest.set_modality("target", dcmtk_storescp.ae_title, dcmtk_storescp.port)
    assert "target" in orthanc.rest.modalities()
    orthanc.rest.echo("target")
    answer = orthanc.rest.store_to("target", [oid])
    assert answer.get("FailedInstancesCount", 0) == 0, answer
    files = dcmtk_storescp.wait_for_files(1)
    assert len(files) == 1
    assert pydicom.dcmread(files[0]).SOPInstanceUID == ct_file.sop_instance_uid


def test_peer_stop_is_by_pid_and_idempotent(tmp_path: Path) -> None:
    exe = peers.require_peer("dcmtk storescp", "storescp")
    peer = peers.start_dcmtk_storescp(tmp_path, binary=exe)
    assert peer.process.poll() is None
    peer.stop()
    assert peer.process.poll() is not None
    peer.stop()  # second stop is a no-op
    with pytest.raises(peers.PeerStartError):
        peers.wait_for_port(peer.port, timeout=0.2)


def test_require_peer_policy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match=r"install-peers\.sh"):
        peers.require_peer("nothing", "no-such-binary-aiodimse")
    monkeypatch.setenv("CI", "false")
    with pytest.raises(pytest.skip.Exception, match=r"install-peers\.sh"):
        peers.require_peer("nothing", "no-such-binary-aiodimse")
    monkeypatch.delenv("CI")
    with pytest.raises(pytest.skip.Exception):
        peers.require_peer("nothing", "python:no_such_module_aiodimse")
    assert Path(peers.require_peer("python", "python:json")).exists()


def test_dcmqrscp_find_and_move_to_storescp(
    dcmqrscp_factory: Callable[..., peers.Peer],
    dcmtk_storescp: peers.Peer,
    make_dicom: Callable[..., datagen.Generated],
) -> None:
    ct = make_dicom(kind=datagen.Kind.CT, seed=21, patient_id="QR-1")
    mr = make_dicom(kind=datagen.Kind.MR, seed=21, patient_id="QR-1")
    qr = dcmqrscp_factory(
        [ct.path, mr.path],
        move_destinations={"store": (dcmtk_storescp.ae_title, peers.LOOPBACK, dcmtk_storescp.port)},
    )
    findscu = peers.require_peer("dcmtk findscu", "findscu")
    found = subprocess.run(
        [
            findscu,
            "-S",
            "-aec",
            qr.ae_title,
            "-k",
            "0008,0052=SERIES",
            "-k",
            "PatientID=QR-1",
            "-k",
            f"StudyInstanceUID={ct.study_instance_uid}",
            "-k",
            "SeriesInstanceUID",
            peers.LOOPBACK,
            str(qr.port),
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert found.returncode == 0, found.stderr
    out = found.stdout + found.stderr
    assert str(ct.series_instance_uid) in out and str(mr.series_instance_uid) in out, out
    movescu = peers.require_peer("dcmtk movescu", "movescu")
    moved = subprocess.run(
        [
            movescu,
            "-S",
            "-aec",
            qr.ae_title,
            "-aem",
            dcmtk_storescp.ae_title,
            "-k",
            "0008,0052=STUDY",
            "-k",
            f"StudyInstanceUID={ct.study_instance_uid}",
            peers.LOOPBACK,
            str(qr.port),
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert moved.returncode == 0, moved.stderr
    files = dcmtk_storescp.wait_for_files(2)
    got = {pydicom.dcmread(f).SOPInstanceUID for f in files}
    assert got == {ct.sop_instance_uid, mr.sop_instance_uid}


def test_orthanc_rest_move_from_dcmqrscp(
    orthanc: OrthancPeer,
    dcmqrscp_factory: Callable[..., peers.Peer],
    make_dicom: Callable[..., datagen.Generated],
) -> None:
    """Orthanc as C-MOVE SCU (via REST) pulls a study from dcmqrscp into itself."""
    ct = make_dicom(kind=datagen.Kind.CT, seed=31)
    qr = dcmqrscp_factory(
        [ct.path],
        move_destinations={"orthanc": (orthanc.ae_title, peers.LOOPBACK, orthanc.port)},
    )
    orthanc.rest.set_modality("qr", qr.ae_title, qr.port)
    orthanc.rest.move_from(
        "qr", "Study", {"StudyInstanceUID": ct.study_instance_uid}, orthanc.ae_title
    )
    oid = orthanc.rest.find_instance(ct.sop_instance_uid)
    assert oid is not None and orthanc.rest.instances() == [oid]
    stored = pydicom.dcmread(io.BytesIO(orthanc.rest.instance_file(oid)))
    assert stored.PatientName == datagen.PATIENT_NAME_UMLAUT


def test_storescp_nodelay_env(tmp_path: Path) -> None:
    psutil = pytest.importorskip("psutil")
    exe = peers.require_peer("dcmtk storescp", "storescp")
    with peers.start_dcmtk_storescp(tmp_path, binary=exe, nodelay=True) as peer:
        assert psutil.Process(peer.pid).environ().get("TCP_NODELAY") == "1"
