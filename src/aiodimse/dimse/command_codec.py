"""A dedicated codec for DIMSE command sets (group 0000), PS3.7 6.3 and Annex E.

Theory of operation
-------------------
A command set is always Implicit VR Little Endian (PS3.7 6.3.1): a run of elements, each
``group (2) element (2) length (4) value``, all in group 0000, in ascending tag order, each
tag at most once, the Command Group Length (0000,0000) first. Because the dictionary is
closed and tiny (PS3.7 Table E.1-1), we need no general DICOM parser: :func:`encode_command`
walks a per-class table of ``(tag, field, VR)`` built once, and :func:`decode_command` splits
the bytes into ``tag -> value`` in one bounded pass, then picks the message class from the
Command Field and converts only the fields that class has.

Decoding rules (every failure raises :class:`~aiodimse.errors.CommandDecodeError`, never any
other exception, whatever the bytes; ROBUSTNESS 24):

* structure: truncated headers, a value length past the end of the data, a tag outside group
  0000, a tag out of ascending order or repeated (PS3.5 7.1: "Data Elements ... shall occur
  in increasing order", at most once);
* Command Group Length: when present it must be first and 4 bytes long; a value that does not
  match the bytes that follow is tolerated and logged (we know the command's extent from the
  PDVs, and decoders in the wild recompute it);
* fixed-size values: US must be 2 bytes, UL 4, AT a multiple of 4 ("mistyped");
* an unknown Command Field, a missing Message ID, a missing mandatory (M) field of the
  message's PS3.7 table, or a zero-length value where a value is mandatory;
* strings: UI and AE must be ASCII (PS3.7 6.3.1, default character repertoire); an Error
  Comment with other bytes is kept with those bytes replaced by "?" (it is only text).

Liberal reading, documented: Command Data Set Type is kept raw and any value other than
0x0101 means a data set follows (PS3.7 E.1; ROBUSTNESS 25); a group-0000 tag that is not in
the current dictionary (the retired ones of PS3.7 E.2 such as (0000,0001) Command Length to End
or (0000,4000) Dialog Receiver, or anything unknown) is skipped once its structure is valid;
a known field that the message class does not carry (e.g. a Priority in a C-ECHO-RSP) is
skipped; a zero-length optional field reads as absent; odd-length string values are accepted.

When the failure leaves a request identifiable (its Command Field is a known request and its
Message ID was read), the error's ``status`` is the failure status to answer with, per
:func:`_failure_status`; otherwise ``status`` is ``None`` and the association should abort.

Speed: :func:`decode_command` first tries a fast single pass that handles only well-formed
commands with nothing to log (see :func:`_decode_fast`); whenever anything is unusual it gives
up and the complete reference decoder (:func:`_decode_reference`) decodes the bytes again, so
every error and every tolerated oddity comes from one place. :func:`encode_command` walks a
per-class table with pre-packed headers and caches the element bytes of SOP Class UIDs.
Commands that name no SOP Instance (C-ECHO, C-FIND...) often repeat byte for byte, so both
directions remember up to 128 of them (frozen values; only what decodes without any log).

Encoding validates what goes on the wire (raising :class:`~aiodimse.errors.LocalProtocolError`):
strings must be ASCII without backslash, at most 64 characters for UI/LO, 16 for AE.
"""

from __future__ import annotations

import logging
import struct
from dataclasses import MISSING, dataclass, fields
from typing import Final

from ..errors import CommandDecodeError, LocalProtocolError
from .messages import (
    MESSAGE_CLASSES,
    CommandField,
    DimseMessage,
    DimseRequest,
)

__all__ = [
    "COMMAND_TAGS",
    "RETIRED_COMMAND_TAGS",
    "command_vr",
    "decode_command",
    "encode_command",
]

_log = logging.getLogger("aiodimse.dimse.command_codec")


