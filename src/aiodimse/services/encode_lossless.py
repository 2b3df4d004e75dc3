"""Native Pixel Data to a lossless compressed transfer syntax (PS3.5 8.2, A.4).

The last resort of :func:`~.storage_contexts.choose_context` for an uncompressed instance
when the peer accepted none of the uncompressed syntaxes for its SOP class, only lossless
compressed ones: JPEG-LS Lossless (PS3.5 A.4.3), JPEG 2000 Lossless (A.4.4) or RLE Lossless
(A.4.2). Lossy encoding is never done: the pixels the peer gets are the pixels we have.

The dataset is normalised to Explicit VR Little Endian by the streaming transcoder (Big
Endian values swapped, Deflated inflated), decoded by pydicom and compressed by pydicom's
encoders (RLE natively; JPEG-LS with pyjpegls, JPEG 2000 with pylibjpeg-openjpeg: the
``aiodimse[codecs]`` extra), which also set the Image Pixel attributes the syntax requires.
This is done **in memory**, up to ``limit`` bytes of dataset: encoding is rare (a peer that
takes no uncompressed syntax at all), and the encoders want whole frames anyway. Blocking:
call it in a worker thread.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import TYPE_CHECKING

from ..constants import EXPLICIT_VR_LITTLE_ENDIAN
from ..errors import LocalProtocolError
from ..net.filesource import DicomFileInfo
from .decompress import CodecMissing

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

__all__ = ["EncodeError", "encode_lossless"]


class EncodeError(LocalProtocolError):
    """The dataset could not be encoded (too large for memory, pixel module not encodable)."""


def _native_explicit(source: DicomFileInfo | Dataset, source_syntax: str, limit: int) -> Dataset:
    from pydicom.dataset import FileMetaDataset
    from pydicom.filereader import read_dataset
    from pydicom.uid import UID

    from ..dataset.transcode import transcode_bytes
    from .storage_scu import encode_dataset

    if isinstance(source, DicomFileInfo):
        if source.dataset_length > limit:
            raise EncodeError(
                f"encoding is done in memory up to {limit} bytes (Limits.max_in_memory_dataset)"
                f"; the dataset has {source.dataset_length}"
            )
        with Path(source.path).open("rb") as fp:
            fp.seek(source.dataset_offset)
            data = fp.read()
    else:
        data = encode_dataset(source, source_syntax, source_syntax=source_syntax)
    if source_syntax != EXPLICIT_VR_LITTLE_ENDIAN:
        data = transcode_bytes(data, source_syntax, EXPLICIT_VR_LITTLE_ENDIAN)
    if len(data) > limit:
        raise EncodeError(f"the dataset ({len(data)} bytes) is over the in-memory limit {limit}")
    ds = read_dataset(io.BytesIO(data), False, True)
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = UID(EXPLICIT_VR_LITTLE_ENDIAN)
    return ds


def encode_lossless(
    source: DicomFileInfo | Dataset, source_syntax: str, target_syntax: str, *, limit: int
) -> bytes:
    """The dataset encoded as a C-STORE data set in the lossless ``target_syntax``.

    ``source`` is a probed file or a pydicom ``Dataset`` (not modified) in the uncompressed
    ``source_syntax``. Raises :class:`CodecMissing` without an encoder for the target,
    :class:`EncodeError` when the dataset is over ``limit`` or cannot be encoded.
    """
    from pydicom.pixels.encoders.base import get_encoder

    from .storage_scu import encode_dataset

    try:
        available = get_encoder(target_syntax).is_available
    except NotImplementedError:
        available = False
    if not available:
        raise CodecMissing(target_syntax, action="encoding in")
    ds = _native_explicit(source, source_syntax, limit)
    if "PixelData" in ds:
        try:
            # The instance stays the same instance: lossless encoding is no new image.
            ds.compress(target_syntax, generate_instance_uid=False)
        except Exception as exc:  # the encoders raise many kinds
            raise EncodeError(f"cannot encode the Pixel Data losslessly: {exc}") from None
    return encode_dataset(ds, target_syntax)
