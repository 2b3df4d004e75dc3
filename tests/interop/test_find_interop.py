"""C-FIND interop: aiodimse SCU against Orthanc and dcmtk dcmqrscp, dcmtk findscu against us.

The module's Orthanc (``DicomAlwaysAllowFind``, ``DefaultEncoding: Utf8``, so answers come
back as ISO_IR 192) holds a catalogue of 300 instances (15 patients with Latin-1, UTF-8 and
ASCII names, 2 studies each, a CT and an MR series per study, 5 instances per series) and
one bulk series of 2,000 minimal instances for C-CANCEL. Everything is uploaded through
Orthanc's REST API from a few threads: measured here that is faster than our own C-STORE
over one association (pydicom encodes each dataset; Orthanc's REST path skips DIMSE).
The session Orthanc answers ISO_IR 100 (its Latin-1 default) and has no
DicomAlwaysAllowFind: it answers only calling AEs in its DicomModalities (both tested).
"""

from __future__ import annotations

import dataclasses
import io
import json
import logging
import struct
import subprocess
import sys
import time
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import pydicom
import pytest
from anyio.abc import SocketStream
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filereader import read_dataset
from pydicom.uid import UID, ExplicitVRLittleEndian

import aiodimse
from aiodimse import QueryModel
from aiodimse.services.contexts import VERIFICATION
from aiodimse.services.qr_models import find_contexts
from tests.find.backend import ListBackend
from tests.support import datagen, orthanc_peer, peers
from tests.support.datasets import Charset, Spec

pytestmark = pytest.mark.anyio
log = logging.getLogger("tests.interop.find")

UMLAUT = "Müller^Jürgen"
ROOT = "1.2.826.0.1.3680043.8.498.7706"
CT_IMAGE = "1.2.840.10008.5.1.4.1.1.2"
MR_IMAGE = "1.2.840.10008.5.1.4.1.1.4"
#: (patient name, patient ID, charset of the loaded files).
PATIENTS = [
    (UMLAUT, "MUELLER-L1", Charset.LATIN1),
    (UMLAUT, "MUELLER-U8", Charset.UTF8),
    ("Strauß^Jörg", "STRAUSS", Charset.LATIN1),
    ("Núñez^José", "NUNEZ", Charset.LATIN1),
    ("Иванов^Иван", "IVANOV", Charset.UTF8),
    ("Γεωργίου^Νίκος", "GEORGIOU", Charset.UTF8),
    ("山田^太郎", "YAMADA", Charset.UTF8),
    *[(f"Doe^John{i}", f"DOE{i}", Charset.DEFAULT) for i in range(8)],
]
STUDIES_PER_PATIENT = 2
SERIES = (("CT", CT_IMAGE), ("MR", MR_IMAGE))  # one series of each per study
INSTANCES_PER_SERIES = 5
#: The bulk series: one patient, one study, one series of BULK_N instances.
BULK_N = 2000
BULK_PATIENT = ("Bulk^Cancel", "BULK")
BULK_STUDY = f"{ROOT}.99"
BULK_SERIES = f"{ROOT}.99.1"


@dataclass(frozen=True, slots=True, kw_only=True)
class Loaded:
    """One loaded instance: what every level's answer is checked against."""

    patient_name: str
    patient_id: str
    study: str
    study_date: str
    series: str
    modality: str
    sop_class: str
    sop_instance: str
    number: int


def catalogue() -> list[Loaded]:
    """The 300 catalogue instances (the bulk series excluded)."""
    out = []
    for p, (name, pid, _) in enumerate(PATIENTS):
        for s in range(STUDIES_PER_PATIENT):
            study = f"{ROOT}.{p + 1}.{s + 1}"
            for r, (modality, sop_class) in enumerate(SERIES):
                series = f"{study}.{r + 1}"
                for i in range(INSTANCES_PER_SERIES):
                    out.append(
                        Loaded(
                            patient_name=name,
                            patient_id=pid,
                            study=study,
                            study_date=f"2024010{s + 1}",
                            series=series,
                            modality=modality,
                            sop_class=sop_class,
                            sop_instance=f"{series}.{i + 1}",
                            number=i + 1,
                        )
                    )
    return out


