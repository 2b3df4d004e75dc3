"""PS3.8 9.3 Protocol Data Units: values, encoder and incremental bounded decoder.

Public API: the PDU and item dataclasses, :func:`encode_pdu`, :class:`PDUDecoder`
(``feed`` / ``get_buffer`` + ``buffer_updated`` / ``next_pdu``), :func:`decode_pdu`,
:func:`pdata_tf_parts` (gather list for sending P-DATA without copying) and the value
checks :func:`validate_ae_title`, :func:`validate_uid`, :func:`validate_context_id`.
"""

from __future__ import annotations

from .codec import PDUDecoder, decode_item, decode_pdu, encode_item, encode_pdu, pdu_type_name
from .items import (
    AsynchronousOperationsWindow,
    ImplementationClassUID,
    ImplementationVersionName,
    MaximumLength,
    PresentationContextAC,
    PresentationContextRQ,
    RoleSelection,
    SOPClassCommonExtendedNegotiation,
    SOPClassExtendedNegotiation,
    UserIdentityAC,
    UserIdentityRQ,
    UserInformation,
    UserInformationSubItem,
)
from .pdus import (
    PDU,
    PDV,
    AAbort,
    AAssociateAC,
    AAssociateRJ,
    AAssociateRQ,
    AReleaseRP,
    AReleaseRQ,
    PDataTF,
    pdata_tf_parts,
)
from .validate import validate_ae_title, validate_context_id, validate_uid

__all__ = [
    "PDU",
    "PDV",
    "AAbort",
    "AAssociateAC",
    "AAssociateRJ",
    "AAssociateRQ",
    "AReleaseRP",
    "AReleaseRQ",
    "AsynchronousOperationsWindow",
    "ImplementationClassUID",
    "ImplementationVersionName",
    "MaximumLength",
    "PDUDecoder",
    "PDataTF",
    "PresentationContextAC",
    "PresentationContextRQ",
    "RoleSelection",
    "SOPClassCommonExtendedNegotiation",
    "SOPClassExtendedNegotiation",
    "UserIdentityAC",
    "UserIdentityRQ",
    "UserInformation",
    "UserInformationSubItem",
    "decode_item",
    "decode_pdu",
    "encode_item",
    "encode_pdu",
    "pdata_tf_parts",
    "pdu_type_name",
    "validate_ae_title",
    "validate_context_id",
    "validate_uid",
]