@dataclass(frozen=True, slots=True)
class _Elem:
    tag: int
    field: str
    vr: str
    max_len: int = 0


#: PS3.7 Table E.1-1, the command dictionary we read and write (tag -> field, VR).
_DICTIONARY: Final[tuple[_Elem, ...]] = (
    _Elem(0x00000002, "affected_sop_class_uid", "UI", 64),
    _Elem(0x00000003, "requested_sop_class_uid", "UI", 64),
    _Elem(0x00000100, "command_field", "US"),
    _Elem(0x00000110, "message_id", "US"),
    _Elem(0x00000120, "message_id_being_responded_to", "US"),
    _Elem(0x00000600, "move_destination", "AE", 16),
    _Elem(0x00000700, "priority", "US"),
    _Elem(0x00000800, "command_data_set_type", "US"),
    _Elem(0x00000900, "status", "US"),
    _Elem(0x00000901, "offending_element", "AT"),
    _Elem(0x00000902, "error_comment", "LO", 64),
    _Elem(0x00000903, "error_id", "US"),
    _Elem(0x00001000, "affected_sop_instance_uid", "UI", 64),
    _Elem(0x00001001, "requested_sop_instance_uid", "UI", 64),
    _Elem(0x00001002, "event_type_id", "US"),
    _Elem(0x00001005, "attribute_identifier_list", "AT"),
    _Elem(0x00001008, "action_type_id", "US"),
    _Elem(0x00001020, "number_of_remaining_sub_operations", "US"),
    _Elem(0x00001021, "number_of_completed_sub_operations", "US"),
    _Elem(0x00001022, "number_of_failed_sub_operations", "US"),
    _Elem(0x00001023, "number_of_warning_sub_operations", "US"),
    _Elem(0x00001030, "move_originator_application_entity_title", "AE", 16),
    _Elem(0x00001031, "move_originator_message_id", "US"),
)

#: Tag -> field name for every command field we understand.
COMMAND_TAGS: Final[dict[int, str]] = {e.tag: e.field for e in _DICTIONARY}
_BY_FIELD: Final[dict[str, _Elem]] = {e.field: e for e in _DICTIONARY}
_BY_TAG: Final[dict[int, _Elem]] = {e.tag: e for e in _DICTIONARY}


def command_vr(tag: int) -> str | None:
    """The VR of a command field we understand (PS3.7 Table E.1-1), or None."""
    elem = _BY_TAG.get(tag)
    return elem.vr if elem is not None else None


#: PS3.7 E.2 (Table E.2-1): retired command fields; skipped when received, never sent.
RETIRED_COMMAND_TAGS: Final[frozenset[int]] = frozenset(
    {
        0x00000001,  # Command Length to End
        0x00000010,  # Command Recognition Code
        0x00000200,  # Initiator
        0x00000300,  # Receiver
        0x00000400,  # Find Location
        0x00000850,  # Number of Matches
        0x00000860,  # Response Sequence Number
        0x00004000,  # Dialog Receiver
        0x00004010,  # Terminal Type
        0x00005010,  # Message Set ID
        0x00005020,  # End Message ID
        0x00005110,  # Display Format
        0x00005120,  # Page Position ID
        0x00005130,  # Text Format ID
        0x00005140,  # Normal/Reverse
        0x00005150,  # Add Gray Scale
        0x00005160,  # Borders
        0x00005170,  # Copies
        0x00005180,  # Command Magnification Type
        0x00005190,  # Erase
        0x000051A0,  # Print
        0x000051B0,  # Overlays
    }
)

_TAG_COMMAND_GROUP_LENGTH: Final = 0x00000000
_TAG_COMMAND_FIELD: Final = 0x00000100
_TAG_MESSAGE_ID: Final = 0x00000110
# Fields that are M wherever they occur (PS3.7 9.3/10.3) but have a default in the classes
# for convenience when building messages; decoding still requires them.
_DEFAULTED_MANDATORY: Final = frozenset({"command_data_set_type", "priority"})

