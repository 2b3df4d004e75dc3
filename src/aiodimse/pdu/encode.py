"""PDU encoder: PDU value -> bytes on the wire (PS3.8 9.3, PS3.8 Annex D, PS3.7 D.3.3).

All fields are big endian (PS3.8 9.3.1); reserved fields are written as zero. AE titles are
padded with spaces to 16 bytes; UIDs are written without padding (PS3.8 Annex F).

``encode_pdu(pdu)`` is strict by default: it refuses what the standard forbids (invalid AE
titles or UIDs, even presentation context IDs, unknown result/source/reason values, items
in the wrong PDU) with :class:`aiodimse.errors.PDUEncodeError`, and it writes user
information sub-items in increasing item type order (PS3.8 9.3.1). ``strict=False`` writes
any representable value as given, in the given order: this re-encodes whatever the decoder
produced (tests, fuzzing, echoing a peer's fields).
"""

from __future__ import annotations

import struct

from ..constants import ItemType, PDUType
from ..errors import PDUEncodeError
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
    AAbort,
    AAssociateAC,
    AAssociateRJ,
    AAssociateRQ,
    AReleaseRP,
    AReleaseRQ,
    PDataTF,
    pdata_tf_parts,
)
from .validate import (
    validate_ae_title,
    validate_context_id,
    validate_short_string,
    validate_uid,
)

__all__ = ["encode_item", "encode_pdu"]

_ITEM_HEADER = struct.Struct(">BBH")
_PDU_HEADER = struct.Struct(">BBI")
_U16 = struct.Struct(">H")
_PDV_HEADER = struct.Struct(">IBB")

# PS3.8 9.3.4 Table 9-21: reasons allowed per source of an A-ASSOCIATE-RJ.
_RJ_REASONS = {1: frozenset({1, 2, 3, 7}), 2: frozenset({1, 2}), 3: frozenset({1, 2})}
# PS3.8 9.3.8 Table 9-26: A-ABORT reasons (3 is reserved).
_ABORT_REASONS = frozenset({0, 1, 2, 4, 5, 6})

_SUB_ITEM_TYPE: dict[type, int] = {
    MaximumLength: ItemType.MAXIMUM_LENGTH,
    ImplementationClassUID: ItemType.IMPLEMENTATION_CLASS_UID,
    AsynchronousOperationsWindow: ItemType.ASYNCHRONOUS_OPERATIONS_WINDOW,
    RoleSelection: ItemType.SCP_SCU_ROLE_SELECTION,
    ImplementationVersionName: ItemType.IMPLEMENTATION_VERSION_NAME,
    SOPClassExtendedNegotiation: ItemType.SOP_CLASS_EXTENDED_NEGOTIATION,
    SOPClassCommonExtendedNegotiation: ItemType.SOP_CLASS_COMMON_EXTENDED_NEGOTIATION,
    UserIdentityRQ: ItemType.USER_IDENTITY_RQ,
    UserIdentityAC: ItemType.USER_IDENTITY_AC,
}


def _item(item_type: int, body: bytes, byte2: int = 0) -> bytes:
    """Type (1), reserved or version (1), item length (2), body."""
    if len(body) > 0xFFFF:
        raise PDUEncodeError(f"item {item_type:02X}H body of {len(body)} bytes exceeds 65535")
    return _ITEM_HEADER.pack(item_type, byte2, len(body)) + body


def _text(value: str) -> bytes:
    return value.encode("latin-1")


def _u16_prefixed(value: bytes) -> bytes:
    if len(value) > 0xFFFF:
        raise PDUEncodeError(f"field of {len(value)} bytes exceeds 65535")
    return _U16.pack(len(value)) + value


def _uid(value: str, name: str, strict: bool) -> bytes:
    if strict:
        validate_uid(value, name)
    return _text(value)


