"""Negotiation (PS3.8 9.3.2-9.3.4, PS3.7 D.3.3) as pure functions."""

from __future__ import annotations

import pytest

from aiodimse.association import (
    AcceptorPolicy,
    IdentityVerdict,
    Role,
    check_accept,
    negotiate,
    provider_rejection,
)
from aiodimse.config import Limits
from aiodimse.constants import (
    EXPLICIT_VR_BIG_ENDIAN,
    EXPLICIT_VR_LITTLE_ENDIAN,
    IMPLICIT_VR_LITTLE_ENDIAN,
    VERIFICATION_SOP_CLASS,
    PresentationContextResult,
)
from aiodimse.errors import RemoteProtocolError
from aiodimse.pdu import (
    AAssociateAC,
    AAssociateRJ,
    AAssociateRQ,
    AsynchronousOperationsWindow,
    MaximumLength,
    PresentationContextAC,
    RoleSelection,
    SOPClassCommonExtendedNegotiation,
    SOPClassExtendedNegotiation,
    UserIdentityAC,
    UserIdentityRQ,
    UserInformation,
)
from aiodimse.pdu.codec import encode_pdu

from .pair import CT_IMAGE_STORAGE, IMPL_UID, make_policy, make_rq

MR_STORAGE = "1.2.840.10008.5.1.4.1.1.4"
ENHANCED_CT = "1.2.840.10008.5.1.4.1.1.2.1"


def ac_of(rq: AAssociateRQ, policy: AcceptorPolicy | None = None, **kw: object) -> AAssociateAC:
    answer = negotiate(rq, policy or make_policy(), **kw)  # type: ignore[arg-type]
    assert isinstance(answer, AAssociateAC), answer
    return answer


def results(ac: AAssociateAC) -> dict[int, tuple[int, str | None]]:
    return {pc.context_id: (pc.result, pc.transfer_syntax) for pc in ac.presentation_contexts}


def test_transfer_syntax_by_our_preference_and_results() -> None:
    rq = make_rq(
        (
            (1, CT_IMAGE_STORAGE, (IMPLICIT_VR_LITTLE_ENDIAN, EXPLICIT_VR_LITTLE_ENDIAN)),
            (3, MR_STORAGE, (IMPLICIT_VR_LITTLE_ENDIAN,)),
            (5, VERIFICATION_SOP_CLASS, (EXPLICIT_VR_BIG_ENDIAN,)),
        )
    )
    ac = ac_of(rq)
    assert results(ac) == {
        1: (0, EXPLICIT_VR_LITTLE_ENDIAN),  # our first choice, though offered second
        3: (PresentationContextResult.ABSTRACT_SYNTAX_NOT_SUPPORTED, None),
        5: (PresentationContextResult.TRANSFER_SYNTAXES_NOT_SUPPORTED, None),
    }
    encode_pdu(ac)  # what negotiate builds is valid on the wire
    n = check_accept(rq, ac, role=Role.ACCEPTOR)
    assert set(n.accepted) == {1} and n.accepted[1].transfer_syntax == EXPLICIT_VR_LITTLE_ENDIAN
    assert {c: r.result for c, r in n.rejected.items()} == {3: 3, 5: 4}


def test_answer_is_read_back_by_pynetdicom() -> None:
    pdu_mod = pytest.importorskip("pynetdicom.pdu")
    rq = make_rq()
    theirs = pdu_mod.A_ASSOCIATE_AC()
    theirs.decode(encode_pdu(ac_of(rq)))
    got = {
        item.context_id: (item.result, str(item.transfer_syntax))
        for item in theirs.presentation_context
    }
    assert got == {1: (0, IMPLICIT_VR_LITTLE_ENDIAN), 3: (0, EXPLICIT_VR_LITTLE_ENDIAN)}


