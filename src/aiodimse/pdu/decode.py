"""Decoding of complete PDU bodies (PS3.8 9.3, PS3.8 Annex D, PS3.7 D.3.3).

The incremental part (framing, limits, buffer management) is :mod:`aiodimse.pdu.decoder`;
the functions here get one whole PDU body and either return the PDU or raise
:class:`~aiodimse.errors.PDUDecodeError` / :class:`~aiodimse.errors.PDULengthError` with the
A-ABORT source and reason to send (PS3.8 9.3.8). Every length is checked against the bytes
of its parent before use; nothing is allocated from a declared length.

What is decoded "as is", for the upper layers to judge (the codec represents what a bad
peer sends, so that the association layer can answer it properly):

* protocol version (bit 0 is checked by negotiation, PS3.8 9.3.2; ROBUSTNESS.md case 12),
  presentation context IDs (even or 0, ROBUSTNESS.md case 7), result/source/reason values,
  UIDs that do not obey VR UI (decoded as ISO 8859-1 text, trailing NULs and spaces removed),
  AE titles (leading/trailing spaces and NULs removed, PS3.8 9.3.2);
* a missing application context item decodes as ``""``, a missing abstract syntax as
  ``""``, a missing or empty AC transfer syntax as ``None``, a missing user information
  item as an empty :class:`UserInformation`.

What is skipped: items of unrecognized types (PS3.8 9.3.1 "shall be ignored and skipped"),
unknown user information sub-items (PS3.7 D.3), reserved fields (never tested, PS3.8).
A second abstract syntax or AC transfer syntax sub-item is ignored (the first counts).

What is an error: an item or field overrunning its parent, malformed fixed-size sub-items
(Maximum Length length not 4, async window length not 4, truncated role selection, user
identity or common extended negotiation fields not adding up): reason 6 (invalid PDU
parameter value); a recognized item in the wrong place (e.g. 21H in an RQ), a second
application context, user information or Maximum Length item: reason 5 (unexpected PDU
parameter).
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterator
from typing import Any

from ..constants import AbortReason, ItemType, PDUType
from ..errors import PDUDecodeError, PDULengthError
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
)

__all__ = ["decode_body", "decode_item", "decode_pdata_tf"]

_ITEM_HEADER = struct.Struct(">BBH")
_U16 = struct.Struct(">H")
_PDV_HEADER = struct.Struct(">IBB")
_RECOGNIZED_ITEMS = frozenset(int(t) for t in ItemType)
_INVALID = AbortReason.INVALID_PDU_PARAMETER_VALUE
_UNEXPECTED = AbortReason.UNEXPECTED_PDU_PARAMETER


def _slot_setter(cls: type, name: str) -> Callable[[Any, Any], None]:
    setter: Callable[[Any, Any], None] = vars(cls)[name].__set__
    return setter


# Hot path (P-DATA-TF): build PDV and PDataTF through their slot descriptors rather than
# the frozen dataclass __init__ (one object.__setattr__ call per field): the same objects,
# about 2.5 times faster. Only valid while the classes have no __post_init__; if one is
# ever added, the checks below fall back to the normal constructor.
_new = object.__new__
_FAST_PDV = not hasattr(PDV, "__post_init__") and not hasattr(PDataTF, "__post_init__")
_set_context_id = _slot_setter(PDV, "context_id")
_set_is_command = _slot_setter(PDV, "is_command")
_set_is_last = _slot_setter(PDV, "is_last")
_set_data = _slot_setter(PDV, "data")
_set_pdvs = _slot_setter(PDataTF, "pdvs")

#: PS3.8 9.3.2 Table 9-11: protocol version (2), reserved (2), called AE (16), calling AE
#: (16), reserved (32) precede the variable items of A-ASSOCIATE-RQ/AC.
ASSOCIATE_FIXED_LENGTH = 68


def _invalid(message: str) -> PDULengthError:
    return PDULengthError(message, abort_reason=_INVALID)


def _unexpected(message: str) -> PDUDecodeError:
    return PDUDecodeError(message, abort_reason=_UNEXPECTED)


def _iter_items(data: bytes, pos: int, end: int, where: str) -> Iterator[tuple[int, int, int]]:
    """Yield (item type, body start, body end) for the items in ``data[pos:end]``."""
    while pos < end:
        if end - pos < 4:
            raise _invalid(f"truncated item header in {where}")
        item_type, _reserved, length = _ITEM_HEADER.unpack_from(data, pos)
        pos += 4
        if length > end - pos:
            raise _invalid(f"item {item_type:02X}H length {length} overruns {where}")
        yield item_type, pos, pos + length
        pos += length


def _text(data: bytes) -> str:
    # Latin-1 maps every byte, so decoding never fails; validity is the upper layer's call.
    return data.decode("latin-1")


def _uid(data: bytes) -> str:
    # PS3.5 9.1 / PS3.8 Annex F: no padding expected; tolerate a trailing NUL (or space).
    return data.decode("latin-1").rstrip("\x00 ")


def _u16_field(data: bytes, pos: int, end: int, what: str) -> tuple[bytes, int]:
    """A 2-byte length then that many bytes, within ``end``; return (bytes, next pos)."""
    if end - pos < 2:
        raise _invalid(f"truncated length of {what}")
    (length,) = _U16.unpack_from(data, pos)
    pos += 2
    if length > end - pos:
        raise _invalid(f"{what} length {length} overruns its item")
    return data[pos : pos + length], pos + length


def _decode_sub_item(kind: int, data: bytes, a: int, b: int) -> UserInformationSubItem | None:
    """One user information sub-item body ``data[a:b]``; ``None`` for unknown types."""
    n = b - a
    if kind == ItemType.MAXIMUM_LENGTH:
        if n != 4:  # PS3.8 D.1: item length fixed at 4 (ROBUSTNESS.md case 9)
            raise _invalid(f"Maximum Length sub-item has length {n}, not 4")
        return MaximumLength(maximum_length=int.from_bytes(data[a:b], "big"))
    if kind == ItemType.IMPLEMENTATION_CLASS_UID:
        return ImplementationClassUID(uid=_uid(data[a:b]))
    if kind == ItemType.ASYNCHRONOUS_OPERATIONS_WINDOW:
        if n != 4:  # PS3.7 D.3.3.3.1: two 2-byte fields
            raise _invalid(f"Asynchronous Operations Window sub-item has length {n}, not 4")
        invoked, performed = struct.unpack_from(">HH", data, a)
        return AsynchronousOperationsWindow(
            max_operations_invoked=invoked, max_operations_performed=performed
        )
    if kind == ItemType.SCP_SCU_ROLE_SELECTION:
        # PS3.7 D.3.3.4.1: UID length (2), UID, SCU role (1), SCP role (1).
        uid, pos = _u16_field(data, a, b, "role selection SOP class UID")
        if b - pos != 2:
            raise _invalid("role selection sub-item is truncated or has extra bytes")
        return RoleSelection(sop_class_uid=_uid(uid), scu_role=data[pos], scp_role=data[pos + 1])
    if kind == ItemType.IMPLEMENTATION_VERSION_NAME:
        return ImplementationVersionName(name=_text(data[a:b]))
    if kind == ItemType.SOP_CLASS_EXTENDED_NEGOTIATION:
        # PS3.7 D.3.3.5.1: UID length (2), UID, application information (rest).
        uid, pos = _u16_field(data, a, b, "extended negotiation SOP class UID")
        return SOPClassExtendedNegotiation(
            sop_class_uid=_uid(uid), service_class_application_information=data[pos:b]
        )
    if kind == ItemType.SOP_CLASS_COMMON_EXTENDED_NEGOTIATION:
        # PS3.7 D.3.3.6.1 Table D.3-12 and D.3-13.
        sop, pos = _u16_field(data, a, b, "common extended negotiation SOP class UID")
        service, pos = _u16_field(data, pos, b, "service class UID")
        related_field, pos = _u16_field(data, pos, b, "related general SOP class identification")
        if pos != b:
            raise _invalid("common extended negotiation sub-item has extra bytes")
        related: list[str] = []
        rpos, rend = 0, len(related_field)
        while rpos < rend:
            uid, rpos = _u16_field(related_field, rpos, rend, "related general SOP class UID")
            related.append(_uid(uid))
        return SOPClassCommonExtendedNegotiation(
            sop_class_uid=_uid(sop),
            service_class_uid=_uid(service),
            related_general_sop_class_uids=tuple(related),
        )
    if kind == ItemType.USER_IDENTITY_RQ:
        # PS3.7 D.3.3.7.1: type (1), positive response requested (1), primary field length
        # (2) and field, secondary field length (2) and field.
        if n < 2:
            raise _invalid("user identity sub-item is truncated")
        primary, pos = _u16_field(data, a + 2, b, "user identity primary field")
        secondary, pos = _u16_field(data, pos, b, "user identity secondary field")
        if pos != b:
            raise _invalid("user identity sub-item has extra bytes")
        return UserIdentityRQ(
            identity_type=data[a],
            positive_response_requested=data[a + 1] != 0,
            primary_field=primary,
            secondary_field=secondary,
        )
    if kind == ItemType.USER_IDENTITY_AC:
        # PS3.7 D.3.3.7.2: server response length (2), server response.
        response, pos = _u16_field(data, a, b, "user identity server response")
        if pos != b:
            raise _invalid("user identity AC sub-item has extra bytes")
        return UserIdentityAC(server_response=response)
    return None  # PS3.7 D.3: unknown sub-items are ignored (ROBUSTNESS.md case 10)


def decode_item(data: bytes) -> UserInformationSubItem | None:
    """Decode exactly one user information sub-item (header included); ``None`` if unknown.

    Raises :class:`~aiodimse.errors.PDUDecodeError` if ``data`` is not exactly one item.
    """
    data = bytes(data)
    items = list(_iter_items(data, 0, len(data), "sub-item"))
    if len(items) != 1:
        raise _invalid(f"expected one sub-item, found {len(items)}")
    kind, a, b = items[0]
    return _decode_sub_item(kind, data, a, b)


def _decode_user_information(data: bytes, a: int, b: int) -> UserInformation:
    """Item 50H (PS3.8 9.3.2.3) body ``data[a:b]``."""
    items: list[UserInformationSubItem] = []
    seen_max_length = False
    for kind, sa, sb in _iter_items(data, a, b, "user information item"):
        item = _decode_sub_item(kind, data, sa, sb)
        if item is None:
            continue
        if isinstance(item, MaximumLength):
            if seen_max_length:
                raise _unexpected("two Maximum Length sub-items (PS3.8 D.1)")
            seen_max_length = True
        items.append(item)
    return UserInformation(sub_items=tuple(items))


def _decode_context_rq(data: bytes, a: int, b: int) -> PresentationContextRQ:
    """Item 20H (PS3.8 9.3.2.2 Table 9-13)."""
    if b - a < 4:
        raise _invalid("presentation context item shorter than its fixed fields")
    abstract: str | None = None
    transfer: list[str] = []
    for kind, sa, sb in _iter_items(data, a + 4, b, "presentation context item"):
        if kind == ItemType.ABSTRACT_SYNTAX:
            if abstract is None:
                abstract = _uid(data[sa:sb])
        elif kind == ItemType.TRANSFER_SYNTAX:
            transfer.append(_uid(data[sa:sb]))
    return PresentationContextRQ(
        context_id=data[a], abstract_syntax=abstract or "", transfer_syntaxes=tuple(transfer)
    )


def _decode_context_ac(data: bytes, a: int, b: int) -> PresentationContextAC:
    """Item 21H (PS3.8 9.3.3.2 Table 9-18)."""
    if b - a < 4:
        raise _invalid("presentation context item shorter than its fixed fields")
    transfer: str | None = None
    found = False
    for kind, sa, sb in _iter_items(data, a + 4, b, "presentation context item"):
        if kind == ItemType.TRANSFER_SYNTAX and not found:
            found = True
            transfer = _uid(data[sa:sb]) or None
    return PresentationContextAC(context_id=data[a], result=data[a + 2], transfer_syntax=transfer)


def _decode_associate(pdu_type: int, body: bytes) -> AAssociateRQ | AAssociateAC:
    """A-ASSOCIATE-RQ (PS3.8 9.3.2) or -AC (9.3.3) body, header already stripped."""
    if len(body) < ASSOCIATE_FIXED_LENGTH:
        raise _invalid("A-ASSOCIATE PDU shorter than its fixed fields")
    is_rq = pdu_type == PDUType.A_ASSOCIATE_RQ
    expected_context = (
        ItemType.PRESENTATION_CONTEXT_RQ if is_rq else ItemType.PRESENTATION_CONTEXT_AC
    )
    application_context: str | None = None
    user_information: UserInformation | None = None
    contexts_rq: list[PresentationContextRQ] = []
    contexts_ac: list[PresentationContextAC] = []
    where = "A-ASSOCIATE-RQ" if is_rq else "A-ASSOCIATE-AC"
    for kind, a, b in _iter_items(body, ASSOCIATE_FIXED_LENGTH, len(body), where):
        if kind == ItemType.APPLICATION_CONTEXT:
            if application_context is not None:
                raise _unexpected(f"two application context items in {where}")
            application_context = _uid(body[a:b])
        elif kind == expected_context:
            if is_rq:
                contexts_rq.append(_decode_context_rq(body, a, b))
            else:
                contexts_ac.append(_decode_context_ac(body, a, b))
        elif kind == ItemType.USER_INFORMATION:
            if user_information is not None:
                raise _unexpected(f"two user information items in {where}")
            user_information = _decode_user_information(body, a, b)
        elif kind in _RECOGNIZED_ITEMS:
            raise _unexpected(f"item {kind:02X}H does not belong in {where}")
        # PS3.8 9.3.1: items of unrecognized types are ignored and skipped.
    # PS3.8 9.3.2: AE titles are 16 characters, leading and trailing spaces not significant.
    (version,) = _U16.unpack_from(body, 0)
    called = _text(body[4:20]).strip(" \x00")
    calling = _text(body[20:36]).strip(" \x00")
    info = user_information or UserInformation()
    app = application_context or ""
    if is_rq:
        return AAssociateRQ(
            called_ae_title=called,
            calling_ae_title=calling,
            presentation_contexts=tuple(contexts_rq),
            user_information=info,
            application_context=app,
            protocol_version=version,
        )
    return AAssociateAC(
        called_ae_title=called,
        calling_ae_title=calling,
        presentation_contexts=tuple(contexts_ac),
        user_information=info,
        application_context=app,
        protocol_version=version,
    )


#: Decoded A-ASSOCIATE-RQ/AC PDUs by their bytes (bounded; the PDUs are frozen values).
_ASSOCIATE_PDUS: dict[tuple[int, bytes], AAssociateRQ | AAssociateAC] = {}


def decode_body(pdu_type: int, body: bytes) -> PDU:
    """Decode the body (after the 6-byte header) of a non-P-DATA PDU of ``pdu_type``.

    The caller has already checked ``len(body)`` against the fixed lengths and limits
    (see :func:`aiodimse.pdu.decoder.check_header`).
    """
    if pdu_type in (PDUType.A_ASSOCIATE_RQ, PDUType.A_ASSOCIATE_AC):
        # The same peer sends the same bytes every time: the same frozen PDU comes back.
        key = (pdu_type, bytes(body))
        pdu = _ASSOCIATE_PDUS.get(key)
        if pdu is None:
            pdu = _decode_associate(pdu_type, body)
            if len(_ASSOCIATE_PDUS) >= 64:
                _ASSOCIATE_PDUS.clear()
            _ASSOCIATE_PDUS[key] = pdu
        return pdu
    if len(body) != 4:
        raise _invalid(f"PDU type {pdu_type:02X}H must have length 4, not {len(body)}")
    if pdu_type == PDUType.A_ASSOCIATE_RJ:
        # PS3.8 9.3.4 Table 9-21: reserved, result, source, reason/diag.
        return AAssociateRJ(result=body[1], source=body[2], reason=body[3])
    if pdu_type == PDUType.A_RELEASE_RQ:
        return AReleaseRQ()
    if pdu_type == PDUType.A_RELEASE_RP:
        return AReleaseRP()
    if pdu_type == PDUType.A_ABORT:
        # PS3.8 9.3.8 Table 9-26: reserved (2), source, reason/diag.
        return AAbort(source=body[2], reason=body[3])
    raise PDUDecodeError(
        f"unrecognized PDU type {pdu_type:02X}H", abort_reason=AbortReason.UNRECOGNIZED_PDU
    )


def decode_pdata_tf(buf: bytearray | bytes, view: memoryview, pos: int, end: int) -> PDataTF:
    """P-DATA-TF body ``buf[pos:end]`` (PS3.8 9.3.5); PDV data are slices of ``view``.

    ``view`` is a memoryview over ``buf``. Each PDV item: item length (4, counting the
    context ID, the message control header and the data), context ID (1), message control
    header (1, Annex E.2: bit 0 command, bit 1 last fragment), data. An item length below 2
    or beyond the PDU end is an error (reason 6, ROBUSTNESS.md case 6). Nothing is copied:
    this allocates the PDV objects, their views and the tuple.
    """
    pdvs: list[PDV] = []
    append = pdvs.append
    unpack = _PDV_HEADER.unpack_from
    fast = _FAST_PDV
    while pos < end:
        if end - pos < 6:
            raise _invalid("truncated PDV item header in P-DATA-TF")
        length, context_id, control = unpack(buf, pos)
        if length < 2 or length > end - pos - 4:
            raise _invalid(f"PDV item length {length} is below 2 or overruns the P-DATA-TF")
        start = pos + 6
        pos += 4 + length
        if fast:
            pdv = _new(PDV)
            _set_context_id(pdv, context_id)
            _set_is_command(pdv, control & 1 == 1)
            _set_is_last(pdv, control & 2 == 2)
            _set_data(pdv, view[start:pos])
        else:  # pragma: no cover - only if PDV ever gains a __post_init__
            pdv = PDV(
                context_id=context_id,
                is_command=control & 1 == 1,
                is_last=control & 2 == 2,
                data=view[start:pos],
            )
        append(pdv)
    if not pdvs:
        raise _invalid("P-DATA-TF without PDV items")
    if fast:
        pdata = _new(PDataTF)
        _set_pdvs(pdata, tuple(pdvs))
        return pdata
    return PDataTF(pdvs=tuple(pdvs))  # pragma: no cover
