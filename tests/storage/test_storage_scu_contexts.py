"""propose_contexts / choose_context: what a C-STORE SCU proposes and which context it uses.

Pure functions: tested on their own, then end to end through the real (pure) negotiation
of an acceptor policy, without sockets.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aiodimse.association.negotiation import (
    AcceptedContext,
    AcceptorPolicy,
    RejectedContext,
    check_accept,
    negotiate,
)
from aiodimse.constants import PresentationContextResult
from aiodimse.pdu import AAssociateAC, AAssociateRQ, MaximumLength, UserInformation
from aiodimse.services.contexts import Context, build_requested
from aiodimse.services.storage_contexts import (
    CONVERTIBLE,
    MAX_CONTEXTS,
    NoPresentationContext,
    TooManyContexts,
    choose_context,
    propose_contexts,
    uid_name,
)
from aiodimse.services.ts_strategies import Capabilities

#: An installation without pixel codecs: compressed sources cannot be converted.
NO_CODECS = Capabilities(decode=frozenset())

CT = "1.2.840.10008.5.1.4.1.1.2"
MR = "1.2.840.10008.5.1.4.1.1.4"
SC = "1.2.840.10008.5.1.4.1.1.7"
PRIVATE = "1.2.826.0.1.3680043.9.9999.1"  # a private SOP class pydicom cannot know
IMPLICIT = "1.2.840.10008.1.2"
EXPLICIT = "1.2.840.10008.1.2.1"
BIG = "1.2.840.10008.1.2.2"
DEFLATED = "1.2.840.10008.1.2.1.99"
JPEG = "1.2.840.10008.1.2.4.50"
J2K = "1.2.840.10008.1.2.4.90"


@dataclass(frozen=True)
class Inst:
    sop_class_uid: str
    transfer_syntax_uid: str


def pairs(contexts: list[Context]) -> list[tuple[str, tuple[str, ...]]]:
    return [(c.abstract_syntax, c.transfer_syntaxes) for c in contexts]


# ------------------------------------------------------------------------- propose


def test_uncompressed_file_gets_its_own_syntax_then_the_other_le_separately() -> None:
    assert pairs(propose_contexts([Inst(CT, EXPLICIT)])) == [(CT, (EXPLICIT,)), (CT, (IMPLICIT,))]
    assert pairs(propose_contexts([Inst(CT, IMPLICIT)])) == [(CT, (IMPLICIT,)), (CT, (EXPLICIT,))]


def test_compressed_only_class_gets_no_useless_fallback() -> None:
    # Without codecs we cannot decompress, so Explicit/Implicit contexts would never be used.
    assert pairs(propose_contexts([Inst(SC, JPEG), Inst(SC, J2K)], capabilities=NO_CODECS)) == [
        (SC, (JPEG,)),
        (SC, (J2K,)),
    ]


def test_mixed_batch_keeps_first_seen_order_and_deduplicates() -> None:
    batch = [
        Inst(MR, JPEG),
        Inst(CT, DEFLATED),
        Inst(MR, EXPLICIT),
        Inst(CT, DEFLATED),
        Inst(MR, JPEG),
        Inst(PRIVATE, IMPLICIT),
        Inst(CT, BIG),
    ]
    assert pairs(propose_contexts(batch)) == [
        (MR, (JPEG,)),
        (MR, (EXPLICIT,)),
        (MR, (IMPLICIT,)),
        (CT, (DEFLATED,)),
        (CT, (BIG,)),
        (CT, (EXPLICIT,)),
        (CT, (IMPLICIT,)),
        (PRIVATE, (IMPLICIT,)),
        (PRIVATE, (EXPLICIT,)),
    ]


def test_big_endian_alone_gets_the_little_endian_fallbacks() -> None:
    # The streaming transcoder swaps Big Endian values (pixels included) to little endian.
    assert BIG in CONVERTIBLE
    assert pairs(propose_contexts([Inst(CT, BIG)])) == [
        (CT, (BIG,)),
        (CT, (EXPLICIT,)),
        (CT, (IMPLICIT,)),
    ]


def test_over_128_the_fallbacks_of_each_class_are_merged() -> None:
    classes = [f"1.2.826.0.1.3680043.9.9999.{i}" for i in range(50)]
    batch = [Inst(c, DEFLATED) for c in classes]  # 3 separate contexts each: 150
    got = propose_contexts(batch)
    assert len(got) == 100 <= MAX_CONTEXTS
    assert pairs(got)[:2] == [(classes[0], (DEFLATED,)), (classes[0], (EXPLICIT, IMPLICIT))]


def test_too_many_even_merged_raises_with_the_numbers() -> None:
    batch = [Inst(f"1.2.826.0.1.3680043.9.9999.{i}", DEFLATED) for i in range(70)]
    with pytest.raises(TooManyContexts, match="70 SOP classes need 140 presentation contexts"):
        propose_contexts(batch)


def test_the_proposal_numbers_into_valid_context_ids() -> None:
    batch = [Inst(f"1.2.826.0.1.3680043.9.9999.{i}", EXPLICIT) for i in range(64)]
    items = build_requested(propose_contexts(batch))
    assert len(items) == 128
    assert [i.context_id for i in items] == list(range(1, 256, 2))


_CLASSES = st.sampled_from([CT, MR, SC, PRIVATE, *(f"1.2.3.{i}" for i in range(60))])
_SYNTAXES = st.sampled_from([IMPLICIT, EXPLICIT, BIG, DEFLATED, JPEG, J2K])


@settings(max_examples=150, deadline=None)
@given(st.lists(st.builds(Inst, _CLASSES, _SYNTAXES), min_size=1, max_size=80))
def test_property_every_instance_has_its_own_syntax_proposed(batch: list[Inst]) -> None:
    try:
        got = propose_contexts(batch)
    except TooManyContexts as exc:
        assert exc.needed > MAX_CONTEXTS
        return
    assert len(got) <= MAX_CONTEXTS
    offered = {(c.abstract_syntax, ts) for c in got for ts in c.transfer_syntaxes}
    for inst in batch:
        # Its own syntax alone in a context: the acceptor cannot pick another one for it.
        assert (
            Context(
                abstract_syntax=inst.sop_class_uid, transfer_syntaxes=(inst.transfer_syntax_uid,)
            )
            in got
        )
        if inst.transfer_syntax_uid in CONVERTIBLE:
            assert {(inst.sop_class_uid, EXPLICIT), (inst.sop_class_uid, IMPLICIT)} <= offered
    classes = {c.abstract_syntax for c in got}
    assert classes == {i.sop_class_uid for i in batch}


# ------------------------------------------------------------------------- choose


def accepted(*entries: tuple[int, str, str]) -> dict[int, AcceptedContext]:
    return {
        cid: AcceptedContext(context_id=cid, abstract_syntax=a, transfer_syntax=t)
        for cid, a, t in entries
    }


def test_own_syntax_wins_and_lowest_id_among_equals() -> None:
    acc = accepted((5, CT, EXPLICIT), (3, CT, IMPLICIT), (7, CT, EXPLICIT), (1, MR, IMPLICIT))
    c = choose_context(acc, CT, IMPLICIT)
    assert (c.context_id, c.transfer_syntax, c.convert) == (3, IMPLICIT, False)
    c = choose_context(acc, CT, EXPLICIT)
    assert (c.context_id, c.convert) == (5, False)


def test_conversion_prefers_explicit_then_implicit() -> None:
    acc = accepted((1, CT, IMPLICIT), (3, CT, EXPLICIT))
    c = choose_context(acc, CT, DEFLATED)
    assert (c.context_id, c.transfer_syntax, c.convert) == (3, EXPLICIT, True)
    c = choose_context(accepted((1, CT, IMPLICIT)), CT, EXPLICIT)
    assert (c.context_id, c.transfer_syntax, c.convert) == (1, IMPLICIT, True)


def test_compressed_source_without_its_context_fails_naming_everything() -> None:
    acc = accepted((1, SC, EXPLICIT), (3, SC, IMPLICIT), (5, CT, JPEG))
    with pytest.raises(NoPresentationContext) as info:
        choose_context(acc, SC, JPEG, capabilities=NO_CODECS)
    text = str(info.value)
    assert "Secondary Capture Image Storage (1.2.840.10008.5.1.4.1.1.7)" in text
    assert "JPEG Baseline (Process 1) (1.2.840.10008.1.2.4.50)" in text
    assert "accepted only Explicit VR Little Endian (1.2.840.10008.1.2.1), Implicit VR" in text
    assert "compressed" in text
    assert info.value.accepted == (EXPLICIT, IMPLICIT)
    assert not info.value.retryable


def test_big_endian_source_is_transcoded() -> None:
    c = choose_context(accepted((1, CT, EXPLICIT)), CT, BIG)
    assert (c.context_id, c.transfer_syntax, c.convert) == (1, EXPLICIT, True)


def test_rejected_and_never_proposed_are_told_apart() -> None:
    rejected = {
        1: RejectedContext(
            context_id=1,
            abstract_syntax=PRIVATE,
            result=PresentationContextResult.ABSTRACT_SYNTAX_NOT_SUPPORTED,
        )
    }
    with pytest.raises(NoPresentationContext) as info:
        choose_context({}, PRIVATE, EXPLICIT, rejected=rejected)
    assert str(info.value) == (
        f"cannot send {PRIVATE} encoded in Explicit VR Little Endian ({EXPLICIT}): the peer "
        "rejected every context proposed for it: SOP class not supported; context 1: "
        "rejected, SOP class not supported; try: configure the peer to accept this SOP class"
    )
    with pytest.raises(NoPresentationContext, match="no presentation context was proposed"):
        choose_context(accepted((1, CT, EXPLICIT)), MR, EXPLICIT)


def test_uid_name_known_and_unknown() -> None:
    assert uid_name(CT) == f"CT Image Storage ({CT})"
    assert uid_name(PRIVATE) == PRIVATE


# ------------------------------------------------------------------------- end to end


def negotiated_for(
    batch: list[Inst], supported: dict[str, tuple[str, ...]]
) -> tuple[dict[int, AcceptedContext], dict[int, RejectedContext]]:
    """Propose for ``batch``, answer with a pure acceptor policy, read back the result."""
    rq = AAssociateRQ(
        called_ae_title="SCP",
        calling_ae_title="SCU",
        presentation_contexts=build_requested(propose_contexts(batch)),
        user_information=UserInformation(sub_items=(MaximumLength(maximum_length=16384),)),
    )
    ac = negotiate(rq, AcceptorPolicy(supported=supported))
    assert isinstance(ac, AAssociateAC)
    n = check_accept(rq, ac)
    return dict(n.accepted), dict(n.rejected)


def test_end_to_end_peer_accepting_implicit_only_converts_explicit() -> None:
    # dcmtk storescp +xi: Implicit VR Little Endian only.
    batch = [Inst(CT, EXPLICIT), Inst(CT, IMPLICIT), Inst(CT, JPEG)]
    acc, rej = negotiated_for(batch, {CT: (IMPLICIT,)})
    assert choose_context(acc, CT, IMPLICIT).convert is False
    c = choose_context(acc, CT, EXPLICIT)
    assert (c.transfer_syntax, c.convert) == (IMPLICIT, True)
    with pytest.raises(NoPresentationContext, match="accepted only Implicit VR Little Endian"):
        choose_context(acc, CT, JPEG, rejected=rej, capabilities=NO_CODECS)
    # With a codec the JPEG is decompressed into the Implicit VR Little Endian context.
    c = choose_context(acc, CT, JPEG, capabilities=Capabilities(decode=frozenset({JPEG})))
    assert (c.transfer_syntax, c.convert) == (IMPLICIT, True)


def test_end_to_end_bit_preserving_when_everything_is_accepted() -> None:
    everything = (EXPLICIT, IMPLICIT, BIG, DEFLATED, JPEG, J2K)
    batch = [Inst(c, t) for c in (CT, MR, PRIVATE) for t in everything]
    acc, _ = negotiated_for(batch, {c: everything for c in (CT, MR, PRIVATE)})
    for inst in batch:
        c = choose_context(acc, inst.sop_class_uid, inst.transfer_syntax_uid)
        assert c.transfer_syntax == inst.transfer_syntax_uid and not c.convert


def test_end_to_end_unsupported_class_is_reported_as_rejected() -> None:
    acc, rej = negotiated_for([Inst(PRIVATE, EXPLICIT)], {CT: (EXPLICIT,)})
    with pytest.raises(NoPresentationContext, match=r"rejected every context.*not supported"):
        choose_context(acc, PRIVATE, EXPLICIT, rejected=rej)
