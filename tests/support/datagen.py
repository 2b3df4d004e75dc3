"""Deterministic DICOM test files (PS3.10) and their CLI; see :mod:`tests.support.datasets`.

Every file is a function of its :class:`Spec`: same spec, same bytes. Written files have the
128-byte preamble, ``DICM``, group 2 with its group length, Media Storage SOP Class/Instance
UIDs equal to the dataset's, and our own Implementation Class UID (PS3.10 7.1).

Large files: :func:`write_streamed` writes the dataset without Pixel Data through pydicom and
then appends the Pixel Data element by hand: the tag ``(7FE0,0010)``, for explicit VR the VR
``OW`` plus two reserved zero bytes, a 32-bit little-endian value length equal to the exact
number of pixel bytes that follow (PS3.5 7.1.2), then the pixels in chunks of at most
``chunk_size`` bytes generated on the fly. Nothing larger than one chunk is ever in memory.
Pixel Data is the last top-level element, so appending it keeps the dataset in tag order.

CLI: ``python -m tests.support.datagen --help``.
"""

from __future__ import annotations

import argparse
import io
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from pydicom.filewriter import dcmwrite
from pydicom.uid import (
    UID,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEGBaseline8Bit,
)

from tests.support.datasets import (
    IMPLEMENTATION_CLASS_UID,
    IMPLEMENTATION_VERSION_NAME,
    MF_GRAYSCALE_WORD_SC,
    PATIENT_NAME_UMLAUT,
    PRIVATE_CREATOR,
    PRIVATE_GROUP,
    TRANSFER_SYNTAXES,
    Charset,
    Kind,
    Spec,
    dataset_without_pixels,
    derive_uid,
    expected_pixels,
    make_dataset,
    set_sequence_lengths,
)

