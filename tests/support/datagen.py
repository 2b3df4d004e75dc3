"""Deterministic DICOM test-data generator (PS3.10 files and in-memory datasets).

Every output is a function of its :class:`Spec` (including ``seed``): the same spec gives the
same bytes, the same UIDs and the same pixels on every machine. UIDs are ``2.25.<int>`` values
derived with :func:`uuid.uuid5` from the seed and the role of the UID (PS3.5 B.2), so tests can
recompute them.

Kinds: CT Image, MR Image, Secondary Capture (single frame or multi-frame), Enhanced CT
(several frames with shared and per-frame functional group sequences). Transfer syntaxes:
Implicit VR LE, Explicit VR LE, Explicit VR BE, Deflated Explicit VR LE and JPEG Baseline
(real JPEG bytes from Pillow, encapsulated with a Basic Offset Table, PS3.5 A.4).

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
import enum
import io
import uuid
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import numpy.typing as npt
from PIL import Image
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.filewriter import dcmwrite
from pydicom.sequence import Sequence as DicomSequence
from pydicom.uid import (
    UID,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEGBaseline8Bit,
)

__all__ = [
    "IMPLEMENTATION_CLASS_UID",
    "IMPLEMENTATION_VERSION_NAME",
    "PATIENT_NAME_UMLAUT",
    "PRIVATE_CREATOR",
    "TRANSFER_SYNTAXES",
    "Charset",
    "Generated",
    "Kind",
    "Spec",
    "derive_uid",
    "iter_streamed_chunks",
    "main",
    "make_dataset",
    "standard_corpus",
    "write_corpus",
    "write_file",
    "write_streamed",
]

# Our own UID namespace: 2.25.<UUID as integer> (PS3.5 B.2).
_NAMESPACE = uuid.UUID("6f1c1a1e-3c51-4c1d-9a0e-a10d1e5e0001")


def derive_uid(*parts: object) -> UID:
    """Return a deterministic ``2.25.<int>`` UID derived from ``parts`` (PS3.5 B.2)."""
    name = "/".join(str(p) for p in parts)
    return UID(f"2.25.{uuid.uuid5(_NAMESPACE, name).int}")


IMPLEMENTATION_CLASS_UID: UID = derive_uid("aiodimse-tests", "implementation-class")
IMPLEMENTATION_VERSION_NAME = "AIODIMSE_TEST"
PATIENT_NAME_UMLAUT = "Müller^Jürgen"
PRIVATE_CREATOR = "AIODIMSE TEST"
PRIVATE_GROUP = 0x0009

TRANSFER_SYNTAXES: tuple[UID, ...] = (
    ImplicitVRLittleEndian,
    ExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    DeflatedExplicitVRLittleEndian,
    JPEGBaseline8Bit,
)

_CT_IMAGE = UID("1.2.840.10008.5.1.4.1.1.2")
_ENHANCED_CT_IMAGE = UID("1.2.840.10008.5.1.4.1.1.2.1")
_MR_IMAGE = UID("1.2.840.10008.5.1.4.1.1.4")
_SECONDARY_CAPTURE = UID("1.2.840.10008.5.1.4.1.1.7")
_MF_GRAYSCALE_BYTE_SC = UID("1.2.840.10008.5.1.4.1.1.7.2")
_MF_GRAYSCALE_WORD_SC = UID("1.2.840.10008.5.1.4.1.1.7.3")
_MF_TRUE_COLOR_SC = UID("1.2.840.10008.5.1.4.1.1.7.4")


class Kind(enum.Enum):
    """What kind of image object to generate."""

    CT = "ct"
    MR = "mr"
    SC = "sc"
    ENHANCED_CT = "enhanced-ct"


class Charset(enum.Enum):
    """Specific Character Set (0008,0005) used for text values (PS3.3 C.12.1.1.2)."""

    DEFAULT = ""  # ISO-IR 6 (ASCII); names must then be ASCII
    LATIN1 = "ISO_IR 100"
    UTF8 = "ISO_IR 192"

    @property
    def python_codec(self) -> str:
        """The Python codec that encodes text values under this character set."""
        return {"": "ascii", "ISO_IR 100": "latin-1", "ISO_IR 192": "utf-8"}[self.value]


@dataclass(frozen=True, slots=True, kw_only=True)
class Spec:
    """Everything that determines a generated object. Same spec -> same bytes."""

    kind: Kind = Kind.CT
    transfer_syntax: UID = ExplicitVRLittleEndian
    charset: Charset = Charset.LATIN1
    patient_name: str = PATIENT_NAME_UMLAUT
    patient_id: str = "AIODIMSE-0001"
    seed: int = 0
    rows: int = 64
    columns: int = 64
    #: Number of frames; > 1 only for ENHANCED_CT and SC (multi-frame SC SOP classes).
    frames: int = 1
    #: SC only: 3 = RGB (YBR_FULL_422 under JPEG Baseline), 1 = grayscale.
    samples_per_pixel: int = 1
    private_tags: bool = True
    #: Write every sequence and item with undefined length (0xFFFFFFFF + delimiters).
    undefined_length_sequences: bool = True
    jpeg_quality: int = 90

    def __post_init__(self) -> None:
        if self.transfer_syntax not in TRANSFER_SYNTAXES:
            raise ValueError(f"unsupported transfer syntax {self.transfer_syntax}")
        if self.transfer_syntax == JPEGBaseline8Bit and self.kind is not Kind.SC:
            # PS3.5 A.4.1: JPEG Baseline is 8-bit; CT/MR/Enhanced CT need 12-16 bits stored.
            raise ValueError("JPEG Baseline is only generated for Secondary Capture (8-bit)")
        if self.frames < 1 or (self.frames > 1 and self.kind in (Kind.CT, Kind.MR)):
            raise ValueError(f"{self.kind.name} is single-frame; frames={self.frames}")
        if self.samples_per_pixel not in (1, 3) or (
            self.samples_per_pixel == 3 and self.kind is not Kind.SC
        ):
            raise ValueError("samples_per_pixel=3 only for Secondary Capture")
        if not (1 <= self.rows <= 0xFFFF and 1 <= self.columns <= 0xFFFF):
            raise ValueError("rows and columns must be in 1..65535")
        if self.charset is Charset.DEFAULT and not self.patient_name.isascii():
            raise ValueError("a non-ASCII patient name needs ISO_IR 100 or ISO_IR 192")

    @property
    def sop_class_uid(self) -> UID:
        """SOP Class UID for this kind / frame count / colour."""
        if self.kind is Kind.CT:
            return _CT_IMAGE
        if self.kind is Kind.MR:
            return _MR_IMAGE
        if self.kind is Kind.ENHANCED_CT:
            return _ENHANCED_CT_IMAGE
        if self.frames == 1:
            return _SECONDARY_CAPTURE
        return _MF_TRUE_COLOR_SC if self.samples_per_pixel == 3 else _MF_GRAYSCALE_BYTE_SC

    @property
    def bits_allocated(self) -> int:
        """8 for Secondary Capture, 16 otherwise."""
        return 8 if self.kind is Kind.SC else 16

    def _uid(self, role: str) -> UID:
        # Every field takes part, so two different specs never share an instance UID.
        values = [getattr(self, name) for name in self.__dataclass_fields__]
        return derive_uid("spec", role, *values)

    @property
    def study_instance_uid(self) -> UID:
        """Study Instance UID (depends only on the seed: one study per seed)."""
        return derive_uid("study", self.seed)

    @property
    def series_instance_uid(self) -> UID:
        """Series Instance UID (one series per seed and kind)."""
        return derive_uid("series", self.seed, self.kind.value)

    @property
    def sop_instance_uid(self) -> UID:
        """SOP Instance UID (derived from every field of the spec)."""
        return self._uid("sop-instance")


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


# --------------------------------------------------------------------------- pixels


def _frames_array(spec: Spec) -> npt.NDArray[np.generic]:
    """Pixel values, shape (frames, rows, columns[, samples]): a gradient plus seeded noise.

    The gradient keeps JPEG output realistic; the noise makes every seed different.
    """
    rng = np.random.Generator(np.random.PCG64(spec.seed))
    rows, cols = spec.rows, spec.columns
    yy, xx = np.mgrid[0:rows, 0:cols]
    base = (yy * 3 + xx * 5).astype(np.int64)
    frames = []
    for i in range(spec.frames):
        noise = rng.integers(0, 16, size=(rows, cols), dtype=np.int64)
        frames.append(base + noise + 7 * i)
    arr = np.stack(frames)
    if spec.bits_allocated == 8:
        arr8 = (arr % 256).astype(np.uint8)
        if spec.samples_per_pixel == 3:
            return np.stack([arr8, 255 - arr8, (arr8 // 2 + 64).astype(np.uint8)], axis=-1)
        return arr8
    return (arr % 4096).astype(np.uint16)  # 12 bits stored


def expected_pixels(spec: Spec) -> npt.NDArray[np.generic]:
    """The pixel array ``make_dataset(spec).pixel_array`` decodes to (uncompressed TS).

    Shape is (rows, cols[, samples]) for one frame, (frames, rows, cols[, samples]) otherwise.
    """
    arr = _frames_array(spec)
    return arr[0] if spec.frames == 1 else arr


def _jpeg_frame(frame: npt.NDArray[np.generic], quality: int) -> bytes:
    out = io.BytesIO()
    if frame.ndim == 3:
        # subsampling=1 is 4:2:2, matching YBR_FULL_422 (PS3.3 C.7.6.3.1.2).
        Image.fromarray(frame, mode="RGB").save(out, format="JPEG", quality=quality, subsampling=1)
    else:
        Image.fromarray(frame, mode="L").save(out, format="JPEG", quality=quality)
    return out.getvalue()


# --------------------------------------------------------------------------- datasets


def _common(ds: Dataset, spec: Spec) -> None:
    if spec.charset is not Charset.DEFAULT:
        ds.SpecificCharacterSet = spec.charset.value
    ds.ImageType = (
        ["ORIGINAL", "PRIMARY", "AXIAL"]
        if spec.kind is not Kind.SC
        else [
            "DERIVED",
            "SECONDARY",
        ]
    )
    ds.SOPClassUID = spec.sop_class_uid
    ds.SOPInstanceUID = spec.sop_instance_uid
    ds.StudyDate = "20240102"
    ds.StudyTime = "030405"
    ds.ContentDate = "20240102"
    ds.ContentTime = "030405"
    ds.AccessionNumber = f"ACC{spec.seed:06d}"
    ds.Modality = {Kind.CT: "CT", Kind.MR: "MR", Kind.SC: "OT", Kind.ENHANCED_CT: "CT"}[spec.kind]
    ds.Manufacturer = "aiodimse tests"
    ds.ReferringPhysicianName = ""
    ds.StudyDescription = "Prüfung Übersicht"
    ds.SeriesDescription = f"{spec.kind.value} seed {spec.seed}"
    ds.PatientName = spec.patient_name
    ds.PatientID = spec.patient_id
    ds.PatientBirthDate = "19700101"
    ds.PatientSex = "M"
    ds.StudyInstanceUID = spec.study_instance_uid
    ds.SeriesInstanceUID = spec.series_instance_uid
    ds.StudyID = "1"
    ds.SeriesNumber = 1
    ds.InstanceNumber = 1


def _image_pixel_module(ds: Dataset, spec: Spec) -> None:
    ds.SamplesPerPixel = spec.samples_per_pixel
    if spec.samples_per_pixel == 3:
        ds.PhotometricInterpretation = (
            "YBR_FULL_422" if spec.transfer_syntax == JPEGBaseline8Bit else "RGB"
        )
        ds.PlanarConfiguration = 0
    else:
        ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = spec.rows
    ds.Columns = spec.columns
    ds.BitsAllocated = spec.bits_allocated
    ds.BitsStored = 8 if spec.bits_allocated == 8 else 12
    ds.HighBit = ds.BitsStored - 1
    ds.PixelRepresentation = 0
    if spec.frames > 1 or spec.kind is Kind.ENHANCED_CT:
        ds.NumberOfFrames = spec.frames  # Type 1 in multi-frame IODs (PS3.3 C.7.6.6)


def _kind_specific(ds: Dataset, spec: Spec) -> None:
    if spec.kind in (Kind.CT, Kind.MR):
        ds.PixelSpacing = [0.5, 0.5]
        ds.SliceThickness = 1.0
        ds.ImagePositionPatient = [0.0, 0.0, 0.0]
        ds.ImageOrientationPatient = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0]
        ds.FrameOfReferenceUID = derive_uid("for", spec.seed)
    if spec.kind is Kind.CT:
        ds.KVP = 120
        ds.RescaleIntercept = -1024
        ds.RescaleSlope = 1
    elif spec.kind is Kind.MR:
        ds.ScanningSequence = "SE"
        ds.SequenceVariant = "NONE"
        ds.ScanOptions = ""
        ds.MRAcquisitionType = "2D"
        ds.EchoTime = 10.0
        ds.RepetitionTime = 500.0
        ds.MagneticFieldStrength = 1.5
    elif spec.kind is Kind.SC:
        ds.ConversionType = "WSD"
    elif spec.kind is Kind.ENHANCED_CT:
        _enhanced_ct(ds, spec)


def _item(**kwargs: object) -> Dataset:
    item = Dataset()
    for key, value in kwargs.items():
        setattr(item, key, value)
    return item


def _enhanced_ct(ds: Dataset, spec: Spec) -> None:
    """Multi-frame functional groups (PS3.3 C.7.6.16) and dimensions (C.7.6.17)."""
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL", "NONE"]
    ds.FrameOfReferenceUID = derive_uid("for", spec.seed)
    ds.ContentQualification = "RESEARCH"
    ds.BurnedInAnnotation = "NO"
    ds.PresentationLUTShape = "IDENTITY"
    ds.AcquisitionDateTime = "20240102030405"
    dim_org = derive_uid("dimension-organization", spec.seed)
    ds.DimensionOrganizationSequence = DicomSequence([_item(DimensionOrganizationUID=dim_org)])
    ds.DimensionIndexSequence = DicomSequence(
        [
            _item(
                DimensionOrganizationUID=dim_org,
                DimensionIndexPointer=0x00209056,  # Stack ID
                FunctionalGroupPointer=0x00209111,  # Frame Content Sequence
            ),
            _item(
                DimensionOrganizationUID=dim_org,
                DimensionIndexPointer=0x00209057,  # In-Stack Position Number
                FunctionalGroupPointer=0x00209111,
            ),
        ]
    )
    ds.SharedFunctionalGroupsSequence = DicomSequence(
        [
            _item(
                PixelMeasuresSequence=DicomSequence(
                    [_item(PixelSpacing=[0.5, 0.5], SliceThickness=1.0)]
                ),
                PlaneOrientationSequence=DicomSequence(
                    [_item(ImageOrientationPatient=[1.0, 0.0, 0.0, 0.0, 1.0, 0.0])]
                ),
                PixelValueTransformationSequence=DicomSequence(
                    [_item(RescaleIntercept=-1024, RescaleSlope=1, RescaleType="HU")]
                ),
                CTImageFrameTypeSequence=DicomSequence(
                    [_item(FrameType=["ORIGINAL", "PRIMARY", "AXIAL", "NONE"])]
                ),
            )
        ]
    )
    ds.PerFrameFunctionalGroupsSequence = DicomSequence(
        [
            _item(
                FrameContentSequence=DicomSequence(
                    [
                        _item(
                            StackID="1",
                            InStackPositionNumber=i + 1,
                            DimensionIndexValues=[1, i + 1],
                        )
                    ]
                ),
                PlanePositionSequence=DicomSequence(
                    [_item(ImagePositionPatient=[0.0, 0.0, float(i)])]
                ),
            )
            for i in range(spec.frames)
        ]
    )


def _private(ds: Dataset) -> None:
    """A private creator with a few private elements, including a private sequence."""
    block = ds.private_block(PRIVATE_GROUP, PRIVATE_CREATOR, create=True)
    block.add_new(0x10, "LO", "private string")
    block.add_new(0x11, "UL", 0x12345678)
    block.add_new(0x12, "OB", bytes(range(16)))
    block.add_new(0x13, "SQ", DicomSequence([_item(StationName="PRIVSEQ")]))


def _set_sequence_lengths(ds: Dataset, undefined: bool) -> None:
    """Mark every sequence and item (recursively) as undefined or defined length."""
    for elem in ds:
        if elem.VR == "SQ":
            elem.is_undefined_length = undefined
            for item in elem.value:
                item.is_undefined_length_sequence_item = undefined
                _set_sequence_lengths(item, undefined)


def _file_meta(spec: Spec) -> FileMetaDataset:
    meta = FileMetaDataset()
    meta.FileMetaInformationVersion = b"\x00\x01"
    meta.MediaStorageSOPClassUID = spec.sop_class_uid
    meta.MediaStorageSOPInstanceUID = spec.sop_instance_uid
    meta.TransferSyntaxUID = spec.transfer_syntax
    meta.ImplementationClassUID = IMPLEMENTATION_CLASS_UID
    meta.ImplementationVersionName = IMPLEMENTATION_VERSION_NAME
    return meta


def _dataset_without_pixels(spec: Spec) -> Dataset:
    ds = Dataset()
    ds.file_meta = _file_meta(spec)
    _common(ds, spec)
    _image_pixel_module(ds, spec)
    _kind_specific(ds, spec)
    if spec.private_tags:
        _private(ds)
    return ds


def make_dataset(spec: Spec | None = None) -> Dataset:
    """Return the dataset for ``spec`` (with ``file_meta``), ready for :func:`write_file`.

    Pixel Data is native (byte order of the transfer syntax) or, for JPEG Baseline, real JPEG
    frames encapsulated with a Basic Offset Table (PS3.5 A.4).
    """
    spec = spec or Spec()
    ds = _dataset_without_pixels(spec)
    frames = _frames_array(spec)
    if spec.transfer_syntax == JPEGBaseline8Bit:
        ds.LossyImageCompression = "01"
        ds.LossyImageCompressionMethod = "ISO_10918_1"
        encoded = [_jpeg_frame(f, spec.jpeg_quality) for f in frames]
        ds.PixelData = encapsulate(encoded, has_bot=True)
        ds["PixelData"].VR = "OB"
        ds["PixelData"].is_undefined_length = True
    else:
        big = spec.transfer_syntax == ExplicitVRBigEndian
        dtype = frames.dtype.newbyteorder(">" if big else "<")
        raw = frames.astype(dtype).tobytes()
        ds.PixelData = raw + (b"\x00" if len(raw) % 2 else b"")
        ds["PixelData"].VR = "OB" if spec.bits_allocated == 8 else "OW"
    _set_sequence_lengths(ds, spec.undefined_length_sequences)
    return ds


def _to_generated(path: Path, spec: Spec, **extra: int) -> Generated:
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
        **extra,  # type: ignore[arg-type]
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
    ds = _dataset_without_pixels(spec)
    # Multi-frame Grayscale Word SC (PS3.3 A.8.3): 16 bits allocated, 12 stored.
    ds.SOPClassUID = _MF_GRAYSCALE_WORD_SC
    ds.file_meta.MediaStorageSOPClassUID = _MF_GRAYSCALE_WORD_SC
    ds.NumberOfFrames = frames
    ds.BitsAllocated = 16
    ds.BitsStored = 12
    ds.HighBit = 11
    ds.FrameIncrementPointer = 0x00181063  # Frame Time
    ds.FrameTime = 40.0
    _set_sequence_lengths(ds, True)
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
    gen = _to_generated(path, spec, pixel_data_offset=offset, pixel_data_length=pixel_len)
    # ``spec`` describes the geometry; the SOP class is the Word SC one, not spec's Byte SC.
    return replace(gen, sop_class_uid=_MF_GRAYSCALE_WORD_SC)


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
    assert data[128:132] == b"DICM"
    # Group 2 starts with (0002,0000) UL, explicit VR: 12 bytes, value = group length.
    group_len = int.from_bytes(data[140:144], "little")
    start = 144 + group_len
    return zlib.decompress(data[start:], -zlib.MAX_WBITS)


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
