"""Hypothesis strategies for random data sets, and their encoding by pydicom in any syntax.

A data set is drawn as a small model (:class:`Element`, :class:`Item`) that is independent of
the transfer syntax; :func:`encode` builds a pydicom ``Dataset`` from it for one syntax and
lets pydicom write it. Binary values that pydicom writes raw (OB, OW, OF, OD, OL, OV, UN) are
kept in the model as little-endian bytes and swapped here for big endian (PS3.5 7.3), except
UN which is never swapped (PS3.5 6.2.2). Public tags come from pydicom's dictionary with
their dictionary VR; ambiguous "US or SS" elements follow Pixel Representation and Pixel Data
is OB for Bits Allocated 8, OW for 16, as the transcoder infers them from implicit VR.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from hypothesis import strategies as st
from pydicom._dicom_dict import DicomDictionary
from pydicom.dataset import Dataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_dataset
from pydicom.sequence import Sequence
from pydicom.uid import (
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
)

from tests.dataset.dicom_compare import swap

SYNTAXES = (
    ImplicitVRLittleEndian,
    ExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    DeflatedExplicitVRLittleEndian,
)
PRIVATE_CREATOR_TAG = 0x00090010
_SKIP = {0x00280100, 0x00280103, 0x00283002, 0x00283006, 0x7FE00010, 0x00080005}
_BINARY_UNIT = {"OW": 2, "OF": 4, "OL": 4, "OD": 8, "OV": 8, "OB": 1, "UN": 1}
_ITEM_LE = b"\xfe\xff\x00\xe0"


def _tags_for(vr: str, limit: int = 12) -> list[int]:
    tags = sorted(
        tag
        for tag, entry in DicomDictionary.items()
        if entry[0] == vr
        and not entry[3]  # not retired
        and tag >> 16 not in (0x0000, 0x0002, 0xFFFE)
        and tag & 0xFFFF != 0
        and tag not in _SKIP
    )
    step = max(1, len(tags) // limit)
    return tags[::step][:limit]


_VRS = (
    "AE AS AT CS DA DS DT FL FD IS LO LT PN SH SL SS ST TM UI UL US "
    "OB OD OF OL OV OW SV UV UC UR UT"
).split()
TAGS_BY_VR: dict[str, list[int]] = {vr: _tags_for(vr) for vr in _VRS}
SQ_TAGS = _tags_for("SQ", 8)
AMBIGUOUS_US_SS = (0x00280106, 0x00280107, 0x00280120)


@dataclass(frozen=True)
class Element:
    tag: int
    vr: str
    value: Any  # pydicom value; LE bytes for binary VRs; tuple[Item, ...] for SQ
    undefined: bool = False  # SQ only


@dataclass(frozen=True)
class Item:
    elements: tuple[Element, ...]
    undefined: bool


_TEXT = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijkl0123456789 ^-.", max_size=16)
_CS = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_", max_size=16)


def _multi(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(strategy, st.lists(strategy, min_size=2, max_size=4))


def _even_bytes(unit: int) -> st.SearchStrategy[bytes]:
    size = max(unit, 2)
    return (
        st.binary(max_size=64)
        .map(lambda b: b[: len(b) - len(b) % size])
        .filter(lambda b: b[:4] != _ITEM_LE)
    )


_INTS = {
    "US": (0, 0xFFFF),
    "SS": (-0x8000, 0x7FFF),
    "UL": (0, 0xFFFFFFFF),
    "SL": (-0x80000000, 0x7FFFFFFF),
    "UV": (0, 0xFFFFFFFFFFFFFFFF),
    "SV": (-0x8000000000000000, 0x7FFFFFFFFFFFFFFF),
}


def value_for(vr: str) -> st.SearchStrategy[Any]:
    """Values pydicom writes for ``vr`` (strings, numbers, or little-endian raw bytes)."""
    if vr in _INTS:
        low, high = _INTS[vr]
        return _multi(st.integers(low, high))
    if vr == "FL":
        return _multi(st.floats(width=32, allow_nan=False))
    if vr == "FD":
        return _multi(st.floats(allow_nan=False))
    if vr == "AT":
        return _multi(st.integers(0, 0xFFFFFFFF))
    if vr in _BINARY_UNIT:
        return _even_bytes(_BINARY_UNIT[vr])
    if vr in ("CS", "AE"):
        return _multi(_CS)
    if vr == "AS":
        return st.integers(0, 120).map(lambda n: f"{n:03d}Y")
    if vr == "DA":
        return st.dates(date(1900, 1, 1), date(2099, 12, 31)).map(lambda d: d.strftime("%Y%m%d"))
    if vr == "TM":
        return st.times().map(lambda t: t.strftime("%H%M%S"))
    if vr == "DT":
        return st.datetimes(datetime(1900, 1, 1), datetime(2099, 12, 31)).map(
            lambda t: t.strftime("%Y%m%d%H%M%S")
        )
    if vr == "DS":
        return _multi(st.integers(-99999, 99999).map(lambda n: f"{n / 100:g}"))
    if vr == "IS":
        return _multi(st.integers(-99999, 99999).map(str))
    if vr == "UI":
        return st.lists(st.integers(1, 99999), min_size=2, max_size=6).map(
            lambda parts: ".".join(map(str, parts))
        )
    if vr == "UR":
        return _CS.map(lambda s: f"http://example.com/{s}")
    if vr in ("LO", "SH", "PN", "UC"):
        return _multi(_TEXT)
    return _TEXT  # LT, ST, UT: single valued


@st.composite
def public_element(draw: st.DrawFn) -> Element:
    vr = draw(st.sampled_from(_VRS))
    tag = draw(st.sampled_from(TAGS_BY_VR[vr]))
    return Element(tag, vr, draw(value_for(vr)))


@st.composite
def item(draw: st.DrawFn, depth: int) -> Item:
    elements = draw(st.lists(public_element(), max_size=4, unique_by=lambda e: e.tag))
    if depth > 0 and draw(st.booleans()):
        elements.append(draw(sequence(depth - 1)))
    unique = {e.tag: e for e in elements}
    return Item(tuple(sorted(unique.values(), key=lambda e: e.tag)), draw(st.booleans()))


@st.composite
def sequence(draw: st.DrawFn, depth: int, tag: int | None = None) -> Element:
    tag = draw(st.sampled_from(SQ_TAGS)) if tag is None else tag
    items = draw(st.lists(item(depth), max_size=3))
    return Element(tag, "SQ", tuple(items), draw(st.booleans()))


@st.composite
def private_block(draw: st.DrawFn) -> list[Element]:
    out = [Element(PRIVATE_CREATOR_TAG, "LO", "HYPOTHESIS TEST")]
    vrs = draw(st.lists(st.sampled_from(["LO", "UL", "US", "OB", "FD", "SQ"]), max_size=5))
    for index, vr in enumerate(vrs):
        tag = 0x00091000 + index
        if vr == "SQ":
            out.append(draw(sequence(1, tag)))
        else:
            out.append(Element(tag, vr, draw(value_for(vr))))
    return out


@st.composite
def datasets(draw: st.DrawFn, undefined_only: bool = False) -> tuple[Element, ...]:
    """A random data set model: public elements, sequences, private block, pixel module."""
    elements: list[Element] = draw(
        st.lists(public_element(), max_size=12, unique_by=lambda e: e.tag)
    )
    elements += draw(st.lists(sequence(2), max_size=2))
    if draw(st.booleans()):
        elements += draw(private_block())
    if draw(st.booleans()):
        rep = draw(st.sampled_from([None, 0, 1]))
        if rep is not None:
            elements.append(Element(0x00280103, "US", rep))
        ambiguous_vr = "SS" if rep == 1 else "US"
        for tag in draw(st.lists(st.sampled_from(AMBIGUOUS_US_SS), unique=True)):
            elements.append(Element(tag, ambiguous_vr, draw(value_for(ambiguous_vr))))
    if draw(st.booleans()):
        bits = draw(st.sampled_from([8, 16]))
        elements.append(Element(0x00280100, "US", bits))
        pixels = draw(st.binary(min_size=2, max_size=512).map(lambda b: b[: len(b) & ~1]))
        elements.append(Element(0x7FE00010, "OB" if bits == 8 else "OW", pixels))
    unique = {e.tag: e for e in elements}
    model = tuple(sorted(unique.values(), key=lambda e: e.tag))
    return _all_undefined(model) if undefined_only else model


def _all_undefined(elements: tuple[Element, ...]) -> tuple[Element, ...]:
    out = []
    for e in elements:
        if e.vr == "SQ":
            items = tuple(Item(_all_undefined(i.elements), True) for i in e.value)
            e = Element(e.tag, "SQ", items, True)
        out.append(e)
    return tuple(out)


def has_private_data(elements: tuple[Element, ...]) -> bool:
    """True if a private element other than a private creator occurs anywhere."""
    for e in elements:
        if (e.tag >> 16) & 1 and e.tag != PRIVATE_CREATOR_TAG:
            return True
        if e.vr == "SQ" and any(has_private_data(i.elements) for i in e.value):
            return True
    return False


def build(elements: tuple[Element, ...], little: bool) -> Dataset:
    """The pydicom Dataset of a model, binary values in the byte order asked for."""
    ds = Dataset()
    for e in elements:
        if e.vr == "SQ":
            items = []
            for it in e.value:
                child = build(it.elements, little)
                child.is_undefined_length_sequence_item = it.undefined
                items.append(child)
            ds.add_new(e.tag, "SQ", Sequence(items))
            ds[e.tag].is_undefined_length = e.undefined
            continue
        value = e.value
        unit = _BINARY_UNIT.get(e.vr, 1)
        if not little and unit > 1 and e.vr != "UN":
            value = swap(value, unit)
        ds.add_new(e.tag, e.vr, value)
    return ds


def encode(elements: tuple[Element, ...], ts: str) -> bytes:
    """pydicom's encoding of the model as a bare data set in ``ts`` (deflated if asked)."""
    little = ts != ExplicitVRBigEndian
    fp = DicomBytesIO()
    fp.is_little_endian = little
    fp.is_implicit_VR = ts == ImplicitVRLittleEndian
    write_dataset(fp, build(elements, little))
    data = fp.getvalue()
    if ts == DeflatedExplicitVRLittleEndian:
        packer = zlib.compressobj(wbits=-zlib.MAX_WBITS)
        data = packer.compress(data) + packer.flush()
        data += b"\x00" * (len(data) % 2)
    return data


__all__ = [
    "SYNTAXES",
    "Element",
    "ExplicitVRLittleEndian",
    "Item",
    "build",
    "datasets",
    "encode",
    "has_private_data",
]