def _encode_sub_item(item: UserInformationSubItem, strict: bool) -> bytes:
    """One user information sub-item (PS3.8 D.1, PS3.7 D.3.3)."""
    kind = _SUB_ITEM_TYPE[type(item)]
    if isinstance(item, MaximumLength):
        # PS3.8 D.1: fixed item length 4.
        return _item(kind, item.maximum_length.to_bytes(4, "big"))
    if isinstance(item, ImplementationClassUID):
        return _item(kind, _uid(item.uid, "implementation class UID", strict))
    if isinstance(item, AsynchronousOperationsWindow):
        # PS3.7 D.3.3.3.1: invoked (2), performed (2).
        body = _U16.pack(item.max_operations_invoked) + _U16.pack(item.max_operations_performed)
        return _item(kind, body)
    if isinstance(item, RoleSelection):
        # PS3.7 D.3.3.4.1: UID length (2), UID, SCU role (1), SCP role (1).
        if strict and (item.scu_role not in (0, 1) or item.scp_role not in (0, 1)):
            raise PDUEncodeError("SCU/SCP role values must be 0 or 1 (PS3.7 D.3.3.4)")
        uid = _uid(item.sop_class_uid, "role selection SOP class UID", strict)
        return _item(kind, _u16_prefixed(uid) + bytes((item.scu_role, item.scp_role)))
    if isinstance(item, ImplementationVersionName):
        if strict:
            validate_short_string(item.name, "implementation version name")
        return _item(kind, _text(item.name))
    if isinstance(item, SOPClassExtendedNegotiation):
        # PS3.7 D.3.3.5.1: UID length (2), UID, service class application information.
        uid = _uid(item.sop_class_uid, "extended negotiation SOP class UID", strict)
        return _item(kind, _u16_prefixed(uid) + bytes(item.service_class_application_information))
    if isinstance(item, SOPClassCommonExtendedNegotiation):
        # PS3.7 D.3.3.6.1: byte 2 is the sub-item version (0); then SOP class UID, service
        # class UID, and the related general SOP class identification (Table D.3-13: each a
        # 2-byte length and a UID), all length-prefixed.
        related = b"".join(
            _u16_prefixed(_uid(u, "related general SOP class UID", strict))
            for u in item.related_general_sop_class_uids
        )
        body = (
            _u16_prefixed(_uid(item.sop_class_uid, "common extended SOP class UID", strict))
            + _u16_prefixed(_uid(item.service_class_uid, "service class UID", strict))
            + _u16_prefixed(related)
        )
        return _item(kind, body)
    if isinstance(item, UserIdentityRQ):
        # PS3.7 D.3.3.7.1: type (1), positive response requested (1), primary field length
        # (2), primary field, secondary field length (2), secondary field.
        if strict:
            if not 1 <= item.identity_type <= 5:
                raise PDUEncodeError(f"user identity type {item.identity_type} is not 1..5")
            if item.secondary_field and item.identity_type != 2:
                raise PDUEncodeError("a secondary field is only sent with identity type 2")
        body = (
            bytes((item.identity_type, 1 if item.positive_response_requested else 0))
            + _u16_prefixed(bytes(item.primary_field))
            + _u16_prefixed(bytes(item.secondary_field))
        )
        return _item(kind, body)
    # UserIdentityAC, PS3.7 D.3.3.7.2: server response length (2), server response.
    return _item(kind, _u16_prefixed(bytes(item.server_response)))


def _encode_user_information(
    info: UserInformation, strict: bool, *, forbidden: type | None
) -> bytes:
    """Item 50H (PS3.8 9.3.2.3) with its sub-items."""
    items = info.sub_items
    if strict:
        for sub in items:
            if forbidden is not None and isinstance(sub, forbidden):
                raise PDUEncodeError(f"{type(sub).__name__} does not belong in this PDU")
        # PS3.8 9.3.1: items appear in increasing order of their item types.
        items = tuple(sorted(items, key=lambda s: _SUB_ITEM_TYPE[type(s)]))
    return _item(ItemType.USER_INFORMATION, b"".join(_encode_sub_item(s, strict) for s in items))


