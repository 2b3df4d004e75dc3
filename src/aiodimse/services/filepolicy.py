"""The one file-name policy of the storage SCP: identifiers a peer sends -> safe relative paths.

Everything that turns a value received from a peer into a file or directory name goes
through this module (ROBUSTNESS 32-33; dcmtk CVE-2022-2119/2120 and pynetdicom #823/#1092
were each a code path that built a path from a UID by hand). The functions are pure: no
file system access, no I/O; :func:`resolve_inside` is the one check that looks at a real
root, and callers apply it again at write time.

Rules
-----
* A UID is used raw only when it is a valid UID (PS3.5 9.1: 1-64 characters, components of
  digits separated by ``.``, no empty component, no leading zero in a multi-digit
  component), after stripping the padding PS3.5 6.2 allows (trailing NUL or spaces). Such a
  name is digits and dots only, so it is safe under POSIX and Windows rules.
* A Patient ID (tree layout) is used raw only when it is 1-64 characters of
  ``[A-Za-z0-9._-]``, starts with a letter or digit, does not end with ``.``, and is not a
  Windows reserved device name (``CON``, ``PRN``, ``AUX``, ``NUL``, ``COM0-9``, ``LPT0-9``,
  with or without an extension, any case).
* Anything else (``../../x``, ``/etc/passwd``, ``..``, ``.``, empty, 65+ characters, NUL,
  control characters, ``\\``, ``C:\\x``, ``a:b``, non-ASCII, trailing dots or spaces...)
  becomes a *derived name*: ``_`` followed by the first 32 hex digits (128 bits) of the
  SHA-256 of the value's UTF-8 bytes. Raw names never start with ``_``, so a derived name
  never collides with a raw one; the same value always maps to the same name.
* An AE title is never a path component (ROBUSTNESS 33).
* Temporary files are ``.aiodimse-<hex>.part`` in the storage root: hidden on POSIX, never a
  valid final name (final names never start with ``.``), recognised by
  :func:`is_temporary_name` so that start-up can remove what a crash left behind.

Layouts
-------
``FLAT``: ``<SOPInstanceUID>.dcm``. ``TREE``: ``<PatientID>/<StudyInstanceUID>/
<SeriesInstanceUID>/<SOPInstanceUID>.dcm``. Components are at most 64 characters, so a tree
path is at most 4 x 64 + 3 separators + 4 (``.dcm``) = 263 characters below the root; on
Windows without long-path support keep the root short. On case-insensitive file systems two
Patient IDs differing only in case share a directory (file names are UIDs: no overwrite).
"""

from __future__ import annotations

import enum
import hashlib
import itertools
import os
import re
import secrets
from pathlib import Path, PurePosixPath

__all__ = [
    "MAX_COMPONENT",
    "Layout",
    "UnsafePathError",
    "derived_name",
    "is_temporary_name",
    "is_valid_uid",
    "relative_parts",
    "relative_path",
    "resolve_inside",
    "safe_patient_component",
    "safe_uid_component",
    "strip_padding",
    "temporary_name",
]

#: Longest component we emit (PS3.5 9.1: a UID has at most 64 characters; LO has 64).
MAX_COMPONENT = 64
#: Suffix of stored files (PS3.10 does not mandate one; ``.dcm`` is what viewers expect).
SUFFIX = ".dcm"
_TEMP_PREFIX = ".aiodimse-"
_TEMP_SUFFIX = ".part"
_TEMP_RE = re.compile(r"\.aiodimse-[0-9a-f]{32}\.part\Z")
_TOKEN_RE = re.compile(r"[0-9a-f]{32}")
_PLAIN_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,254}\Z")

# PS3.5 9.1: "0" or a digit 1-9 followed by digits, components separated by ".".
_UID_RE = re.compile(r"(?:0|[1-9][0-9]*)(?:\.(?:0|[1-9][0-9]*))*\Z")
_PATIENT_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*\Z")
# Windows device names, reserved in any directory, with any extension, any case.
_RESERVED = frozenset(
    ["CON", "PRN", "AUX", "NUL"] + [f"COM{i}" for i in range(10)] + [f"LPT{i}" for i in range(10)]
)


class Layout(enum.Enum):
    """Where a stored instance goes below the storage root."""

    FLAT = "flat"
    TREE = "tree"


class UnsafePathError(ValueError):
    """A path would leave the storage root (never raised for policy output; a guard)."""


def strip_padding(value: str) -> str:
    """Remove the padding PS3.5 6.2 allows around a UI/LO value (NUL or spaces)."""
    return value.strip(" \x00")


def is_valid_uid(value: str) -> bool:
    """PS3.5 9.1: 1-64 characters, digit components separated by dots, no leading zeros."""
    return 0 < len(value) <= MAX_COMPONENT and _UID_RE.match(value) is not None


