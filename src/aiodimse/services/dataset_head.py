"""Read a few top-level elements from the first bytes of an encoded dataset (pure, bounded).

The storage SCP must compare the dataset's SOP Class/Instance UID with the command's
(PS3.4 B.2.3, ROBUSTNESS 34), find the Patient ID and Study/Series UIDs for the tree layout,
and notice group 0002 elements that have no place inside a dataset, without decoding the
whole dataset (it may be 1 GB and is already on its way to disk). :func:`parse_head` walks
element headers (PS3.5 7.1) from the start of a prefix of the dataset:

* Implicit VR LE, Explicit VR LE and Explicit VR BE (PS3.5 A.1-A.3); the caller inflates a
  deflated prefix first (:func:`inflate_prefix`, bounded output, ROBUSTNESS 30).
* Undefined-length sequences and items are skipped with an explicit stack, never recursion;
  nesting deeper than ``max_depth`` raises :class:`DatasetHeadError` (ROBUSTNESS 28). An
  explicit-VR ``UN`` of undefined length is read as Implicit VR LE inside (PS3.5 6.2.2).
* It stops after the last wanted tag (top-level elements are in ascending order, PS3.5 7.1)
  or at the end of the prefix (``complete=False`` then, unless ``at_end``).

Lengths come from the peer and are never used to allocate: values are slices of the prefix.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

from ..errors import DicomError

__all__ = [
    "PATIENT_ID",
    "SERIES_INSTANCE_UID",
    "SOP_CLASS_UID",
    "SOP_INSTANCE_UID",
    "STUDY_INSTANCE_UID",
    "DatasetHead",
    "DatasetHeadError",
    "inflate_prefix",
    "parse_head",
]

SOP_CLASS_UID = 0x00080016
SOP_INSTANCE_UID = 0x00080018
PATIENT_ID = 0x00100020
STUDY_INSTANCE_UID = 0x0020000D
SERIES_INSTANCE_UID = 0x0020000E

_ITEM = 0xFFFEE000
_ITEM_END = 0xFFFEE00D
_SEQ_END = 0xFFFEE0DD
_UNDEFINED = 0xFFFFFFFF
# PS3.5 7.1.2: explicit VRs with 2 reserved bytes and a 32-bit length.
_LONG_VRS = frozenset({b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN",
                       b"UR", b"UT", b"UV"})  # fmt: skip


_Order = Literal["little", "big"]
_TAG_LE, _TAG_BE = struct.Struct("<HH"), struct.Struct(">HH")
_U16_LE, _U16_BE = struct.Struct("<H"), struct.Struct(">H")
_U32_LE, _U32_BE = struct.Struct("<L"), struct.Struct(">L")


class DatasetHeadError(DicomError):
    """The start of the dataset cannot be parsed (answered with a 0xCxxx failure)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class DatasetHead:
    """What :func:`parse_head` found: raw values by tag, group 0002 prefix length."""

    values: dict[int, bytes] = field(default_factory=dict)
    #: Bytes taken by group 0002 elements at the very start of the dataset.
    group2_length: int = 0
    #: The walk passed every wanted tag or reached the end of the dataset.
    complete: bool = False

    def text(self, tag: int) -> str | None:
        """The value as text (Latin-1, one char per byte), padding stripped; None if absent."""
        raw = self.values.get(tag)
        return None if raw is None else raw.decode("latin-1").strip(" \x00")


def inflate_prefix(data: bytes, limit: int) -> bytes:
    """Inflate the start of a deflated dataset (PS3.5 A.5), at most ``limit`` bytes out."""
    try:
        return zlib.decompressobj(-zlib.MAX_WBITS).decompress(data, limit)
    except zlib.error as exc:
        raise DatasetHeadError(f"deflated dataset cannot be inflated: {exc}") from None


