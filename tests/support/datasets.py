"""Deterministic DICOM datasets for tests: what to generate (:class:`Spec`) and how.

Every output is a function of its :class:`Spec` (including ``seed``): the same spec gives the
same bytes, the same UIDs and the same pixels on every machine. UIDs are ``2.25.<int>`` values
derived with :func:`uuid.uuid5` from the seed and every field of the spec (PS3.5 B.2), so tests
can recompute them.

Kinds: CT Image, MR Image, Secondary Capture (single frame or multi-frame), Enhanced CT
(several frames with shared and per-frame functional group sequences). Transfer syntaxes:
Implicit VR LE, Explicit VR LE, Explicit VR BE, Deflated Explicit VR LE and JPEG Baseline
(real JPEG bytes from Pillow, encapsulated with a Basic Offset Table, PS3.5 A.4).

Files, streaming of large files and the CLI are in :mod:`tests.support.datagen`, which
re-exports everything here.
"""

from __future__ import annotations

import enum
import io
import uuid
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from PIL import Image
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
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
    "MF_GRAYSCALE_WORD_SC",
    "PATIENT_NAME_UMLAUT",
    "PRIVATE_CREATOR",
    "PRIVATE_GROUP",
    "TRANSFER_SYNTAXES",
    "Charset",
    "Kind",
    "Spec",
    "dataset_without_pixels",
    "derive_uid",
    "expected_pixels",
    "make_dataset",
    "set_sequence_lengths",
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
MF_GRAYSCALE_WORD_SC = UID("1.2.840.10008.5.1.4.1.1.7.3")
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


def set_sequence_lengths(ds: Dataset, undefined: bool) -> None:
    """Mark every sequence and item (recursively) as undefined or defined length."""
    for elem in ds:
        if elem.VR == "SQ":
            elem.is_undefined_length = undefined
            for item in elem.value:
                item.is_undefined_length_sequence_item = undefined
                set_sequence_lengths(item, undefined)


def _file_meta(spec: Spec) -> FileMetaDataset:
    meta = FileMetaDataset()
    meta.FileMetaInformationVersion = b"\x00\x01"
    meta.MediaStorageSOPClassUID = spec.sop_class_uid
    meta.MediaStorageSOPInstanceUID = spec.sop_instance_uid
    meta.TransferSyntaxUID = spec.transfer_syntax
    meta.ImplementationClassUID = IMPLEMENTATION_CLASS_UID
    meta.ImplementationVersionName = IMPLEMENTATION_VERSION_NAME
    return meta


def dataset_without_pixels(spec: Spec) -> Dataset:
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
    ds = dataset_without_pixels(spec)
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
    set_sequence_lengths(ds, spec.undefined_length_sequences)
    return ds
