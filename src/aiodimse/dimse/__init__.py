"""PS3.7 DIMSE messages without I/O.

* :mod:`.messages`: one frozen dataclass per command (C-ECHO ... N-DELETE), PS3.7 9 and 10.
* :mod:`.command_codec`: the group-0000 command set, Implicit VR Little Endian (PS3.7 6.3).
* :mod:`.status`: status codes with meaning and category (PS3.7 Annex C, PS3.4).
* :mod:`.fragmenter`: messages into P-DATA-TF PDUs within the peer's maximum (PS3.8 E).
* :mod:`.assembler`: incoming PDVs into command / data-fragment / complete events.
* :mod:`.operations`: Message IDs, the asynchronous operations window, outstanding work.
"""

from __future__ import annotations

from .assembler import (
    AssemblerEvent,
    CommandReceived,
    DataFragment,
    MalformedCommand,
    MessageAssembler,
    MessageComplete,
)
from .command_codec import decode_command, encode_command
from .fragmenter import Fragmenter, MaxPDULengthTooSmall
from .messages import (
    MESSAGE_CLASSES,
    CCancelRQ,
    CEchoRQ,
    CEchoRSP,
    CFindRQ,
    CFindRSP,
    CGetRQ,
    CGetRSP,
    CMoveRQ,
    CMoveRSP,
    CommandField,
    CStoreRQ,
    CStoreRSP,
    DimseMessage,
    DimseRequest,
    DimseResponse,
    NActionRQ,
    NActionRSP,
    NCreateRQ,
    NCreateRSP,
    NDeleteRQ,
    NDeleteRSP,
    NEventReportRQ,
    NEventReportRSP,
    NGetRQ,
    NGetRSP,
    NSetRQ,
    NSetRSP,
    Priority,
    response_class_for,
)
from .operations import (
    DEFAULT_MESSAGE_ID_ALLOCATOR,
    MessageIDAllocator,
    Operation,
    OperationsWindowFull,
    OperationTracker,
    SubOperations,
)
from .status import Service, StatusCategory, StatusInfo, category_of, status_info

__all__ = [
    "DEFAULT_MESSAGE_ID_ALLOCATOR",
    "MESSAGE_CLASSES",
    "AssemblerEvent",
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
    "CommandReceived",
    "DataFragment",
    "DimseMessage",
    "DimseRequest",
    "DimseResponse",
    "Fragmenter",
    "MalformedCommand",
    "MaxPDULengthTooSmall",
    "MessageAssembler",
    "MessageComplete",
    "MessageIDAllocator",
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
    "Operation",
    "OperationTracker",
    "OperationsWindowFull",
    "Priority",
    "Service",
    "StatusCategory",
    "StatusInfo",
    "SubOperations",
    "category_of",
    "decode_command",
    "encode_command",
    "response_class_for",
    "status_info",
]