_HEADER = struct.Struct("<HHI")  # Implicit VR LE element header: group, element, length.
_US = struct.Struct("<H")
_UL = struct.Struct("<I")
_GROUP_LENGTH_PREFIX: Final = _HEADER.pack(0, 0, 4)

# Statuses (PS3.7 Annex C.5) used to answer a request whose command cannot be decoded.
_UNRECOGNIZED_OPERATION: Final = 0x0211  # C.5: Command Field not one of those agreed.
_MISTYPED_ARGUMENT: Final = 0x0212  # C.5: a parameter is of the wrong type/encoding.
_MISSING_ATTRIBUTE: Final = 0x0120  # C.5: a required attribute was not supplied.
_CANNOT_UNDERSTAND: Final = 0xC000  # C.5 "Error: Cannot understand", Cxxx (PS3.4 B.2.3, C.4).

# Services whose PS3.4 status table has the Cxxx "Cannot understand" failure class.
_CXXX_SERVICES: Final = frozenset(
    {
        CommandField.C_STORE_RQ,
        CommandField.C_FIND_RQ,
        CommandField.C_GET_RQ,
        CommandField.C_MOVE_RQ,
    }
)


def _failure_status(command_field: int | None, message_id: int | None, missing: bool) -> int | None:
    """The failure status for an undecodable request, or None when it cannot be answered.

    A response needs the request's Command Field (to pick the -RSP) and Message ID (PS3.7
    9.3/10.3: Message ID Being Responded To is M). C-CANCEL-RQ and responses get no answer.
    Storage and Query/Retrieve requests get 0xC000 "Cannot understand" (PS3.4 B.2.3, C.4.1.1.4,
    C.4.2.1.5, C.4.3.1.4); other requests get the general 0x0120 Missing attribute for a
    missing mandatory field and 0x0212 Mistyped argument otherwise (PS3.7 C.5).
    """
    if message_id is None or command_field is None:
        return None
    try:
        cf = CommandField(command_field)
    except ValueError:
        # An unknown request is answered "Unrecognized operation"; an unknown response
        # (bit 15 set, PS3.7 E.1) is not answered.
        return None if command_field & 0x8000 else _UNRECOGNIZED_OPERATION
    if cf & 0x8000 or cf is CommandField.C_CANCEL_RQ:
        return None
    if cf in _CXXX_SERVICES:
        return _CANNOT_UNDERSTAND
    return _MISSING_ATTRIBUTE if missing else _MISTYPED_ARGUMENT


# ------------------------------------------------------------------------------- encoding


def _encode_str(elem: _Elem, value: str, pad: bytes) -> bytes:
    if len(value) > elem.max_len:
        raise LocalProtocolError(
            f"{elem.field} is {len(value)} characters, at most {elem.max_len} allowed (PS3.5 6.2)"
        )
    try:
        raw = value.encode("ascii")
    except UnicodeEncodeError:
        raise LocalProtocolError(
            f"{elem.field} must use the default character repertoire (PS3.7 6.3.1): {value!r}"
        ) from None
    if b"\\" in raw:
        raise LocalProtocolError(f"{elem.field} must not contain a backslash: {value!r}")
    if len(raw) & 1:
        raw += pad  # PS3.5 6.2: UI pads with NUL, the other string VRs with space.
    return raw


# Element kinds of the encoding and decoding tables (ints: cheaper to compare than VR strings).
# The string kinds come last: the decoder tests ``kind >= _K_UI``.
_K_US: Final = 0
_K_AT: Final = 1
_K_GROUP_LENGTH: Final = 2  # decoding only: (0000,0000)
_K_COMMAND_FIELD: Final = 3  # decoding only: (0000,0100)
_K_CONST: Final = 4  # encoding only: a pre-encoded element (the class's Command Field)
_K_UI: Final = 5
_K_AE: Final = 6
_K_LO: Final = 7
_KIND_OF_VR: Final = dict(US=_K_US, AT=_K_AT, UI=_K_UI, AE=_K_AE, LO=_K_LO)

