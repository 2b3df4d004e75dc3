"""Compressed Pixel Data to native, frame by frame (PS3.5 8.2, A.4; PS3.3 C.7.6.3).

:func:`decoded_chunks` turns a dataset encoded in a compressed transfer syntax (JPEG
Baseline/Extended/Lossless, JPEG-LS, JPEG 2000, HTJ2K, RLE) into the bytes of the same
dataset in Explicit VR Little Endian with native Pixel Data. It is a blocking generator: each
``next()`` decodes at most one frame, so a caller that advances it in a worker thread keeps
the event loop free and holds one decoded frame (plus the compressed dataset) at a time.

The elements before Pixel Data are re-encoded with the attributes decoding changes (PS3.3
C.7.6.3.1): Photometric Interpretation as the decoder returns it (``YBR_FULL``/
``YBR_FULL_422`` become ``RGB``; JPEG 2000 ``YBR_ICT``/``YBR_RCT`` become ``RGB``), Planar
Configuration 0 (colour-by-pixel) for colour images, and, when the source transfer syntax is
always lossy (JPEG processes 1, 2 and 4), Lossy Image Compression (0028,2110) "01" with its
method "ISO_10918_1" (PS3.3 C.7.6.1.1.5: once lossy, always marked lossy). The SOP Instance
UID is kept: a change of transfer syntax is not a new instance. Encapsulation-only elements
(Extended Offset Table (7FE0,0001) and its lengths (7FE0,0002)) are dropped.

The decoders are pydicom's (``pydicom.pixels``), with the plugins the ``aiodimse[codecs]``
extra installs; :class:`CodecMissing` names the extra when none is installed.
"""

from __future__ import annotations

import io
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Final

from ..errors import LocalProtocolError
from .ts_strategies import CODECS_EXTRA, LOSSY

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

__all__ = ["CodecMissing", "DecodeError", "decoded_chunks"]

_PIXEL_DATA: Final = 0x7FE00010
_DROP: Final = frozenset({0x7FE00001, 0x7FE00002})  # PS3.5 A.4: encapsulation only
_YBR_TO_RGB: Final = frozenset({"YBR_FULL", "YBR_FULL_422", "YBR_ICT", "YBR_RCT"})


class CodecMissing(LocalProtocolError):
    """No installed plugin decodes this transfer syntax; the text names the extra."""

    def __init__(
        self, transfer_syntax: str, detail: str = "", *, action: str = "decompressing"
    ) -> None:
        from .storage_contexts import uid_name

        super().__init__(
            f"{action} {uid_name(transfer_syntax)} needs a pixel codec: {CODECS_EXTRA}"
            + (f" ({detail})" if detail else "")
        )
        self.transfer_syntax = transfer_syntax


class DecodeError(LocalProtocolError):
    """The Pixel Data could not be decoded (corrupt data, unsupported layout)."""


def _element_header(tag: int, vr: bytes, length: int) -> bytes:
    # PS3.5 7.1.2: OB/OW have two reserved bytes and a 32-bit length.
    return struct.pack("<HH2sHI", tag >> 16, tag & 0xFFFF, vr, 0, length)


def _encode_explicit_le(ds: Dataset) -> bytes:
    from pydicom.filebase import DicomBytesIO
    from pydicom.filewriter import write_dataset

    fp = DicomBytesIO()
    fp.is_implicit_VR = False
    fp.is_little_endian = True
    write_dataset(fp, ds)
    return fp.getvalue()


#: Largest decoded frame accepted (the Image Pixel module of a received dataset is the
#: peer's word: never allocate from it unchecked).
MAX_FRAME_BYTES: Final = 1 << 30


