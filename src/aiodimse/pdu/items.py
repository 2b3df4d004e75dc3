"""Variable items and user-information sub-items of the association PDUs (values only).

PS3.8 9.3.2.1-9.3.3.3 (application context, presentation context, abstract/transfer syntax,
user information) and PS3.8 Annex D / PS3.7 Annex D.3.3 (user information sub-items).
One frozen dataclass per item: this is both the wire item and what the user sees.
Encoding and decoding live in :mod:`aiodimse.pdu.codec`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import PDUEncodeError
from .validate import check_bytes, check_text, check_uint

#: Item lengths are 2-byte fields (PS3.8 9.3.2.1 ff.): no string in an item can be longer.
_MAX_ITEM = 0xFFFF


@dataclass(frozen=True, slots=True, kw_only=True)
class PresentationContextRQ:
    """Item 20H (PS3.8 9.3.2.2): one abstract syntax, one or more transfer syntaxes."""

    context_id: int
    abstract_syntax: str
    transfer_syntaxes: tuple[str, ...]

    def __post_init__(self) -> None:
        # Representable only; odd 1..255 is checked by encode_pdu (strict), so that a peer's
        # even or zero ID can be decoded and answered (ROBUSTNESS.md case 7).
        check_uint("context_id", self.context_id, 8)
        check_text("abstract_syntax", self.abstract_syntax, _MAX_ITEM)
        if not isinstance(self.transfer_syntaxes, tuple):
            object.__setattr__(self, "transfer_syntaxes", tuple(self.transfer_syntaxes))
        for ts in self.transfer_syntaxes:
            check_text("transfer syntax", ts, _MAX_ITEM)


@dataclass(frozen=True, slots=True, kw_only=True)
class PresentationContextAC:
    """Item 21H (PS3.8 9.3.3.2): result/reason and the one transfer syntax chosen.

    ``transfer_syntax`` is ``None`` when the item carries no transfer syntax sub-item; the
    standard says it is "not significant" unless ``result`` is 0 (acceptance).
    """

    context_id: int
    result: int
    transfer_syntax: str | None

    def __post_init__(self) -> None:
        check_uint("context_id", self.context_id, 8)
        check_uint("result", self.result, 8)
        if self.transfer_syntax is not None:
            check_text("transfer_syntax", self.transfer_syntax, _MAX_ITEM)


@dataclass(frozen=True, slots=True, kw_only=True)
class MaximumLength:
    """Sub-item 51H (PS3.8 D.1): largest P-DATA-TF PDU the sender can receive; 0 = no limit."""

    maximum_length: int

    def __post_init__(self) -> None:
        check_uint("maximum_length", self.maximum_length, 32)


@dataclass(frozen=True, slots=True, kw_only=True)
class ImplementationClassUID:
    """Sub-item 52H (PS3.7 D.3.3.2)."""

    uid: str

    def __post_init__(self) -> None:
        check_text("implementation class UID", self.uid, _MAX_ITEM)


@dataclass(frozen=True, slots=True, kw_only=True)
class AsynchronousOperationsWindow:
    """Sub-item 53H (PS3.7 D.3.3.3); 0 means unlimited."""

    max_operations_invoked: int
    max_operations_performed: int

    def __post_init__(self) -> None:
        check_uint("max_operations_invoked", self.max_operations_invoked, 16)
        check_uint("max_operations_performed", self.max_operations_performed, 16)


@dataclass(frozen=True, slots=True, kw_only=True)
class RoleSelection:
    """Sub-item 54H (PS3.7 D.3.3.4): SCU/SCP role for one SOP class (1 = supported)."""

    sop_class_uid: str
    scu_role: int
    scp_role: int

    def __post_init__(self) -> None:
        check_text("sop_class_uid", self.sop_class_uid, _MAX_ITEM - 4)
        check_uint("scu_role", self.scu_role, 8)
        check_uint("scp_role", self.scp_role, 8)


@dataclass(frozen=True, slots=True, kw_only=True)
class ImplementationVersionName:
    """Sub-item 55H (PS3.7 D.3.3.2.3): 1-16 characters."""

    name: str

    def __post_init__(self) -> None:
        check_text("implementation version name", self.name, _MAX_ITEM)


@dataclass(frozen=True, slots=True, kw_only=True)
class SOPClassExtendedNegotiation:
    """Sub-item 56H (PS3.7 D.3.3.5): service-class-specific application information."""

    sop_class_uid: str
    service_class_application_information: bytes

    def __post_init__(self) -> None:
        check_text("sop_class_uid", self.sop_class_uid, _MAX_ITEM - 2)
        check_bytes(
            "service_class_application_information",
            self.service_class_application_information,
            _MAX_ITEM - 2 - len(self.sop_class_uid),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class SOPClassCommonExtendedNegotiation:
    """Sub-item 57H (PS3.7 D.3.3.6)."""

    sop_class_uid: str
    service_class_uid: str
    related_general_sop_class_uids: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        check_text("sop_class_uid", self.sop_class_uid, _MAX_ITEM)
        check_text("service_class_uid", self.service_class_uid, _MAX_ITEM)
        if not isinstance(self.related_general_sop_class_uids, tuple):
            related = tuple(self.related_general_sop_class_uids)
            object.__setattr__(self, "related_general_sop_class_uids", related)
        for uid in self.related_general_sop_class_uids:
            check_text("related general SOP class UID", uid, _MAX_ITEM)


@dataclass(frozen=True, slots=True, kw_only=True)
class UserIdentityRQ:
    """Sub-item 58H (PS3.7 D.3.3.7.1)."""

    identity_type: int
    positive_response_requested: bool
    primary_field: bytes
    secondary_field: bytes = b""

    def __post_init__(self) -> None:
        check_uint("identity_type", self.identity_type, 8)
        if not isinstance(self.positive_response_requested, bool):
            raise PDUEncodeError("positive_response_requested must be a bool")
        check_bytes("primary_field", self.primary_field, _MAX_ITEM)
        check_bytes("secondary_field", self.secondary_field, _MAX_ITEM)


@dataclass(frozen=True, slots=True, kw_only=True)
class UserIdentityAC:
    """Sub-item 59H (PS3.7 D.3.3.7.2)."""

    server_response: bytes

    def __post_init__(self) -> None:
        check_bytes("server_response", self.server_response, _MAX_ITEM - 2)


UserInformationSubItem = (
    MaximumLength
    | ImplementationClassUID
    | AsynchronousOperationsWindow
    | RoleSelection
    | ImplementationVersionName
    | SOPClassExtendedNegotiation
    | SOPClassCommonExtendedNegotiation
    | UserIdentityRQ
    | UserIdentityAC
)


@dataclass(frozen=True, slots=True, kw_only=True)
class UserInformation:
    """Item 50H (PS3.8 9.3.2.3): sub-items in wire order (unknown sub-item types dropped).

    Keeping the order makes ``encode(decode(b)) == b``; the properties give typed access.
    """

    sub_items: tuple[UserInformationSubItem, ...] = field(default=())

    def __post_init__(self) -> None:
        if not isinstance(self.sub_items, tuple):
            object.__setattr__(self, "sub_items", tuple(self.sub_items))

    def _first(self, kind: type[object]) -> object | None:
        for item in self.sub_items:
            if isinstance(item, kind):
                return item
        return None

    @property
    def maximum_length(self) -> int | None:
        item = self._first(MaximumLength)
        return item.maximum_length if isinstance(item, MaximumLength) else None

    @property
    def implementation_class_uid(self) -> str | None:
        item = self._first(ImplementationClassUID)
        return item.uid if isinstance(item, ImplementationClassUID) else None

    @property
    def implementation_version_name(self) -> str | None:
        item = self._first(ImplementationVersionName)
        return item.name if isinstance(item, ImplementationVersionName) else None

    @property
    def asynchronous_operations_window(self) -> AsynchronousOperationsWindow | None:
        item = self._first(AsynchronousOperationsWindow)
        return item if isinstance(item, AsynchronousOperationsWindow) else None

    @property
    def role_selections(self) -> tuple[RoleSelection, ...]:
        return tuple(i for i in self.sub_items if isinstance(i, RoleSelection))

    @property
    def extended_negotiations(self) -> tuple[SOPClassExtendedNegotiation, ...]:
        return tuple(i for i in self.sub_items if isinstance(i, SOPClassExtendedNegotiation))

    @property
    def common_extended_negotiations(self) -> tuple[SOPClassCommonExtendedNegotiation, ...]:
        return tuple(i for i in self.sub_items if isinstance(i, SOPClassCommonExtendedNegotiation))

    @property
    def user_identity_rq(self) -> UserIdentityRQ | None:
        item = self._first(UserIdentityRQ)
        return item if isinstance(item, UserIdentityRQ) else None

    @property
    def user_identity_ac(self) -> UserIdentityAC | None:
        item = self._first(UserIdentityAC)
        return item if isinstance(item, UserIdentityAC) else None