__all__ = [
    "IMPLEMENTATION_CLASS_UID",
    "IMPLEMENTATION_VERSION_NAME",
    "PATIENT_NAME_UMLAUT",
    "PRIVATE_CREATOR",
    "PRIVATE_GROUP",
    "TRANSFER_SYNTAXES",
    "Charset",
    "Generated",
    "Kind",
    "Spec",
    "dataset_bytes",
    "default_filename",
    "derive_uid",
    "expected_pixels",
    "file_bytes",
    "inflate_dataset_bytes",
    "iter_streamed_chunks",
    "main",
    "make_dataset",
    "standard_corpus",
    "write_corpus",
    "write_file",
    "write_streamed",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class Generated:
    """A file written by this module and the identifiers a test needs to find it again."""

    path: Path
    spec: Spec
    sop_class_uid: UID
    sop_instance_uid: UID
    study_instance_uid: UID
    series_instance_uid: UID
    transfer_syntax_uid: UID
    patient_name: str
    patient_id: str
    size: int
    #: Byte offset of the Pixel Data value in the file (streamed files only, else None).
    pixel_data_offset: int | None = None
    pixel_data_length: int | None = None


def _to_generated(
    path: Path, spec: Spec, *, offset: int | None = None, length: int | None = None
) -> Generated:
    return Generated(
        path=path,
        spec=spec,
        sop_class_uid=spec.sop_class_uid,
        sop_instance_uid=spec.sop_instance_uid,
        study_instance_uid=spec.study_instance_uid,
        series_instance_uid=spec.series_instance_uid,
        transfer_syntax_uid=spec.transfer_syntax,
        patient_name=spec.patient_name,
        patient_id=spec.patient_id,
        size=path.stat().st_size,
        pixel_data_offset=offset,
        pixel_data_length=length,
    )


def default_filename(spec: Spec) -> str:
    """``<kind>-<ts-short>-<charset>-s<seed>.dcm``; stable and filesystem-safe."""
    ts_short = {
        ImplicitVRLittleEndian: "ivrle",
        ExplicitVRLittleEndian: "evrle",
        ExplicitVRBigEndian: "evrbe",
        DeflatedExplicitVRLittleEndian: "deflate",
        JPEGBaseline8Bit: "jpeg",
    }[spec.transfer_syntax]
    cs = {Charset.DEFAULT: "ascii", Charset.LATIN1: "latin1", Charset.UTF8: "utf8"}
    return f"{spec.kind.value}-{ts_short}-{cs[spec.charset]}-s{spec.seed}.dcm"


def write_file(spec: Spec | None, directory: Path | str, filename: str | None = None) -> Generated:
    """Write ``make_dataset(spec)`` as a PS3.10 file into ``directory`` and describe it.

    The file has the 128-byte preamble, ``DICM``, group 2 with its group length, Media
    Storage SOP Class/Instance UIDs equal to the dataset's, and our Implementation Class UID
    (PS3.10 7.1).
    """
    spec = spec or Spec()
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / (filename or default_filename(spec))
    dcmwrite(path, make_dataset(spec), enforce_file_format=True)
    return _to_generated(path, spec)


def file_bytes(spec: Spec | None = None) -> bytes:
    """The PS3.10 file :func:`write_file` would write, in memory."""
    buf = io.BytesIO()
    dcmwrite(buf, make_dataset(spec or Spec()), enforce_file_format=True)
    return buf.getvalue()


def _dataset_start(data: bytes) -> int:
    if data[128:132] != b"DICM":
        raise ValueError("not a PS3.10 file (no DICM prefix)")
    # PS3.10 7.1: group 2 opens with (0002,0000) UL, explicit VR LE: 12 bytes, value = length
    # of the rest of group 2.
    return 144 + int.from_bytes(data[140:144], "little")


def dataset_bytes(spec: Spec | None = None) -> bytes:
    """The dataset encoded in its transfer syntax without preamble or file meta.

    This is what a C-STORE carries as its data set on the wire (PS3.7 9.3.1.1, deflated for
    the Deflated transfer syntax as PS3.5 A.5 requires on the network too).
    """
    data = file_bytes(spec)
    return data[_dataset_start(data) :]


# --------------------------------------------------------------------------- streaming

_STREAM_ROWS = 512
_STREAM_COLS = 512
_STREAM_FRAME_BYTES = _STREAM_ROWS * _STREAM_COLS * 2


def iter_streamed_chunks(
    total_bytes: int, seed: int = 0, chunk_size: int = 4 << 20
) -> Iterator[bytes]:
    """Yield the Pixel Data bytes of a streamed file, ``chunk_size`` at a time.

    Chunk ``i`` is a seeded random block of 16-bit words plus ``i`` (mod 4096), so content is
    deterministic, differs between chunks and costs one random block per call.
    """
    if chunk_size <= 0 or chunk_size % 2:
        raise ValueError("chunk_size must be a positive even number")
    rng = np.random.Generator(np.random.PCG64(seed))
    words = rng.integers(0, 4096, size=chunk_size // 2, dtype=np.uint16)
    written = 0
    index = 0
    while written < total_bytes:
        n = min(chunk_size, total_bytes - written)
        chunk = ((words + np.uint16(index)) & np.uint16(0x0FFF)).astype("<u2").tobytes()
        yield chunk[:n]
        written += n
        index += 1


def write_streamed(
    directory: Path | str,
    size: int,
    *,
    seed: int = 0,
    transfer_syntax: UID = ExplicitVRLittleEndian,
    chunk_size: int = 4 << 20,
    charset: Charset = Charset.LATIN1,
    filename: str | None = None,
) -> Generated:
    """Write a Multi-frame Grayscale Word SC file of about ``size`` bytes, streamed to disk.

    Frames are 512x512x16 bit; the frame count is chosen so the file is ``size`` bytes
    rounded to a whole frame (at least one frame). Only Implicit and Explicit VR Little
    Endian are supported (their Pixel Data bytes are the chunks as generated). See the module
    docstring for the layout; ``Generated.pixel_data_offset/length`` locate the value.
    """
    if transfer_syntax not in (ImplicitVRLittleEndian, ExplicitVRLittleEndian):
        raise ValueError("streamed files support Implicit/Explicit VR Little Endian only")
    frames = max(1, round(size / _STREAM_FRAME_BYTES))
    spec = Spec(
        kind=Kind.SC,
        transfer_syntax=transfer_syntax,
        charset=charset,
        seed=seed,
        rows=_STREAM_ROWS,
        columns=_STREAM_COLS,
        frames=frames,
    )
    ds = dataset_without_pixels(spec)
    # Multi-frame Grayscale Word SC (PS3.3 A.8.3): 16 bits allocated, 12 stored.
    ds.SOPClassUID = MF_GRAYSCALE_WORD_SC
    ds.file_meta.MediaStorageSOPClassUID = MF_GRAYSCALE_WORD_SC
    ds.NumberOfFrames = frames
    ds.BitsAllocated = 16
    ds.BitsStored = 12
    ds.HighBit = 11
    ds.FrameIncrementPointer = 0x00181063  # Frame Time
    ds.FrameTime = 40.0
    set_sequence_lengths(ds, True)
    pixel_len = frames * _STREAM_FRAME_BYTES
    if pixel_len > 0xFFFFFFFE:
        raise ValueError("Pixel Data length must fit in 32 bits (< 4 GiB)")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / (filename or f"streamed-{size}-s{seed}.dcm")
    with path.open("wb") as fp:
        dcmwrite(fp, ds, enforce_file_format=True)
        # PS3.5 7.1.1/7.1.2: tag (group, element) little endian; explicit VR adds "OW" + 2
        # reserved bytes and a 32-bit length; implicit VR has the 32-bit length directly.
        header = b"\xe0\x7f\x10\x00"
        if transfer_syntax == ExplicitVRLittleEndian:
            header += b"OW\x00\x00"
        header += pixel_len.to_bytes(4, "little")
        fp.write(header)
        offset = fp.tell()
        for chunk in iter_streamed_chunks(pixel_len, seed, chunk_size):
            fp.write(chunk)
    gen = _to_generated(path, spec, offset=offset, length=pixel_len)
    # ``spec`` describes the geometry; the SOP class is the Word SC one, not spec's Byte SC.
    return replace(gen, sop_class_uid=MF_GRAYSCALE_WORD_SC)


# --------------------------------------------------------------------------- corpus


def standard_corpus(seed: int = 0) -> list[Spec]:
    """One spec per interesting combination: every kind, every TS, both umlaut charsets."""
    specs: list[Spec] = []
    for ts in TRANSFER_SYNTAXES:
        if ts == JPEGBaseline8Bit:
            specs.append(Spec(kind=Kind.SC, transfer_syntax=ts, seed=seed))
            specs.append(Spec(kind=Kind.SC, transfer_syntax=ts, seed=seed, frames=3))
            specs.append(Spec(kind=Kind.SC, transfer_syntax=ts, seed=seed, samples_per_pixel=3))
            continue
        for kind in Kind:
            frames = 4 if kind is Kind.ENHANCED_CT else 1
            specs.append(Spec(kind=kind, transfer_syntax=ts, seed=seed, frames=frames))
    specs.append(Spec(kind=Kind.CT, charset=Charset.UTF8, seed=seed))
    specs.append(
        Spec(kind=Kind.MR, charset=Charset.UTF8, seed=seed, undefined_length_sequences=False)
    )
    specs.append(Spec(kind=Kind.SC, charset=Charset.DEFAULT, patient_name="Doe^John", seed=seed))
    return specs


def write_corpus(
    directory: Path | str, specs: Sequence[Spec] | None = None, seed: int = 0
) -> list[Generated]:
    """Write every spec (default: :func:`standard_corpus`) with unique file names."""
    out: list[Generated] = []
    seen: set[str] = set()
    for spec in specs if specs is not None else standard_corpus(seed):
        name = default_filename(spec)
        if spec.frames > 1:
            name = name.replace(".dcm", f"-f{spec.frames}.dcm")
        if spec.samples_per_pixel == 3:
            name = name.replace(".dcm", "-rgb.dcm")
        if not spec.undefined_length_sequences:
            name = name.replace(".dcm", "-deflen.dcm")
        if name in seen:
            raise ValueError(f"duplicate file name {name}")
        seen.add(name)
        out.append(write_file(spec, directory, name))
    return out


def inflate_dataset_bytes(path: Path) -> bytes:
    """Return the inflated dataset bytes of a Deflated Explicit VR LE file (PS3.5 A.5).

    Useful for raw-byte checks on deflated files; the file meta (group 2) is skipped.
    """
    data = path.read_bytes()
    return zlib.decompress(data[_dataset_start(data) :], -zlib.MAX_WBITS)


# --------------------------------------------------------------------------- CLI

_TS_BY_NAME = {
    "implicit": ImplicitVRLittleEndian,
    "explicit": ExplicitVRLittleEndian,
    "big": ExplicitVRBigEndian,
    "deflate": DeflatedExplicitVRLittleEndian,
    "jpeg": JPEGBaseline8Bit,
}


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point; returns the exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m tests.support.datagen",
        description="Write deterministic DICOM test files into a directory.",
    )
    parser.add_argument("directory", type=Path, help="output directory (created if missing)")
    parser.add_argument("--seed", type=int, default=0, help="seed for pixels and UIDs")
    parser.add_argument(
        "--corpus", action="store_true", help="write the standard corpus (default if no --kind)"
    )
    parser.add_argument("--kind", choices=[k.value for k in Kind], help="write one object")
    parser.add_argument("--ts", choices=sorted(_TS_BY_NAME), default="explicit")
    parser.add_argument(
        "--charset", choices=["ascii", "latin1", "utf8"], default="latin1", help="text charset"
    )
    parser.add_argument("--patient-name", default=None)
    parser.add_argument("--rows", type=int, default=64)
    parser.add_argument("--columns", type=int, default=64)
    parser.add_argument("--frames", type=int, default=None)
    parser.add_argument(
        "--size",
        type=str,
        default=None,
        help="write a streamed multi-frame file of about this size (e.g. 20M, 1G)",
    )
    args = parser.parse_args(argv)
    charset = {"ascii": Charset.DEFAULT, "latin1": Charset.LATIN1, "utf8": Charset.UTF8}[
        args.charset
    ]
    written: list[Generated]
    if args.size is not None:
        written = [
            write_streamed(
                args.directory,
                _parse_size(args.size),
                seed=args.seed,
                transfer_syntax=_TS_BY_NAME[args.ts],
                charset=charset,
            )
        ]
    elif args.kind is not None:
        kind = Kind(args.kind)
        frames = args.frames or (4 if kind is Kind.ENHANCED_CT else 1)
        name = args.patient_name or (
            "Doe^John" if charset is Charset.DEFAULT else PATIENT_NAME_UMLAUT
        )
        spec = Spec(
            kind=kind,
            transfer_syntax=_TS_BY_NAME[args.ts],
            charset=charset,
            patient_name=name,
            seed=args.seed,
            rows=args.rows,
            columns=args.columns,
            frames=frames,
        )
        written = [write_file(spec, args.directory)]
    else:
        written = write_corpus(args.directory, seed=args.seed)
    for gen in written:
        print(f"{gen.path}\t{gen.size}\t{gen.transfer_syntax_uid}\t{gen.sop_instance_uid}")
    return 0


def _parse_size(text: str) -> int:
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    text = text.strip().upper().removesuffix("B")
    if text and text[-1] in units:
        return int(float(text[:-1]) * units[text[-1]])
    return int(text)


if __name__ == "__main__":
    raise SystemExit(main())
