"""Association negotiation as pure functions (PS3.8 7.1, 9.3.2-9.3.4; PS3.7 Annex D.3.3).

* :func:`negotiate` (acceptor): A-ASSOCIATE-RQ + :class:`AcceptorPolicy` -> the
  A-ASSOCIATE-AC or A-ASSOCIATE-RJ to send.
* :func:`check_accept` (either side): A-ASSOCIATE-RQ + A-ASSOCIATE-AC -> :class:`Negotiated`,
  or :class:`~aiodimse.errors.RemoteProtocolError` when the AC accepts a context that was never
  proposed or a transfer syntax that was not offered for it (ROBUSTNESS 20: the requestor must
  then abort, never report the association as established).
* :func:`provider_rejection`: the checks the UL service *provider* makes before the user sees
  the request (AE-6, PS3.8 9.2.2), today only the protocol version.

Nothing here does I/O or keeps state; user callbacks are not called: a caller that checks user
identity passes the verdict in as an :class:`IdentityVerdict`.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field

from ..config import Limits
from ..constants import (
    APPLICATION_CONTEXT_NAME,
    PDV_HEADER_LENGTH,
    AbortReason,
    PresentationContextResult,
    RejectReason,
    RejectResult,
    RejectSource,
)
from ..errors import PDUEncodeError, RemoteProtocolError
from ..pdu.items import (
    AsynchronousOperationsWindow,
    ImplementationClassUID,
    ImplementationVersionName,
    MaximumLength,
    PresentationContextAC,
    RoleSelection,
    SOPClassCommonExtendedNegotiation,
    SOPClassExtendedNegotiation,
    UserIdentityAC,
    UserInformation,
    UserInformationSubItem,
)
from ..pdu.pdus import AAssociateAC, AAssociateRJ, AAssociateRQ
from ..pdu.validate import validate_uid
from .fsm import Role

log = logging.getLogger("aiodimse.association.negotiation")

#: Used in our AC when the policy's user information carries no Implementation Class UID
#: (PS3.7 D.3.3.2 makes the sub-item mandatory). A UUID-derived UID (PS3.5 B.2).
DEFAULT_IMPLEMENTATION_CLASS_UID = "2.25.46659383406600393438746029855972176533"

#: Smallest peer maximum length we can send through: one PDV header and one byte
#: (PS3.8 D.1, ROBUSTNESS 27).
MIN_PEER_MAX_PDU = PDV_HEADER_LENGTH + 1


@dataclass(frozen=True, slots=True, kw_only=True)
class IdentityVerdict:
    """The caller's decision on a User Identity sub-item 58H (PS3.7 D.3.3.7).

    ``accepted=False`` rejects the association (RJ 1, 1, 1). ``server_response`` goes in the
    59H sub-item, sent only when the request asked for a positive response.
    """

    accepted: bool
    server_response: bytes = b""


@dataclass(frozen=True, slots=True, kw_only=True)
class AcceptorPolicy:
    """What an acceptor agrees to (all fixed values: no callbacks).

    * ``ae_title``: our AE title; an RQ called another one is rejected (1, 1, 7). ``None``
      accepts any called AE title.
    * ``calling_ae_titles``: if given, only these peers (1, 1, 3 otherwise).
    * ``supported``: abstract syntax -> transfer syntaxes in *our* order of preference.
    * ``scp_roles``: SOP class -> (accept the requestor's SCU role proposal, accept its SCP
      role proposal) for SCP/SCU Role Selection (PS3.7 D.3.3.4). Not listed: we accept the
      SCU proposal (the default role) and turn down the SCP one.
    * ``async_operations_window``: (invoked, performed) we support, or ``None`` for
      synchronous only (no 53H in the answer; PS3.7 D.3.3.3 default 1/1).
    * ``extended_negotiation``: SOP class -> our 56H service-class application information,
      returned only for SOP classes we accept whose 56H the requestor sent (PS3.7 D.3.3.5).
    * ``accept_related_general_classes``: accept an unsupported SOP class when its 57H names a
      related general SOP class we support (PS3.7 D.3.3.6), with that class's syntaxes.
    * ``user_information``: our 51H (maximum length; defaults to ``limits.max_pdu_length``,
      may not exceed it), 52H and 55H. Other sub-items in it are ignored.
    * ``limits``: the limits the decoder enforces; the async window is clamped to them.
    * ``prefer_requestor_order``: pick the transfer syntax by the *requestor's* order of
      preference (the first it proposed that we support) instead of ours: ``True`` for every
      SOP class, or the SOP classes for which to do so. PS3.8 9.3.2.2 lets the requestor
      list its syntaxes in any order and leaves the choice to the acceptor (9.3.3.2); an
      SCU that lists an instance's own syntax first then has it kept bit for bit.
    """

    ae_title: str | None = None
    calling_ae_titles: Collection[str] | None = None
    supported: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    scp_roles: Mapping[str, tuple[bool, bool]] = field(default_factory=dict)
    async_operations_window: tuple[int, int] | None = None
    extended_negotiation: Mapping[str, bytes] = field(default_factory=dict)
    accept_related_general_classes: bool = False
    user_information: UserInformation = field(default_factory=UserInformation)
    limits: Limits = field(default_factory=Limits)
    prefer_requestor_order: bool | frozenset[str] = False

    def requestor_order_for(self, abstract_syntax: str) -> bool:
        """Whether the requestor's transfer syntax order decides for this SOP class."""
        if isinstance(self.prefer_requestor_order, bool):
            return self.prefer_requestor_order
        return abstract_syntax in self.prefer_requestor_order

    def __post_init__(self) -> None:
        ours = self.user_information.maximum_length
        if ours is not None and not 0 < ours <= self.limits.max_pdu_length:
            raise ValueError(
                f"advertised maximum length {ours} must be 1..{self.limits.max_pdu_length}"
                " (limits.max_pdu_length, which the decoder enforces)"
            )
        if self.async_operations_window is not None and min(self.async_operations_window) < 0:
            raise ValueError("async_operations_window values must be >= 0")


