"""Real SCUs -> the aiodimse Storage SCP: dcmtk ``storescu`` and pynetdicom (issue 5).

The received dataset bytes must be **identical** to the sent file's dataset bytes (sha256 of
what follows the file meta) whenever the transfer syntax is unchanged, names with umlauts
intact. The maximum PDU is varied on our (receiving) side. A 20 MB instance through the
``aiodimse storescp`` CLI keeps that process's memory bounded.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import anyio.to_thread
import pydicom
import pytest
from pydicom.uid import JPEGBaseline8Bit

import aiodimse
from aiodimse.services.storage_scp import StorageOptions, StorageSCP, enable_storage
from tests.support import datagen, peers
from tests.support.rss import ResourceProbe

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
def dcmtk_corpus(tmp_path_factory: pytest.TempPathFactory) -> list[datagen.Generated]:
    """CT, MR, SC, enhanced multi-frame CT in Implicit, Explicit, Deflated; SC in JPEG
    Baseline (grey, 3 frames, RGB); with defined-length sequences: dcmtk's storescu re-encodes
    every dataset it sends and writes sequences with explicit lengths, so only such files can
    arrive byte for byte as they are on disk."""
    specs: list[datagen.Spec] = []
    for ts in (
        pydicom.uid.ImplicitVRLittleEndian,
        pydicom.uid.ExplicitVRLittleEndian,
        pydicom.uid.DeflatedExplicitVRLittleEndian,
    ):
        for kind in datagen.Kind:
            frames = 4 if kind is datagen.Kind.ENHANCED_CT else 1
            specs.append(
                datagen.Spec(
                    kind=kind, transfer_syntax=ts, frames=frames, undefined_length_sequences=False
                )
            )
    for extra in ({}, {"frames": 3}, {"samples_per_pixel": 3}):
        specs.append(
            datagen.Spec(
                kind=datagen.Kind.SC,
                transfer_syntax=JPEGBaseline8Bit,
                undefined_length_sequences=False,
                **extra,  # type: ignore[arg-type]
            )
        )
    specs.append(
        datagen.Spec(
            kind=datagen.Kind.CT, charset=datagen.Charset.UTF8, undefined_length_sequences=False
        )
    )
    return datagen.write_corpus(tmp_path_factory.mktemp("dcmtk_corpus"), specs)


def dataset_bytes_of(path: Path) -> bytes:
    data = path.read_bytes()
    assert data[128:132] == b"DICM"
    return data[144 + int.from_bytes(data[140:144], "little") :]


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@asynccontextmanager
async def aiodimse_scp(
    out: Path, *, max_pdu: int | None = None
) -> AsyncIterator[tuple[int, StorageSCP]]:
    limits = aiodimse.Limits(max_pdu_length=max_pdu) if max_pdu else None
    ae = aiodimse.AE("AIODIMSE_SCP", limits=limits)
    storage = enable_storage(ae, StorageOptions(output_directory=out))
    async with ae.serve("127.0.0.1", 0) as server:
        yield server.port, storage


def check_received(sent: list[datagen.Generated], out: Path) -> dict[str, int]:
    """Every sent file arrived; same-TS ones byte-identical; returns counts by outcome."""
    counts = {"identical": 0, "converted": 0}
    for gen in sent:
        path = out / f"{gen.sop_instance_uid}.dcm"
        assert path.is_file(), f"{gen.path.name} did not arrive"
        ds = pydicom.dcmread(path)
        assert ds.file_meta.MediaStorageSOPInstanceUID == gen.sop_instance_uid
        assert ds.file_meta.SourceApplicationEntityTitle
        assert str(ds.PatientName) == gen.patient_name
        if ds.file_meta.TransferSyntaxUID == gen.transfer_syntax_uid:
            assert sha(dataset_bytes_of(path)) == sha(dataset_bytes_of(gen.path)), gen.path.name
            counts["identical"] += 1
        else:
            counts["converted"] += 1
    return counts


async def run_in_thread(argv: list[str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    def go() -> subprocess.CompletedProcess[str]:
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)

    return await anyio.to_thread.run_sync(go)


# --------------------------------------------------------------------------- dcmtk


@pytest.mark.parametrize("max_pdu", [4096, 16384, 131072])
async def test_dcmtk_storescu_uncompressed(
    tmp_path: Path, dcmtk_corpus: list[datagen.Generated], max_pdu: int
) -> None:
    """dcmtk proposes the uncompressed syntaxes; ours prefer Explicit LE (deflated files are
    sent inflated then). Same transfer syntax: identical bytes."""
    exe = peers.require_peer("dcmtk storescu", "storescu")
    files = [g for g in dcmtk_corpus if g.transfer_syntax_uid != JPEGBaseline8Bit]
    out = tmp_path / "out"
    async with aiodimse_scp(out, max_pdu=max_pdu) as (port, storage):
        done = await anyio.to_thread.run_sync(
            lambda: peers.run_dcmtk_storescu(port, [g.path for g in files], binary=exe)
        )
    assert done.returncode == 0, done.stdout + done.stderr
    counts = check_received(files, out)
    assert storage.stats.stored == len(files) and storage.stats.failed == 0
    # Implicit and Explicit LE go as they are: identical bytes (dcmtk may convert the rest).
    same = [
        g
        for g in files
        if g.transfer_syntax_uid
        in (pydicom.uid.ImplicitVRLittleEndian, pydicom.uid.ExplicitVRLittleEndian)
    ]
    assert counts["identical"] >= len(same)


async def test_dcmtk_storescu_deflated_proposed_as_is(
    tmp_path: Path, dcmtk_corpus: list[datagen.Generated]
) -> None:
    """``-xd``: dcmtk proposes Deflated; the deflated bytes are stored as received."""
    exe = peers.require_peer("dcmtk storescu", "storescu")
    files = [
        g
        for g in dcmtk_corpus
        if g.transfer_syntax_uid == pydicom.uid.DeflatedExplicitVRLittleEndian
    ]
    out = tmp_path / "out"
    async with aiodimse_scp(out) as (port, _):
        done = await anyio.to_thread.run_sync(
            lambda: peers.run_dcmtk_storescu(
                port, [g.path for g in files], binary=exe, extra_args=["-xd"]
            )
        )
    assert done.returncode == 0, done.stdout + done.stderr
    counts = check_received(files, out)
    assert counts["identical"] == len(files)


async def test_dcmtk_storescu_jpeg_baseline_bit_preserving(
    tmp_path: Path, dcmtk_corpus: list[datagen.Generated]
) -> None:
    exe = peers.require_peer("dcmtk storescu", "storescu")
    files = [g for g in dcmtk_corpus if g.transfer_syntax_uid == JPEGBaseline8Bit]
    assert len(files) >= 3
    out = tmp_path / "out"
    async with aiodimse_scp(out, max_pdu=8192) as (port, _):
        done = await anyio.to_thread.run_sync(
            lambda: peers.run_dcmtk_storescu(
                port, [g.path for g in files], binary=exe, extra_args=["-xy"]
            )
        )
    assert done.returncode == 0, done.stdout + done.stderr
    counts = check_received(files, out)
    assert counts["identical"] == len(files)


# --------------------------------------------------------------------------- pynetdicom


@pytest.mark.parametrize("max_pdu", [16384, 1 << 20])
async def test_pynetdicom_storescu_into_aiodimse(
    tmp_path: Path, dicom_corpus: list[datagen.Generated], max_pdu: int
) -> None:
    python = peers.require_peer("pynetdicom", "python:pynetdicom")
    # pynetdicom's storescu proposes Explicit/Implicit LE (and the files' own syntax with -cx).
    files = [
        g
        for g in dicom_corpus
        if g.transfer_syntax_uid
        in (pydicom.uid.ImplicitVRLittleEndian, pydicom.uid.ExplicitVRLittleEndian)
    ]
    src = tmp_path / "src"
    src.mkdir()
    for gen in files:
        (src / gen.path.name).write_bytes(gen.path.read_bytes())
    out = tmp_path / "out"
    async with aiodimse_scp(out, max_pdu=max_pdu) as (port, storage):
        done = await run_in_thread(
            [python, "-m", "pynetdicom", "storescu", "-v", "127.0.0.1", str(port), str(src)]
        )
    assert done.returncode == 0, done.stdout + done.stderr
    assert storage.stats.stored == len(files)
    counts = check_received(files, out)
    # pynetdicom converts an Implicit LE file when we accept Explicit LE (our preference).
    explicit = [g for g in files if g.transfer_syntax_uid == pydicom.uid.ExplicitVRLittleEndian]
    assert counts["identical"] >= len(explicit)
    assert storage.stats.failed == 0


async def test_pynetdicom_ae_api_jpeg_into_aiodimse(
    tmp_path: Path, dicom_corpus: list[datagen.Generated]
) -> None:
    """pynetdicom's AE API (in a subprocess) proposing JPEG Baseline: stored bit for bit."""
    python = peers.require_peer("pynetdicom", "python:pynetdicom")
    files = [g for g in dicom_corpus if g.transfer_syntax_uid == JPEGBaseline8Bit]
    script = tmp_path / "send.py"
    script.write_text(
        "import sys\n"
        "from pydicom import dcmread\n"
        "from pynetdicom import AE\n"
        "ae = AE(ae_title='PYNETDICOM')\n"
        "ae.maximum_pdu_size = 0\n"
        "paths = sys.argv[2:]\n"
        "dss = [dcmread(p) for p in paths]\n"
        "for ds in dss:\n"
        "    ae.add_requested_context(ds.SOPClassUID, ds.file_meta.TransferSyntaxUID)\n"
        "assoc = ae.associate('127.0.0.1', int(sys.argv[1]))\n"
        "assert assoc.is_established, 'not established'\n"
        "for ds in dss:\n"
        "    status = assoc.send_c_store(ds)\n"
        "    print(f'0x{status.Status:04X}')\n"
        "assoc.release()\n"
    )
    out = tmp_path / "out"
    async with aiodimse_scp(out, max_pdu=1 << 20) as (port, _):
        done = await run_in_thread(
            [python, str(script), str(port), *map(str, (g.path for g in files))]
        )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.split() == ["0x0000"] * len(files)
    counts = check_received(files, out)
    assert counts["identical"] == len(files)


