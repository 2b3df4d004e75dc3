"""aiodimse C-STORE SCU -> real Storage SCPs: dcmtk storescp, Orthanc, pynetdicom (issue 5).

* dcmtk ``storescp +xa +B`` (bit-preserving) with its maximum PDU at 4096, 16384 and 131072
  (its range): the dataset bytes of every received file are identical (sha256) to ours.
* dcmtk ``storescp +xi`` (Implicit VR Little Endian only): explicit files are converted, a
  JPEG file is decompressed (issue 8; the full matrix is in ``test_transfer_interop``).
* Orthanc, checked through its REST API: every instance there, umlauts intact, the stored
  dataset equal element by element (Orthanc re-encodes sequences with explicit lengths).
* pynetdicom's storescp (it re-encodes what it writes, so datasets are compared decoded),
  with its maximum PDU at the default, 1 MiB and 0 (unlimited).
* A 20 MB file to dcmtk with the client's traced memory far below the file size.
"""

from __future__ import annotations

import hashlib
import tracemalloc
from io import BytesIO
from pathlib import Path

import anyio
import numpy as np
import pytest
from pydicom import Dataset, dcmread
from pydicom.uid import ExplicitVRBigEndian, ImplicitVRLittleEndian, JPEGBaseline8Bit

import aiodimse
from aiodimse.net.filesource import DicomFileInfo, read_file_info
from aiodimse.services.storage_contexts import propose_contexts
from aiodimse.services.storage_scu import StoreResult
from tests.support import datagen, orthanc_peer, peers

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> list[DicomFileInfo]:
    """The standard corpus: CT, MR, SC, Enhanced CT x Implicit/Explicit LE, Explicit BE,
    Deflated, JPEG Baseline; private tags, undefined-length sequences, umlauts."""
    return [read_file_info(g.path) for g in datagen.write_corpus(tmp_path_factory.mktemp("c"))]


def dataset_sha(path: Path) -> str:
    info = read_file_info(path)
    return hashlib.sha256(path.read_bytes()[info.dataset_offset :]).hexdigest()


def received_by_uid(peer: peers.Peer, count: int) -> dict[str, Path]:
    files = peer.wait_for_files(count)
    return {read_file_info(p).sop_instance_uid: p for p in files}


def assert_same_content(theirs: Dataset, ours: Dataset, what: str) -> None:
    """Equal public elements (pixel data included); the private elements still there.

    A private sequence re-encoded with an explicit length reads back as UN bytes in
    implicit VR (nothing says it is a sequence), so private values are checked loosely.
    """
    public = [e.tag for e in ours if not e.tag.is_private]
    assert public == [e.tag for e in theirs if not e.tag.is_private], what
    for tag in public:
        assert theirs[tag] == ours[tag], f"{what}: {tag}"
    assert theirs[0x00091010].value in (b"private string", "private string"), what
    assert b"PRIVSEQ" in bytes(theirs[0x00091013].value if theirs[0x00091013].VR == "UN"
                               else theirs[0x00091013].value[0].StationName.encode())  # fmt: skip


async def send(
    files: list[DicomFileInfo], port: int, called_ae: str, **kwargs: object
) -> list[StoreResult]:
    ae = aiodimse.AE("AIODIMSE")
    async with ae.associate(
        "127.0.0.1", port, called_ae=called_ae, contexts=propose_contexts(files)
    ) as assoc:
        return await assoc.store_many(files, **kwargs)  # type: ignore[arg-type]


