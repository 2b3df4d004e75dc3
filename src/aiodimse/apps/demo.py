"""``aiodimse demo`` (``make demo``): C-STORE end to end against an embedded Storage SCP.

What it does, in order, and what it removes afterwards:

1. Generates realistic instances (50 KB to 1 MB: CT, MR, digital X-ray, and JPEG Baseline
   secondary captures and ultrasound when Pillow and numpy are installed) in a temporary
   directory, with the patient name ``Müller^Jürgen`` encoded in ISO_IR 100 (Latin-1) and
   in ISO_IR 192 (UTF-8). The generator is self-contained (pydicom, optionally numpy and
   Pillow, the ``test`` extras); without Pillow only uncompressed instances are made.
2. Starts the embedded Storage SCP (:func:`aiodimse.services.storage_scp.enable_storage`)
   on a free loopback port, writing to a second temporary directory (fsync on by default).
3. Opens one association proposing what the files need plus Verification, sends a C-ECHO,
   then C-STOREs every file with a progress bar (stderr on a terminal) or one progress line
   per instance.
4. Shows what arrived: file names, patient names decoded with their character set, sizes,
   and whether the received dataset bytes are identical to those sent (SHA-256, the file
   meta excepted), and the throughput.
5. Stops the SCP and removes both directories (``--keep`` leaves them and says where).

Exit status 0 when every instance was stored intact, 1 otherwise.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import importlib
import random
import shutil
import struct
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import anyio
import anyio.to_thread

from ..constants import (
    EXPLICIT_VR_LITTLE_ENDIAN,
    IMPLICIT_VR_LITTLE_ENDIAN,
    VERIFICATION_SOP_CLASS,
)
from ..errors import DicomError
from ._common import add_logging_flags, fail, run_tool, setup_logging

PATIENT = "Müller^Jürgen"
CHARSETS = ("ISO_IR 100", "ISO_IR 192")
_EXPLICIT_LE = EXPLICIT_VR_LITTLE_ENDIAN
_IMPLICIT_LE = IMPLICIT_VR_LITTLE_ENDIAN
_JPEG_BASELINE = "1.2.840.10008.1.2.4.50"
_TS_NAMES = {
    _EXPLICIT_LE: "Explicit VR LE",
    _IMPLICIT_LE: "Implicit VR LE",
    _JPEG_BASELINE: "JPEG Baseline",
}


def add_parser(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "demo",
        help="C-STORE end to end against an embedded Storage SCP on loopback",
        description=(
            "Generate realistic DICOM instances, start an embedded Storage SCP on loopback, "
            "echo it, send them, show what arrived and the throughput, then clean up."
        ),
    )
    p.add_argument("--count", type=int, default=12, metavar="N", help="instances to send (12)")
    p.add_argument("--seed", type=int, default=1, help="seed of the pixel generator (1)")
    p.add_argument(
        "--no-fsync", action="store_true", help="the SCP does not fsync before answering"
    )
    p.add_argument(
        "--keep", action="store_true", help="keep the generated and received files (print where)"
    )
    add_logging_flags(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    setup_logging(args)
    if args.count < 1:
        return fail("--count must be at least 1")
    work = Path(tempfile.mkdtemp(prefix="aiodimse-demo-"))
    try:
        result: int = run_tool(_main, args, work)
    finally:
        if args.keep:
            print(f"kept the files in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    return result


# ------------------------------------------------------------------------------ generator


@dataclass(frozen=True, slots=True, kw_only=True)
class Kind:
    """One kind of instance the generator makes."""

    label: str
    sop_class_uid: str
    modality: str
    rows: int
    columns: int
    transfer_syntax: str
    color: bool = False


_CT = "1.2.840.10008.5.1.4.1.1.2"
_MR = "1.2.840.10008.5.1.4.1.1.4"
_DX = "1.2.840.10008.5.1.4.1.1.1.1"
_SC = "1.2.840.10008.5.1.4.1.1.7"
_US = "1.2.840.10008.5.1.4.1.1.6.1"

UNCOMPRESSED_KINDS = (
    Kind(label="CT", sop_class_uid=_CT, modality="CT", rows=512, columns=512,
         transfer_syntax=_EXPLICIT_LE),
    Kind(label="MR", sop_class_uid=_MR, modality="MR", rows=256, columns=256,
         transfer_syntax=_IMPLICIT_LE),
    Kind(label="DX", sop_class_uid=_DX, modality="DX", rows=700, columns=700,
         transfer_syntax=_EXPLICIT_LE),
)  # fmt: skip
JPEG_KINDS = (
    Kind(label="SC", sop_class_uid=_SC, modality="OT", rows=768, columns=768,
         transfer_syntax=_JPEG_BASELINE),
    Kind(label="US", sop_class_uid=_US, modality="US", rows=480, columns=640,
         transfer_syntax=_JPEG_BASELINE, color=True),
)  # fmt: skip


@dataclass(frozen=True, slots=True, kw_only=True)
class Instance:
    """A generated file and what must arrive intact."""

    path: Path
    kind: Kind
    sop_instance_uid: str
    charset: str
    size: int
    dataset_sha256: str


def dataset_offset(data: bytes) -> int:
    """Where the dataset starts in a PS3.10 file: after preamble, ``DICM`` and group 0002.

    PS3.10 7.1: the File Meta Information starts with (0002,0000) File Meta Information
    Group Length, explicit VR little endian (UL, 4-byte value) at offset 132.
    """
    if data[128:132] != b"DICM" or data[132:136] != b"\x02\x00\x00\x00":
        raise ValueError("not a PS3.10 file with a File Meta Information Group Length")
    (length,) = struct.unpack_from("<I", data, 140)
    return 144 + int(length)


def dataset_sha256(path: Path) -> str:
    """SHA-256 of the dataset bytes of a PS3.10 file (the file meta excluded)."""
    data = path.read_bytes()
    return hashlib.sha256(memoryview(data)[dataset_offset(data) :]).hexdigest()


def _optional_imaging() -> tuple[Any, Any, str | None]:
    """(numpy, PIL.Image, why JPEG is off or None); numpy and Pillow are the test extras."""
    numpy: Any = None
    Image: Any = None
    with contextlib.suppress(ImportError):
        numpy = importlib.import_module("numpy")
    with contextlib.suppress(ImportError):
        Image = importlib.import_module("PIL.Image")
    if Image is None or numpy is None:
        missing = " and ".join(
            name for name, mod in (("Pillow", Image), ("numpy", numpy)) if mod is None
        )
        return numpy, Image, f"{missing} not installed: uncompressed instances only"
    return numpy, Image, None


def _gray16_pixels(numpy: Any, rng: random.Random, rows: int, cols: int) -> bytes:
    """A 12-bit phantom (a disc with structure and noise), little endian 16-bit."""
    if numpy is None:  # plain Python: a gradient with noise, slower but fine for a demo
        noise = rng.randbytes(rows * cols)
        values = [((r * 7 + c * 3) & 0x07FF) + noise[r * cols + c] for r in range(rows)
                  for c in range(cols)]  # fmt: skip
        return struct.pack(f"<{rows * cols}H", *values)
    gen = numpy.random.default_rng(rng.getrandbits(32))
    y, x = numpy.mgrid[0:rows, 0:cols]
    r = numpy.hypot((y - rows / 2) / (rows / 2), (x - cols / 2) / (cols / 2))
    img = numpy.where(r < 0.85, 1000 + 600 * numpy.cos(r * 9), 50)
    img = img + gen.normal(0, 40, size=(rows, cols))
    return bytes(numpy.clip(img, 0, 4095).astype("<u2").tobytes())


def _jpeg(numpy: Any, image_mod: Any, rng: random.Random, kind: Kind) -> bytes:
    """A JPEG Baseline (process 1) codestream: 8-bit grey or YCbCr 4:2:2 subsampled."""
    import io

    gen = numpy.random.default_rng(rng.getrandbits(32))
    rows, cols = kind.rows, kind.columns
    y, x = numpy.mgrid[0:rows, 0:cols]
    base = 128 + 90 * numpy.sin(x / 23.0) * numpy.cos(y / 31.0) + gen.normal(0, 10, (rows, cols))
    if kind.color:
        planes = [base, numpy.roll(base, 40, axis=1), 255 - base]
        arr = numpy.clip(numpy.stack(planes, axis=-1), 0, 255).astype("u1")
        img = image_mod.fromarray(arr, "RGB")
    else:
        img = image_mod.fromarray(numpy.clip(base, 0, 255).astype("u1"), "L")
    out = io.BytesIO()
    # 4:2:2 is what PS3.5 8.2.1 expects with YBR_FULL_422 for lossy JPEG colour.
    img.save(out, format="JPEG", quality=90, subsampling="4:2:2" if kind.color else 0)
    return out.getvalue()


def generate(directory: Path, count: int, seed: int) -> tuple[list[Instance], str | None]:
    """Write ``count`` instances to ``directory`` (blocking); returns them and a JPEG note."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.encaps import encapsulate
    from pydicom.filewriter import dcmwrite
    from pydicom.uid import UID, generate_uid

    numpy, image_mod, jpeg_off = _optional_imaging()
    kinds = UNCOMPRESSED_KINDS + (() if jpeg_off else JPEG_KINDS)
    rng = random.Random(seed)
    study = generate_uid()
    series = {k.label: generate_uid() for k in kinds}
    directory.mkdir(parents=True, exist_ok=True)
    out: list[Instance] = []
    for n in range(count):
        kind = kinds[n % len(kinds)]
        charset = CHARSETS[n % len(CHARSETS)]
        uid = generate_uid()
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = UID(kind.sop_class_uid)
        meta.MediaStorageSOPInstanceUID = uid
        meta.TransferSyntaxUID = UID(kind.transfer_syntax)
        ds = Dataset()
        ds.file_meta = meta
        ds.SpecificCharacterSet = charset
        ds.SOPClassUID = kind.sop_class_uid
        ds.SOPInstanceUID = uid
        ds.StudyDate = ds.SeriesDate = "20261123"
        ds.StudyTime = "094500"
        ds.AccessionNumber = "A2026-0042"
        ds.Modality = kind.modality
        ds.InstitutionName = "Klinikum Süd"
        ds.StudyDescription = "Demo Übersicht"
        ds.PatientName = PATIENT
        ds.PatientID = "MJ-1958"
        ds.PatientBirthDate = "19580314"
        ds.PatientSex = "M"
        ds.StudyInstanceUID = study
        ds.SeriesInstanceUID = series[kind.label]
        ds.StudyID = "1"
        ds.SeriesNumber = kinds.index(kind) + 1
        ds.InstanceNumber = n // len(kinds) + 1
        ds.Rows, ds.Columns = kind.rows, kind.columns
        if kind.transfer_syntax == _JPEG_BASELINE:
            ds.SamplesPerPixel = 3 if kind.color else 1
            ds.PhotometricInterpretation = "YBR_FULL_422" if kind.color else "MONOCHROME2"
            if kind.color:
                ds.PlanarConfiguration = 0
            ds.BitsAllocated = ds.BitsStored = 8
            ds.HighBit = 7
            ds.PixelRepresentation = 0
            ds.LossyImageCompression = "01"
            ds.PixelData = encapsulate([_jpeg(numpy, image_mod, rng, kind)])
            ds["PixelData"].VR = "OB"
            ds["PixelData"].is_undefined_length = True  # PS3.5 A.4: encapsulated
        else:
            ds.SamplesPerPixel = 1
            ds.PhotometricInterpretation = "MONOCHROME2"
            ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, 12, 11
            ds.PixelRepresentation = 0
            ds.WindowCenter, ds.WindowWidth = 1000, 2000
            ds.PixelData = _gray16_pixels(numpy, rng, kind.rows, kind.columns)
            ds["PixelData"].VR = "OW"
        path = directory / f"{n + 1:03d}-{kind.label}-{charset.replace(' ', '_')}.dcm"
        dcmwrite(path, ds, enforce_file_format=True)
        out.append(
            Instance(
                path=path,
                kind=kind,
                sop_instance_uid=uid,
                charset=charset,
                size=path.stat().st_size,
                dataset_sha256=dataset_sha256(path),
            )
        )
    return out, jpeg_off