@pytest.mark.parametrize(
    ("kwargs", "policy_kw", "expected"),
    [
        ({"protocol_version": 2}, {}, (1, 2, 2)),
        ({"protocol_version": 0}, {}, (1, 2, 2)),
        ({"called": "WHO"}, {}, (1, 1, 7)),
        ({"calling": "STORESCU "}, {"calling_ae_titles": {"STORESCU"}}, None),
        ({"calling": "INTRUDER"}, {"calling_ae_titles": {"FRIEND"}}, (1, 1, 3)),
        ({"max_pdu": 3}, {}, (1, 1, 1)),
        ({"protocol_version": 3}, {}, None),  # only bit 0 is tested
        ({"called": "  STORESCP "}, {}, None),  # spaces are not significant
        ({"called": "WHO"}, {"ae_title": None}, None),  # any called AE
    ],
)
def test_rejections(
    kwargs: dict[str, object], policy_kw: dict[str, object], expected: tuple[int, int, int] | None
) -> None:
    rq = make_rq(**kwargs)  # type: ignore[arg-type]
    answer = negotiate(rq, make_policy(**policy_kw))
    if expected is None:
        assert isinstance(answer, AAssociateAC)
    else:
        assert answer == AAssociateRJ(result=expected[0], source=expected[1], reason=expected[2])


def test_provider_rejection_only_checks_bit0() -> None:
    assert provider_rejection(make_rq(protocol_version=0xFFFE)) == AAssociateRJ(
        result=1, source=2, reason=2
    )
    assert provider_rejection(make_rq(protocol_version=0xFFFF)) is None


def test_application_context() -> None:
    rq = make_rq()
    object.__setattr__(rq, "application_context", "1.2.3.4")
    assert negotiate(rq, make_policy()) == AAssociateRJ(result=1, source=1, reason=2)


def test_local_limit_exceeded() -> None:
    """ROBUSTNESS 21: over the association limit -> RJ transient, source 3, reason 2."""
    assert negotiate(make_rq(), make_policy(), local_limit_exceeded=True) == AAssociateRJ(
        result=2, source=3, reason=2
    )


def _roles(ac: AAssociateAC) -> dict[str, tuple[int, int]]:
    return {r.sop_class_uid: (r.scu_role, r.scp_role) for r in ac.user_information.role_selections}


@pytest.mark.parametrize(
    ("proposed", "policy", "answer", "requestor_roles"),
    [
        ((1, 1), (True, False), (1, 0), (True, False)),
        ((1, 1), (True, True), (1, 1), (True, True)),
        ((0, 1), (True, True), (0, 1), (False, True)),
        ((0, 0), (True, True), (0, 0), (False, False)),  # never grant what was not proposed
        ((1, 0), (False, True), (0, 0), (False, False)),
        ((0, 1), None, (0, 0), (False, False)),  # unknown class: SCP role turned down
    ],
)
def test_role_selection(
    proposed: tuple[int, int],
    policy: tuple[bool, bool] | None,
    answer: tuple[int, int],
    requestor_roles: tuple[bool, bool],
) -> None:
    """PS3.7 D.3.3.4."""
    item = RoleSelection(sop_class_uid=CT_IMAGE_STORAGE, scu_role=proposed[0], scp_role=proposed[1])
    rq = make_rq(extra=[item])
    roles = {} if policy is None else {CT_IMAGE_STORAGE: policy}
    ac = ac_of(rq, make_policy(scp_roles=roles))
    assert _roles(ac) == {CT_IMAGE_STORAGE: answer}
    ctx = check_accept(rq, ac).accepted[3]
    assert (ctx.requestor_scu, ctx.requestor_scp) == requestor_roles
    assert (ctx.acceptor_scp, ctx.acceptor_scu) == requestor_roles


def test_no_role_proposal_no_role_answer_default_roles() -> None:
    rq = make_rq()
    ac = ac_of(rq, make_policy(scp_roles={CT_IMAGE_STORAGE: (True, True)}))
    assert _roles(ac) == {}
    ctx = check_accept(rq, ac).accepted[3]
    assert ctx.requestor_scu and not ctx.requestor_scp