def bulk() -> list[Loaded]:
    name, pid = BULK_PATIENT
    return [
        Loaded(
            patient_name=name,
            patient_id=pid,
            study=BULK_STUDY,
            study_date="20240301",
            series=BULK_SERIES,
            modality="CT",
            sop_class=CT_IMAGE,
            sop_instance=f"{BULK_SERIES}.{100_001 + i}",  # fixed width, no leading 0
            number=0,
        )
        for i in range(BULK_N)
    ]


CHARSET_OF = {pid: charset for _, pid, charset in PATIENTS}


def file_bytes(item: Loaded) -> bytes:
    """A minimal PS3.10 file (no pixel data, < 1 KB) for one loaded instance."""
    charset = CHARSET_OF.get(item.patient_id, Charset.DEFAULT)
    ds = Dataset()
    if charset is not Charset.DEFAULT:
        ds.SpecificCharacterSet = charset.value
    ds.SOPClassUID = item.sop_class
    ds.SOPInstanceUID = item.sop_instance
    ds.StudyDate = item.study_date
    ds.StudyTime = "101500"
    ds.AccessionNumber = item.study[-8:].replace(".", "")
    ds.Modality = item.modality
    ds.ReferringPhysicianName = ""
    ds.StudyDescription = "Routine" if charset is Charset.DEFAULT else "Prüfung Übersicht"
    ds.SeriesDescription = f"{item.modality} series"
    ds.PatientName = item.patient_name
    ds.PatientID = item.patient_id
    ds.PatientBirthDate = "19700101"
    ds.PatientSex = "O"
    ds.StudyInstanceUID = item.study
    ds.SeriesInstanceUID = item.series
    ds.StudyID = "1"
    ds.SeriesNumber = int(item.series.rsplit(".", 1)[1])
    ds.InstanceNumber = item.number
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = UID(item.sop_class)
    meta.MediaStorageSOPInstanceUID = UID(item.sop_instance)
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta = meta
    buf = io.BytesIO()
    pydicom.dcmwrite(buf, ds, enforce_file_format=True)
    return buf.getvalue()


def bulk_file_bytes() -> Iterator[bytes]:
    """The bulk files from one encoded template: only the fixed-width UID suffix varies
    (pydicom takes ~1-2 ms a file here, about what Orthanc takes to store one)."""
    marker = f"{BULK_SERIES}.199999"
    template = file_bytes(dataclasses.replace(bulk()[0], sop_instance=marker))
    marker_bytes = marker.encode()
    assert template.count(marker_bytes) == 2  # the file meta and the dataset
    for item in bulk():
        yield template.replace(marker_bytes, item.sop_instance.encode())


def upload_all(rest: orthanc_peer.OrthancRest, blobs: Iterator[bytes], threads: int) -> int:
    with ThreadPoolExecutor(threads) as pool:
        return sum(1 for _ in pool.map(rest.upload, blobs))


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
def loaded_orthanc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[orthanc_peer.OrthancPeer]:
    """An Orthanc with DicomAlwaysAllowFind and UTF-8 answers: catalogue and bulk series.

    ``SyncStorageArea: false`` (no fsync per file) halves its load time; nothing here needs
    durability.
    """
    exe = peers.require_peer("Orthanc", "Orthanc")
    server = orthanc_peer.start_orthanc(
        tmp_path_factory.mktemp("orthanc-find"),
        binary=exe,
        extra_config={
            "DicomAlwaysAllowFind": True,
            "DefaultEncoding": "Utf8",
            "SyncStorageArea": False,
        },
    )
    try:
        start = time.perf_counter()
        n = upload_all(server.rest, (file_bytes(item) for item in catalogue()), threads=4)
        middle = time.perf_counter()
        n += upload_all(server.rest, bulk_file_bytes(), threads=4)
        done = time.perf_counter()
        stats = server.rest.get("/statistics")
        assert stats["CountInstances"] == n == len(catalogue()) + BULK_N
        log.info(
            "loaded into Orthanc: %d catalogue instances in %.2f s, %d bulk in %.2f s",
            len(catalogue()),
            middle - start,
            BULK_N,
            done - middle,
        )
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