#: Bound on each per-tag cache of encoded SOP Class UID elements (cleared when full).
_STR_CACHE_MAX: Final = 64
# Tags whose encoded elements are cached: SOP Class UIDs repeat from message to message.
_CACHED_TAGS: Final = frozenset({0x00000002, 0x00000003})
_STR_CACHES: Final[dict[int, dict[str, bytes]]] = {tag: {} for tag in _CACHED_TAGS}

# One encoding step: (kind, element, pre-packed header or constant element, string cache).
_EncStep = tuple[int, _Elem, bytes, "dict[str, bytes] | None"]


def _encode_plan(cls: type[DimseMessage]) -> tuple[_EncStep, ...]:
    """The encoding steps of ``cls`` in ascending tag order, computed once per class."""
    plan = _PLANS.get(cls)
    if plan is None:
        elems = [_BY_FIELD["command_field"], *(_BY_FIELD[f.name] for f in fields(cls))]
        elems.sort(key=lambda e: e.tag)
        steps: list[_EncStep] = []
        for elem in elems:
            tag_bytes = _US.pack(elem.tag >> 16) + _US.pack(elem.tag & 0xFFFF)
            if elem.tag == _TAG_COMMAND_FIELD:
                const = tag_bytes + b"\x02\x00\x00\x00" + _US.pack(cls.command_field)
                steps.append((_K_CONST, elem, const, None))
            elif elem.vr == "US":
                steps.append((_K_US, elem, tag_bytes + b"\x02\x00\x00\x00", None))
            else:
                kind = _KIND_OF_VR[elem.vr]
                steps.append((kind, elem, tag_bytes, _STR_CACHES.get(elem.tag)))
        plan = tuple(steps)
        _PLANS[cls] = plan
    return plan


_PLANS: dict[type[DimseMessage], tuple[_EncStep, ...]] = {}


def encode_command(message: DimseMessage) -> bytes:
    """Encode ``message`` as a command set: Implicit VR LE, group length first (PS3.7 6.3.1).

    Fields that are ``None`` are left out; everything else is written in ascending tag order.
    Raises :class:`~aiodimse.errors.LocalProtocolError` if a string cannot go on the wire.
    """
    cls = type(message)
    if cls in _REPEATING:
        try:
            encoded = _ENCODED.get(message)
        except TypeError:  # an unhashable field value: not remembered
            return _encode(message)
        if encoded is None:
            encoded = _encode(message)
            if len(_ENCODED) >= _CACHE_MAX:
                _ENCODED.clear()
            _ENCODED[message] = encoded
        return encoded
    return _encode(message)


#: Bound on the caches of whole command sets, :data:`_ENCODED` and :data:`_DECODED`
#: (each cleared when full).
_CACHE_MAX: Final = 128
#: Classes whose commands often repeat byte for byte (C-ECHO-RQ/RSP, C-FIND-RSP Pending...):
#: those that name no SOP Instance. Only these are remembered, encoded or decoded.
_REPEATING: Final = frozenset(
    cls
    for cls in MESSAGE_CLASSES.values()
    if not {"affected_sop_instance_uid", "requested_sop_instance_uid"}
    & {f.name for f in fields(cls)}
)
#: Message (frozen, compared by value) -> its encoding, for the _REPEATING classes.
_ENCODED: Final[dict[DimseMessage, bytes]] = {}


