"""The generated test data is valid: pydicom and dcmtk read it, raw bytes are as promised."""

from __future__ import annotations

import io
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pydicom
import pytest
from PIL import Image
from pydicom.encaps import generate_frames, parse_basic_offsets
from pydicom.uid import (
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEGBaseline8Bit,
)

from tests.support import datagen, peers
from tests.support.datagen import Charset, Kind, Spec

LATIN1_NAME = b"M\xfcller^J\xfcrgen"
UTF8_NAME = b"M\xc3\xbcller^J\xc3\xbcrgen"
UNDEFINED = b"\xff\xff\xff\xff"
ITEM_UNDEFINED_LE = b"\xfe\xff\x00\xe0" + UNDEFINED
SEQ_DELIMITER_LE = b"\xfe\xff\xdd\xe0\x00\x00\x00\x00"

CORPUS = datagen.standard_corpus()


def _id(spec: Spec) -> str:
    return (
        datagen.default_filename(spec).removesuffix(".dcm")
        + (f"-f{spec.frames}" if spec.frames > 1 else "")
        + ("-rgb" if spec.samples_per_pixel == 3 else "")
        + ("" if spec.undefined_length_sequences else "-deflen")
    )


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> dict[Spec, datagen.Generated]:
    files = datagen.write_corpus(tmp_path_factory.mktemp("datagen"), CORPUS)
    return {g.spec: g for g in files}


def _dataset_bytes(gen: datagen.Generated) -> bytes:
    """The dataset part as encoded (inflated for deflate), for raw-byte checks."""
    if gen.transfer_syntax_uid == DeflatedExplicitVRLittleEndian:
        return datagen.inflate_dataset_bytes(gen.path)
    return gen.path.read_bytes()


def _group2_end(raw: bytes) -> int:
    """Walk the explicit VR LE group 2 elements after (0002,0000); return where they end."""
    pos = 144
    while raw[pos : pos + 2] == b"\x02\x00":
        vr = raw[pos + 4 : pos + 6]
        if vr in (b"OB", b"OW", b"UN", b"SQ", b"UT", b"UC", b"UR", b"OD", b"OF", b"OL"):
            pos += 12 + int.from_bytes(raw[pos + 8 : pos + 12], "little")
        else:
            pos += 8 + int.from_bytes(raw[pos + 6 : pos + 8], "little")
    return pos


def _dcmdump(path: Path) -> subprocess.CompletedProcess[str]:
    exe = peers.require_peer("dcmtk dcmdump", "dcmdump")
    return subprocess.run(
        [exe, "-E", str(path)],  # -E: stop on error (the default)
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
        encoding="utf-8",
        errors="replace",
    )


@pytest.mark.parametrize("spec", CORPUS, ids=_id)
def test_reads_back_with_pydicom(spec: Spec, corpus: dict[Spec, datagen.Generated]) -> None:
    gen = corpus[spec]
    raw = gen.path.read_bytes()
    assert raw[:128] == bytes(128) and raw[128:132] == b"DICM"  # PS3.10 7.1
    ds = pydicom.dcmread(gen.path)
    meta = ds.file_meta
    assert meta.MediaStorageSOPClassUID == ds.SOPClassUID == gen.sop_class_uid
    assert meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID == gen.sop_instance_uid
    assert meta.TransferSyntaxUID == gen.transfer_syntax_uid == spec.transfer_syntax
    assert meta.ImplementationClassUID == datagen.IMPLEMENTATION_CLASS_UID
    assert meta.ImplementationClassUID.startswith("2.25.")
    assert len(ds.SOPInstanceUID) <= 64 and ds.SOPInstanceUID.is_valid
    # (0002,0000) group length covers exactly the rest of group 2 (PS3.10 7.1).
    assert raw[132:140] == b"\x02\x00\x00\x00UL\x04\x00"
    assert _group2_end(raw) == 144 + int.from_bytes(raw[140:144], "little")
    assert str(ds.PatientName) == spec.patient_name
    assert ds.StudyInstanceUID == gen.study_instance_uid
    assert ds.SeriesInstanceUID == gen.series_instance_uid
    if spec.private_tags:
        block = ds.private_block(datagen.PRIVATE_GROUP, datagen.PRIVATE_CREATOR)
        value = block[0x10].value
        text = value.decode() if isinstance(value, bytes) else value  # implicit VR: UN
        assert text.rstrip() == "private string"
    if spec.transfer_syntax != JPEGBaseline8Bit:
        np.testing.assert_array_equal(ds.pixel_array, datagen.expected_pixels(spec))