# ----------------------------------------------------------------------- every level

#: Return keys per level, and the key that identifies an answer at that level.
LEVEL_KEYS: dict[str, tuple[str, dict[str, str]]] = {
    "PATIENT": ("PatientID", {"PatientName": "", "NumberOfPatientRelatedStudies": ""}),
    "STUDY": (
        "StudyInstanceUID",
        {
            "PatientID": "",
            "PatientName": "",
            "StudyDate": "",
            "NumberOfStudyRelatedSeries": "",
            "NumberOfStudyRelatedInstances": "",
        },
    ),
    "SERIES": ("SeriesInstanceUID", {"Modality": "", "NumberOfSeriesRelatedInstances": ""}),
    "IMAGE": ("SOPInstanceUID", {"SOPClassUID": "", "InstanceNumber": ""}),
}


def expected_rows(items: list[Loaded], level: str) -> dict[str, tuple[Any, ...]]:
    """What each answer at ``level`` must say, from the loaded instances."""
    studies: dict[str, set[str]] = defaultdict(set)
    series: dict[str, set[str]] = defaultdict(set)
    instances: Counter[str] = Counter()
    for it in items:
        studies[it.patient_id].add(it.study)
        series[it.study].add(it.series)
        instances[it.study] += 1
        instances[it.series] += 1
    rows: dict[str, tuple[Any, ...]] = {}
    for it in items:
        if level == "PATIENT":
            rows[it.patient_id] = (it.patient_name, len(studies[it.patient_id]))
        elif level == "STUDY":
            rows[it.study] = (
                it.patient_id,
                it.patient_name,
                it.study_date,
                len(series[it.study]),
                instances[it.study],
            )
        elif level == "SERIES":
            rows[it.series] = (it.modality, instances[it.series])
        else:
            rows[it.sop_instance] = (it.sop_class, it.number)
    return rows


def answer_rows(found: list[pydicom.Dataset], level: str) -> dict[str, tuple[Any, ...]]:
    """The same shape from the answers; a key answered twice fails."""
    key = LEVEL_KEYS[level][0]
    rows: dict[str, tuple[Any, ...]] = {}
    for d in found:
        assert d.QueryRetrieveLevel == level
        if level == "PATIENT":
            row: tuple[Any, ...] = (str(d.PatientName), int(d.NumberOfPatientRelatedStudies))
        elif level == "STUDY":
            row = (
                d.PatientID,
                str(d.PatientName),
                d.StudyDate,
                int(d.NumberOfStudyRelatedSeries),
                int(d.NumberOfStudyRelatedInstances),
            )
        elif level == "SERIES":
            row = (d.Modality, int(d.NumberOfSeriesRelatedInstances))
        else:
            row = (d.SOPClassUID, int(d.InstanceNumber))
        assert d.get(key) not in rows, f"{key} {d.get(key)} answered twice"
        rows[str(d.get(key))] = row
    return rows


async def descend(
    assoc: aiodimse.Association,
    model: QueryModel,
    levels: list[str],
    parent: dict[str, str],
    items: list[Loaded],
) -> int:
    """Query ``levels[0]`` under ``parent`` keys, compare with ``items``, recurse below
    each answer; returns the number of C-FINDs sent."""
    level, below = levels[0], levels[1:]
    key, returns = LEVEL_KEYS[level]
    found = await run_find(assoc, {**returns, key: "", **parent}, model=model, level=level)
    rows = answer_rows(found, level)
    assert rows == expected_rows(items, level), (model, level, parent)
    sent = 1
    attr = {"PATIENT": "patient_id", "STUDY": "study", "SERIES": "series"}.get(level)
    if below and attr is not None:
        groups: dict[str, list[Loaded]] = defaultdict(list)
        for it in items:
            groups[getattr(it, attr)].append(it)
        for value in rows:
            sent += await descend(assoc, model, below, {**parent, key: value}, groups[value])
    return sent


