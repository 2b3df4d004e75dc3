"""Protocol constants from PS3.5, PS3.7 and PS3.8, named as the standard names them."""

from __future__ import annotations

import enum
from typing import Final

#: PS3.7 Annex A.2.1: the one DICOM application context name.
APPLICATION_CONTEXT_NAME: Final = "1.2.840.10008.3.1.1.1"

#: PS3.8 9.3.2: bit 0 of the protocol version field is version 1.
PROTOCOL_VERSION: Final = 0x0001

#: PS3.8 9.3.1: every PDU starts with type (1), reserved (1), length (4).
PDU_HEADER_LENGTH: Final = 6

#: PS3.8 9.3.5: a PDV item is length (4), context ID (1), control header (1), data.
PDV_HEADER_LENGTH: Final = 6

#: Default cap on association-negotiation PDUs (A-ASSOCIATE-RQ/AC); dcmtk uses 1 MiB too.
DEFAULT_MAX_ASSOCIATION_PDU: Final = 1024 * 1024

#: Our default advertised maximum P-DATA-TF length (PS3.8 D.1, Maximum Length sub-item).
#: It bounds what the peer may send us, not what we send (each side limits what it receives),
#: so peers that take only small PDUs are not affected. 4 MiB lets a sender put a typical
#: image in one PDU (a 4 MiB instance: 1 PDU instead of 16 at 256 KiB: -58 % instructions
#: in our sender and -65 % in our receiver, issue 9); it costs no memory here, since the
#: decoder hands a long P-DATA-TF out in pieces as it arrives (aiodimse.pdu.decoder).
DEFAULT_MAX_PDU: Final = 4 * 1024 * 1024

#: Cap applied when the peer advertises 0 ("unlimited", PS3.8 D.1).
UNLIMITED_PDU_CAP: Final = 1024 * 1024


class PDUType(enum.IntEnum):
    """PS3.8 9.3.1, Table 9-11 and following."""

    A_ASSOCIATE_RQ = 0x01
    A_ASSOCIATE_AC = 0x02
    A_ASSOCIATE_RJ = 0x03
    P_DATA_TF = 0x04
    A_RELEASE_RQ = 0x05
    A_RELEASE_RP = 0x06
    A_ABORT = 0x07


class ItemType(enum.IntEnum):
    """PS3.8 9.3.2 variable items and PS3.7 Annex D / PS3.8 Annex D user information sub-items."""

    APPLICATION_CONTEXT = 0x10
    PRESENTATION_CONTEXT_RQ = 0x20
    PRESENTATION_CONTEXT_AC = 0x21
    ABSTRACT_SYNTAX = 0x30
    TRANSFER_SYNTAX = 0x40
    USER_INFORMATION = 0x50
    MAXIMUM_LENGTH = 0x51
    IMPLEMENTATION_CLASS_UID = 0x52
    ASYNCHRONOUS_OPERATIONS_WINDOW = 0x53
    SCP_SCU_ROLE_SELECTION = 0x54
    IMPLEMENTATION_VERSION_NAME = 0x55
    SOP_CLASS_EXTENDED_NEGOTIATION = 0x56
    SOP_CLASS_COMMON_EXTENDED_NEGOTIATION = 0x57
    USER_IDENTITY_RQ = 0x58
    USER_IDENTITY_AC = 0x59


class AbortSource(enum.IntEnum):
    """PS3.8 9.3.8, Table 9-26: A-ABORT source field."""

    SERVICE_USER = 0
    RESERVED = 1
    SERVICE_PROVIDER = 2


class AbortReason(enum.IntEnum):
    """PS3.8 9.3.8, Table 9-26: A-ABORT reason/diag (meaningful when source is 2)."""

    NOT_SPECIFIED = 0
    UNRECOGNIZED_PDU = 1
    UNEXPECTED_PDU = 2
    RESERVED = 3
    UNRECOGNIZED_PDU_PARAMETER = 4
    UNEXPECTED_PDU_PARAMETER = 5
    INVALID_PDU_PARAMETER_VALUE = 6