# ------------------------------------------------------------------------------ what arrived


@dataclass(frozen=True, slots=True, kw_only=True)
class Arrived:
    """A received file as the demo reads it back."""

    path: Path
    sop_instance_uid: str
    patient_name: str
    charset: str
    transfer_syntax: str
    size: int
    dataset_sha256: str


def read_arrived(directory: Path) -> list[Arrived]:
    """Every ``*.dcm`` file under ``directory``, decoded without its pixel data (blocking)."""
    import pydicom

    found: list[Arrived] = []
    for path in sorted(directory.rglob("*.dcm")):
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        found.append(
            Arrived(
                path=path,
                sop_instance_uid=str(ds.SOPInstanceUID),
                patient_name=str(ds.get("PatientName", "")),
                charset=str(ds.get("SpecificCharacterSet", "")),
                transfer_syntax=str(ds.file_meta.TransferSyntaxUID),
                size=path.stat().st_size,
                dataset_sha256=dataset_sha256(path),
            )
        )
    return found


# ------------------------------------------------------------------------------ progress


class Progress:
    """Progress of the batch: a self-overwriting bar on a terminal, else lines only.

    ``store_many`` reports ``progress(bytes_sent, total)`` for the whole batch (dataset
    bytes), throttled; :meth:`finished` prints one line per answered instance.
    """

    WIDTH = 28

    def __init__(self, stream: TextIO, count: int, *, bar: bool) -> None:
        self.stream = stream
        self.count = count
        self.bar = bar
        self.done = 0
        self.started = time.monotonic()
        self._line = ""
        self._shown = False

    def update(self, sent: int, total: int) -> None:
        """``progress(bytes_sent, total)`` of the batch."""
        if not self.bar:
            return
        frac = min(sent / total, 1.0) if total else 1.0
        filled = int(frac * self.WIDTH)
        rate = sent / 1e6 / max(time.monotonic() - self.started, 1e-6)
        self._line = (
            f"  [{'#' * filled}{'.' * (self.WIDTH - filled)}] {frac * 100:5.1f}% "
            f"{sent / 1e6:6.2f}/{total / 1e6:.2f} MB {rate:7.1f} MB/s"
        )
        self._draw()

    def _draw(self) -> None:
        self.stream.write(f"\r{self._line} {self.done}/{self.count} instances")
        self.stream.flush()
        self._shown = True

    def finished(self, line: str) -> None:
        """One instance answered: print its line (above the bar), count it."""
        self.done += 1
        self.clear()
        print(line, flush=True)
        if self.bar and self._line:
            self._draw()

    def clear(self) -> None:
        if self._shown:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
            self._shown = False