async def test_orthanc_every_level_both_models(loaded_orthanc: orthanc_peer.OrthancPeer) -> None:
    """Top-down through every level of both models, every answer compared with what was
    loaded (2,300 instances: 16 patients, 31 studies, 61 series), UIDs and counts."""
    items = catalogue() + bulk()
    sent = {}
    async with aiodimse.AE("FINDSCU").associate(
        "127.0.0.1", loaded_orthanc.port, called_ae="ORTHANC", contexts=contexts()
    ) as assoc:
        sent["study"] = await descend(
            assoc, QueryModel.STUDY_ROOT, ["STUDY", "SERIES", "IMAGE"], {}, items
        )
        sent["patient"] = await descend(
            assoc, QueryModel.PATIENT_ROOT, ["PATIENT", "STUDY", "SERIES", "IMAGE"], {}, items
        )
        # INSTANCE is accepted as a synonym and sent as IMAGE.
        images = await run_find(
            assoc,
            {"StudyInstanceUID": f"{ROOT}.3.1", "SeriesInstanceUID": f"{ROOT}.3.1.2",
             "SOPInstanceUID": ""},
            level="INSTANCE",
        )  # fmt: skip
        assert len(images) == INSTANCES_PER_SERIES
    assert sent == {"study": 1 + 31 + 61, "patient": 1 + 16 + 31 + 61}


# ----------------------------------------------------------------------- character sets


@pytest.mark.parametrize("charset", [None, "ISO_IR 192"])
@pytest.mark.parametrize(
    ("pattern", "ids"),
    [
        ("Müller*", ["MUELLER-L1", "MUELLER-U8"]),  # Latin-1 and UTF-8 data both match
        ("Strauß*", ["STRAUSS"]),
        ("Иванов*", ["IVANOV"]),  # not in Latin-1: sent as ISO_IR 192 automatically
        ("山田*", ["YAMADA"]),
    ],
)
async def test_orthanc_non_ascii_queries(
    loaded_orthanc: orthanc_peer.OrthancPeer, charset: str | None, pattern: str, ids: list[str]
) -> None:
    async with aiodimse.AE("FINDSCU").associate(
        "127.0.0.1", loaded_orthanc.port, called_ae="ORTHANC", contexts=contexts()
    ) as assoc:
        found = await run_find(
            assoc,
            {"PatientName": pattern, "PatientID": "", "StudyDescription": ""},
            charset=charset,
        )
    names = {pid: name for name, pid, _ in PATIENTS}
    assert sorted(d.PatientID for d in found) == sorted(ids * STUDIES_PER_PATIENT)
    assert {(d.PatientID, str(d.PatientName)) for d in found} == {(i, names[i]) for i in ids}
    assert {d.StudyDescription for d in found} == {"Prüfung Übersicht"}
    assert {d.SpecificCharacterSet for d in found} == {"ISO_IR 192"}


async def test_orthanc_refuses_unknown_calling_ae_without_always_allow(
    orthanc: orthanc_peer.OrthancPeer,
) -> None:
    """The session Orthanc has no DicomAlwaysAllowFind; it answers ISO_IR 100 (Latin-1)."""
    orthanc.rest.upload(datagen.file_bytes(Spec(seed=7, rows=8, columns=8)))
    query = {"PatientName": "Müller*", "PatientID": ""}
    # Orthanc 1.10 answers a C-FIND from an AE not in DicomModalities with A-ABORT.
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
    log.info("Orthanc refused the unknown AE with: %s", refused)


# ----------------------------------------------------------------------- C-CANCEL


@dataclass(kw_only=True)
class Wire:
    """What a :func:`wire_tap` relayed: SCU to SCP (``up``) and back (``down``)."""

    up: bytearray = field(default_factory=bytearray)
    down: bytearray = field(default_factory=bytearray)


