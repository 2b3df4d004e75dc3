"""Variable items and user-information sub-items of the association PDUs (values only).

PS3.8 9.3.2.1-9.3.3.3 (application context, presentation context, abstract/transfer syntax,
user information) and PS3.8 Annex D / PS3.7 Annex D.3.3 (user information sub-items).
One frozen dataclass per item: this is both the wire item and what the user sees.
Encoding and decoding live in :mod:`aiodimse.pdu.codec`.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True, kw_only=True)
class PresentationContextRQ:
    """Item 20H (PS3.8 9.3.2.2): one abstract syntax, one or more transfer syntaxes."""

    context_id: int
    abstract_syntax: str
    transfer_syntaxes: tuple[str, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class PresentationContextAC:
    """Item 21H (PS3.8 9.3.3.2): result/reason and the one transfer syntax chosen.

    ``transfer_syntax`` is ``None`` when the item carries no transfer syntax sub-item; the
    standard says it is "not significant" unless ``result`` is 0 (acceptance).
    """

    context_id: int
    result: int
    transfer_syntax: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class MaximumLength:
    """Sub-item 51H (PS3.8 D.1): largest P-DATA-TF PDU the sender can receive; 0 = no limit."""

    maximum_length: int


@dataclass(frozen=True, slots=True, kw_only=True)
class ImplementationClassUID:
    """Sub-item 52H (PS3.7 D.3.3.2)."""

    uid: str


@dataclass(frozen=True, slots=True, kw_only=True)
class AsynchronousOperationsWindow:
    """Sub-item 53H (PS3.7 D.3.3.3); 0 means unlimited."""

    max_operations_invoked: int
    max_operations_performed: int


@dataclass(frozen=True, slots=True, kw_only=True)
class RoleSelection:
    """Sub-item 54H (PS3.7 D.3.3.4): SCU/SCP role for one SOP class (1 = supported)."""

    sop_class_uid: str
    scu_role: int
    scp_role: int


@dataclass(frozen=True, slots=True, kw_only=True)
class ImplementationVersionName:
    """Sub-item 55H (PS3.7 D.3.3.2.3): 1-16 characters."""

    name: str


@dataclass(frozen=True, slots=True, kw_only=True)
class SOPClassExtendedNegotiation:
    """Sub-item 56H (PS3.7 D.3.3.5): service-class-specific application information."""

    sop_class_uid: str
    service_class_application_information: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class SOPClassCommonExtendedNegotiation:
    """Sub-item 57H (PS3.7 D.3.3.6)."""

    sop_class_uid: str
    service_class_uid: str
    related_general_sop_class_uids: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class UserIdentityRQ:
    """Sub-item 58H (PS3.7 D.3.3.7.1)."""

    identity_type: int
    positive_response_requested: bool
    primary_field: bytes
    secondary_field: bytes = b""


@dataclass(frozen=True, slots=True, kw_only=True)
class UserIdentityAC:
    """Sub-item 59H (PS3.7 D.3.3.7.2)."""

    server_response: bytes


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