def _encode(message: DimseMessage) -> bytes:
    plan = _PLANS.get(type(message))
    if plan is None:
        plan = _encode_plan(type(message))
    parts: list[bytes] = []
    append = parts.append
    pack_us = _US.pack
    for kind, elem, head, cache in plan:
        if kind == _K_CONST:
            append(head)
            continue
        value = getattr(message, elem.field)
        if value is None:
            continue
        if kind == _K_US:
            append(head)
            append(pack_us(value))
            continue
        if cache is not None:
            encoded = cache.get(value)
            if encoded is not None:
                append(encoded)
                continue
        if kind == _K_UI and len(value) <= 64 and value.isascii() and "\\" not in value:
            # _encode_str's checks passed: the same bytes, without the call.
            raw = value.encode("ascii")
            if len(raw) & 1:
                raw += b"\x00"  # PS3.5 6.2: UI pads with NUL.
        elif kind == _K_AT:
            raw = b"".join(pack_us(t >> 16) + pack_us(t & 0xFFFF) for t in value)
        else:
            raw = _encode_str(elem, value, b"\x00" if kind == _K_UI else b" ")
        encoded = head + _UL.pack(len(raw)) + raw
        if cache is not None:
            if len(cache) >= _STR_CACHE_MAX:
                cache.clear()
            cache[value] = encoded
        append(encoded)
    body = b"".join(parts)
    # PS3.7 E.1: Command Group Length is the byte count following it, up to the end.
    return _GROUP_LENGTH_ELEMENT.pack(0, 0, 4, len(body)) + body


_GROUP_LENGTH_ELEMENT: Final = struct.Struct("<HHII")


# ------------------------------------------------------------------------------- decoding


@dataclass(frozen=True, slots=True)
class _DecodeSpec:
    """What decoding needs to know about one message class, computed once."""

    by_tag: dict[int, _Elem]  # the class's wire fields (Command Field excluded)
    mandatory: tuple[_Elem, ...]  # PS3.7 M fields the command must carry


def _decode_spec(cls: type[DimseMessage]) -> _DecodeSpec:
    spec = _SPECS.get(cls)
    if spec is None:
        class_fields = fields(cls)
        spec = _DecodeSpec(
            by_tag={_BY_FIELD[f.name].tag: _BY_FIELD[f.name] for f in class_fields},
            mandatory=tuple(
                _BY_FIELD[f.name]
                for f in class_fields
                # No default in the class, or M despite a default (_DEFAULTED_MANDATORY).
                if (f.default is MISSING and f.default_factory is MISSING)
                or f.name in _DEFAULTED_MANDATORY
            ),
        )
        _SPECS[cls] = spec
    return spec


_SPECS: dict[type[DimseMessage], _DecodeSpec] = {}
_CLASS_BY_COMMAND_FIELD: Final[dict[int, type[DimseMessage]]] = {
    int(field): cls for field, cls in MESSAGE_CLASSES.items()
}


def _split(data: bytes) -> tuple[dict[int, bytes], int | None, int | None]:
    """Split ``data`` into tag -> value; also return Command Field and Message ID if read.

    Raises CommandDecodeError on any structural fault (see the module docstring).
    """
    elements: dict[int, bytes] = {}
    end = len(data)
    offset = 0
    last_tag = -1
    command_field: int | None = None
    message_id: int | None = None
    unpack = _HEADER.unpack_from
    while offset < end:
        if end - offset < 8:
            raise _structural("truncated element header", offset, command_field, message_id)
        group, element, length = unpack(data, offset)
        tag = (group << 16) | element
        if group != 0:
            raise _structural(
                f"tag ({group:04X},{element:04X}) is not in group 0000 (PS3.7 6.3.1)",
                offset,
                command_field,
                message_id,
            )
        if tag <= last_tag:
            what = "repeated" if tag == last_tag else "out of ascending order"
            raise _structural(
                f"tag (0000,{element:04X}) is {what} (PS3.5 7.1)", offset, command_field, message_id
            )
        offset += 8
        if length > end - offset:
            raise _structural(
                f"value length {length} of (0000,{element:04X}) overruns the command set",
                offset,
                command_field,
                message_id,
            )
        value = data[offset : offset + length]
        offset += length
        last_tag = tag
        elements[tag] = value
        if tag == _TAG_COMMAND_FIELD and length == 2:
            command_field = _US.unpack(value)[0]
        elif tag == _TAG_MESSAGE_ID and length == 2:
            message_id = _US.unpack(value)[0]
    return elements, command_field, message_id