@dataclass(frozen=True, slots=True, kw_only=True)
class AcceptedContext:
    """One accepted presentation context and the roles of the association-requestor."""

    context_id: int
    abstract_syntax: str
    transfer_syntax: str
    requestor_scu: bool = True
    requestor_scp: bool = False

    @property
    def acceptor_scu(self) -> bool:
        return self.requestor_scp

    @property
    def acceptor_scp(self) -> bool:
        return self.requestor_scu


@dataclass(frozen=True, slots=True, kw_only=True)
class RejectedContext:
    """A proposed context the acceptor did not accept (or did not answer: result 2)."""

    context_id: int
    abstract_syntax: str
    result: PresentationContextResult


@dataclass(frozen=True, slots=True, kw_only=True)
class Negotiated:
    """What both ends agreed on (frozen; computed by :func:`check_accept`).

    * ``peer_max_pdu``: the largest P-DATA-TF we may send; a peer advertising 0 ("no limit",
      PS3.8 D.1) or nothing gets ``limits.unlimited_pdu_cap``. ``peer_advertised_max_pdu`` is
      the raw value (``None`` if absent).
    * ``our_max_pdu``: what the acceptor/requestor side we are on advertised.
    * ``max_operations_invoked``/``max_operations_performed``: the acceptor's answer in the
      AC's 53H (1/1 without one), 0 (unlimited) and large values clamped to
      ``limits.max_async_operations``.
    """

    calling_ae_title: str
    called_ae_title: str
    accepted: Mapping[int, AcceptedContext]
    rejected: Mapping[int, RejectedContext]
    peer_max_pdu: int
    peer_advertised_max_pdu: int | None
    our_max_pdu: int
    max_operations_invoked: int = 1
    max_operations_performed: int = 1
    peer_implementation_class_uid: str | None = None
    peer_implementation_version_name: str | None = None
    user_identity_response: bytes | None = None
    extended_negotiation: Mapping[str, bytes] = field(default_factory=dict)
    common_extended_negotiation: tuple[SOPClassCommonExtendedNegotiation, ...] = ()


def _reject(result: int, source: int, reason: int, why: str) -> AAssociateRJ:
    log.info("rejecting A-ASSOCIATE-RQ: %s (result %d, source %d, reason %d)", why, result,
             source, reason)  # fmt: skip
    return AAssociateRJ(result=result, source=source, reason=reason)