# --------------------------------------------------------------------------- the CLI, memory


def test_storescp_cli_20mb_instance_bounded_memory_and_sigterm(tmp_path: Path) -> None:
    """dcmtk storescu -> ``aiodimse storescp``: a 20 MB instance arrives intact; the SCP's
    resident memory grows by far less than the instance; SIGTERM exits 0 and leaves no
    temporary file."""
    exe = peers.require_peer("dcmtk storescu", "storescu")
    gen = datagen.write_streamed(tmp_path / "src", 20 << 20, seed=3)
    out = tmp_path / "out"
    port = peers.free_port()
    proc = subprocess.Popen(
        [
            sys.executable, "-m", "aiodimse", "storescp", str(port), "--bind", "127.0.0.1",
            "-od", str(out), "--max-pdu", "65536",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        peers.wait_for_port(port, timeout=20, proc=proc)
        with ResourceProbe(proc, interval=0.005) as probe:
            baseline = probe.snapshot().last_rss  # idle, listening
            for _ in range(2):  # twice: the same instance replaces the first copy
                done = peers.run_dcmtk_storescu(port, [gen.path], binary=exe)
                assert done.returncode == 0, done.stdout + done.stderr
        growth = probe.result.peak_rss - baseline
        print(f"storescp peak RSS growth for a 20 MiB instance: {growth / 2**20:.1f} MiB")
        assert growth < 16 << 20, f"peak RSS grew by {growth / 2**20:.1f} MiB for a 20 MiB instance"
    finally:
        if os.name != "nt":
            proc.send_signal(signal.SIGTERM)
        else:  # pragma: no cover
            proc.terminate()
        stdout, stderr = proc.communicate(timeout=20)
    assert proc.returncode == 0, stderr
    assert "received 2 instance(s), 0 failed" in stdout
    stored = out / f"{gen.sop_instance_uid}.dcm"
    # dcmtk re-encodes the (small) undefined-length private sequence with explicit lengths;
    # the 20 MB Pixel Data value must be identical.
    n = gen.pixel_data_length
    assert n is not None
    assert sha(stored.read_bytes()[-n:]) == sha(gen.path.read_bytes()[-n:])
    assert str(pydicom.dcmread(stored, stop_before_pixels=True).PatientName) == gen.patient_name
    assert sorted(p.name for p in out.iterdir()) == [stored.name]
