"""The Storage SCP's byte-level helpers: PS3.10 File Meta Information and dataset checks.

Split from :mod:`.storage_scp` (the service): what is computed per instance from bytes and
UIDs, with no I/O: the preamble and File Meta Information a received dataset is stored
behind (PS3.10 7.1), which leading group 0002 elements to drop, the check of the dataset's
SOP Class/Instance UID against the command (PS3.4 B.2.3, ROBUSTNESS 34), and the texts of
a response (Error Comment, echoed UIDs).
"""

from __future__ import annotations

import functools
import struct
from collections.abc import Callable
from typing import Final

from ..constants import (
    DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN,
    EXPLICIT_VR_BIG_ENDIAN,
    IMPLICIT_VR_LITTLE_ENDIAN,
)
from ..dimse.messages import CStoreRQ
from . import dataset_head as dh
from .filepolicy import strip_padding

__all__ = [
    "HOLD",
    "comment",
    "echo_class_uid",
    "echo_uid",
    "file_meta",
    "group2_marker",
    "group2_skipper",
    "mismatch",
    "read_head",
]

#: Bytes of a dataset held back to find group 0002 elements and the UIDs.
HOLD: Final = 256 * 1024


# -- PS3.10 file meta ----------------------------------------------------------------------------


def _element(tag: int, vr: bytes, value: bytes) -> bytes:
    """One explicit VR little endian element (PS3.5 7.1.2); group 2 is always so (PS3.10)."""
    if vr == b"OB":
        return struct.pack("<HH2sHI", tag >> 16, tag & 0xFFFF, vr, 0, len(value)) + value
    return struct.pack("<HH2sH", tag >> 16, tag & 0xFFFF, vr, len(value)) + value


def _text(value: str, pad: bytes) -> bytes:
    raw = value.encode("ascii", "replace")
    return raw + pad if len(raw) & 1 else raw


@functools.lru_cache(maxsize=256)
def _meta_head(sop_class_uid: str) -> bytes:
    """(0002,0001) and (0002,0002): the same for every instance of a SOP class (cached)."""
    return _element(0x00020001, b"OB", b"\x00\x01") + _element(  # version 00\01
        0x00020002, b"UI", _text(strip_padding(sop_class_uid), b"\x00")
    )


@functools.lru_cache(maxsize=256)
def _meta_tail(
    transfer_syntax: str,
    implementation_class_uid: str,
    implementation_version_name: str | None,
    source_ae_title: str | None,
) -> bytes:
    """(0002,0010) to (0002,0016): the same for every instance of an association (cached)."""
    out = _element(0x00020010, b"UI", _text(transfer_syntax, b"\x00"))
    out += _element(0x00020012, b"UI", _text(implementation_class_uid, b"\x00"))
    if implementation_version_name:
        out += _element(0x00020013, b"SH", _text(implementation_version_name, b" "))
    if source_ae_title and source_ae_title.strip():
        out += _element(0x00020016, b"AE", _text(source_ae_title.strip()[:16], b" "))
    return out


def file_meta(
    *,
    sop_class_uid: str,
    sop_instance_uid: str,
    transfer_syntax: str,
    implementation_class_uid: str,
    implementation_version_name: str | None,
    source_ae_title: str | None,
) -> bytes:
    """Preamble, ``DICM`` and the File Meta Information group (PS3.10 7.1, Table 7.1-1)."""
    head = _meta_head(sop_class_uid)
    uid = _text(strip_padding(sop_instance_uid), b"\x00")
    tail = _meta_tail(
        transfer_syntax, implementation_class_uid, implementation_version_name, source_ae_title
    )
    # (0002,0000) File Meta Information Group Length: the bytes of the elements after it.
    length = len(head) + 8 + len(uid) + len(tail)
    return b"".join(
        (_PREAMBLE, _GROUP_LENGTH_HEADER, struct.pack("<I", length), head,
         struct.pack("<HH2sH", 0x0002, 0x0003, b"UI", len(uid)), uid, tail)
    )  # fmt: skip


#: PS3.10 7.1: a 128-byte preamble (zeros here) and the ``DICM`` prefix.
_PREAMBLE: Final = b"\x00" * 128 + b"DICM"
#: (0002,0000) UL, value length 4 (explicit VR little endian, PS3.5 7.1.2).
_GROUP_LENGTH_HEADER: Final = struct.pack("<HH2sH", 0x0002, 0x0000, b"UL", 4)


def _encoding(ts: str) -> tuple[bool, bool, bool]:
    """(implicit, little endian, deflated) of a transfer syntax (PS3.5 A.1-A.5, 10)."""
    if ts == IMPLICIT_VR_LITTLE_ENDIAN:
        return True, True, False
    if ts == EXPLICIT_VR_BIG_ENDIAN:
        return False, False, False
    return False, True, ts == DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN


def group2_marker(ts: str) -> bytes:
    """The first bytes of a dataset that may open with group 0002 elements, as encoded in
    ``ts`` (its group number); what :func:`group2_skipper` looks at before parsing."""
    return b"\x00\x02" if ts == EXPLICIT_VR_BIG_ENDIAN else b"\x02\x00"


@functools.lru_cache(maxsize=64)
def group2_skipper(ts: str) -> Callable[[bytes], int]:
    implicit, little, deflated = _encoding(ts)
    group2 = group2_marker(ts)

    def skip(head: bytes) -> int:
        if deflated or not head.startswith(group2):  # almost always: nothing to parse
            return 0
        try:
            return dh.parse_head(head, implicit=implicit, little=little, wanted=()).group2_length
        except dh.DatasetHeadError:
            return 0

    return skip


def read_head(head: bytes, ts: str, at_end: bool, wanted: frozenset[int]) -> dh.DatasetHead:
    implicit, little, deflated = _encoding(ts)
    if deflated:
        head = dh.inflate_prefix(head, 4 * HOLD)
        at_end = at_end and len(head) < 4 * HOLD
    return dh.parse_head(head, implicit=implicit, little=little, wanted=wanted, at_end=at_end)


def mismatch(msg: CStoreRQ, head: dh.DatasetHead) -> tuple[str, int] | None:
    """PS3.4 B.2.3 / ROBUSTNESS 34: the command's UIDs must be the dataset's."""
    for tag, name, expected in (
        (dh.SOP_CLASS_UID, "SOP Class UID", msg.affected_sop_class_uid),
        (dh.SOP_INSTANCE_UID, "SOP Instance UID", msg.affected_sop_instance_uid),
    ):
        found = head.text(tag)
        if found is None:
            where = "dataset" if head.complete else f"first {HOLD // 1024} KiB of the dataset"
            return f"no {name} in the {where}", tag
        if found != strip_padding(expected):
            return f"dataset {name} {found!r} is not the command's {expected!r}", tag
    return None


def comment(text: str) -> str:
    """An Error Comment (0000,0902): LO, at most 64 characters of the default repertoire."""
    text = text.encode("ascii", "replace").decode("ascii").replace("\\", "/")
    return text[:64]


@functools.lru_cache(maxsize=256)
def echo_class_uid(uid: str) -> str | None:
    """:func:`echo_uid` of a SOP Class UID (few distinct values: cached)."""
    return echo_uid(uid)


def echo_uid(uid: str) -> str | None:
    """The UID for the response when it can be encoded (ASCII, <= 64, no backslash)."""
    uid = strip_padding(uid)
    if 0 < len(uid) <= 64 and uid.isascii() and "\\" not in uid:
        return uid
    return None