def _encode_context_rq(pc: PresentationContextRQ, strict: bool) -> bytes:
    # PS3.8 9.3.2.2 Table 9-13: ID (1), reserved (3), abstract syntax 30H, transfer syntax 40H.
    if strict:
        validate_context_id(pc.context_id)
        if not pc.transfer_syntaxes:
            raise PDUEncodeError(f"presentation context {pc.context_id} has no transfer syntax")
    body = bytes((pc.context_id, 0, 0, 0)) + _item(
        ItemType.ABSTRACT_SYNTAX, _uid(pc.abstract_syntax, "abstract syntax", strict)
    )
    for ts in pc.transfer_syntaxes:
        body += _item(ItemType.TRANSFER_SYNTAX, _uid(ts, "transfer syntax", strict))
    return _item(ItemType.PRESENTATION_CONTEXT_RQ, body)


def _encode_context_ac(pc: PresentationContextAC, strict: bool) -> bytes:
    # PS3.8 9.3.3.2 Table 9-18: ID (1), reserved, result/reason (1), reserved, one 40H.
    # A missing transfer syntax (None) is written as an empty 40H sub-item, so the item
    # keeps the structure the table requires; it is "not significant" unless accepted.
    if strict:
        validate_context_id(pc.context_id)
        if not 0 <= pc.result <= 4:
            raise PDUEncodeError(f"presentation context result {pc.result} is not 0..4")
        if pc.result == 0 and pc.transfer_syntax is None:
            raise PDUEncodeError("an accepted presentation context needs a transfer syntax")
    ts = pc.transfer_syntax
    ts_bytes = b"" if ts is None else _uid(ts, "transfer syntax", strict and pc.result == 0)
    body = bytes((pc.context_id, 0, pc.result, 0)) + _item(ItemType.TRANSFER_SYNTAX, ts_bytes)
    return _item(ItemType.PRESENTATION_CONTEXT_AC, body)


#: Encodings of A-ASSOCIATE PDU objects already sent (an AE sends the same frozen RQ
#: for every association to one peer; an acceptor answers the same RQ with the same AC):
#: keyed by identity, the object kept alive in the entry; bounded.
_ASSOCIATE_BYTES: dict[tuple[int, bool], tuple[AAssociateRQ | AAssociateAC, bytes]] = {}


def _encode_associate(pdu: AAssociateRQ | AAssociateAC, strict: bool) -> bytes:
    key = (id(pdu), strict)
    hit = _ASSOCIATE_BYTES.get(key)
    if hit is not None and hit[0] is pdu:
        return hit[1]
    data = _encode_associate_now(pdu, strict)
    if len(_ASSOCIATE_BYTES) >= 64:
        _ASSOCIATE_BYTES.clear()
    _ASSOCIATE_BYTES[key] = (pdu, data)
    return data


def _encode_associate_now(pdu: AAssociateRQ | AAssociateAC, strict: bool) -> bytes:
    """A-ASSOCIATE-RQ/AC (PS3.8 9.3.2 Table 9-11, 9.3.3 Table 9-17)."""
    is_rq = isinstance(pdu, AAssociateRQ)
    if strict:
        if is_rq:
            # PS3.8 9.3.2: AE titles are significant in the RQ; in the AC they are reserved
            # fields echoed from the RQ and not tested.
            validate_ae_title(pdu.called_ae_title, "called AE title")
            validate_ae_title(pdu.calling_ae_title, "calling AE title")
        validate_uid(pdu.application_context, "application context name")
        if not pdu.presentation_contexts:
            raise PDUEncodeError("an A-ASSOCIATE PDU needs at least one presentation context")
    parts = [
        _U16.pack(pdu.protocol_version),
        b"\x00\x00",
        _text(pdu.called_ae_title).ljust(16, b" "),
        _text(pdu.calling_ae_title).ljust(16, b" "),
        bytes(32),
        _item(ItemType.APPLICATION_CONTEXT, _text(pdu.application_context)),
    ]
    if isinstance(pdu, AAssociateRQ):
        for rq in pdu.presentation_contexts:
            if not isinstance(rq, PresentationContextRQ):
                raise PDUEncodeError("A-ASSOCIATE-RQ takes PresentationContextRQ items")
            parts.append(_encode_context_rq(rq, strict))
        parts.append(
            _encode_user_information(pdu.user_information, strict, forbidden=UserIdentityAC)
        )
    else:
        for ac in pdu.presentation_contexts:
            if not isinstance(ac, PresentationContextAC):
                raise PDUEncodeError("A-ASSOCIATE-AC takes PresentationContextAC items")
            parts.append(_encode_context_ac(ac, strict))
        parts.append(
            _encode_user_information(pdu.user_information, strict, forbidden=UserIdentityRQ)
        )
    body = b"".join(parts)
    kind = PDUType.A_ASSOCIATE_RQ if is_rq else PDUType.A_ASSOCIATE_AC
    return _PDU_HEADER.pack(kind, 0, len(body)) + body