def _structural(
    what: str, offset: int, command_field: int | None, message_id: int | None
) -> CommandDecodeError:
    return CommandDecodeError(
        f"malformed command set at byte {offset}: {what}",
        status=_failure_status(command_field, message_id, missing=False),
        command_field=command_field,
        message_id=message_id,
    )


def decode_command(data: bytes | bytearray | memoryview) -> DimseMessage:
    """Decode one complete command set into its message class (PS3.7 6.3.1, Annex E).

    Raises :class:`~aiodimse.errors.CommandDecodeError` (and nothing else) for any input that
    is not a valid command set; see the module docstring for what is rejected and what is
    tolerated.
    """
    raw = bytes(data)
    message = _DECODED.get(raw)
    if message is None:
        message = _decode_fast(raw)
        if message is None:
            return _decode_reference(raw)
    return message


#: Command sets of the _REPEATING classes that the fast path decoded without skipping or
#: logging anything -> their (frozen, immutable) message.
_DECODED: Final[dict[bytes, DimseMessage]] = {}


#: Decoding dispatch: element number (group 0000) -> (field, kind) for every tag we read.
_FAST_TAGS: Final[dict[int, tuple[str, int]]] = {
    e.tag: (e.field, _KIND_OF_VR[e.vr]) for e in _DICTIONARY if e.tag != _TAG_COMMAND_FIELD
}
_FAST_TAGS[_TAG_COMMAND_GROUP_LENGTH] = ("", _K_GROUP_LENGTH)
_FAST_TAGS[_TAG_COMMAND_FIELD] = ("", _K_COMMAND_FIELD)


# (class, its wire field names, its mandatory field names, (field, default) of every field).
_FastSpec = tuple[
    type[DimseMessage], frozenset[str], frozenset[str], tuple[tuple[str, object], ...]
]


def _fast_spec(cls: type[DimseMessage]) -> _FastSpec:
    """What :func:`_decode_fast` needs about ``cls``, derived from :func:`_decode_spec`."""
    spec = _decode_spec(cls)
    defaults = []
    for f in fields(cls):
        assert f.default_factory is MISSING, "message fields have plain defaults"
        defaults.append((f.name, f.default))
    return (
        cls,
        frozenset(elem.field for elem in spec.by_tag.values()),
        frozenset(elem.field for elem in spec.mandatory),
        tuple(defaults),
    )


#: Command Field -> what the fast decoder needs about its class.
_FAST_SPECS: Final[dict[int, _FastSpec]] = {
    field: _fast_spec(cls) for field, cls in _CLASS_BY_COMMAND_FIELD.items()
}


_new: Final = object.__new__
_setattr: Final = object.__setattr__
_unpack_header: Final = _HEADER.unpack_from
_unpack_header_us: Final = struct.Struct("<HHIH").unpack_from
_fast_lookup: Final = _FAST_TAGS.get


