"""DIMSE messages: one frozen value class per command set (PS3.7 9.3 and 10.3, Annex E).

Each class is both what goes on the wire (the command set, group 0000) and what the user
sees; there is no parallel "primitive" copy. Field names are the PS3.7 Annex E attribute
names in snake_case. A field without a default is mandatory (M) in the message's PS3.7 table;
a field defaulting to ``None`` is user-optional (U) or conditional (C) and is left out of the
encoded command set when ``None``.

Which fields are M and which U/C follows the service parameter tables of PS3.7 9.1 and 10.1
(e.g. Table 9.1-1 C-STORE parameters) as carried by the message tables of 9.3 and 10.3.
Responses also carry the status-related fields of PS3.7 Annex C (Offending Element, Error
Comment, Error ID), all optional.

The data set that may follow a command is not part of these values; only whether one follows
is: ``command_data_set_type`` keeps the raw (0000,0800) value so that decoding and encoding
round-trip exactly, and :attr:`DimseMessage.has_dataset` reads it the way PS3.7 E.1 says
(0x0101 means "no data set", any other value means one follows; ROBUSTNESS 25).

Encoding and decoding live in :mod:`aiodimse.dimse.command_codec`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, fields
from typing import ClassVar, Final

__all__ = [
    "DATASET_ABSENT",
    "DATASET_PRESENT",
    "MESSAGE_CLASSES",
    "CCancelRQ",
    "CEchoRQ",
    "CEchoRSP",
    "CFindRQ",
    "CFindRSP",
    "CGetRQ",
    "CGetRSP",
    "CMoveRQ",
    "CMoveRSP",
    "CStoreRQ",
    "CStoreRSP",
    "CommandField",
    "DimseMessage",
    "DimseRequest",
    "DimseResponse",
    "NActionRQ",
    "NActionRSP",
    "NCreateRQ",
    "NCreateRSP",
    "NDeleteRQ",
    "NDeleteRSP",
    "NEventReportRQ",
    "NEventReportRSP",
    "NGetRQ",
    "NGetRSP",
    "NSetRQ",
    "NSetRSP",
    "Priority",
    "response_class_for",
]

#: PS3.7 E.1, Command Data Set Type (0000,0800): "0101H indicates that no Data Set is present".
DATASET_ABSENT: Final = 0x0101
#: Any other value means a data set follows; we send 0x0001 as pynetdicom does.
DATASET_PRESENT: Final = 0x0001


class CommandField(enum.IntEnum):
    """PS3.7 E.1, Command Field (0000,0100) values (Table E.1-1)."""

    C_STORE_RQ = 0x0001
    C_STORE_RSP = 0x8001
    C_GET_RQ = 0x0010
    C_GET_RSP = 0x8010
    C_FIND_RQ = 0x0020
    C_FIND_RSP = 0x8020
    C_MOVE_RQ = 0x0021
    C_MOVE_RSP = 0x8021
    C_ECHO_RQ = 0x0030
    C_ECHO_RSP = 0x8030
    N_EVENT_REPORT_RQ = 0x0100
    N_EVENT_REPORT_RSP = 0x8100
    N_GET_RQ = 0x0110
    N_GET_RSP = 0x8110
    N_SET_RQ = 0x0120
    N_SET_RSP = 0x8120
    N_ACTION_RQ = 0x0130
    N_ACTION_RSP = 0x8130
    N_CREATE_RQ = 0x0140
    N_CREATE_RSP = 0x8140
    N_DELETE_RQ = 0x0150
    N_DELETE_RSP = 0x8150
    C_CANCEL_RQ = 0x0FFF


class Priority(enum.IntEnum):
    """PS3.7 E.1, Priority (0000,0700)."""

    MEDIUM = 0x0000
    HIGH = 0x0001
    LOW = 0x0002


def _check_us(name: str, value: int | None) -> None:
    if value is not None and not (isinstance(value, int) and 0 <= value <= 0xFFFF):
        raise ValueError(f"{name} must be an unsigned 16-bit integer, got {value!r}")


def _check_tags(name: str, value: tuple[int, ...] | None) -> None:
    if value is None:
        return
    if not isinstance(value, tuple) or not value:
        raise ValueError(f"{name} must be a non-empty tuple of tags or None, got {value!r}")
    for tag in value:
        if not (isinstance(tag, int) and 0 <= tag <= 0xFFFFFFFF):
            raise ValueError(f"{name} holds an invalid tag {tag!r}")


def _check_str(name: str, value: str | None) -> None:
    # An empty value is "no value" on the wire (PS3.5 7.1); say so with None instead.
    if value is not None and not (isinstance(value, str) and value):
        raise ValueError(f"{name} must be a non-empty str or None, got {value!r}")


# Each field's kind, used by __post_init__ (and mirrored by the codec's VR table).
_US_FIELDS: Final = frozenset(
    {
        "message_id",
        "message_id_being_responded_to",
        "priority",
        "command_data_set_type",
        "status",
        "error_id",
        "event_type_id",
        "action_type_id",
        "number_of_remaining_sub_operations",
        "number_of_completed_sub_operations",
        "number_of_failed_sub_operations",
        "number_of_warning_sub_operations",
        "move_originator_message_id",
    }
)
_AT_FIELDS: Final = frozenset({"offending_element", "attribute_identifier_list"})


@dataclass(frozen=True, slots=True, kw_only=True)
class DimseMessage:
    """Base of every DIMSE command set.

    ``command_field`` (a class attribute) is the (0000,0100) value of the class.
    ``command_data_set_type`` is the raw (0000,0800) value; use :attr:`has_dataset`.
    Construction checks value types and ranges once (US fields 0..65535, tags 32-bit, strings
    and tag tuples non-empty; raises ValueError); character repertoire and length of strings
    are checked when encoding (:func:`~aiodimse.dimse.command_codec.encode_command`).
    """

    command_field: ClassVar[CommandField]

    command_data_set_type: int = DATASET_ABSENT

    def __post_init__(self) -> None:
        # Fast checks grouped by kind; on any fault, _validate_in_order reports the first
        # faulty field in field order.
        kinds = _FIELD_CACHE.get(type(self))
        if kinds is None:
            kinds = _field_kinds(type(self))
        us_names, at_names, str_names = kinds
        for name in us_names:
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or not 0 <= value <= 0xFFFF):
                _validate_in_order(self)
        for name in at_names:
            value = getattr(self, name)
            if value is not None:
                try:
                    _check_tags(name, value)
                except ValueError:
                    _validate_in_order(self)
                    raise
        for name in str_names:
            value = getattr(self, name)
            if value is not None and (type(value) is not str or not value):
                _validate_in_order(self)

    @property
    def has_dataset(self) -> bool:
        """True when a data set follows the command (PS3.7 E.1: any value but 0x0101)."""
        return self.command_data_set_type != DATASET_ABSENT

    @property
    def is_response(self) -> bool:
        """True for the -RSP messages (Command Field bit 15 set, PS3.7 E.1)."""
        return bool(self.command_field & 0x8000)


_Kinds = tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]


def _field_kinds(cls: type[DimseMessage]) -> _Kinds:
    """The wire fields of ``cls`` by kind (US, AT, string), in field order, computed once."""
    kinds = _FIELD_CACHE.get(cls)
    if kinds is None:
        names = [f.name for f in fields(cls)]
        kinds = (
            tuple(name for name in names if name in _US_FIELDS),
            tuple(name for name in names if name in _AT_FIELDS),
            tuple(name for name in names if name not in _US_FIELDS and name not in _AT_FIELDS),
        )
        _FIELD_CACHE[cls] = kinds
    return kinds


_FIELD_CACHE: dict[type[DimseMessage], _Kinds] = {}


def _validate_in_order(message: DimseMessage) -> None:
    """Check every field of ``message`` in field order; raise ValueError for the first fault."""
    for f in fields(message):
        name = f.name
        value = getattr(message, name)
        if value is None:
            continue
        if name in _US_FIELDS:
            _check_us(name, value)
        elif name in _AT_FIELDS:
            _check_tags(name, value)
        else:
            _check_str(name, value)


@dataclass(frozen=True, slots=True, kw_only=True)
class DimseRequest(DimseMessage):
    """A request: carries Message ID (0000,0110), mandatory in every -RQ (PS3.7 9.3, 10.3)."""

    message_id: int


@dataclass(frozen=True, slots=True, kw_only=True)
class DimseResponse(DimseMessage):
    """A response: Message ID Being Responded To (0000,0120) and Status (0000,0900), both M.

    ``error_comment``, ``error_id`` and ``offending_element`` are the status-related fields
    of PS3.7 Annex C (e.g. C.4.x "Related fields"); they may appear on any response.
    """

    message_id_being_responded_to: int
    status: int
    offending_element: tuple[int, ...] | None = None
    error_comment: str | None = None
    error_id: int | None = None


# ---------------------------------------------------------------- C-services (PS3.7 9.3)


@dataclass(frozen=True, slots=True, kw_only=True)
class CEchoRQ(DimseRequest):
    """C-ECHO-RQ, PS3.7 Table 9.3-12."""

    command_field: ClassVar[CommandField] = CommandField.C_ECHO_RQ

    affected_sop_class_uid: str


@dataclass(frozen=True, slots=True, kw_only=True)
class CEchoRSP(DimseResponse):
    """C-ECHO-RSP, PS3.7 Table 9.3-13."""

    command_field: ClassVar[CommandField] = CommandField.C_ECHO_RSP

    affected_sop_class_uid: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class CStoreRQ(DimseRequest):
    """C-STORE-RQ, PS3.7 Table 9.3-1. A data set (the SOP instance) always follows."""

    command_field: ClassVar[CommandField] = CommandField.C_STORE_RQ

    command_data_set_type: int = DATASET_PRESENT
    affected_sop_class_uid: str
    priority: int = Priority.MEDIUM
    affected_sop_instance_uid: str
    move_originator_application_entity_title: str | None = None
    move_originator_message_id: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class CStoreRSP(DimseResponse):
    """C-STORE-RSP, PS3.7 Table 9.3-2."""

    command_field: ClassVar[CommandField] = CommandField.C_STORE_RSP

    affected_sop_class_uid: str | None = None
    affected_sop_instance_uid: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class CFindRQ(DimseRequest):
    """C-FIND-RQ, PS3.7 Table 9.3-3. The identifier data set always follows."""

    command_field: ClassVar[CommandField] = CommandField.C_FIND_RQ

    command_data_set_type: int = DATASET_PRESENT
    affected_sop_class_uid: str
    priority: int = Priority.MEDIUM


@dataclass(frozen=True, slots=True, kw_only=True)
class CFindRSP(DimseResponse):
    """C-FIND-RSP, PS3.7 Table 9.3-4. A data set (identifier) follows pending responses."""

    command_field: ClassVar[CommandField] = CommandField.C_FIND_RSP

    affected_sop_class_uid: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class CGetRQ(DimseRequest):
    """C-GET-RQ, PS3.7 Table 9.3-6. The identifier data set always follows."""

    command_field: ClassVar[CommandField] = CommandField.C_GET_RQ

    command_data_set_type: int = DATASET_PRESENT
    affected_sop_class_uid: str
    priority: int = Priority.MEDIUM


@dataclass(frozen=True, slots=True, kw_only=True)
class CGetRSP(DimseResponse):
    """C-GET-RSP, PS3.7 Table 9.3-7. Sub-operation counts are conditional (C)."""

    command_field: ClassVar[CommandField] = CommandField.C_GET_RSP

    affected_sop_class_uid: str | None = None
    number_of_remaining_sub_operations: int | None = None
    number_of_completed_sub_operations: int | None = None
    number_of_failed_sub_operations: int | None = None
    number_of_warning_sub_operations: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class CMoveRQ(DimseRequest):
    """C-MOVE-RQ, PS3.7 Table 9.3-9. The identifier data set always follows."""

    command_field: ClassVar[CommandField] = CommandField.C_MOVE_RQ

    command_data_set_type: int = DATASET_PRESENT
    affected_sop_class_uid: str
    priority: int = Priority.MEDIUM
    move_destination: str


@dataclass(frozen=True, slots=True, kw_only=True)
class CMoveRSP(DimseResponse):
    """C-MOVE-RSP, PS3.7 Table 9.3-10. Sub-operation counts are conditional (C)."""

    command_field: ClassVar[CommandField] = CommandField.C_MOVE_RSP

    affected_sop_class_uid: str | None = None
    number_of_remaining_sub_operations: int | None = None
    number_of_completed_sub_operations: int | None = None
    number_of_failed_sub_operations: int | None = None
    number_of_warning_sub_operations: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class CCancelRQ(DimseMessage):
    """C-CANCEL-RQ, PS3.7 Tables 9.3-5, 9.3-8, 9.3-11 (C-CANCEL-FIND/GET/MOVE-RQ).

    It has no Message ID of its own: it names the operation to cancel by Message ID Being
    Responded To (0000,0120), and gets no response.
    """

    command_field: ClassVar[CommandField] = CommandField.C_CANCEL_RQ

    message_id_being_responded_to: int


# ---------------------------------------------------------------- N-services (PS3.7 10.3)


@dataclass(frozen=True, slots=True, kw_only=True)
class NEventReportRQ(DimseRequest):
    """N-EVENT-REPORT-RQ, PS3.7 Table 10.3-1. Event Information data set is optional (U)."""

    command_field: ClassVar[CommandField] = CommandField.N_EVENT_REPORT_RQ

    affected_sop_class_uid: str
    affected_sop_instance_uid: str
    event_type_id: int


@dataclass(frozen=True, slots=True, kw_only=True)
class NEventReportRSP(DimseResponse):
    """N-EVENT-REPORT-RSP, PS3.7 Table 10.3-2."""

    command_field: ClassVar[CommandField] = CommandField.N_EVENT_REPORT_RSP

    affected_sop_class_uid: str | None = None
    affected_sop_instance_uid: str | None = None
    event_type_id: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class NGetRQ(DimseRequest):
    """N-GET-RQ, PS3.7 Table 10.3-3. No data set; the attributes wanted are in the command."""

    command_field: ClassVar[CommandField] = CommandField.N_GET_RQ

    requested_sop_class_uid: str
    requested_sop_instance_uid: str
    attribute_identifier_list: tuple[int, ...] | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class NGetRSP(DimseResponse):
    """N-GET-RSP, PS3.7 Table 10.3-4. The Attribute List data set follows on success."""

    command_field: ClassVar[CommandField] = CommandField.N_GET_RSP

    affected_sop_class_uid: str | None = None
    affected_sop_instance_uid: str | None = None
    #: PS3.7 C.4.2: with status 0x0107, the attributes that were not recognized.
    attribute_identifier_list: tuple[int, ...] | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class NSetRQ(DimseRequest):
    """N-SET-RQ, PS3.7 Table 10.3-5. The Modification List data set always follows."""

    command_field: ClassVar[CommandField] = CommandField.N_SET_RQ

    command_data_set_type: int = DATASET_PRESENT
    requested_sop_class_uid: str
    requested_sop_instance_uid: str


@dataclass(frozen=True, slots=True, kw_only=True)
class NSetRSP(DimseResponse):
    """N-SET-RSP, PS3.7 Table 10.3-6."""

    command_field: ClassVar[CommandField] = CommandField.N_SET_RSP

    affected_sop_class_uid: str | None = None
    affected_sop_instance_uid: str | None = None
    #: PS3.7 C.4.2: with status 0x0107, the attributes that were not recognized.
    attribute_identifier_list: tuple[int, ...] | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class NActionRQ(DimseRequest):
    """N-ACTION-RQ, PS3.7 Table 10.3-7. Action Information data set is optional (U)."""

    command_field: ClassVar[CommandField] = CommandField.N_ACTION_RQ

    requested_sop_class_uid: str
    requested_sop_instance_uid: str
    action_type_id: int


@dataclass(frozen=True, slots=True, kw_only=True)
class NActionRSP(DimseResponse):
    """N-ACTION-RSP, PS3.7 Table 10.3-8."""

    command_field: ClassVar[CommandField] = CommandField.N_ACTION_RSP

    affected_sop_class_uid: str | None = None
    affected_sop_instance_uid: str | None = None
    action_type_id: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class NCreateRQ(DimseRequest):
    """N-CREATE-RQ, PS3.7 Table 10.3-9. Affected SOP Instance UID is optional (U)."""

    command_field: ClassVar[CommandField] = CommandField.N_CREATE_RQ

    affected_sop_class_uid: str
    affected_sop_instance_uid: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class NCreateRSP(DimseResponse):
    """N-CREATE-RSP, PS3.7 Table 10.3-10."""

    command_field: ClassVar[CommandField] = CommandField.N_CREATE_RSP

    affected_sop_class_uid: str | None = None
    affected_sop_instance_uid: str | None = None
    #: PS3.7 C.4.2: with status 0x0107, the attributes that were not recognized.
    attribute_identifier_list: tuple[int, ...] | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class NDeleteRQ(DimseRequest):
    """N-DELETE-RQ, PS3.7 Table 10.3-11. Never a data set."""

    command_field: ClassVar[CommandField] = CommandField.N_DELETE_RQ

    requested_sop_class_uid: str
    requested_sop_instance_uid: str


@dataclass(frozen=True, slots=True, kw_only=True)
class NDeleteRSP(DimseResponse):
    """N-DELETE-RSP, PS3.7 Table 10.3-12."""

    command_field: ClassVar[CommandField] = CommandField.N_DELETE_RSP

    affected_sop_class_uid: str | None = None
    affected_sop_instance_uid: str | None = None


#: Command Field value -> message class.
MESSAGE_CLASSES: Final[dict[CommandField, type[DimseMessage]]] = {
    cls.command_field: cls
    for cls in (
        CEchoRQ,
        CEchoRSP,
        CStoreRQ,
        CStoreRSP,
        CFindRQ,
        CFindRSP,
        CGetRQ,
        CGetRSP,
        CMoveRQ,
        CMoveRSP,
        CCancelRQ,
        NEventReportRQ,
        NEventReportRSP,
        NGetRQ,
        NGetRSP,
        NSetRQ,
        NSetRSP,
        NActionRQ,
        NActionRSP,
        NCreateRQ,
        NCreateRSP,
        NDeleteRQ,
        NDeleteRSP,
    )
}


def response_class_for(request_cls: type[DimseMessage]) -> type[DimseResponse] | None:
    """The -RSP class answering ``request_cls`` (Command Field with bit 15 set, PS3.7 E.1).

    ``None`` for C-CANCEL-RQ (it gets no response) and for response classes.
    """
    field = request_cls.command_field
    if field & 0x8000 or field is CommandField.C_CANCEL_RQ:
        return None
    cls = MESSAGE_CLASSES.get(CommandField(field | 0x8000))
    return cls if cls is not None and issubclass(cls, DimseResponse) else None