def test_requestor_ignores_granted_role_it_did_not_propose() -> None:
    item = RoleSelection(sop_class_uid=CT_IMAGE_STORAGE, scu_role=1, scp_role=0)
    rq = make_rq(extra=[item])
    ac = ac_of(rq)
    bad_answer = RoleSelection(sop_class_uid=CT_IMAGE_STORAGE, scu_role=1, scp_role=1)
    object.__setattr__(
        ac,
        "user_information",
        UserInformation(sub_items=(*ac.user_information.sub_items[:2], bad_answer)),
    )
    ctx = check_accept(rq, ac).accepted[3]
    assert ctx.requestor_scu and not ctx.requestor_scp


def test_maximum_lengths_per_direction_and_unlimited() -> None:
    limits = Limits(unlimited_pdu_cap=65536)
    rq = make_rq(max_pdu=0)  # the requestor accepts any size
    ac = ac_of(rq, make_policy(limits=limits))
    assert ac.user_information.maximum_length == 32768
    acc = check_accept(rq, ac, limits, role=Role.ACCEPTOR)
    assert acc.peer_max_pdu == 65536 and acc.peer_advertised_max_pdu == 0
    assert acc.our_max_pdu == 32768
    req = check_accept(rq, ac, limits, role=Role.REQUESTOR)
    assert req.peer_max_pdu == 32768 and req.our_max_pdu == 0
    assert req.peer_implementation_class_uid == IMPL_UID
    # Without a 51H in the policy, we advertise limits.max_pdu_length.
    ac2 = ac_of(rq, make_policy(user_information=UserInformation(), limits=limits))
    assert ac2.user_information.maximum_length == limits.max_pdu_length


def test_policy_may_not_advertise_more_than_the_decoder_accepts() -> None:
    with pytest.raises(ValueError, match="maximum length"):
        make_policy(
            user_information=UserInformation(sub_items=(MaximumLength(maximum_length=1 << 30),))
        )


@pytest.mark.parametrize(
    ("proposed", "ours", "answer", "agreed"),
    [
        ((0, 0), (65535, 65535), (16, 16), (16, 16)),  # unlimited and 65535 clamp to 16
        ((3, 65535), (5, 5), (3, 5), (3, 5)),
        ((65535, 1), (0, 0), (16, 1), (16, 1)),
        ((2, 2), None, None, (1, 1)),  # we do not support it: no 53H, default 1/1
        (None, (4, 4), None, (1, 1)),  # not asked: not answered
    ],
)
def test_async_operations_window(
    proposed: tuple[int, int] | None,
    ours: tuple[int, int] | None,
    answer: tuple[int, int] | None,
    agreed: tuple[int, int],
) -> None:
    """PS3.7 D.3.3.3, ROBUSTNESS 42 (Limits.max_async_operations defaults to 16)."""
    extra = []
    if proposed is not None:
        extra = [
            AsynchronousOperationsWindow(
                max_operations_invoked=proposed[0], max_operations_performed=proposed[1]
            )
        ]
    rq = make_rq(extra=extra)
    ac = ac_of(rq, make_policy(async_operations_window=ours))
    window = ac.user_information.asynchronous_operations_window
    got = (
        None if window is None else (window.max_operations_invoked, window.max_operations_performed)
    )
    assert got == answer
    n = check_accept(rq, ac)
    assert (n.max_operations_invoked, n.max_operations_performed) == agreed


def test_requestor_clamps_an_unlimited_window_in_the_ac() -> None:
    rq = make_rq()
    ac = ac_of(rq)
    window = AsynchronousOperationsWindow(max_operations_invoked=0, max_operations_performed=65535)
    object.__setattr__(
        ac, "user_information", UserInformation(sub_items=(*ac.user_information.sub_items, window))
    )
    n = check_accept(rq, ac, Limits(max_async_operations=8))
    assert (n.max_operations_invoked, n.max_operations_performed) == (8, 8)