def provider_rejection(rq: AAssociateRQ) -> AAssociateRJ | None:
    """The service provider's verdict in AE-6: ``None`` if acceptable, else the RJ to send.

    PS3.8 9.3.2: a receiver implementing only version 1 tests only that bit 0 of the protocol
    version is set; otherwise RJ (1 permanent, 2 ACSE provider, 2 protocol version not
    supported) (ROBUSTNESS 12).
    """
    if not rq.protocol_version & 0x0001:
        return _reject(
            RejectResult.REJECTED_PERMANENT,
            RejectSource.SERVICE_PROVIDER_ACSE,
            RejectReason.PROTOCOL_VERSION_NOT_SUPPORTED,
            f"protocol version {rq.protocol_version:#06x} lacks bit 0",
        )
    return None


def _effective(value: int, limits: Limits) -> int:
    # PS3.7 D.3.3.3: 0 means unlimited; we support at most limits.max_async_operations.
    if value == 0 or value > limits.max_async_operations:
        return limits.max_async_operations
    return value


def _is_valid_uid(uid: str) -> bool:
    try:
        validate_uid(uid)
    except PDUEncodeError:
        return False
    return True


def _answer_roles(
    rq: AAssociateRQ, policy: AcceptorPolicy, accepted_classes: set[str]
) -> list[RoleSelection]:
    # PS3.7 D.3.3.4: answer each proposal with the same value (accept) or 0; never 1 for a
    # role the requestor did not propose. No proposals -> no items in the answer. Proposals
    # for SOP classes we did not accept are moot and not answered (nor are invalid UIDs,
    # which we would otherwise echo onto the wire).
    out: list[RoleSelection] = []
    seen: set[str] = set()
    for item in rq.user_information.role_selections:
        uid = item.sop_class_uid
        if uid in seen or uid not in accepted_classes or not _is_valid_uid(uid):
            continue
        seen.add(item.sop_class_uid)
        accept_scu, accept_scp = policy.scp_roles.get(item.sop_class_uid, (True, False))
        out.append(
            RoleSelection(
                sop_class_uid=item.sop_class_uid,
                scu_role=1 if item.scu_role == 1 and accept_scu else 0,
                scp_role=1 if item.scp_role == 1 and accept_scp else 0,
            )
        )
    return out


def _transfer_syntaxes_for(
    abstract_syntax: str, rq: AAssociateRQ, policy: AcceptorPolicy
) -> tuple[str, ...] | None:
    ours = policy.supported.get(abstract_syntax)
    if ours is not None or not policy.accept_related_general_classes:
        return ours
    # PS3.7 D.3.3.6: a specialized SOP class may be accepted through a related general class.
    for item in rq.user_information.common_extended_negotiations:
        if item.sop_class_uid == abstract_syntax:
            for general in item.related_general_sop_class_uids:
                if general in policy.supported:
                    return policy.supported[general]
    return None


#: Answers already given: the same requestor (a modality) usually sends the very same
#: A-ASSOCIATE-RQ again and again, and the decoder hands out the same frozen RQ object for
#: the same bytes; keyed by identity (the objects are kept alive in the entry), bounded.
_ANSWERS: dict[
    tuple[int, int, bool], tuple[AAssociateRQ, AcceptorPolicy, AAssociateAC | AAssociateRJ]
] = {}
_AGREED: dict[
    tuple[int, int, int, Role], tuple[AAssociateRQ, AAssociateAC, Limits, Negotiated]
] = {}
_MEMO_SIZE = 64


def negotiate(
    rq: AAssociateRQ,
    policy: AcceptorPolicy,
    *,
    identity: IdentityVerdict | None = None,
    local_limit_exceeded: bool = False,
) -> AAssociateAC | AAssociateRJ:
    """Answer ``rq`` under ``policy`` (see :func:`_negotiate`); pure, so an answer to the
    same (identical) RQ under the same policy is remembered."""
    if identity is not None:
        return _negotiate(rq, policy, identity=identity, local_limit_exceeded=local_limit_exceeded)
    key = (id(rq), id(policy), local_limit_exceeded)
    hit = _ANSWERS.get(key)
    if hit is not None and hit[0] is rq and hit[1] is policy:
        return hit[2]
    answer = _negotiate(rq, policy, local_limit_exceeded=local_limit_exceeded)
    if len(_ANSWERS) >= _MEMO_SIZE:
        _ANSWERS.clear()
    _ANSWERS[key] = (rq, policy, answer)
    return answer