def derived_name(value: str) -> str:
    """``_`` + 32 hex digits of SHA-256 of ``value`` (UTF-8; lone surrogates kept)."""
    digest = hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()
    return "_" + digest[:32]


def safe_uid_component(value: str | None) -> str:
    """The path component for a UID: itself when valid after stripping padding, else derived."""
    stripped = strip_padding(value or "")
    if is_valid_uid(stripped):
        return stripped
    return derived_name(value or "")


def _is_reserved(name: str) -> bool:
    # "CON", "con.txt", "Com1.tar.gz" are all the device on Windows.
    return name.split(".", 1)[0].upper() in _RESERVED


def safe_patient_component(value: str | None) -> str:
    """The path component for a Patient ID (or any LO-like text); see the module rules."""
    stripped = strip_padding(value or "")
    if (
        0 < len(stripped) <= MAX_COMPONENT
        and _PATIENT_RE.match(stripped) is not None
        and not stripped.endswith(".")
        and not _is_reserved(stripped)
    ):
        return stripped
    return derived_name(value or "")


def relative_parts(
    *,
    sop_instance_uid: str,
    layout: Layout = Layout.FLAT,
    patient_id: str | None = None,
    study_instance_uid: str | None = None,
    series_instance_uid: str | None = None,
) -> tuple[str, ...]:
    """The path components, below the storage root, of a stored instance.

    Every component is safe under POSIX and Windows rules; the last is the file name.
    """
    file_name = safe_uid_component(sop_instance_uid) + SUFFIX
    if layout is Layout.FLAT:
        return (file_name,)
    return (
        safe_patient_component(patient_id),
        safe_uid_component(study_instance_uid),
        safe_uid_component(series_instance_uid),
        file_name,
    )


def relative_path(
    *,
    sop_instance_uid: str,
    layout: Layout = Layout.FLAT,
    patient_id: str | None = None,
    study_instance_uid: str | None = None,
    series_instance_uid: str | None = None,
) -> PurePosixPath:
    """:func:`relative_parts` as a relative ``PurePosixPath`` (join it to a root)."""
    return PurePosixPath(
        *relative_parts(
            sop_instance_uid=sop_instance_uid,
            layout=layout,
            patient_id=patient_id,
            study_instance_uid=study_instance_uid,
            series_instance_uid=series_instance_uid,
        )
    )


class _Names:
    """Fresh temporary names without a system call each: 64 random bits drawn once per
    process (again in a forked child), then a counter (``os.urandom`` cost 0.1 ms a call
    in a VM here, once per received instance)."""

    prefix = secrets.token_hex(8)
    counter = itertools.count()

    @classmethod
    def renew(cls) -> None:
        cls.prefix = secrets.token_hex(8)


if hasattr(os, "register_at_fork"):  # POSIX
    os.register_at_fork(after_in_child=_Names.renew)


def temporary_name(token: str | None = None) -> str:
    """A fresh temporary file name (``token``: 32 lowercase hex digits; by default unique
    in this process and, with 64 random bits, across processes and restarts)."""
    if token is None:
        token = f"{_Names.prefix}{next(_Names.counter) & 0xFFFF_FFFF_FFFF_FFFF:016x}"
    elif _TOKEN_RE.fullmatch(token) is None:
        raise ValueError("token must be 32 lowercase hex digits")
    return f"{_TEMP_PREFIX}{token}{_TEMP_SUFFIX}"


def _is_plain_name(name: str) -> bool:
    """One portable file name (what this policy makes): ``[A-Za-z0-9_][A-Za-z0-9._-]*``, no
    trailing dot, not a Windows device name; never a separator, drive, ``..`` or NUL."""
    return _PLAIN_RE.match(name) is not None and not name.endswith(".") and not _is_reserved(name)


def is_temporary_name(name: str) -> bool:
    """True for names made by :func:`temporary_name` (what start-up may delete)."""
    return _TEMP_RE.match(name) is not None


def resolve_inside(
    root: Path, parts: tuple[str, ...] | PurePosixPath, *, base: Path | None = None
) -> Path:
    """``root / parts``, checked to resolve inside ``root`` (ROBUSTNESS 32); raises otherwise.

    Resolves symbolic links that already exist, so a link planted below the root that points
    outside is refused too. Touches the file system (``Path.resolve``): call it off the loop.
    ``base`` is ``root.resolve()`` when the caller already has it (resolved once at
    start-up). One plain file name (``FLAT``) that is not a symbolic link needs no more
    than one ``lstat``: its parent is the resolved root itself.
    """
    components = parts.parts if isinstance(parts, PurePosixPath) else parts
    if base is None:
        base = root.resolve()
    if len(components) == 1 and _is_plain_name(components[0]):
        target = base / components[0]
        if not target.is_symlink():  # a link planted at the name is resolved below
            return target
    target = base.joinpath(*components).resolve()
    if target == base or base not in target.parents:
        raise UnsafePathError(f"{target} is not inside the storage root {base}")
    return target