def test_extended_negotiation_only_for_accepted_known_classes() -> None:
    """PS3.7 D.3.3.5."""
    ext = [
        SOPClassExtendedNegotiation(
            sop_class_uid=CT_IMAGE_STORAGE, service_class_application_information=b"\x01"
        ),
        SOPClassExtendedNegotiation(
            sop_class_uid=VERIFICATION_SOP_CLASS, service_class_application_information=b"\x01"
        ),
        SOPClassExtendedNegotiation(
            sop_class_uid=MR_STORAGE, service_class_application_information=b"\x01"
        ),
    ]
    rq = make_rq(extra=ext)
    policy = make_policy(
        extended_negotiation={CT_IMAGE_STORAGE: b"\x02\x00\x00", MR_STORAGE: b"\x02"}
    )
    ac = ac_of(rq, policy)
    answered = ac.user_information.extended_negotiations
    assert [(e.sop_class_uid, e.service_class_application_information) for e in answered] == [
        (CT_IMAGE_STORAGE, b"\x02\x00\x00")
    ]
    assert check_accept(rq, ac).extended_negotiation == {CT_IMAGE_STORAGE: b"\x02\x00\x00"}
    # Not asked: not answered.
    assert ac_of(make_rq(), policy).user_information.extended_negotiations == ()


def test_common_extended_negotiation_passed_through_and_related_general_class() -> None:
    """PS3.7 D.3.3.6."""
    common = SOPClassCommonExtendedNegotiation(
        sop_class_uid=ENHANCED_CT,
        service_class_uid="1.2.840.10008.4.2",
        related_general_sop_class_uids=(CT_IMAGE_STORAGE,),
    )
    rq = make_rq(((1, ENHANCED_CT, (EXPLICIT_VR_LITTLE_ENDIAN,)),), extra=[common])
    assert results(ac_of(rq))[1][0] == PresentationContextResult.ABSTRACT_SYNTAX_NOT_SUPPORTED
    ac = ac_of(rq, make_policy(accept_related_general_classes=True))
    assert results(ac) == {1: (0, EXPLICIT_VR_LITTLE_ENDIAN)}
    n = check_accept(rq, ac)
    assert n.common_extended_negotiation == (common,)
    # No 57H item is ever answered (PS3.7 D.3.3.6 has no AC sub-item).
    assert ac.user_information.common_extended_negotiations == ()


@pytest.mark.parametrize(
    ("positive", "verdict", "outcome"),
    [
        (True, IdentityVerdict(accepted=True, server_response=b"token"), b"token"),
        (False, IdentityVerdict(accepted=True, server_response=b"token"), None),
        (True, None, None),  # the caller did not check: accepted, nothing to say
        (True, IdentityVerdict(accepted=False), "reject"),
        (False, IdentityVerdict(accepted=False), "reject"),
    ],
)
def test_user_identity(positive: bool, verdict: IdentityVerdict | None, outcome: object) -> None:
    """PS3.7 D.3.3.7, ROBUSTNESS 46."""
    ident = UserIdentityRQ(
        identity_type=2,
        positive_response_requested=positive,
        primary_field=b"user",
        secondary_field=b"secret",
    )
    rq = make_rq(extra=[ident])
    answer = negotiate(rq, make_policy(), identity=verdict)
    if outcome == "reject":
        assert answer == AAssociateRJ(result=1, source=1, reason=1)
        return
    assert isinstance(answer, AAssociateAC)
    ac_item = answer.user_information.user_identity_ac
    assert (ac_item.server_response if ac_item else None) == outcome
    assert check_accept(rq, answer).user_identity_response == outcome