def _decode_fast(raw: bytes) -> DimseMessage | None:
    """Decode a well-formed command set in one pass, or return None to leave it to the reference.

    Gives up (None) on anything the reference decoder would reject or log, so that both give
    the same result: a structural fault, a bad length or non-ASCII value in any known element
    (even one the class does not carry), a missing or unknown Command Field, a missing
    mandatory field, and, when DEBUG logging is on, any element the reference would skip.
    """
    end = len(raw)
    offset = 0
    last = -1
    command_field = -1
    declared = -1
    values: dict[str, object] = {}
    dropped: tuple[str, ...] = ()  # known fields read as absent (zero length, blank text)
    cacheable = True
    while offset < end:
        # Header and, speculatively, the first 2 value bytes (the value of a US element).
        if end - offset >= 10:
            group, element, length, us = _unpack_header_us(raw, offset)
        elif end - offset >= 8:
            group, element, length = _unpack_header(raw, offset)
            us = -1
        else:
            return None
        # PS3.7 6.3.1 / PS3.5 7.1: group 0000 only, ascending, each tag once.
        if group or element <= last:
            return None
        last = element
        offset += 8
        stop = offset + length
        if stop > end:
            return None
        entry = _fast_lookup(element)
        if entry is None:  # retired or unknown: skipped (the reference logs it at DEBUG)
            if _log.isEnabledFor(logging.DEBUG):
                return None
            offset = stop
            cacheable = False
            continue
        field, kind = entry
        if kind == _K_US:
            if length == 2:
                values[field] = us
            elif length:
                return None
            else:
                dropped += (field,)
        elif kind >= _K_UI:
            if kind == _K_LO:
                text = raw[offset:stop].decode("ascii", "replace").replace("\ufffd", "?")
                text = text.rstrip(" \x00")
            else:
                try:
                    text = raw[offset:stop].decode("ascii")
                except UnicodeDecodeError:
                    return None
                # PS3.5 6.2: UI is NUL padded, AE space padded, its leading spaces insignificant.
                text = text.rstrip("\x00 ") if kind == _K_UI else text.strip(" \x00")
            if text:
                values[field] = text
            else:
                dropped += (field,)
        elif kind == _K_COMMAND_FIELD:
            if length != 2:
                return None
            command_field = us
        elif kind == _K_AT:
            if length & 3:
                return None
            if length:
                pairs = struct.unpack_from(f"<{length >> 1}H", raw, offset)
                values[field] = tuple(
                    (pairs[i] << 16) | pairs[i + 1] for i in range(0, len(pairs), 2)
                )
            else:
                dropped += (field,)
        else:  # _K_GROUP_LENGTH
            if length != 4:
                return None
            declared = _UL.unpack_from(raw, offset)[0]
        offset = stop
    spec = _FAST_SPECS.get(command_field)
    if spec is None:
        return None
    cls, names, mandatory, defaults = spec
    if not names.issuperset(values) or not names.issuperset(dropped):
        # Known fields this class does not carry: skipped (the reference logs them at DEBUG).
        if _log.isEnabledFor(logging.DEBUG):
            return None
        values = {name: value for name, value in values.items() if name in names}
        cacheable = False
    if not values.keys() >= mandatory:
        return None
    # Every value read above already passes DimseMessage.__post_init__'s checks (US 0..65535
    # from 2 bytes, non-empty str, non-empty tuple of 32-bit tags), so the instance is filled
    # in directly, as the dataclass __init__ would, without running them again.
    message = _new(cls)
    get = values.get
    for name, default in defaults:
        _setattr(message, name, get(name, default))
    if declared >= 0 and declared != end - 12:
        _log.debug("Command Group Length says %d bytes, %d follow; ignored", declared, end - 12)
    elif cacheable and cls in _REPEATING:  # decoding them again would log nothing
        if len(_DECODED) >= _CACHE_MAX:
            _DECODED.clear()
        _DECODED[raw] = message
    return message