_LONG_VRS = {b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR", b"UT"}


def with_group_lengths(source: Path, target: Path) -> Path:
    """A copy of an explicit VR LE file with an (0008,0000) group length (PS3.5 7.2; pydicom
    never writes one), so one travels bit for bit too. Groups are walked from the start
    until the first one that is not 0008 or 0010 (the private group 0009 in our files)."""
    data = source.read_bytes()
    start = read_file_info(source).dataset_offset
    out, pos, group, run = [data[:start]], start, None, bytearray()

    def flush() -> None:
        if group in (0x0008, 0x0010):
            out.append(group.to_bytes(2, "little") + b"\0\0UL\x04\x00")
            out.append(len(run).to_bytes(4, "little"))
        out.append(bytes(run))
        run.clear()

    while pos < len(data):
        g = int.from_bytes(data[pos : pos + 2], "little")
        vr = data[pos + 4 : pos + 6]
        if vr in _LONG_VRS:
            length, head = int.from_bytes(data[pos + 8 : pos + 12], "little"), 12
        else:
            length, head = int.from_bytes(data[pos + 6 : pos + 8], "little"), 8
        if g not in (0x0008, 0x0010):  # the rest, undefined lengths included, as it is
            flush()
            out.append(data[pos:])
            break
        if g != group:
            flush()
            group = g
        run += data[pos : pos + head + length]
        pos += head + length
    target.write_bytes(b"".join(out))
    return target


# ------------------------------------------------------------------------- dcmtk


@pytest.mark.parametrize("max_pdu", [4096, 16384, 131072])
async def test_dcmtk_bit_preserving(
    corpus: list[DicomFileInfo], tmp_path: Path, max_pdu: int
) -> None:
    exe = peers.require_peer("dcmtk storescp", "storescp")
    big = read_file_info(datagen.write_streamed(tmp_path / "big", 2 << 20, seed=3).path)
    files = [*corpus, big]
    with peers.start_dcmtk_storescp(
        tmp_path / "scp", binary=exe, extra_args=["+B", "-pdu", str(max_pdu)]
    ) as peer:
        results = await send(files, peer.port, peer.ae_title)
        assert [r.describe() for r in results if not r.ok] == []
        got = received_by_uid(peer, len(files))
    assert len(got) == len(files)
    for info, r in zip(files, results, strict=True):
        assert r.transfer_syntax == info.transfer_syntax_uid and not r.converted
        received = got[info.sop_instance_uid]
        assert read_file_info(received).transfer_syntax_uid == info.transfer_syntax_uid
        assert dataset_sha(received) == dataset_sha(info.path), info.path.name


async def test_dcmtk_group_lengths_travel_bit_for_bit(
    corpus: list[DicomFileInfo], tmp_path: Path
) -> None:
    exe = peers.require_peer("dcmtk storescp", "storescp")
    ct = next(i for i in corpus if i.path.name == "ct-evrle-latin1-s0.dcm")
    grouped = read_file_info(with_group_lengths(ct.path, tmp_path / "grouped.dcm"))
    assert grouped.dataset_length == ct.dataset_length + 12
    assert dcmread(grouped.path)[0x00080000].value > 0
    with peers.start_dcmtk_storescp(tmp_path / "scp", binary=exe, extra_args=["+B"]) as peer:
        results = await send([grouped], peer.port, peer.ae_title)
        got = received_by_uid(peer, 1)
    assert results[0].ok
    assert dataset_sha(got[grouped.sop_instance_uid]) == dataset_sha(grouped.path)


async def test_dcmtk_implicit_only_converts_and_decompresses_jpeg(
    corpus: list[DicomFileInfo], tmp_path: Path
) -> None:
    exe = peers.require_peer("dcmtk storescp", "storescp")
    explicit = [
        i
        for i in corpus
        if i.transfer_syntax_uid == "1.2.840.10008.1.2.1" and "latin1" in i.path.name
    ]
    jpeg = next(i for i in corpus if i.transfer_syntax_uid == JPEGBaseline8Bit)
    with peers.start_dcmtk_storescp(tmp_path / "scp", binary=exe, extra_args=["+xi"]) as peer:
        results = await send([*explicit, jpeg], peer.port, peer.ae_title)
        got = received_by_uid(peer, len(explicit) + 1)
    *converted, decompressed = results
    for info, r in zip(explicit, converted, strict=True):
        assert r.ok and r.converted and r.transfer_syntax == ImplicitVRLittleEndian
        received = got[info.sop_instance_uid]
        assert read_file_info(received).transfer_syntax_uid == ImplicitVRLittleEndian
        ours, theirs = dcmread(info.path), dcmread(received)
        assert str(theirs.PatientName) == datagen.PATIENT_NAME_UMLAUT
        assert theirs.PixelData == ours.PixelData
        assert theirs[0x00091010].value in (b"private string", "private string")
    # Issue 8: the JPEG is decompressed for the uncompressed-only peer.
    assert decompressed.ok and decompressed.transfer_syntax == ImplicitVRLittleEndian
    line = decompressed.describe()
    assert str(jpeg.path) in line
    assert f"Secondary Capture Image Storage ({jpeg.sop_class_uid})" in line
    assert f"JPEG Baseline (Process 1) ({JPEGBaseline8Bit}) decompressed and sent as" in line
    theirs = dcmread(got[jpeg.sop_instance_uid])
    assert theirs.LossyImageCompression == "01"
    assert theirs.pixel_array.shape == dcmread(jpeg.path).pixel_array.shape


@pytest.mark.fd_callbacks  # the bound of the native (sendfile) path
async def test_20mb_to_dcmtk_with_bounded_client_memory(tmp_path: Path) -> None:
    exe = peers.require_peer("dcmtk storescp", "storescp")
    info = read_file_info(datagen.write_streamed(tmp_path / "big", 20 << 20, seed=4).path)
    with peers.start_dcmtk_storescp(
        tmp_path / "scp", binary=exe, extra_args=["+B", "-pdu", "131072"], nodelay=True
    ) as peer:
        tracemalloc.start()
        try:
            results = await send([info], peer.port, peer.ae_title)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        got = received_by_uid(peer, 1)
    assert results[0].ok and results[0].bytes_sent == info.dataset_length > 20_000_000
    assert dataset_sha(got[info.sop_instance_uid]) == dataset_sha(info.path)
    assert peak < 4 << 20, f"client traced peak {peak / 2**20:.1f} MiB for a 20 MB file"


# ------------------------------------------------------------------------- Orthanc


async def test_orthanc_stores_everything_with_umlauts_intact(
    corpus: list[DicomFileInfo], orthanc: orthanc_peer.OrthancPeer
) -> None:
    results = await send(corpus, orthanc.port, orthanc.ae_title)
    assert [r.describe() for r in results if not r.ok] == []
    rest = orthanc.rest
    ids = await anyio.to_thread.run_sync(rest.instances)
    assert len(ids) == len(corpus)
    for info in corpus:
        oid = await anyio.to_thread.run_sync(rest.find_instance, info.sop_instance_uid)
        assert oid is not None, info.path.name
        tags = await anyio.to_thread.run_sync(rest.instance_tags, oid)
        sent = dcmread(info.path, stop_before_pixels=True)
        assert tags["PatientName"] == str(sent.PatientName)
        assert tags["StudyDescription"] == "Prüfung Übersicht"
        stored = await anyio.to_thread.run_sync(rest.instance_file, oid)
        # Orthanc re-encodes what it stores (undefined-length sequences get explicit
        # lengths), so the stored dataset is compared decoded, element by element.
        theirs = dcmread(BytesIO(stored))
        assert theirs.file_meta.TransferSyntaxUID == info.transfer_syntax_uid
        assert_same_content(theirs, dcmread(info.path), info.path.name)
    names = {str(dcmread(i.path, stop_before_pixels=True).PatientName) for i in corpus}
    assert datagen.PATIENT_NAME_UMLAUT in names


# ------------------------------------------------------------------------- pynetdicom


@pytest.mark.parametrize("max_pdu", [None, 1 << 20, 0])
async def test_pynetdicom_storescp(
    corpus: list[DicomFileInfo], tmp_path: Path, max_pdu: int | None
) -> None:
    python = peers.require_peer("pynetdicom", "python:pynetdicom")
    out = tmp_path / "received"
    out.mkdir()
    # Big endian is left out: pynetdicom's app re-encodes what it writes.
    files = [i for i in corpus if i.transfer_syntax_uid != ExplicitVRBigEndian]
    extra = [] if max_pdu is None else ["-pdu", str(max_pdu)]

    def argv(port: int) -> list[str]:
        return [python, "-m", "pynetdicom", "storescp", "-aet", "PYNETDICOM", "-ba",
                peers.LOOPBACK, "-od", str(out), *extra, str(port)]  # fmt: skip

    with peers.launch_peer(
        name="pynetdicom-storescp",
        ae_title="PYNETDICOM",
        workdir=tmp_path,
        version="pynetdicom",
        make_argv=argv,
        output_dir=out,
    ) as peer:
        ae = aiodimse.AE("AIODIMSE")
        async with ae.associate(
            "127.0.0.1", peer.port, called_ae="PYNETDICOM", contexts=propose_contexts(files)
        ) as assoc:
            if max_pdu == 0:
                assert assoc.negotiated.peer_advertised_max_pdu == 0
                assert assoc.peer_max_pdu == ae.limits.unlimited_pdu_cap
            elif max_pdu is not None:
                assert assoc.peer_max_pdu == max_pdu
            results = await assoc.store_many(files)
        assert [r.describe() for r in results if not r.ok] == []
        received = peer.wait_for_files(len(files))
    by_uid = {str(dcmread(p, stop_before_pixels=True).SOPInstanceUID): p for p in received}
    for info in files:
        ours, theirs = dcmread(info.path), dcmread(by_uid[info.sop_instance_uid])
        assert theirs.file_meta.TransferSyntaxUID == info.transfer_syntax_uid
        assert_same_content(theirs, ours, info.path.name)
        assert np.array_equal(
            np.frombuffer(theirs[0x00091012].value, np.uint8), np.arange(16, dtype=np.uint8)
        )