def decoded_chunks(
    source: Path | Dataset, transfer_syntax: str, *, max_frame_bytes: int = MAX_FRAME_BYTES
) -> Iterator[bytes]:
    """The dataset in Explicit VR Little Endian with native Pixel Data (blocking generator).

    ``source`` is a PS3.10 file or a pydicom ``Dataset`` (not modified); ``transfer_syntax``
    its compressed transfer syntax. Yields the elements before Pixel Data, then the Pixel
    Data header, then one frame at a time, then what follows Pixel Data. Raises
    :class:`CodecMissing` before anything is yielded when no decoder is installed, and
    :class:`DecodeError` when decoding fails.
    """
    from pydicom import dcmread
    from pydicom.dataelem import DataElement
    from pydicom.dataset import Dataset
    from pydicom.pixels.decoders.base import get_decoder

    try:
        decoder = get_decoder(transfer_syntax)
    except NotImplementedError:
        raise CodecMissing(transfer_syntax, "pydicom has no decoder for it") from None
    if not decoder.is_available:
        raise CodecMissing(transfer_syntax)
    ds: Dataset
    if isinstance(source, Path):
        try:
            ds = dcmread(source)
        except Exception as exc:  # pydicom raises many kinds on malformed input
            raise DecodeError(f"{source}: cannot read for decompression: {exc}") from None
    else:
        ds = source
    if _PIXEL_DATA not in ds:
        # Nothing to decode: the dataset is the same in Explicit VR Little Endian.
        yield _encode_explicit_le(ds)
        return
    try:
        bits = int(ds.BitsAllocated)
        frame_bytes = int(ds.Rows) * int(ds.Columns) * int(ds.SamplesPerPixel) * (bits // 8)
        frames = int(ds.get("NumberOfFrames", 1) or 1)
    except (AttributeError, TypeError, ValueError) as exc:
        raise DecodeError(f"the Image Pixel module is incomplete: {exc}") from None
    if bits % 8 or frame_bytes <= 0:
        raise DecodeError(f"Bits Allocated {bits} cannot be decoded frame by frame")
    if frame_bytes > max_frame_bytes or frames < 1:
        raise DecodeError(
            f"{frames} frame(s) of {frame_bytes} bytes: over the {max_frame_bytes}-byte frame cap"
        )
    total = frame_bytes * frames
    if total >= 0xFFFFFFFF:  # PS3.5 7.1.2: a 32-bit defined length
        raise DecodeError(f"{total} bytes of native Pixel Data exceed a 32-bit length")
    try:
        # ``ds`` itself is only read: decoders take the pixel module's values from it.
        iterator = decoder.iter_array(ds, as_rgb=True)
        first, meta = next(iterator)
    except Exception as exc:  # decoder plugins raise many kinds
        raise DecodeError(f"cannot decode the Pixel Data: {exc}") from None

    head = Dataset()
    tail = Dataset()
    for elem in ds:
        if elem.tag in _DROP:
            continue
        if elem.tag < _PIXEL_DATA:
            head.add(elem)
        elif elem.tag > _PIXEL_DATA:
            tail.add(elem)
    photometric = str(meta.get("photometric_interpretation", ds.PhotometricInterpretation))
    if photometric in _YBR_TO_RGB and int(ds.SamplesPerPixel) == 3:
        photometric = "RGB"  # as_rgb=True: the decoder converted the colour space
    # New element objects: the source dataset's elements are never changed.
    head.add(DataElement(0x00280004, "CS", photometric))
    if int(ds.SamplesPerPixel) > 1:
        head.add(DataElement(0x00280006, "US", int(meta.get("planar_configuration", 0))))
    if transfer_syntax in LOSSY:
        head.add(DataElement(0x00282110, "CS", "01"))
        if "LossyImageCompressionMethod" not in ds:
            head.add(DataElement(0x00282114, "CS", "ISO_10918_1"))
    padded = total + (total & 1)
    yield _encode_explicit_le(head) + _element_header(
        _PIXEL_DATA, b"OB" if bits <= 8 else b"OW", padded
    )
    arr = first
    index = 0
    while True:
        data = arr.astype(arr.dtype.newbyteorder("<"), copy=False).tobytes()
        if len(data) != frame_bytes:
            raise DecodeError(
                f"frame {index} decoded to {len(data)} bytes, the Image Pixel module says "
                f"{frame_bytes}"
            )
        yield data
        index += 1
        if index == frames:
            break
        try:
            arr, _ = next(iterator)
        except StopIteration:
            raise DecodeError(f"only {index} of {frames} frames could be decoded") from None
        except Exception as exc:  # decoder plugins raise many kinds
            raise DecodeError(f"cannot decode frame {index}: {exc}") from None
    if padded != total:
        yield b"\x00"  # PS3.5 7.1.1: values have an even length
    if len(tail):
        yield _encode_explicit_le(tail)


def decode_to_bytes(source: Path | Dataset, transfer_syntax: str) -> bytes:
    """All of :func:`decoded_chunks` joined (small datasets and tests)."""
    out = io.BytesIO()
    for chunk in decoded_chunks(source, transfer_syntax):
        out.write(chunk)
    return out.getvalue()