# ------------------------------------------------------------------------------ the demo


def _mb(n: float) -> str:
    return f"{n / 1e6:.2f} MB" if n >= 1e6 else f"{n / 1e3:.0f} KB"


def _table(rows: Sequence[Sequence[str]], indent: str = "  ") -> Iterator[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        yield indent + "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()


async def _main(args: argparse.Namespace, work: Path) -> int:
    from ..services.ae import AE
    from ..services.contexts import Context
    from ..services.storage_scp import StorageOptions, enable_storage
    from ..services.storage_scu import StoreResult

    outgoing, incoming = work / "outgoing", work / "incoming"
    print("aiodimse demo: C-STORE end to end on loopback")
    t0 = time.monotonic()
    instances, jpeg_off = await anyio.to_thread.run_sync(generate, outgoing, args.count, args.seed)
    total = sum(i.size for i in instances)
    print(
        f"generated {len(instances)} instances, {_mb(total)}, in {time.monotonic() - t0:.1f} s"
        f" ({outgoing})"
    )
    if jpeg_off:
        print(f"  note: {jpeg_off} (pip install 'aiodimse[test]' for JPEG Baseline)")
    print(
        "\n".join(
            _table(
                [
                    (
                        i.path.name,
                        f"{i.kind.rows}x{i.kind.columns}" + (" RGB" if i.kind.color else ""),
                        _TS_NAMES[i.kind.transfer_syntax],
                        i.charset,
                        _mb(i.size),
                    )
                    for i in instances
                ]
            )
        )
    )

    durable = not args.no_fsync
    scp_ae = AE("DEMO_SCP")
    scp = enable_storage(scp_ae, StorageOptions(output_directory=incoming, durable=durable))
    scu_ae = AE("DEMO_SCU")
    results: list[StoreResult] = []
    async with scp_ae.serve("127.0.0.1", 0) as server:
        print(
            f"\nStorage SCP DEMO_SCP listening on 127.0.0.1:{server.port}, storing in "
            f"{incoming} ({'fsync before each success' if durable else 'no fsync'})"
        )
        bar = Progress(sys.stderr, len(instances), bar=sys.stderr.isatty() and not args.quiet)
        by_path = {i.path: i for i in instances}

        def on_result(result: StoreResult) -> None:
            inst = by_path.get(result.path) if result.path is not None else None
            name = inst.path.name if inst is not None else str(result.path)
            width = len(str(bar.count))
            bar.finished(f"  [{bar.done + 1:>{width}}/{bar.count}] {name}: {result.answer()}")

        try:
            async with scu_ae.associate_for_files(
                "127.0.0.1",
                server.port,
                [i.path for i in instances],
                called_ae="DEMO_SCP",
                extra_contexts=[Context(abstract_syntax=VERIFICATION_SOP_CLASS)],
            ) as assoc:
                n = assoc.negotiated
                print(
                    f"associated: {len(n.accepted)} presentation contexts accepted, "
                    f"peer max PDU {assoc.peer_max_pdu}"
                )
                echo = await assoc.echo()
                print(f"C-ECHO: 0x{echo.code:04X} {echo.meaning}")
                print(f"sending {len(instances)} instances over this association")
                bar.started = started = time.monotonic()
                results = await assoc.store_many(
                    [i.path for i in instances], progress=bar.update, on_result=on_result
                )
                elapsed = max(time.monotonic() - started, 1e-6)
        except DicomError as exc:
            bar.clear()
            return fail(f"the demo association failed: {exc}")
        finally:
            bar.clear()
        stats = scp.stats
    print("stopped the Storage SCP")

    stored = sum(1 for r in results if r.ok)
    sent = sum(r.bytes_sent for r in results)
    print(
        f"sent {stored} of {len(instances)} instances, {_mb(sent)} in {elapsed:.2f} s: "
        f"{sent / 1e6 / elapsed:.1f} MB/s, {len(results) / elapsed:.1f} instances/s "
        f"(SCP counted {stats.stored} stored, {stats.failed} failed)"
    )
    return _report(instances, await anyio.to_thread.run_sync(read_arrived, incoming))


def _report(instances: Sequence[Instance], arrived: Sequence[Arrived]) -> int:
    print("\nwhat arrived:")
    received = {a.sop_instance_uid: a for a in arrived}
    rows: list[tuple[str, ...]] = [("file", "patient name", "charset", "syntax", "size", "sha256")]
    intact = names = 0
    for inst in instances:
        got = received.get(inst.sop_instance_uid)
        if got is None:
            rows.append((f"(missing) {inst.path.name}", "", "", "", "", "MISSING"))
            continue
        same = got.dataset_sha256 == inst.dataset_sha256
        intact += same
        names += got.patient_name == PATIENT
        rows.append(
            (
                got.path.name,
                got.patient_name,
                got.charset,
                _TS_NAMES.get(got.transfer_syntax, got.transfer_syntax),
                _mb(got.size),
                ("match " if same else "DIFFERS ") + got.dataset_sha256[:12],
            )
        )
    print("\n".join(_table(rows)))
    count = len(instances)
    charsets = sorted({a.charset for a in arrived if a.patient_name == PATIENT})
    print(
        f"{len(received)}/{count} instances stored, {intact}/{count} with identical dataset "
        f"bytes (SHA-256), {names}/{count} patient names intact ({PATIENT} in "
        f"{' and '.join(charsets) or 'no charset'})"
    )
    ok = len(received) == count and intact == count and names == count
    print("demo OK" if ok else "demo FAILED")
    return 0 if ok else 1
