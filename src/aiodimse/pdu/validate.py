"""Value rules for what we put on the wire (PS3.5 6.2 VR AE, SH and UI; PS3.8 9.3).

Two levels, used by the PDU classes and :func:`aiodimse.pdu.encode_pdu`:

* *representable* (``check_*`` helpers, called from ``__post_init__``): the value fits its
  wire field at all: an integer within the field's width, a string that encodes to
  ISO 8859-1 within the field's length. Everything the decoder produces is representable,
  so a bad peer's PDU can always be held, logged and answered.
* *valid* (``validate_*``, called by ``encode_pdu(..., strict=True)``): the value obeys the
  standard (VR AE, VR UI, odd presentation context IDs, enumerated results ...). We never
  originate an invalid value.

Every failure raises :class:`aiodimse.errors.PDUEncodeError` (a ``LocalProtocolError`` and a
``ValueError``).
"""

from __future__ import annotations

from ..errors import PDUEncodeError

__all__ = [
    "check_bytes",
    "check_text",
    "check_uint",
    "validate_ae_title",
    "validate_context_id",
    "validate_short_string",
    "validate_uid",
]


def check_uint(name: str, value: int, bits: int) -> None:
    """Raise unless ``value`` is an ``int`` fitting an unsigned field of ``bits`` bits."""
    if not isinstance(value, int) or not 0 <= value < (1 << bits):
        raise PDUEncodeError(f"{name} must be an integer in 0..{(1 << bits) - 1}, got {value!r}")


def check_text(name: str, value: str, max_bytes: int) -> None:
    """Raise unless ``value`` is a ``str`` encodable as ISO 8859-1 in at most ``max_bytes``."""
    if not isinstance(value, str):
        raise PDUEncodeError(f"{name} must be a str, got {type(value).__name__}")
    try:
        value.encode("latin-1")
    except UnicodeEncodeError:
        raise PDUEncodeError(f"{name} {value!r} has characters outside ISO 8859-1") from None
    if len(value) > max_bytes:
        raise PDUEncodeError(f"{name} is {len(value)} bytes long, at most {max_bytes} fit")


def check_bytes(name: str, value: bytes, max_bytes: int) -> None:
    """Raise unless ``value`` is ``bytes`` of at most ``max_bytes``."""
    if not isinstance(value, bytes | bytearray | memoryview):
        raise PDUEncodeError(f"{name} must be bytes, got {type(value).__name__}")
    if len(value) > max_bytes:
        raise PDUEncodeError(f"{name} is {len(value)} bytes long, at most {max_bytes} fit")


def _is_basic_g0(value: str) -> bool:
    # ISO 646 basic G0 set, printable: 20H..7EH.
    return all(" " <= ch <= "~" for ch in value)


def validate_ae_title(value: str, name: str = "AE title") -> str:
    """Return ``value`` if it is a valid AE title (PS3.5 6.2 VR AE), else raise.

    1 to 16 characters of ISO 646 (no control characters), no backslash, not only spaces
    (PS3.8 9.3.2: 16 spaces means "no name" and shall not be used). Leading and trailing
    spaces are allowed (they are not significant).
    """
    if not isinstance(value, str):
        raise PDUEncodeError(f"{name} must be a str, got {type(value).__name__}")
    if not 1 <= len(value) <= 16:
        raise PDUEncodeError(f"{name} {value!r} must be 1 to 16 characters long")
    if not _is_basic_g0(value) or "\\" in value:
        raise PDUEncodeError(f"{name} {value!r} has a backslash or a non-printable character")
    if not value.strip(" "):
        raise PDUEncodeError(f"{name} must not be only spaces")
    return value


def validate_uid(value: str, name: str = "UID") -> str:
    """Return ``value`` if it is a valid UID (PS3.5 9.1 and 6.2 VR UI), else raise.

    At most 64 characters of digits and dots; non-empty components; no component starts
    with ``0`` unless it is exactly ``0``. No padding (PS3.8 Annex F: UIDs in PDU items are
    not padded).
    """
    if not isinstance(value, str):
        raise PDUEncodeError(f"{name} must be a str, got {type(value).__name__}")
    if not 1 <= len(value) <= 64:
        raise PDUEncodeError(f"{name} {value!r} must be 1 to 64 characters long")
    for component in value.split("."):
        if not component or not component.isascii() or not component.isdigit():
            raise PDUEncodeError(f"{name} {value!r} is not digits separated by single dots")
        if len(component) > 1 and component[0] == "0":
            raise PDUEncodeError(f"{name} {value!r} has a component with a leading zero")
    return value


def validate_short_string(value: str, name: str) -> str:
    """Return ``value`` if it is a 1-16 character VR SH-like name (no control, no ``\\``)."""
    if not isinstance(value, str):
        raise PDUEncodeError(f"{name} must be a str, got {type(value).__name__}")
    if not 1 <= len(value) <= 16:
        raise PDUEncodeError(f"{name} {value!r} must be 1 to 16 characters long")
    if not _is_basic_g0(value) or "\\" in value:
        raise PDUEncodeError(f"{name} {value!r} has a backslash or a non-printable character")
    return value


def validate_context_id(value: int, name: str = "presentation context ID") -> int:
    """Return ``value`` if it is odd and in 1..255 (PS3.8 9.3.2.2), else raise."""
    if not isinstance(value, int) or not (1 <= value <= 255 and value & 1):
        raise PDUEncodeError(f"{name} must be an odd integer in 1..255, got {value!r}")
    return value