@asynccontextmanager
async def wire_tap(port: int) -> AsyncIterator[tuple[int, Wire]]:
    """A TCP relay to ``127.0.0.1:port`` recording both directions; yields its own port.

    Each chunk is forwarded before the next is read, so the SCP still feels our
    backpressure (through one more pair of socket buffers).
    """
    wire = Wire()

    async def relay(src: SocketStream, dst: SocketStream, record: bytearray) -> None:
        try:
            async for chunk in src:
                record.extend(chunk)
                await dst.send(chunk)
            await dst.send_eof()
        except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
            pass

    async def handle(client: SocketStream) -> None:
        async with client, await anyio.connect_tcp("127.0.0.1", port) as server:
            async with anyio.create_task_group() as tg:
                tg.start_soon(relay, client, server, wire.up)
                tg.start_soon(relay, server, client, wire.down)

    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    async with listener, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, handle)
        yield listener.extra(anyio.abc.SocketAttribute.local_port), wire
        tg.cancel_scope.cancel()


def command_sets(stream: bytes) -> list[Dataset]:
    """The DIMSE command sets in a stream of PDUs, decoded without aiodimse's codecs:
    pynetdicom's P-DATA-TF decoder and pydicom's reader (PS3.7 6.3.1: Implicit VR LE)."""
    from pynetdicom.pdu import P_DATA_TF

    out: list[Dataset] = []
    command = bytearray()
    pos = 0
    while pos + 6 <= len(stream):
        pdu_type = stream[pos]
        (length,) = struct.unpack(">I", stream[pos + 2 : pos + 6])
        body = bytes(stream[pos : pos + 6 + length])
        pos += 6 + length
        if pdu_type != 0x04:  # PS3.8 9.3.1: only P-DATA-TF carries messages
            continue
        pdu = P_DATA_TF()
        pdu.decode(body)
        for item in pdu.presentation_data_value_items:
            data = item.data  # the message control header byte, then the fragment
            assert data is not None
            header, fragment = data[0], data[1:]
            if header & 0x01:  # PS3.8 E.2: bit 0 command, bit 1 last fragment
                command += fragment
                if header & 0x02:
                    out.append(read_dataset(io.BytesIO(bytes(command)), True, True))
                    command.clear()
    assert pos == len(stream), "the tap ended inside a PDU"
    return out


C_FIND_RQ, C_FIND_RSP, C_CANCEL_RQ = 0x0020, 0x8020, 0x0FFF


async def test_orthanc_cancel_of_thousands_on_the_wire(
    loaded_orthanc: orthanc_peer.OrthancPeer, caplog: pytest.LogCaptureFixture
) -> None:
    """IMAGE level in the bulk series: 2,000 matches, broken off after 3.

    Seen three ways: ``FindResults``; our ``-d`` log; and the bytes on the wire through a
    TCP tap, decoded by pynetdicom and pydicom. Orthanc (via dcmtk's find provider) checks
    for a C-CANCEL before each pending response; it computes all matches first, so what
    can be observed of "stopped producing" is how many pending responses it put on the
    wire before its Cancel 0xFE00. Had it written all 2,000 before our C-CANCEL arrived,
    Success 0x0000 would be the right answer; that is accepted, and logged.
    """
    caplog.set_level(logging.DEBUG, logger="aiodimse")
    query = {"StudyInstanceUID": BULK_STUDY, "SeriesInstanceUID": BULK_SERIES, "SOPInstanceUID": ""}
    async with wire_tap(loaded_orthanc.port) as (port, wire):
        async with aiodimse.AE("FINDSCU").associate(
            "127.0.0.1", port, called_ae="ORTHANC", contexts=contexts()
        ) as assoc:
            async with assoc.find(query, level="IMAGE") as results:
                async for ds in results:
                    assert ds.SOPInstanceUID.startswith(BULK_SERIES)
                    if results.count == 3:
                        break
            assert results.cancel_sent and results.count == 3
            assert results.status is not None
            # The association is still usable, and answers the next query in full.
            again = await run_find(
                assoc, {"PatientID": "STRAUSS"}, model="patient", level="PATIENT"
            )
            assert [d.PatientID for d in again] == ["STRAUSS"]
    mid = results.message_id
    assert f"sending CCancelRQ(command_data_set_type=257, message_id_being_responded_to={mid})" in (
        caplog.text
    )
    up, down = command_sets(bytes(wire.up)), command_sets(bytes(wire.down))
    assert [c.CommandField for c in up] == [C_FIND_RQ, C_CANCEL_RQ, C_FIND_RQ]
    assert up[0].MessageID == mid
    assert up[1].MessageIDBeingRespondedTo == mid  # PS3.7 9.3.2.3
    assert up[1].CommandDataSetType == 0x0101  # no data set follows
    rsps = [c for c in down if c.CommandField == C_FIND_RSP]
    mine = [c for c in rsps if c.MessageIDBeingRespondedTo == mid]
    pending = [c for c in mine[:-1] if c.Status in (0xFF00, 0xFF01)]
    assert len(pending) == len(mine) - 1  # everything before the final one is pending
    final = mine[-1].Status
    assert final == results.status.code
    log.info("Orthanc sent %d of %d matches, then 0x%04X", len(pending), BULK_N, final)
    if final == 0xFE00:
        assert len(pending) < BULK_N
    else:
        assert (final, len(pending)) == (0x0000, BULK_N)
    assert [c.MessageIDBeingRespondedTo for c in rsps[len(mine) :]] == [up[2].MessageID] * 2