class RejectResult(enum.IntEnum):
    """PS3.8 9.3.4, Table 9-21: A-ASSOCIATE-RJ result."""

    REJECTED_PERMANENT = 1
    REJECTED_TRANSIENT = 2


class RejectSource(enum.IntEnum):
    """PS3.8 9.3.4, Table 9-21: A-ASSOCIATE-RJ source."""

    SERVICE_USER = 1
    SERVICE_PROVIDER_ACSE = 2
    SERVICE_PROVIDER_PRESENTATION = 3


class RejectReason(enum.IntEnum):
    """PS3.8 9.3.4, Table 9-21: A-ASSOCIATE-RJ reason/diag; meaning depends on the source.

    Source 1 (service user): 1 no reason given, 2 application context name not supported,
    3 calling AE title not recognized, 7 called AE title not recognized.
    Source 2 (ACSE): 1 no reason given, 2 protocol version not supported.
    Source 3 (presentation): 1 temporary congestion, 2 local limit exceeded.
    """

    NO_REASON_GIVEN = 1
    APPLICATION_CONTEXT_NOT_SUPPORTED = 2
    CALLING_AE_NOT_RECOGNIZED = 3
    CALLED_AE_NOT_RECOGNIZED = 7
    # Source 2:
    PROTOCOL_VERSION_NOT_SUPPORTED = 2
    # Source 3:
    TEMPORARY_CONGESTION = 1
    LOCAL_LIMIT_EXCEEDED = 2


def reject_reason_text(source: int, reason: int) -> str:
    """Words for an A-ASSOCIATE-RJ source/reason pair (PS3.8 Table 9-21)."""
    table: dict[tuple[int, int], str] = {
        (1, 1): "no reason given (service user)",
        (1, 2): "application context name not supported",
        (1, 3): "calling AE title not recognized",
        (1, 7): "called AE title not recognized",
        (2, 1): "no reason given (ACSE service provider)",
        (2, 2): "protocol version not supported",
        (3, 1): "temporary congestion",
        (3, 2): "local limit exceeded",
    }
    return table.get((source, reason), f"reserved reason {reason} (source {source})")


def abort_reason_text(source: int, reason: int) -> str:
    """Words for an A-ABORT source/reason pair (PS3.8 Table 9-26)."""
    if source == AbortSource.SERVICE_USER:
        return "aborted by the peer application (service user)"
    names = {
        0: "reason not specified",
        1: "unrecognized PDU",
        2: "unexpected PDU",
        4: "unrecognized PDU parameter",
        5: "unexpected PDU parameter",
        6: "invalid PDU parameter value",
    }
    return f"aborted by the service provider: {names.get(reason, f'reason {reason}')}"


class PresentationContextResult(enum.IntEnum):
    """PS3.8 9.3.3.2, Table 9-18: result/reason of a presentation context AC item."""

    ACCEPTANCE = 0
    USER_REJECTION = 1
    NO_REASON = 2
    ABSTRACT_SYNTAX_NOT_SUPPORTED = 3
    TRANSFER_SYNTAXES_NOT_SUPPORTED = 4


class UserIdentityType(enum.IntEnum):
    """PS3.7 D.3.3.7.1: User-Identity-Type."""

    USERNAME = 1
    USERNAME_AND_PASSCODE = 2
    KERBEROS = 3
    SAML = 4
    JWT = 5


# Transfer syntax UIDs (PS3.5 Annex A, PS3.6 Annex A).
IMPLICIT_VR_LITTLE_ENDIAN: Final = "1.2.840.10008.1.2"
EXPLICIT_VR_LITTLE_ENDIAN: Final = "1.2.840.10008.1.2.1"
DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN: Final = "1.2.840.10008.1.2.1.99"
EXPLICIT_VR_BIG_ENDIAN: Final = "1.2.840.10008.1.2.2"

#: PS3.4 Annex A: Verification SOP Class.
VERIFICATION_SOP_CLASS: Final = "1.2.840.10008.1.1"
