"""Source files in every transfer syntax, and checks that a received dataset is the source.

Uncompressed and JPEG Baseline sources come from :mod:`tests.support.datagen`; RLE Lossless,
JPEG-LS Lossless and JPEG 2000 Lossless ones are the same datasets compressed by pydicom's
own encoders (RLE natively, JPEG-LS through pyjpegls, JPEG 2000 through pylibjpeg-openjpeg).
"""

from __future__ import annotations

import io
import zlib
from pathlib import Path

import numpy as np
from pydicom import Dataset, FileMetaDataset, dcmread
from pydicom.filereader import read_dataset
from pydicom.filewriter import dcmwrite
from pydicom.uid import (
    UID,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGBaseline8Bit,
    JPEGLSLossless,
    RLELossless,
)

from tests.support import datagen

UNCOMPRESSED: tuple[str, ...] = (
    ImplicitVRLittleEndian,
    ExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    DeflatedExplicitVRLittleEndian,
)
#: Compressed sources we generate (all decodable with the codecs extra).
COMPRESSED: tuple[str, ...] = (JPEGBaseline8Bit, RLELossless, JPEGLSLossless, JPEG2000Lossless)
LOSSY: frozenset[str] = frozenset({JPEGBaseline8Bit})

#: Elements decoding may change (PS3.3 C.7.6.3.1, C.7.6.1.1.5); compared separately.
_CHANGED_BY_DECODING = {0x00280004, 0x00280006, 0x00282110, 0x00282114}


def write_source(
    directory: Path,
    transfer_syntax: str,
    *,
    seed: int = 0,
    colour: bool = False,
    frames: int = 1,
) -> Path:
    """A Secondary Capture file (8-bit, grey or RGB, 1+ frames) in ``transfer_syntax``.

    Secondary Capture is the kind datagen can also write as JPEG Baseline.
    """
    kind = datagen.Kind.SC
    name = f"sc-{transfer_syntax}-{'rgb' if colour else 'grey'}-{frames}f-s{seed}.dcm"
    spec_ts = transfer_syntax if transfer_syntax in (*UNCOMPRESSED, JPEGBaseline8Bit) else None
    spec = datagen.Spec(
        kind=kind,
        transfer_syntax=UID(spec_ts or ExplicitVRLittleEndian),
        seed=seed,
        samples_per_pixel=3 if colour else 1,
        frames=frames,
    )
    if spec_ts is not None:
        return datagen.write_file(spec, directory, name).path
    ds = datagen.make_dataset(spec)
    ds.compress(transfer_syntax, generate_instance_uid=False)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    dcmwrite(path, ds, enforce_file_format=True)
    return path


def write_ct(directory: Path, transfer_syntax: str, *, seed: int = 0) -> Path:
    """A 16-bit signed CT (private tags, undefined-length sequences, Latin-1 name)."""
    spec = datagen.Spec(kind=datagen.Kind.CT, transfer_syntax=UID(transfer_syntax), seed=seed)
    return datagen.write_file(spec, directory).path


def parse_wire(data: bytes, transfer_syntax: str) -> Dataset:
    """A C-STORE data set as received (no file meta) decoded by pydicom."""
    if transfer_syntax == DeflatedExplicitVRLittleEndian:
        data = zlib.decompress(data, -zlib.MAX_WBITS)
    ds = read_dataset(
        io.BytesIO(data),
        transfer_syntax == ImplicitVRLittleEndian,
        transfer_syntax != ExplicitVRBigEndian,
    )
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = UID(
        ExplicitVRLittleEndian
        if transfer_syntax == DeflatedExplicitVRLittleEndian
        else transfer_syntax
    )
    return ds


def assert_same_instance(received: Dataset, source_path: Path, source_ts: str) -> None:
    """``received`` is the source: public elements equal, private ones present, pixels equal
    (within 2 for a lossy source), and the attributes decoding sets where it decoded."""
    source = dcmread(source_path)
    source_tags = [e.tag for e in source if not e.tag.is_private]
    got_tags = [e.tag for e in received if not e.tag.is_private]
    decoded = source_ts in COMPRESSED
    skip = _CHANGED_BY_DECODING | {0x7FE00010} if decoded else {0x7FE00010}
    assert [t for t in got_tags if t not in skip] == [t for t in source_tags if t not in skip]
    for tag in source_tags:
        if tag not in skip:
            assert received[tag].value == source[tag].value, f"{tag}"
    assert [e.tag for e in received if e.tag.is_private] == [
        e.tag for e in source if e.tag.is_private
    ]
    theirs = received.pixel_array
    ours = source.pixel_array
    assert theirs.shape == ours.shape
    if source_ts in LOSSY:
        assert int(np.abs(theirs.astype(int) - ours.astype(int)).max()) <= 2
        assert received.LossyImageCompression == "01"
    else:
        assert np.array_equal(theirs, ours)
    if decoded:
        # Decoded colour is RGB, colour-by-pixel (PS3.3 C.7.6.3.1.2, .3).
        want = "RGB" if int(source.SamplesPerPixel) == 3 else source.PhotometricInterpretation
        assert received.PhotometricInterpretation == want
        if int(source.SamplesPerPixel) == 3:
            assert received.PlanarConfiguration == 0