def _encode_pdata_lenient(pdu: PDataTF) -> bytes:
    """P-DATA-TF (PS3.8 9.3.5) without the context ID rule: any ID that fits a byte."""
    parts = []
    for pdv in pdu.pdvs:
        control = (1 if pdv.is_command else 0) | (2 if pdv.is_last else 0)
        parts.append(_PDV_HEADER.pack(len(pdv.data) + 2, pdv.context_id, control))
        parts.append(bytes(pdv.data))
    body = b"".join(parts)
    if len(body) > 0xFFFFFFFF:
        raise PDUEncodeError("P-DATA-TF does not fit the PDU length field")
    return _PDU_HEADER.pack(PDUType.P_DATA_TF, 0, len(body)) + body


def encode_item(item: UserInformationSubItem, *, strict: bool = True) -> bytes:
    """Encode one user information sub-item (51H..59H) with its 4-byte item header."""
    if type(item) not in _SUB_ITEM_TYPE:
        raise PDUEncodeError(f"{type(item).__name__} is not a user information sub-item")
    return _encode_sub_item(item, strict)


def encode_pdu(pdu: PDU, *, strict: bool = True) -> bytes:
    """Return the bytes of ``pdu`` as sent on the wire, header included (PS3.8 9.3).

    With ``strict`` (the default) values the standard forbids raise
    :class:`~aiodimse.errors.PDUEncodeError`; ``strict=False`` writes any value that fits
    its field (see the module docstring). P-DATA-TF payloads are copied here; to send them
    without copying use :func:`aiodimse.pdu.pdata_tf_parts`.
    """
    if isinstance(pdu, PDataTF):
        if strict:
            if not pdu.pdvs:
                raise PDUEncodeError("a P-DATA-TF needs at least one PDV (PS3.8 9.3.5)")
            return b"".join(pdata_tf_parts(pdu.pdvs))
        return _encode_pdata_lenient(pdu)
    if isinstance(pdu, AAssociateRQ | AAssociateAC):
        return _encode_associate(pdu, strict)
    if isinstance(pdu, AAssociateRJ):
        # PS3.8 9.3.4 Table 9-21: reserved (1), result (1), source (1), reason/diag (1).
        if strict and (
            pdu.result not in (1, 2) or pdu.reason not in _RJ_REASONS.get(pdu.source, ())
        ):
            raise PDUEncodeError(
                f"invalid A-ASSOCIATE-RJ result/source/reason {pdu.result}/{pdu.source}/"
                f"{pdu.reason} (PS3.8 Table 9-21)"
            )
        return _PDU_HEADER.pack(PDUType.A_ASSOCIATE_RJ, 0, 4) + bytes(
            (0, pdu.result, pdu.source, pdu.reason)
        )
    if isinstance(pdu, AReleaseRQ):
        # PS3.8 9.3.6: 4 reserved bytes.
        return _PDU_HEADER.pack(PDUType.A_RELEASE_RQ, 0, 4) + bytes(4)
    if isinstance(pdu, AReleaseRP):
        return _PDU_HEADER.pack(PDUType.A_RELEASE_RP, 0, 4) + bytes(4)
    if isinstance(pdu, AAbort):
        # PS3.8 9.3.8 Table 9-26: reserved (2), source (1), reason/diag (1).
        if strict and (pdu.source not in (0, 2) or pdu.reason not in _ABORT_REASONS):
            raise PDUEncodeError(f"invalid A-ABORT source/reason {pdu.source}/{pdu.reason}")
        return _PDU_HEADER.pack(PDUType.A_ABORT, 0, 4) + bytes((0, 0, pdu.source, pdu.reason))
    raise PDUEncodeError(f"not a PDU: {type(pdu).__name__}")