def test_every_uid_is_unique(corpus: dict[Spec, datagen.Generated]) -> None:
    uids = [g.sop_instance_uid for g in corpus.values()]
    assert len(set(uids)) == len(uids)


@pytest.mark.parametrize("spec", CORPUS, ids=_id)
def test_dcmdump_parses(spec: Spec, corpus: dict[Spec, datagen.Generated]) -> None:
    result = _dcmdump(corpus[spec].path)
    assert result.returncode == 0, result.stderr
    errors = [line for line in result.stderr.splitlines() if not line.startswith("W:")]
    assert errors == []
    warnings = [line for line in result.stderr.splitlines() if line.startswith("W:")]
    if spec.transfer_syntax == ImplicitVRLittleEndian and spec.private_tags:
        # A private SQ in implicit VR has no VR on the wire: dcmdump reads it per CP-246.
        assert all("CP-246" in w for w in warnings), warnings
    else:
        assert warnings == []
    assert "(0010,0010) PN" in result.stdout


def test_dcmdump_check_can_fail(tmp_path: Path, corpus: dict[Spec, datagen.Generated]) -> None:
    """The dcmdump check above notices a damaged file."""
    truncated = tmp_path / "truncated.dcm"
    truncated.write_bytes(corpus[Spec(kind=Kind.CT)].path.read_bytes()[:5000])
    result = _dcmdump(truncated)
    assert result.returncode != 0
    assert "E:" in result.stderr


def test_determinism(tmp_path: Path) -> None:
    spec = Spec(kind=Kind.ENHANCED_CT, frames=3, seed=5)
    a = datagen.write_file(spec, tmp_path / "a")
    b = datagen.write_file(spec, tmp_path / "b")
    assert a.path.read_bytes() == b.path.read_bytes()
    c = datagen.write_file(Spec(kind=Kind.ENHANCED_CT, frames=3, seed=6), tmp_path / "c")
    assert c.sop_instance_uid != a.sop_instance_uid
    assert c.path.read_bytes() != a.path.read_bytes()


@pytest.mark.parametrize(
    ("charset", "expected", "other"),
    [(Charset.LATIN1, LATIN1_NAME, UTF8_NAME), (Charset.UTF8, UTF8_NAME, LATIN1_NAME)],
)
@pytest.mark.parametrize(
    "ts",
    [
        ImplicitVRLittleEndian,
        ExplicitVRLittleEndian,
        ExplicitVRBigEndian,
        DeflatedExplicitVRLittleEndian,
    ],
)
def test_umlaut_bytes(
    tmp_path: Path, charset: Charset, expected: bytes, other: bytes, ts: pydicom.uid.UID
) -> None:
    gen = datagen.write_file(Spec(kind=Kind.CT, charset=charset, transfer_syntax=ts), tmp_path)
    data = _dataset_bytes(gen)
    assert charset.value.encode() in data  # (0008,0005) Specific Character Set
    assert data.count(expected) == 1
    assert other not in data
    ds = pydicom.dcmread(gen.path)
    assert ds.SpecificCharacterSet == charset.value
    assert str(ds.PatientName) == "Müller^Jürgen"