def _negotiate(
    rq: AAssociateRQ,
    policy: AcceptorPolicy,
    *,
    identity: IdentityVerdict | None = None,
    local_limit_exceeded: bool = False,
) -> AAssociateAC | AAssociateRJ:
    """Answer ``rq`` under ``policy`` (acceptor side). Pure; never raises for peer input.

    Rejections, in this order: protocol version without bit 0 (1, 2, 2); ``local_limit_exceeded``
    (the caller is over its association limit: 2 transient, 3, 2 "local limit exceeded",
    ROBUSTNESS 21); application context other than PS3.7 A.2.1 (1, 1, 2); called AE title
    not ours (1, 1, 7); calling AE title not allowed (1, 1, 3); identity refused (1, 1, 1);
    a peer maximum length too small for one PDV byte, or no valid context ID (1, 1, 1).

    Presentation contexts (PS3.8 9.3.3.2): the transfer syntax is the first of *our*
    preference list that the requestor offered (or the first of the requestor's that we
    support, under ``policy.prefer_requestor_order``); abstract syntax not supported -> result 3; no
    common transfer syntax -> result 4. Context IDs that are even, 0 or repeated are not
    answered (they can never be used).
    """
    rejection = provider_rejection(rq)
    if rejection is not None:
        return rejection
    if local_limit_exceeded:
        return _reject(
            RejectResult.REJECTED_TRANSIENT,
            RejectSource.SERVICE_PROVIDER_PRESENTATION,
            RejectReason.LOCAL_LIMIT_EXCEEDED,
            "local limit exceeded",
        )
    user, permanent = RejectSource.SERVICE_USER, RejectResult.REJECTED_PERMANENT
    if rq.application_context != APPLICATION_CONTEXT_NAME:
        return _reject(
            permanent,
            user,
            RejectReason.APPLICATION_CONTEXT_NOT_SUPPORTED,
            f"application context {rq.application_context!r}",
        )
    if policy.ae_title is not None and rq.called_ae_title.strip() != policy.ae_title.strip():
        return _reject(
            permanent,
            user,
            RejectReason.CALLED_AE_NOT_RECOGNIZED,
            f"called AE title {rq.called_ae_title!r} is not {policy.ae_title!r}",
        )
    if policy.calling_ae_titles is not None and rq.calling_ae_title.strip() not in {
        t.strip() for t in policy.calling_ae_titles
    }:
        return _reject(
            permanent,
            user,
            RejectReason.CALLING_AE_NOT_RECOGNIZED,
            f"calling AE title {rq.calling_ae_title!r} not allowed",
        )
    identity_rq = rq.user_information.user_identity_rq
    if identity_rq is not None and identity is not None and not identity.accepted:
        return _reject(permanent, user, RejectReason.NO_REASON_GIVEN, "user identity refused")
    peer_max = rq.user_information.maximum_length
    if peer_max is not None and 0 < peer_max < MIN_PEER_MAX_PDU:
        return _reject(
            permanent, user, RejectReason.NO_REASON_GIVEN, f"peer maximum length {peer_max}"
        )

    contexts: list[PresentationContextAC] = []
    accepted_classes: set[str] = set()
    seen: set[int] = set()
    for pc in rq.presentation_contexts:
        cid = pc.context_id
        if cid in seen or cid % 2 == 0 or not 0 < cid < 256:
            log.info("not answering presentation context ID %d (even, 0 or repeated)", cid)
            continue
        seen.add(cid)
        ours = _transfer_syntaxes_for(pc.abstract_syntax, rq, policy)
        if ours is None:
            result, ts = PresentationContextResult.ABSTRACT_SYNTAX_NOT_SUPPORTED, None
        else:
            if policy.requestor_order_for(pc.abstract_syntax):
                ts = next((t for t in pc.transfer_syntaxes if t in ours), None)
            else:
                ts = next((t for t in ours if t in pc.transfer_syntaxes), None)
            result = (
                PresentationContextResult.ACCEPTANCE
                if ts is not None
                else PresentationContextResult.TRANSFER_SYNTAXES_NOT_SUPPORTED
            )
        if result == PresentationContextResult.ACCEPTANCE:
            accepted_classes.add(pc.abstract_syntax)
        contexts.append(PresentationContextAC(context_id=cid, result=result, transfer_syntax=ts))
    if not contexts:
        return _reject(permanent, user, RejectReason.NO_REASON_GIVEN, "no usable context")

    limits = policy.limits
    ours_ui = policy.user_information
    items: list[UserInformationSubItem] = [
        MaximumLength(maximum_length=ours_ui.maximum_length or limits.max_pdu_length),
        ImplementationClassUID(
            uid=ours_ui.implementation_class_uid or DEFAULT_IMPLEMENTATION_CLASS_UID
        ),
    ]
    window = rq.user_information.asynchronous_operations_window
    if window is not None and policy.async_operations_window is not None:
        our_inv, our_perf = (_effective(v, limits) for v in policy.async_operations_window)
        items.append(
            AsynchronousOperationsWindow(
                max_operations_invoked=min(
                    _effective(window.max_operations_invoked, limits), our_inv
                ),
                max_operations_performed=min(
                    _effective(window.max_operations_performed, limits), our_perf
                ),
            )
        )
    items.extend(_answer_roles(rq, policy, accepted_classes))
    if ours_ui.implementation_version_name:
        items.append(ImplementationVersionName(name=ours_ui.implementation_version_name))
    answered: set[str] = set()
    for ext in rq.user_information.extended_negotiations:
        uid = ext.sop_class_uid
        if uid in accepted_classes and uid in policy.extended_negotiation and uid not in answered:
            answered.add(uid)
            items.append(
                SOPClassExtendedNegotiation(
                    sop_class_uid=uid,
                    service_class_application_information=policy.extended_negotiation[uid],
                )
            )
    # PS3.7 D.3.3.7.2: 59H only when 58H asked for a positive response and we accepted it.
    if identity_rq is not None and identity_rq.positive_response_requested:
        if identity is not None and identity.accepted:
            items.append(UserIdentityAC(server_response=identity.server_response))
    return AAssociateAC(
        called_ae_title=rq.called_ae_title,
        calling_ae_title=rq.calling_ae_title,
        presentation_contexts=tuple(contexts),
        user_information=UserInformation(sub_items=tuple(items)),
        application_context=APPLICATION_CONTEXT_NAME,
    )