def test_no_identity_request_no_identity_answer() -> None:
    verdict = IdentityVerdict(accepted=True, server_response=b"x")
    ac = ac_of(make_rq(), identity=verdict)
    assert ac.user_information.user_identity_ac is None
    # An unsolicited 59H in an AC is ignored by the requestor.
    rq = make_rq()
    object.__setattr__(
        ac,
        "user_information",
        UserInformation(
            sub_items=(*ac.user_information.sub_items, UserIdentityAC(server_response=b"x"))
        ),
    )
    assert check_accept(rq, ac).user_identity_response is None


def test_even_zero_and_repeated_context_ids_are_not_answered() -> None:
    rq = make_rq(
        (
            (1, VERIFICATION_SOP_CLASS, (IMPLICIT_VR_LITTLE_ENDIAN,)),
            (1, CT_IMAGE_STORAGE, (IMPLICIT_VR_LITTLE_ENDIAN,)),
            (2, CT_IMAGE_STORAGE, (IMPLICIT_VR_LITTLE_ENDIAN,)),
            (0, CT_IMAGE_STORAGE, (IMPLICIT_VR_LITTLE_ENDIAN,)),
        )
    )
    assert list(results(ac_of(rq))) == [1]
    only_bad = make_rq(((2, CT_IMAGE_STORAGE, (IMPLICIT_VR_LITTLE_ENDIAN,)),))
    assert negotiate(only_bad, make_policy()) == AAssociateRJ(result=1, source=1, reason=1)


def _ac(rq: AAssociateRQ, *contexts: PresentationContextAC, max_pdu: int = 16384) -> AAssociateAC:
    return AAssociateAC(
        called_ae_title=rq.called_ae_title,
        calling_ae_title=rq.calling_ae_title,
        presentation_contexts=contexts,
        user_information=UserInformation(sub_items=(MaximumLength(maximum_length=max_pdu),)),
    )


@pytest.mark.parametrize(
    "contexts",
    [
        [PresentationContextAC(context_id=7, result=0, transfer_syntax=IMPLICIT_VR_LITTLE_ENDIAN)],
        [PresentationContextAC(context_id=1, result=0, transfer_syntax=EXPLICIT_VR_BIG_ENDIAN)],
        [PresentationContextAC(context_id=1, result=0, transfer_syntax=None)],
        [PresentationContextAC(context_id=1, result=9, transfer_syntax=None)],
        [
            PresentationContextAC(
                context_id=1, result=0, transfer_syntax=IMPLICIT_VR_LITTLE_ENDIAN
            ),
            PresentationContextAC(context_id=1, result=3, transfer_syntax=None),
        ],
    ],
    ids=["unproposed-id", "ts-not-offered", "no-ts", "bad-result", "answered-twice"],
)
def test_check_accept_refuses_an_invalid_ac(contexts: list[PresentationContextAC]) -> None:
    """ROBUSTNESS 20."""
    rq = make_rq()
    with pytest.raises(RemoteProtocolError) as info:
        check_accept(rq, _ac(rq, *contexts))
    assert info.value.abort_reason == 6


def test_check_accept_unanswered_context_is_rejected_and_tiny_max_refused() -> None:
    rq = make_rq()
    ok = PresentationContextAC(context_id=1, result=0, transfer_syntax=IMPLICIT_VR_LITTLE_ENDIAN)
    n = check_accept(rq, _ac(rq, ok))
    assert set(n.accepted) == {1} and n.rejected[3].result == PresentationContextResult.NO_REASON
    with pytest.raises(RemoteProtocolError):
        check_accept(rq, _ac(rq, ok, max_pdu=6))  # too small for one PDV byte (ROBUSTNESS 27)


def test_role_proposal_for_a_class_not_accepted_is_not_answered() -> None:
    items = [
        RoleSelection(sop_class_uid=MR_STORAGE, scu_role=1, scp_role=1),
        RoleSelection(sop_class_uid="1.2.x", scu_role=1, scp_role=1),
    ]
    ac = ac_of(make_rq(extra=items), make_policy(scp_roles={MR_STORAGE: (True, True)}))
    assert _roles(ac) == {}
    encode_pdu(ac)
