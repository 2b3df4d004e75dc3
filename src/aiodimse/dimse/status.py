"""DIMSE status codes: their category and meaning (PS3.7 Annex C, PS3.4 per service).

Theory of operation
-------------------
A Status (0000,0900) belongs to one of five classes. PS3.7 Annex C (introduction) assigns them:

=========  ===============================================================
Success    0000
Warning    0001, Bxxx, 0107, 0116
Failure    Axxx, Cxxx, 01xx (except 0107 and 0116), 02xx
Cancel     FE00
Pending    FF00, FF01
=========  ===============================================================

The category is therefore *not* a numeric range: 0x0107 (Attribute list error) and 0x0116
(Attribute value out of range) sit among the 01xx failures but are warnings. PS3.7 Annex C
also says "Implementations shall not use Status Codes with values not listed in the table
above"; we classify such a code (e.g. 0x0002, 0x9000, 0xFF02, 0xD000) as a FAILURE, since
nothing in it says the operation succeeded.

01xx and 02xx have fixed meanings for every service (PS3.7 C.4, C.5); Axxx, Bxxx and Cxxx are
given meaning by each service class in PS3.4 (Storage B.2.3, Query/Retrieve C.4.1.1.4,
C.4.2.1.5, C.4.3.1.4). :func:`status_info` looks a code up in the service's table first, then
in the general table, then falls back on the class rule above.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Final

from .messages import CommandField

__all__ = [
    "Service",
    "StatusCategory",
    "StatusInfo",
    "category_of",
    "service_for_command",
    "status_info",
]


class StatusCategory(enum.Enum):
    """The five status classes of PS3.7 Annex C."""

    SUCCESS = "success"
    WARNING = "warning"
    PENDING = "pending"
    CANCEL = "cancel"
    FAILURE = "failure"


class Service(enum.Enum):
    """The DIMSE service whose PS3.4 status table gives meaning to Axxx/Bxxx/Cxxx codes."""

    VERIFICATION = "C-ECHO"
    STORAGE = "C-STORE"
    FIND = "C-FIND"
    GET = "C-GET"
    MOVE = "C-MOVE"
    N_EVENT_REPORT = "N-EVENT-REPORT"
    N_GET = "N-GET"
    N_SET = "N-SET"
    N_ACTION = "N-ACTION"
    N_CREATE = "N-CREATE"
    N_DELETE = "N-DELETE"


@dataclass(frozen=True, slots=True, kw_only=True)
class StatusInfo:
    """What a status code means: the code, a short meaning and its :class:`StatusCategory`."""

    code: int
    meaning: str
    category: StatusCategory

    @property
    def is_success(self) -> bool:
        return self.category is StatusCategory.SUCCESS

    @property
    def is_failure(self) -> bool:
        return self.category is StatusCategory.FAILURE


_S: Final = StatusCategory.SUCCESS
_W: Final = StatusCategory.WARNING
_P: Final = StatusCategory.PENDING
_C: Final = StatusCategory.CANCEL
_F: Final = StatusCategory.FAILURE

# (first code, last code, meaning, category); exact codes have first == last.
_Row = tuple[int, int, str, StatusCategory]

#: PS3.7 Annex C: statuses with the same meaning for every DIMSE service.
_GENERAL: Final[tuple[_Row, ...]] = (
    (0x0000, 0x0000, "Success", _S),  # C.1.1
    (0x0001, 0x0001, "Warning", _W),  # Annex C: 0001 is a warning
    (0x0107, 0x0107, "Attribute list error", _W),  # C.4.2
    (0x0116, 0x0116, "Attribute value out of range", _W),  # C.4.3
    (0xFE00, 0xFE00, "Cancel", _C),  # C.3.1
    (0xFF00, 0xFF00, "Pending", _P),  # C.2.1
    (0xFF01, 0xFF01, "Pending", _P),  # Annex C: FF01 is pending
    # C.5: failures.
    (0x0105, 0x0105, "No such attribute", _F),
    (0x0106, 0x0106, "Invalid attribute value", _F),
    (0x0110, 0x0110, "Processing failure", _F),
    (0x0111, 0x0111, "Duplicate SOP Instance", _F),
    (0x0112, 0x0112, "No such SOP Instance", _F),
    (0x0113, 0x0113, "No such event type", _F),
    (0x0114, 0x0114, "No such argument", _F),
    (0x0115, 0x0115, "Invalid argument value", _F),
    (0x0117, 0x0117, "Invalid object instance", _F),
    (0x0118, 0x0118, "No such SOP Class", _F),
    (0x0119, 0x0119, "Class-instance conflict", _F),
    (0x0120, 0x0120, "Missing attribute", _F),
    (0x0121, 0x0121, "Missing attribute value", _F),
    (0x0122, 0x0122, "Refused: SOP Class not supported", _F),
    (0x0123, 0x0123, "No such action type", _F),
    (0x0124, 0x0124, "Refused: not authorized", _F),
    (0x0210, 0x0210, "Duplicate invocation", _F),
    (0x0211, 0x0211, "Unrecognized operation", _F),
    (0x0212, 0x0212, "Mistyped argument", _F),
    (0x0213, 0x0213, "Resource limitation", _F),
)

#: PS3.4 B.2.3, Table B.2-1: Storage Service Class, C-STORE.
_STORAGE: Final[tuple[_Row, ...]] = (
    (0xB000, 0xB000, "Warning: coercion of data elements", _W),
    (0xB006, 0xB006, "Warning: elements discarded", _W),
    (0xB007, 0xB007, "Warning: data set does not match SOP Class", _W),
    (0xA700, 0xA7FF, "Refused: out of resources", _F),
    (0xA900, 0xA9FF, "Error: data set does not match SOP Class", _F),
    (0xC000, 0xCFFF, "Error: cannot understand", _F),
)

#: PS3.4 C.4.1.1.4, Table C.4-1: Query/Retrieve C-FIND.
_FIND: Final[tuple[_Row, ...]] = (
    (0xA700, 0xA700, "Refused: out of resources", _F),
    (0xA900, 0xA900, "Error: identifier does not match SOP Class", _F),
    (0xC000, 0xCFFF, "Error: unable to process", _F),
    (0xFE00, 0xFE00, "Cancel: matching terminated due to cancel request", _C),
    (0x0000, 0x0000, "Success: matching is complete", _S),
    (
        0xFF00,
        0xFF00,
        "Pending: matches are continuing, current match supplied, optional keys supported",
        _P,
    ),
    (
        0xFF01,
        0xFF01,
        "Pending: matches are continuing, one or more optional keys were not supported",
        _P,
    ),
)

# Shared by C-MOVE (PS3.4 C.4.2.1.5, Table C.4-2) and C-GET (C.4.3.1.4, Table C.4-3).
_RETRIEVE: Final[tuple[_Row, ...]] = (
    (0xA701, 0xA701, "Refused: out of resources, unable to calculate number of matches", _F),
    (0xA702, 0xA702, "Refused: out of resources, unable to perform sub-operations", _F),
    (0xA900, 0xA900, "Error: identifier does not match SOP Class", _F),
    (0xC000, 0xCFFF, "Error: unable to process", _F),
    (0xFE00, 0xFE00, "Cancel: sub-operations terminated due to cancel indication", _C),
    (0xB000, 0xB000, "Warning: sub-operations complete, one or more failures or warnings", _W),
    (0x0000, 0x0000, "Success: sub-operations complete, no failures", _S),
    (0xFF00, 0xFF00, "Pending: sub-operations are continuing", _P),
)

#: PS3.4 C.4.2.1.5: C-MOVE adds "Move destination unknown".
_MOVE: Final[tuple[_Row, ...]] = (
    (0xA801, 0xA801, "Refused: move destination unknown", _F),
    *_RETRIEVE,
)

_SERVICE_TABLES: Final[dict[Service, tuple[_Row, ...]]] = {
    Service.STORAGE: _STORAGE,
    Service.FIND: _FIND,
    Service.GET: _RETRIEVE,
    Service.MOVE: _MOVE,
}


def _index(rows: tuple[_Row, ...]) -> tuple[dict[int, StatusInfo], tuple[_Row, ...]]:
    exact = {lo: StatusInfo(code=lo, meaning=m, category=c) for lo, hi, m, c in rows if lo == hi}
    ranges = tuple(row for row in rows if row[0] != row[1])
    return exact, ranges


_GENERAL_INDEX: Final = _index(_GENERAL)
_SERVICE_INDEX: Final = {service: _index(rows) for service, rows in _SERVICE_TABLES.items()}

_SERVICE_BY_COMMAND: Final[dict[int, Service]] = {
    0x0001: Service.STORAGE,
    0x0010: Service.GET,
    0x0020: Service.FIND,
    0x0021: Service.MOVE,
    0x0030: Service.VERIFICATION,
    0x0100: Service.N_EVENT_REPORT,
    0x0110: Service.N_GET,
    0x0120: Service.N_SET,
    0x0130: Service.N_ACTION,
    0x0140: Service.N_CREATE,
    0x0150: Service.N_DELETE,
}


def service_for_command(command_field: CommandField | int) -> Service | None:
    """The service of a request or response Command Field (e.g. C-STORE-RSP -> STORAGE)."""
    return _SERVICE_BY_COMMAND.get(int(command_field) & 0x7FFF)


def category_of(code: int) -> StatusCategory:
    """The status class of ``code`` by the PS3.7 Annex C rule alone (no table lookup).

    Codes the rule does not list are classified FAILURE (see the module docstring).
    """
    if code == 0x0000:
        return StatusCategory.SUCCESS
    if code in (0xFF00, 0xFF01):
        return StatusCategory.PENDING
    if code == 0xFE00:
        return StatusCategory.CANCEL
    if code in (0x0001, 0x0107, 0x0116) or 0xB000 <= code <= 0xBFFF:
        return StatusCategory.WARNING
    return StatusCategory.FAILURE


def _generic_meaning(code: int, category: StatusCategory) -> str:
    high = code >> 12
    if high == 0xA:
        return "Failure (Axxx, service specific)"
    if high == 0xB:
        return "Warning (Bxxx, service specific)"
    if high == 0xC:
        return "Failure (Cxxx, service specific)"
    if 0x0100 <= code <= 0x02FF:
        return "Failure (01xx/02xx code not assigned by PS3.7 Annex C)"
    return f"Unknown status (not a PS3.7 Annex C class), treated as {category.value}"


def status_info(code: int, service: Service | None = None) -> StatusInfo:
    """Meaning and category of a Status (0000,0900) value.

    ``service`` selects the PS3.4 table that gives Axxx/Bxxx/Cxxx codes their meaning; without
    it (or when the service's table lacks the code) the PS3.7 Annex C general table is used,
    and failing that the Annex C class rule (:func:`category_of`). Never raises for an int in
    0..0xFFFF; raises ValueError for anything else.
    """
    if not isinstance(code, int) or not 0 <= code <= 0xFFFF:
        raise ValueError(f"a DIMSE status is an unsigned 16-bit integer, got {code!r}")
    indexes: list[tuple[dict[int, StatusInfo], tuple[_Row, ...]]] = []
    if service is not None and service in _SERVICE_INDEX:
        indexes.append(_SERVICE_INDEX[service])
    indexes.append(_GENERAL_INDEX)
    for exact, ranges in indexes:
        info = exact.get(code)
        if info is not None:
            return info
        for lo, hi, meaning, category in ranges:
            if lo <= code <= hi:
                return StatusInfo(code=code, meaning=meaning, category=category)
    category = category_of(code)
    return StatusInfo(code=code, meaning=_generic_meaning(code, category), category=category)