def _invalid(why: str) -> RemoteProtocolError:
    return RemoteProtocolError(
        f"invalid A-ASSOCIATE-AC: {why}", abort_reason=AbortReason.INVALID_PDU_PARAMETER_VALUE
    )


def check_accept(
    rq: AAssociateRQ,
    ac: AAssociateAC,
    limits: Limits | None = None,
    *,
    role: Role = Role.REQUESTOR,
) -> Negotiated:
    """:func:`_check_accept`, remembered for the same RQ, AC and limits objects (pure)."""
    if limits is None:
        return _check_accept(rq, ac, limits, role=role)
    key = (id(rq), id(ac), id(limits), role)
    hit = _AGREED.get(key)
    if hit is not None and hit[0] is rq and hit[1] is ac and hit[2] is limits:
        return hit[3]
    agreed = _check_accept(rq, ac, limits, role=role)
    if len(_AGREED) >= _MEMO_SIZE:
        _AGREED.clear()
    _AGREED[key] = (rq, ac, limits, agreed)
    return agreed


def _check_accept(
    rq: AAssociateRQ,
    ac: AAssociateAC,
    limits: Limits | None = None,
    *,
    role: Role = Role.REQUESTOR,
) -> Negotiated:
    """Validate ``ac`` against the ``rq`` it answers and return what was agreed, seen from
    ``role`` (the peer's maximum length and implementation are the other side's).

    Raises :class:`~aiodimse.errors.RemoteProtocolError` (A-ABORT reason 6) when the AC
    answers a context ID that was not proposed or twice, accepts a transfer syntax not offered
    for that context, gives a result outside 0..4, or advertises a maximum length too small
    for one PDV byte (PS3.8 9.3.3, D.1; ROBUSTNESS 20, 27). Contexts proposed but not answered
    count as rejected with result 2.
    """
    limits = limits if limits is not None else Limits()
    proposed = {pc.context_id: pc for pc in rq.presentation_contexts}
    rq_roles: dict[str, RoleSelection] = {}
    for item in rq.user_information.role_selections:
        rq_roles.setdefault(item.sop_class_uid, item)
    ac_roles: dict[str, RoleSelection] = {}
    for item in ac.user_information.role_selections:
        ac_roles.setdefault(item.sop_class_uid, item)

    accepted: dict[int, AcceptedContext] = {}
    rejected: dict[int, RejectedContext] = {}
    for pc in ac.presentation_contexts:
        cid = pc.context_id
        offer = proposed.get(cid)
        if offer is None:
            raise _invalid(f"presentation context ID {cid} was never proposed")
        if cid in accepted or cid in rejected:
            raise _invalid(f"presentation context ID {cid} answered twice")
        try:
            result = PresentationContextResult(pc.result)
        except ValueError:
            raise _invalid(f"presentation context {cid} result {pc.result}") from None
        if result != PresentationContextResult.ACCEPTANCE:
            rejected[cid] = RejectedContext(
                context_id=cid, abstract_syntax=offer.abstract_syntax, result=result
            )
            continue
        if pc.transfer_syntax is None or pc.transfer_syntax not in offer.transfer_syntaxes:
            raise _invalid(
                f"presentation context {cid} accepted with transfer syntax "
                f"{pc.transfer_syntax!r}, which was not offered for it"
            )
        # PS3.7 D.3.3.4: roles only change when proposed *and* granted; default otherwise.
        scu, scp = True, False
        asked = rq_roles.get(offer.abstract_syntax)
        answer = ac_roles.get(offer.abstract_syntax)
        if asked is not None and answer is not None:
            scu = asked.scu_role == 1 and answer.scu_role == 1
            scp = asked.scp_role == 1 and answer.scp_role == 1
        accepted[cid] = AcceptedContext(
            context_id=cid,
            abstract_syntax=offer.abstract_syntax,
            transfer_syntax=pc.transfer_syntax,
            requestor_scu=scu,
            requestor_scp=scp,
        )
    for cid, offer in proposed.items():
        if cid not in accepted and cid not in rejected:
            rejected[cid] = RejectedContext(
                context_id=cid,
                abstract_syntax=offer.abstract_syntax,
                result=PresentationContextResult.NO_REASON,
            )

    ac_max = ac.user_information.maximum_length
    rq_max = rq.user_information.maximum_length
    for value in (ac_max, rq_max):
        if value is not None and 0 < value < MIN_PEER_MAX_PDU:
            raise _invalid(f"maximum length {value} cannot carry a PDV")
    window = ac.user_information.asynchronous_operations_window
    invoked = performed = 1
    if window is not None:
        invoked = _effective(window.max_operations_invoked, limits)
        performed = _effective(window.max_operations_performed, limits)
    identity_ac = ac.user_information.user_identity_ac
    identity_rq = rq.user_information.user_identity_rq
    if identity_ac is not None and identity_rq is None:
        log.warning("ignoring a User Identity response (59H) to a request without 58H")
        identity_ac = None
    extended = {
        e.sop_class_uid: bytes(e.service_class_application_information)
        for e in ac.user_information.extended_negotiations
    }
    requestor = role is Role.REQUESTOR
    peer_ui = ac.user_information if requestor else rq.user_information
    peer_max, our_max = (ac_max, rq_max) if requestor else (rq_max, ac_max)
    return Negotiated(
        calling_ae_title=rq.calling_ae_title,
        called_ae_title=rq.called_ae_title,
        accepted=accepted,
        rejected=rejected,
        # PS3.8 D.1: 0 (or no 51H) means no limit; we still send at most the cap.
        peer_max_pdu=peer_max if peer_max else limits.unlimited_pdu_cap,
        peer_advertised_max_pdu=peer_max,
        our_max_pdu=our_max if our_max is not None else limits.max_pdu_length,
        max_operations_invoked=invoked,
        max_operations_performed=performed,
        peer_implementation_class_uid=peer_ui.implementation_class_uid,
        peer_implementation_version_name=peer_ui.implementation_version_name,
        user_identity_response=identity_ac.server_response if identity_ac else None,
        extended_negotiation=extended,
        common_extended_negotiation=rq.user_information.common_extended_negotiations,
    )


__all__ = [
    "DEFAULT_IMPLEMENTATION_CLASS_UID",
    "AcceptedContext",
    "AcceptorPolicy",
    "IdentityVerdict",
    "Negotiated",
    "RejectedContext",
    "check_accept",
    "negotiate",
    "provider_rejection",
]
