"""Decode data sets with pydicom and compare them independently of their encoding.

:func:`canonical` turns a data set into a nested structure that does not depend on the
transfer syntax: every non-sequence element becomes its value bytes in little endian (what
PS3.5 6.2.2 says a UN value holds), every sequence (or UN holding an implicit VR LE
sequence) a list of canonical items. Group lengths are left out (the transcoder drops them).
Two encodings of the same data set have equal canonical forms; a transcoder that swapped the
wrong bytes, lost an element or mis-nested an item does not.
"""

from __future__ import annotations

import io
import zlib
from array import array
from typing import Any

from pydicom.datadict import dictionary_VR
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.filebase import DicomBytesIO
from pydicom.filereader import read_dataset, read_sequence
from pydicom.filewriter import write_data_element
from pydicom.uid import (
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ImplicitVRLittleEndian,
)

_SWAP = {
    "US": 2, "SS": 2, "OW": 2, "AT": 2, "UL": 4, "SL": 4, "FL": 4, "OL": 4, "OF": 4,
    "FD": 8, "OD": 8, "SV": 8, "UV": 8, "OV": 8,
}  # fmt: skip
_CODES = {array(c).itemsize: c for c in "QLIH"}
_ITEM_LE = b"\xfe\xff\x00\xe0"


def inflate_if_deflated(data: bytes, ts: str) -> tuple[bytes, str]:
    """Raw-inflate a Deflated data set; return (bytes, the syntax they are in)."""
    if ts == DeflatedExplicitVRLittleEndian:
        return zlib.decompress(data, -zlib.MAX_WBITS), "1.2.840.10008.1.2.1"
    return data, ts


def decode(data: bytes, ts: str) -> Dataset:
    """pydicom's reading of a bare data set (no file meta) encoded in ``ts``."""
    data, ts = inflate_if_deflated(data, ts)
    return read_dataset(io.BytesIO(data), ts == ImplicitVRLittleEndian, ts != ExplicitVRBigEndian)


def swap(data: bytes, unit: int) -> bytes:
    words = array(_CODES[unit])
    words.frombytes(data)
    words.byteswap()
    return words.tobytes()


def canonical(ds: Dataset, ts: str) -> dict[int, Any]:
    """The encoding-independent form of ``ds`` (decoded from syntax ``ts``).

    An empty sequence and an empty value are the same here: read from implicit VR, an empty
    private sequence of defined length is indistinguishable from an empty value (it becomes
    an empty UN in explicit VR).
    """
    out = _canonical(ds, ts)
    return {tag: ("RAW", b"") if value == [] else value for tag, value in out.items()}


def _canonical(ds: Dataset, ts: str) -> dict[int, Any]:
    little = ts != ExplicitVRBigEndian
    out: dict[int, Any] = {}
    for tag in ds.keys():
        if tag.element == 0:
            continue
        raw = ds.get_item(tag)
        if not isinstance(raw, RawDataElement):
            elem = ds[tag]
            if elem.VR != "SQ":
                # pydicom converted it while reading (empty values, Pixel Representation):
                # encode it again, little endian.
                fp = DicomBytesIO()
                fp.is_little_endian, fp.is_implicit_VR = True, True
                write_data_element(fp, elem)
                out[int(tag)] = ("RAW", fp.getvalue()[8:])
                continue
            out[int(tag)] = [canonical(item, ts) for item in elem.value]
            continue
        value = raw.value or b""
        vr = raw.VR
        if vr is None and not tag.is_private and dictionary_VR(tag) == "SQ":
            vr = "SQ"  # implicit VR, defined length: pydicom left it raw
        if vr == "SQ":  # a sequence pydicom left raw (defined length)
            implicit = ts == ImplicitVRLittleEndian
            seq = read_sequence(io.BytesIO(value), implicit, little, len(value), None)
            out[int(tag)] = [canonical(item, ts) for item in seq]
            continue
        if vr == "UN" or (vr is None and value[:4] == _ITEM_LE and tag.is_private):
            # PS3.5 6.2.2: a UN value is implicit VR little endian, never swapped.
            if value[:4] == _ITEM_LE:
                seq = read_sequence(io.BytesIO(value), True, True, len(value), None)
                out[int(tag)] = [canonical(item, ImplicitVRLittleEndian) for item in seq]
                continue
        elif not little and vr in _SWAP:
            value = swap(value, _SWAP[vr])
        out[int(tag)] = ("RAW", bytes(value))
    return out


def explicit_vrs(ds: Dataset, ts: str) -> dict[tuple[int, ...], str]:
    """Every element's VR as written (explicit syntaxes), keyed by its path of tags/items."""
    out: dict[tuple[int, ...], str] = {}
    little = ts != ExplicitVRBigEndian

    def walk(d: Dataset, prefix: tuple[int, ...]) -> None:
        for tag in d.keys():
            raw = d.get_item(tag)
            path = (*prefix, int(tag))
            if isinstance(raw, RawDataElement):
                out[path] = str(raw.VR)
                if raw.VR != "SQ":
                    continue
                value = raw.value or b""
                items = read_sequence(io.BytesIO(value), False, little, len(value), None)
            else:
                out[path] = str(d[tag].VR)
                items = d[tag].value if out[path] == "SQ" else []
            for index, item in enumerate(items):
                walk(item, (*path, index))

    walk(ds, ())
    return out