def parse_head(
    data: bytes,
    *,
    implicit: bool,
    little: bool = True,
    wanted: Iterable[int] = (SOP_CLASS_UID, SOP_INSTANCE_UID),
    at_end: bool = False,
    max_depth: int = 64,
) -> DatasetHead:
    """Walk top-level elements of ``data`` (a dataset prefix); see the module docstring."""
    want = wanted if isinstance(wanted, frozenset) else frozenset(wanted)
    last = max(want) if want else 0
    values: dict[int, bytes] = {}
    order: _Order = "little" if little else "big"
    tag_at = (_TAG_LE if little else _TAG_BE).unpack_from
    u16_at = (_U16_LE if little else _U16_BE).unpack_from
    u32_at = (_U32_LE if little else _U32_BE).unpack_from
    n = len(data)
    pos = 0
    group2_end = 0
    in_group2 = True
    while True:
        if pos + 8 > n:
            return DatasetHead(values=values, group2_length=group2_end, complete=at_end)
        group, element = tag_at(data, pos)
        tag = (group << 16) | element
        if tag > last and group != 0x0002:
            return DatasetHead(values=values, group2_length=group2_end, complete=True)
        # PS3.5 7.1.2/7.1.3: the element header (tag, VR, length) of each encoding.
        vr = b""
        if implicit:
            header, (length,) = 8, _U32_LE.unpack_from(data, pos + 4)
        else:
            vr = data[pos + 4 : pos + 6]
            if vr in _LONG_VRS:
                if pos + 12 > n:
                    return DatasetHead(values=values, group2_length=group2_end, complete=at_end)
                header, (length,) = 12, u32_at(data, pos + 8)
            else:
                header, (length,) = 8, u16_at(data, pos + 6)
        start = pos + header
        if length == _UNDEFINED:
            end = _skip_undefined(data, start, implicit or vr == b"UN", order, max_depth)
            if end is None:
                return DatasetHead(values=values, group2_length=group2_end, complete=at_end)
        else:
            end = start + length
            if tag in want:
                if end > n:
                    return DatasetHead(values=values, group2_length=group2_end, complete=at_end)
                values[tag] = data[start:end]
        if in_group2 and group == 0x0002:
            group2_end = min(end, n)
        else:
            in_group2 = False
        pos = end


def _element_header(
    data: bytes, pos: int, *, implicit: bool, order: _Order
) -> tuple[int | None, int, bytes]:
    """(header size, value length, VR) of the element at ``pos``; header None if truncated."""
    n = len(data)
    if implicit:
        return 8, int.from_bytes(data[pos + 4 : pos + 8], "little"), b""
    vr = data[pos + 4 : pos + 6]
    if vr in _LONG_VRS:
        if pos + 12 > n:
            return None, 0, vr
        return 12, int.from_bytes(data[pos + 8 : pos + 12], order), vr
    return 8, int.from_bytes(data[pos + 6 : pos + 8], order), vr


def _skip_undefined(
    data: bytes, pos: int, implicit: bool, order: _Order, max_depth: int
) -> int | None:
    """End offset of an undefined-length sequence starting at ``pos``; None if truncated.

    The stack holds (kind, implicit) with kind "S" (in a sequence: items or the sequence
    delimiter) or "I" (in an item: elements or the item delimiter).
    """
    n = len(data)
    stack: list[tuple[str, bool]] = [("S", implicit)]
    while stack:
        if len(stack) > 2 * max_depth:
            raise DatasetHeadError(f"sequences nested deeper than {max_depth}")
        if pos + 8 > n:
            return None
        kind, imp = stack[-1]
        order_here: _Order = "little" if imp else order
        tag = (int.from_bytes(data[pos : pos + 2], order_here) << 16) | int.from_bytes(
            data[pos + 2 : pos + 4], order_here
        )
        if tag in (_ITEM, _ITEM_END, _SEQ_END):  # PS3.5 7.5: always tag + 32-bit length
            length = int.from_bytes(data[pos + 4 : pos + 8], order_here)
            pos += 8
            if tag == _SEQ_END or tag == _ITEM_END:
                stack.pop()
            elif length == _UNDEFINED:
                stack.append(("I", imp))
            else:
                pos += length
            continue
        if kind == "S":
            raise DatasetHeadError(f"element ({tag >> 16:04X},{tag & 0xFFFF:04X}) outside an item")
        header, length, vr = _element_header(data, pos, implicit=imp, order=order_here)
        if header is None:
            return None
        pos += header
        if length == _UNDEFINED:
            stack.append(("S", imp or vr == b"UN"))
        else:
            pos += length
    return pos