# ----------------------------------------------------------------------- CLI


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
    out = tmp_path / "new" / "dir"
    res = _cli(
        "127.0.0.1", port, "-aec", "ORTHANC", "-k", "PatientName=Müller*", "-k", "PatientID",
        "-k", "(0008,0020)", "--json", "-w", "-od", str(out),
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    lines = [json.loads(line) for line in res.stdout.splitlines()]
    assert len(lines) == 4
    parsed = [Dataset.from_json(line) for line in lines]
    assert {str(d.PatientName) for d in parsed} == {UMLAUT}
    assert sorted(d.PatientID for d in parsed) == ["MUELLER-L1"] * 2 + ["MUELLER-U8"] * 2
    assert {d.StudyDate for d in parsed} == {"20240101", "20240102"}
    written = sorted(out.glob("rsp*.dcm"))
    assert [p.name for p in written] == [f"rsp{i:06d}.dcm" for i in range(1, 5)]
    assert sorted(pydicom.dcmread(p).PatientID for p in written) == sorted(
        d.PatientID for d in parsed
    )
    res = _cli("127.0.0.1", port, "-P", "-k", "QueryRetrieveLevel=PATIENT", "-k", "PatientID=DOE1")
    assert res.returncode == 0, res.stderr
    assert "PatientID=DOE1" in res.stdout and res.stdout.startswith("#1 ")
    res = _cli("127.0.0.1", port, "-k", "QueryRetrieveLevel=PATIENT")  # no PATIENT in study root
    assert res.returncode == 1 and res.stderr.startswith("E: ")


def test_cli_unknown_calling_ae_exit_status(orthanc: orthanc_peer.OrthancPeer) -> None:
    """The session Orthanc (no DicomAlwaysAllowFind) aborts a C-FIND from an unknown AE:
    exit status 1 and one line saying why."""
    res = _cli(
        "127.0.0.1", str(orthanc.port), "-aet", "STRANGER", "-aec", "ORTHANC", "-k", "PatientID"
    )
    assert res.returncode == 1, res.stdout
    assert res.stdout == ""
    lines = res.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("E: ") and "abort" in lines[0].lower(), lines


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
    from pynetdicom.sop_class import (  # type: ignore[attr-defined]  # generated names
        StudyRootQueryRetrieveInformationModelFind as StudyFind,
    )

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
                    # Once our backend waits for its source (it has produced its 10), so
                    # the C-CANCEL must reach it there, not at its next item.
                    assert backend.stalled.wait(10)
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
    # The 10 produced, then Cancel, then nothing; the backend was waiting for its source
    # when the C-CANCEL came: cancelled there, not left running.
    assert statuses == [0xFF00] * 10 + [0xFE00]
    assert backend.produced == 10
    assert backend.cancelled_in_pull
    assert scp.cancelled == 1