def _decode_reference(raw: bytes) -> DimseMessage:
    """The complete decoder: every check, error and log message of the module docstring."""
    elements, command_field, message_id = _split(raw)

    def fail(what: str, *, missing: bool, offending: tuple[int, ...] = ()) -> CommandDecodeError:
        return CommandDecodeError(
            what,
            status=_failure_status(command_field, message_id, missing),
            command_field=command_field,
            message_id=message_id,
            offending_element=offending,
        )

    group_length = elements.pop(_TAG_COMMAND_GROUP_LENGTH, None)
    if group_length is not None:
        if len(group_length) != 4:
            raise fail("Command Group Length (0000,0000) is not 4 bytes", missing=False)
        declared = _UL.unpack(group_length)[0]
        if declared != len(raw) - 12:
            _log.debug(
                "Command Group Length says %d bytes, %d follow; ignored", declared, len(raw) - 12
            )

    if _TAG_COMMAND_FIELD not in elements:
        raise fail("Command Field (0000,0100) is missing", missing=True)
    if command_field is None:
        raise fail("Command Field (0000,0100) is not 2 bytes (US)", missing=False)
    cls = _CLASS_BY_COMMAND_FIELD.get(command_field)
    if cls is None:
        raise fail(
            f"unknown Command Field 0x{command_field:04X} (PS3.7 E.1)",
            missing=False,
            offending=(_TAG_COMMAND_FIELD,),
        )
    if issubclass(cls, DimseRequest) and message_id is None:
        if elements.get(_TAG_MESSAGE_ID):
            raise fail("Message ID (0000,0110) is not 2 bytes (US)", missing=False)
        raise fail("Message ID (0000,0110) is missing", missing=True)

    spec = _decode_spec(cls)
    by_tag = spec.by_tag
    kwargs: dict[str, object] = {}
    for tag, value in elements.items():
        elem = by_tag.get(tag)
        if elem is None:
            if tag != _TAG_COMMAND_FIELD and _log.isEnabledFor(logging.DEBUG):
                kind = "retired" if tag in RETIRED_COMMAND_TAGS else "unknown"
                if tag in _BY_TAG:
                    kind = f"known but not part of {cls.__name__}"
                _log.debug("skipping command element (0000,%04X): %s", tag & 0xFFFF, kind)
            continue
        if not value:
            continue  # PS3.5 7.1: zero length, no value: read as absent.
        vr = elem.vr
        if vr == "US":
            if len(value) != 2:
                raise fail(
                    f"{elem.field} (0000,{tag & 0xFFFF:04X}) is {len(value)} bytes, US is 2",
                    missing=False,
                    offending=(tag,),
                )
            kwargs[elem.field] = _US.unpack(value)[0]
        elif vr == "AT":
            if len(value) % 4:
                raise fail(
                    f"{elem.field} (0000,{tag & 0xFFFF:04X}) length {len(value)} is not a "
                    "multiple of 4 (AT)",
                    missing=False,
                    offending=(tag,),
                )
            pairs = struct.unpack(f"<{len(value) // 2}H", value)
            kwargs[elem.field] = tuple(
                (pairs[i] << 16) | pairs[i + 1] for i in range(0, len(pairs), 2)
            )
        elif vr == "LO":
            text = value.decode("ascii", "replace").replace("\ufffd", "?")
            text = text.rstrip(" \x00")
            if text:
                kwargs[elem.field] = text
        else:
            try:
                text = value.decode("ascii")
            except UnicodeDecodeError:
                raise fail(
                    f"{elem.field} (0000,{tag & 0xFFFF:04X}) is not ASCII (PS3.7 6.3.1)",
                    missing=False,
                    offending=(tag,),
                ) from None
            # PS3.5 6.2: UI is NUL padded, AE space padded and its leading spaces insignificant.
            text = text.rstrip("\x00 ") if vr == "UI" else text.strip(" \x00")
            if text:
                kwargs[elem.field] = text

    missing = [elem for elem in spec.mandatory if elem.field not in kwargs]
    if missing:
        raise fail(
            f"{cls.__name__} lacks mandatory "
            f"{', '.join(elem.field for elem in missing)} (PS3.7 9.3/10.3)",
            missing=True,
            offending=tuple(elem.tag for elem in missing),
        )
    try:
        return cls(**kwargs)  # type: ignore[arg-type]  # kwargs typed per field above
    except (TypeError, ValueError) as exc:  # defensive: the checks above should cover all
        raise fail(f"invalid {cls.__name__}: {exc}", missing=False) from None
