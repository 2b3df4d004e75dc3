"""Value Representations as the encoder needs them (PS3.5 6.2, 7.1, 7.3).

Pure tables and pure functions, no I/O: which VRs take a 32-bit Value Length in explicit VR
(PS3.5 Table 7.1-1) and which a 16-bit one (Table 7.1-2), how many bytes a VR swaps as one
unit between little and big endian (PS3.5 7.3), and which VR an implicit-VR element has,
from pydicom's data dictionary plus the context rules PS3.5 and PS3.3 give for the ambiguous
dictionary entries ("US or SS", "OB or OW", "US or OW", "US or SS or OW").
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from functools import lru_cache

from pydicom.datadict import dictionary_VR

__all__ = [
    "LONG_LENGTH_VRS",
    "SHORT_LENGTH_VRS",
    "SWAP_SIZE",
    "Ambiguity",
    "DatasetContext",
    "dictionary_vr",
    "implicit_vr",
    "static_vr",
]

#: PS3.5 7.1.2 / Table 7.1-1: explicit VR with 2 reserved bytes and a 32-bit Value Length.
LONG_LENGTH_VRS: frozenset[bytes] = frozenset(
    {b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR", b"UT", b"UV"}
)
#: PS3.5 7.1.2 / Table 7.1-2: explicit VR with a 16-bit Value Length.
SHORT_LENGTH_VRS: frozenset[bytes] = frozenset(
    {
        b"AE", b"AS", b"AT", b"CS", b"DA", b"DS", b"DT", b"FL", b"FD", b"IS", b"LO",
        b"LT", b"PN", b"SH", b"SL", b"SS", b"ST", b"TM", b"UI", b"UL", b"US",
    }
)  # fmt: skip

#: PS3.5 7.3: the byte-ordering unit of each VR whose value is binary numbers. AT is a pair
#: of 16-bit unsigned integers (group, element), so it swaps as two 2-byte halves. Every
#: other VR (strings, OB, UN, SQ) is a byte stream and is never swapped; UN in particular
#: "shall not be byte-swapped" (PS3.5 6.2.2).
SWAP_SIZE: dict[bytes, int] = {
    b"US": 2, b"SS": 2, b"OW": 2, b"AT": 2,
    b"UL": 4, b"SL": 4, b"FL": 4, b"OL": 4, b"OF": 4,
    b"FD": 8, b"OD": 8, b"SV": 8, b"UV": 8, b"OV": 8,
}  # fmt: skip

_PIXEL_DATA = 0x7FE00010


class Ambiguity(enum.Enum):
    """How the dictionary VR of a tag must be completed from context."""

    NONE = enum.auto()  # the dictionary VR is definite
    US_SS = enum.auto()  # PS3.3 C.7.6.3.1.4 etc.: US if Pixel Representation is 0, else SS
    PIXEL_DATA = enum.auto()  # PS3.5 A.1/A.2: OB if Bits Allocated <= 8, else OW
    LUT_DATA = enum.auto()  # PS3.3 C.11.1.1.1: US if LUT Descriptor[0] == 1, else OW


@dataclass(slots=True)
class DatasetContext:
    """What one (nested) dataset has shown so far that later VRs depend on.

    ``None`` means "not seen in this dataset"; lookups fall back to the enclosing datasets.
    """

    pixel_representation: int | None = None
    bits_allocated: int | None = None
    lut_entries: int | None = None


@lru_cache(maxsize=4096)
def dictionary_vr(tag: int) -> str | None:
    """pydicom's dictionary VR for a public ``tag`` (repeaters included), else ``None``."""
    try:
        vr = dictionary_VR(tag)
    except KeyError:
        return None
    return str(vr)


@lru_cache(maxsize=4096)
def static_vr(tag: int) -> tuple[bytes, Ambiguity]:
    """The VR of ``tag`` known without context, and what context still has to decide.

    Rules (PS3.5 6.2.2, 7.2, 7.8.1): group length (gggg,0000) is UL; a private creator
    (odd gggg, element 0010-00FF) is LO; other private and all unknown tags are UN. For an
    ambiguous dictionary entry the first returned VR is the fallback when no context is
    known (US for "US or SS", as pydicom does when there is no Pixel Data; OW otherwise).
    """
    group, element = tag >> 16, tag & 0xFFFF
    if element == 0x0000:
        return b"UL", Ambiguity.NONE  # PS3.5 7.2: Group Length
    if group & 1:
        if 0x0010 <= element <= 0x00FF and group > 0x0008:
            return b"LO", Ambiguity.NONE  # PS3.5 7.8.1: Private Creator
        return b"UN", Ambiguity.NONE  # PS3.5 6.2.2: private, VR unknown
    vr = dictionary_vr(tag)
    if vr is None or vr == "NONE":
        return b"UN", Ambiguity.NONE
    if len(vr) == 2:
        return vr.encode("ascii"), Ambiguity.NONE
    if vr == "US or SS":
        return b"US", Ambiguity.US_SS
    if tag == _PIXEL_DATA:
        return b"OW", Ambiguity.PIXEL_DATA
    if vr == "US or OW":
        return b"OW", Ambiguity.LUT_DATA
    # "OB or OW" (overlay, curve, waveform data ...) and "US or SS or OW": OW, as PS3.5 8.1.2
    # and 8.2 require for these in implicit VR (and pydicom does).
    return b"OW", Ambiguity.NONE


def implicit_vr(tag: int, length: int, contexts: list[DatasetContext]) -> bytes:
    """The VR an explicit-VR encoder must write for an element read from implicit VR.

    ``contexts`` lists the enclosing datasets, innermost last. A value longer than 0xFFFF
    bytes whose VR has a 16-bit length field in explicit VR becomes UN (PS3.5 6.2.2).
    """
    vr, ambiguity = static_vr(tag)
    if ambiguity is Ambiguity.US_SS:
        rep = _nearest(contexts, "pixel_representation")
        vr = b"SS" if rep is not None and rep != 0 else b"US"
    elif ambiguity is Ambiguity.PIXEL_DATA:
        bits = _nearest(contexts, "bits_allocated")
        vr = b"OB" if bits is not None and bits <= 8 else b"OW"
    elif ambiguity is Ambiguity.LUT_DATA:
        entries = _nearest(contexts, "lut_entries")
        vr = b"US" if entries == 1 else b"OW"
    if length > 0xFFFF and length != 0xFFFFFFFF and vr in SHORT_LENGTH_VRS:
        return b"UN"
    return vr


def _nearest(contexts: list[DatasetContext], name: str) -> int | None:
    for ctx in reversed(contexts):
        value: int | None = getattr(ctx, name)
        if value is not None:
            return value
    return None
