"""Frame-by-frame decompression against pydicom's own whole-dataset ``decompress`` (issue 8).

pydicom's ``pydicom.pixels.decompress`` (all frames in memory) is the oracle: our streamed
Explicit VR Little Endian bytes must parse to the same elements and the same Pixel Data.
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.filereader import read_dataset
from pydicom.pixels.decoders.base import Decoder
from pydicom.pixels.utils import decompress
from pydicom.uid import JPEG2000Lossless, JPEGBaseline8Bit, JPEGLSLossless, RLELossless

from aiodimse.services.decompress import CodecMissing, decode_to_bytes, decoded_chunks
from aiodimse.services.ts_strategies import CODECS_EXTRA
from tests.transfer.support import COMPRESSED, write_source


@pytest.mark.parametrize("colour", [False, True])
@pytest.mark.parametrize("ts", COMPRESSED)
def test_same_as_pydicom_decompress(tmp_path: Path, ts: str, colour: bool) -> None:
    path = write_source(tmp_path, ts, colour=colour, frames=3, seed=5)
    ours = read_dataset(io.BytesIO(decode_to_bytes(path, ts)), False, True)
    oracle = decompress(dcmread(path), as_rgb=True, generate_instance_uid=False)
    assert [e.tag for e in ours] == [e.tag for e in oracle]
    for elem in oracle:
        assert ours[elem.tag].value == elem.value, elem.tag
    assert ours.PhotometricInterpretation == ("RGB" if colour else "MONOCHROME2")
    if ts == JPEGBaseline8Bit:
        assert ours.LossyImageCompression == "01"
        assert ours.LossyImageCompressionMethod == "ISO_10918_1"
    else:
        assert "LossyImageCompression" not in ours


def test_one_frame_at_a_time(tmp_path: Path) -> None:
    path = write_source(tmp_path, RLELossless, frames=4, seed=6)
    ds = dcmread(path)
    frame = int(ds.Rows) * int(ds.Columns)
    chunks = list(decoded_chunks(path, RLELossless))
    # head + Pixel Data header, 4 frames, nothing after Pixel Data
    assert [len(c) for c in chunks[1:]] == [frame] * 4


def test_the_callers_dataset_is_not_changed(tmp_path: Path) -> None:
    ds = dcmread(write_source(tmp_path, JPEGBaseline8Bit, colour=True, seed=7))
    before = ds.PhotometricInterpretation
    decode_to_bytes(ds, JPEGBaseline8Bit)
    assert ds.PhotometricInterpretation == before == "YBR_FULL_422"
    assert ds.file_meta.TransferSyntaxUID == JPEGBaseline8Bit


def test_without_a_codec_the_error_names_the_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_source(tmp_path, JPEGLSLossless, seed=8)
    monkeypatch.setattr(Decoder, "is_available", property(lambda self: False))
    with pytest.raises(CodecMissing) as info:
        next(decoded_chunks(path, JPEGLSLossless))
    assert CODECS_EXTRA in str(info.value) and "JPEG-LS Lossless" in str(info.value)


def test_a_syntax_without_any_decoder(tmp_path: Path) -> None:
    path = write_source(tmp_path, JPEG2000Lossless, seed=9)
    with pytest.raises(CodecMissing, match="pydicom has no decoder"):
        next(decoded_chunks(path, "1.2.840.10008.1.2.4.100"))