def test_undefined_length_sequences_on_the_wire(tmp_path: Path) -> None:
    undefined = datagen.write_file(Spec(kind=Kind.ENHANCED_CT, frames=2), tmp_path / "u")
    data = undefined.path.read_bytes()
    # Explicit VR LE: (5200,9229) Shared Functional Groups Sequence, "SQ", 0000, FFFFFFFF.
    assert b"\x00\x52\x29\x92SQ\x00\x00" + UNDEFINED in data
    assert b"\x00\x52\x30\x92SQ\x00\x00" + UNDEFINED in data  # Per-Frame
    assert ITEM_UNDEFINED_LE in data
    assert SEQ_DELIMITER_LE in data
    assert b"\xfe\xff\x0d\xe0\x00\x00\x00\x00" in data  # item delimitation
    defined = datagen.write_file(
        Spec(kind=Kind.ENHANCED_CT, frames=2, undefined_length_sequences=False), tmp_path / "d"
    )
    data = defined.path.read_bytes()
    assert b"\x00\x52\x29\x92SQ\x00\x00" + UNDEFINED not in data
    assert ITEM_UNDEFINED_LE not in data
    assert SEQ_DELIMITER_LE not in data
    for gen in (undefined, defined):
        ds = pydicom.dcmread(gen.path)
        assert len(ds.PerFrameFunctionalGroupsSequence) == 2
        pos = ds.PerFrameFunctionalGroupsSequence[1].PlanePositionSequence[0]
        assert [float(v) for v in pos.ImagePositionPatient] == [0.0, 0.0, 1.0]


def test_enhanced_ct_functional_groups(corpus: dict[Spec, datagen.Generated]) -> None:
    gen = corpus[Spec(kind=Kind.ENHANCED_CT, frames=4)]
    ds = pydicom.dcmread(gen.path)
    assert ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.2.1"
    assert ds.NumberOfFrames == 4
    assert ds.pixel_array.shape == (4, 64, 64)
    shared = ds.SharedFunctionalGroupsSequence[0]
    assert shared.PixelMeasuresSequence[0].PixelSpacing == [0.5, 0.5]
    frames = ds.PerFrameFunctionalGroupsSequence
    assert [f.FrameContentSequence[0].InStackPositionNumber for f in frames] == [1, 2, 3, 4]
    assert len(ds.DimensionIndexSequence) == 2


@pytest.mark.parametrize("frames", [1, 3])
@pytest.mark.parametrize("samples", [1, 3])
def test_jpeg_baseline_real_frames(tmp_path: Path, frames: int, samples: int) -> None:
    spec = Spec(
        kind=Kind.SC, transfer_syntax=JPEGBaseline8Bit, frames=frames, samples_per_pixel=samples
    )
    gen = datagen.write_file(spec, tmp_path)
    ds = pydicom.dcmread(gen.path)
    elem = ds["PixelData"]
    assert elem.is_undefined_length and elem.VR == "OB"
    offsets = parse_basic_offsets(ds.PixelData)
    assert len(offsets) == frames and offsets[0] == 0  # Basic Offset Table, PS3.5 A.4
    expected = datagen.expected_pixels(spec)
    if frames == 1:
        expected = expected[np.newaxis]
    decoded = list(generate_frames(ds.PixelData, number_of_frames=frames))
    assert len(decoded) == frames
    for jpeg, want in zip(decoded, expected, strict=True):
        assert jpeg[:2] == b"\xff\xd8" and jpeg.rstrip(b"\x00")[-2:] == b"\xff\xd9"
        img = Image.open(io.BytesIO(jpeg))
        assert img.format == "JPEG"
        assert img.size == (spec.columns, spec.rows)
        got = np.asarray(img.convert("RGB" if samples == 3 else "L"), dtype=np.int16)
        assert float(np.abs(got - want.astype(np.int16)).mean()) < 8  # lossy, but close
    assert ds.PhotometricInterpretation == ("YBR_FULL_422" if samples == 3 else "MONOCHROME2")


def test_streamed_20mb(tmp_path: Path) -> None:
    size = 20 << 20
    gen = datagen.write_streamed(tmp_path, size, seed=3, chunk_size=1 << 20)
    assert gen.pixel_data_offset is not None and gen.pixel_data_length is not None
    assert gen.size == gen.path.stat().st_size == gen.pixel_data_offset + gen.pixel_data_length
    assert abs(gen.size - size) < 512 * 512 * 2
    ds = pydicom.dcmread(gen.path)
    assert ds.file_meta.MediaStorageSOPClassUID == ds.SOPClassUID == gen.sop_class_uid
    assert ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.7.3"
    frames = int(ds.NumberOfFrames)
    assert len(ds.PixelData) == gen.pixel_data_length == frames * 512 * 512 * 2
    expected = b"".join(datagen.iter_streamed_chunks(gen.pixel_data_length, 3, 1 << 20))
    assert ds.PixelData == expected
    # Pixel Data is the last element: the file ends exactly with its value.
    with gen.path.open("rb") as fp:
        fp.seek(gen.pixel_data_offset - 12)
        assert fp.read(12) == b"\xe0\x7f\x10\x00OW\x00\x00" + gen.pixel_data_length.to_bytes(
            4, "little"
        )
    result = _dcmdump(gen.path)
    assert result.returncode == 0 and result.stderr == "", result.stderr
    implicit = datagen.write_streamed(
        tmp_path, 600_000, transfer_syntax=ImplicitVRLittleEndian, filename="i.dcm"
    )
    assert int(pydicom.dcmread(implicit.path).NumberOfFrames) == 1
    assert _dcmdump(implicit.path).returncode == 0


def test_in_memory_dataset() -> None:
    ds = datagen.make_dataset(Spec(kind=Kind.MR, seed=9))
    assert ds.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
    assert ds.SOPInstanceUID == Spec(kind=Kind.MR, seed=9).sop_instance_uid
    assert ds.Modality == "MR"
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    assert pydicom.dcmread(io.BytesIO(buf.getvalue())).SOPInstanceUID == ds.SOPInstanceUID


def test_spec_rejects_nonsense() -> None:
    with pytest.raises(ValueError, match="JPEG"):
        Spec(kind=Kind.CT, transfer_syntax=JPEGBaseline8Bit)
    with pytest.raises(ValueError, match="single-frame"):
        Spec(kind=Kind.CT, frames=2)
    with pytest.raises(ValueError, match="non-ASCII"):
        Spec(charset=Charset.DEFAULT)


def test_cli(tmp_path: Path) -> None:
    root = Path(__file__).resolve().parents[2]
    help_out = subprocess.run(
        [sys.executable, "-m", "tests.support.datagen", "--help"],
        capture_output=True,
        text=True,
        check=True,
        cwd=root,
        timeout=60,
    )
    assert "--size" in help_out.stdout
    assert (
        datagen.main([str(tmp_path / "one"), "--kind", "mr", "--ts", "big", "--charset", "utf8"])
        == 0
    )
    (only,) = list((tmp_path / "one").iterdir())
    ds = pydicom.dcmread(only)
    assert ds.file_meta.TransferSyntaxUID == ExplicitVRBigEndian
    assert ds.SpecificCharacterSet == "ISO_IR 192"
    assert datagen.main([str(tmp_path / "all")]) == 0
    assert len(list((tmp_path / "all").iterdir())) == len(CORPUS)
    assert datagen.main([str(tmp_path / "big"), "--size", "1M"]) == 0
    (streamed,) = list((tmp_path / "big").iterdir())
    assert streamed.stat().st_size > 1 << 20


@pytest.mark.parametrize("ts", datagen.TRANSFER_SYNTAXES)
def test_in_memory_bytes_match_file(tmp_path: Path, ts: pydicom.uid.UID) -> None:
    spec = Spec(kind=Kind.SC, transfer_syntax=ts)
    whole = datagen.file_bytes(spec)
    assert whole == datagen.write_file(spec, tmp_path).path.read_bytes()
    body = datagen.dataset_bytes(spec)
    assert whole.endswith(body) and len(body) < len(whole) - 132
    # The wire form decodes on its own with the transfer syntax's encoding.
    if ts == DeflatedExplicitVRLittleEndian:
        body = zlib.decompress(body, -zlib.MAX_WBITS)
    implicit = ts == ImplicitVRLittleEndian
    little = ts != ExplicitVRBigEndian
    ds = pydicom.filereader.read_dataset(
        io.BytesIO(body), is_implicit_VR=implicit, is_little_endian=little
    )
    assert ds.SOPInstanceUID == spec.sop_instance_uid
