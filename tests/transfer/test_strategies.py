"""Proposal strategies, the choice of a context per instance, explained failures (issue 8).

Pure functions: each strategy's proposal, the fallback chain, batches of at most 128
contexts, the least-lossy choice, and the words of :class:`NoPresentationContext`.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aiodimse.association.negotiation import AcceptedContext, RejectedContext
from aiodimse.constants import PresentationContextResult
from aiodimse.errors import AssociationAborted, AssociationRejected, DicomTimeoutError, NetworkError
from aiodimse.services.contexts import Context
from aiodimse.services.sending import worth_falling_back
from aiodimse.services.storage_contexts import (
    MAX_CONTEXTS,
    Conversion,
    NoPresentationContext,
    TooManyContexts,
    choose_context,
    propose_contexts,
    split_batches,
)
from aiodimse.services.ts_strategies import (
    CODECS_EXTRA,
    NATIVE,
    Capabilities,
    Strategy,
    fallback_chain,
)

CT = "1.2.840.10008.5.1.4.1.1.2"
SC = "1.2.840.10008.5.1.4.1.1.7"
IMPLICIT = "1.2.840.10008.1.2"
EXPLICIT = "1.2.840.10008.1.2.1"
BIG = "1.2.840.10008.1.2.2"
DEFLATED = "1.2.840.10008.1.2.1.99"
JPEG = "1.2.840.10008.1.2.4.50"
JLS = "1.2.840.10008.1.2.4.80"
J2K = "1.2.840.10008.1.2.4.90"
RLE = "1.2.840.10008.1.2.5"
MPEG2 = "1.2.840.10008.1.2.4.100"  # no decoder anywhere
MR_CLASS = "1.2.840.10008.5.1.4.1.1.4"

ALL = Capabilities(decode=frozenset({JPEG, JLS, J2K, RLE}), encode=frozenset({JLS, J2K, RLE}))
NO_CODECS = Capabilities(decode=frozenset())


@dataclass(frozen=True)
class Inst:
    sop_class_uid: str
    transfer_syntax_uid: str


def pairs(contexts: list[Context]) -> list[tuple[str, tuple[str, ...]]]:
    return [(c.abstract_syntax, c.transfer_syntaxes) for c in contexts]


def accepted(*entries: tuple[int, str, str]) -> dict[int, AcceptedContext]:
    return {
        cid: AcceptedContext(context_id=cid, abstract_syntax=a, transfer_syntax=t)
        for cid, a, t in entries
    }


# ------------------------------------------------------------------------- strategies

BATCH = [Inst(CT, EXPLICIT), Inst(CT, JPEG), Inst(CT, JLS), Inst(SC, BIG), Inst(SC, DEFLATED)]


def test_universal_is_implicit_only_one_context_per_class() -> None:
    got = propose_contexts(BATCH, strategy=Strategy.UNIVERSAL, capabilities=ALL)
    assert pairs(got) == [(CT, (IMPLICIT,)), (SC, (IMPLICIT,))]


def test_conservative_and_standard_put_the_class_own_syntaxes_first() -> None:
    got = propose_contexts(BATCH, strategy=Strategy.CONSERVATIVE, capabilities=ALL)
    assert pairs(got) == [(CT, (EXPLICIT, IMPLICIT)), (SC, (EXPLICIT, IMPLICIT))]
    got = propose_contexts(BATCH, strategy=Strategy.STANDARD, capabilities=ALL)
    assert pairs(got) == [(CT, (EXPLICIT, IMPLICIT, BIG)), (SC, (BIG, EXPLICIT, IMPLICIT))]


def test_compression_adds_lossless_own_syntaxes_and_deflate_never_lossy() -> None:
    got = propose_contexts(BATCH, strategy=Strategy.COMPRESSION, capabilities=ALL)
    assert pairs(got) == [
        (CT, (JLS,)),
        (CT, (EXPLICIT, IMPLICIT, BIG)),
        (CT, (DEFLATED,)),
        (CT, (J2K, RLE)),  # what the Explicit CT can be encoded in, losslessly
        (SC, (DEFLATED,)),
        (SC, (BIG, EXPLICIT, IMPLICIT)),
        (SC, (JLS, J2K, RLE)),
    ]
    # Without encoders, no lossless-encoding context.
    no_encoders = Capabilities(decode=ALL.decode)
    got = propose_contexts(
        [Inst(CT, EXPLICIT)], strategy=Strategy.COMPRESSION, capabilities=no_encoders
    )
    assert pairs(got) == [(CT, (EXPLICIT, IMPLICIT, BIG)), (CT, (DEFLATED,))]


def test_extended_adds_every_own_syntax_lossy_included() -> None:
    got = propose_contexts(BATCH, strategy=Strategy.EXTENDED, capabilities=ALL)
    assert pairs(got) == [
        (CT, (JPEG,)),
        (CT, (JLS,)),
        (CT, (EXPLICIT, IMPLICIT, BIG)),
        (CT, (DEFLATED,)),
        (CT, (J2K, RLE)),
        (SC, (DEFLATED,)),
        (SC, (BIG, EXPLICIT, IMPLICIT)),
        (SC, (JLS, J2K, RLE)),
    ]


def test_auto_offers_fallbacks_only_when_something_converts() -> None:
    assert pairs(propose_contexts([Inst(SC, JPEG)], capabilities=ALL)) == [
        (SC, (JPEG,)),
        (SC, (EXPLICIT,)),
        (SC, (IMPLICIT,)),
    ]
    assert pairs(propose_contexts([Inst(SC, JPEG)], capabilities=NO_CODECS)) == [(SC, (JPEG,))]
    assert pairs(propose_contexts([Inst(SC, MPEG2)], capabilities=ALL)) == [(SC, (MPEG2,))]


def test_fallback_chain_ends_with_universal_once() -> None:
    assert fallback_chain(Strategy.AUTO) == (
        Strategy.AUTO,
        Strategy.CONSERVATIVE,
        Strategy.UNIVERSAL,
    )
    assert fallback_chain(Strategy.EXTENDED) == (
        Strategy.EXTENDED,
        Strategy.COMPRESSION,
        Strategy.STANDARD,
        Strategy.CONSERVATIVE,
        Strategy.UNIVERSAL,
    )
    assert fallback_chain(Strategy.UNIVERSAL) == (Strategy.UNIVERSAL,)
    for s in Strategy:
        chain = fallback_chain(s)
        assert chain[0] is s and chain[-1] is Strategy.UNIVERSAL and len(set(chain)) == len(chain)


def test_capabilities_targets_least_lossy_first() -> None:
    assert ALL.targets(EXPLICIT) == (IMPLICIT, DEFLATED, BIG)
    assert ALL.targets(BIG) == (EXPLICIT, IMPLICIT, DEFLATED)
    assert ALL.targets(JPEG) == (EXPLICIT, IMPLICIT, DEFLATED, BIG)
    assert NO_CODECS.targets(JPEG) == ()
    assert Capabilities(transcode=frozenset(), decode=frozenset({JPEG})).targets(JPEG) == (
        EXPLICIT,
    )


def test_this_installation_has_the_transcoder_and_the_codecs() -> None:
    # The test extra installs aiodimse[codecs]: the suite exercises real decoding.
    caps = Capabilities.detect()
    assert caps.transcode == NATIVE
    assert {JPEG, JLS, J2K, RLE} <= caps.decode
    assert caps.encode == {JLS, J2K, RLE}


# ------------------------------------------------------------------------- splitting


def test_split_keeps_classes_together_and_order_within_batches() -> None:
    classes = [f"1.2.826.0.1.3680043.9.9999.{i}" for i in range(100)]
    batch = [Inst(c, ts) for ts in (EXPLICIT, JPEG) for c in classes]  # AUTO: 3 per class
    parts = split_batches(batch, capabilities=ALL)
    assert len(parts) == 3
    assert [len(p) for p in parts] == [84, 84, 32]  # 42 classes x 3 contexts = 126 <= 128
    assert sorted(i for p in parts for i in map(batch.index, p)) == list(range(200))
    for part in parts:
        assert len(propose_contexts(part, capabilities=ALL)) <= MAX_CONTEXTS
        assert [batch.index(i) for i in part] == sorted(batch.index(i) for i in part)
    with pytest.raises(TooManyContexts):
        propose_contexts(batch, capabilities=ALL)


_CLASSES = st.sampled_from([CT, SC, *(f"1.2.3.{i}" for i in range(70))])
_SYNTAXES = st.sampled_from([IMPLICIT, EXPLICIT, BIG, DEFLATED, JPEG, JLS, J2K, RLE, MPEG2])


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.builds(Inst, _CLASSES, _SYNTAXES), min_size=1, max_size=120),
    st.sampled_from(list(Strategy)),
    st.sampled_from([ALL, NO_CODECS]),
)
def test_property_every_convertible_instance_has_a_way(
    batch: list[Inst], strategy: Strategy, caps: Capabilities
) -> None:
    """Under every strategy, an instance whose syntax converts gets a proposed context it
    can use: its own syntax, or one it converts to; split batches always fit."""
    for part in split_batches(batch, strategy=strategy, capabilities=caps):
        got = propose_contexts(part, strategy=strategy, capabilities=caps)
        assert len(got) <= MAX_CONTEXTS
        offered = {(c.abstract_syntax, ts) for c in got for ts in c.transfer_syntaxes}
        for inst in part:
            ways = {inst.transfer_syntax_uid, *caps.targets(inst.transfer_syntax_uid)}
            if caps.convertible(inst.transfer_syntax_uid) or strategy in (
                Strategy.AUTO,
                Strategy.EXTENDED,
            ):
                assert any((inst.sop_class_uid, ts) in offered for ts in ways), inst
            if strategy is Strategy.UNIVERSAL:
                assert {ts for _, ts in offered} == {IMPLICIT}


# ------------------------------------------------------------------------- choosing


def test_choice_own_syntax_then_transcode_then_decode() -> None:
    acc = accepted((1, CT, IMPLICIT), (3, CT, BIG), (5, CT, JPEG))
    c = choose_context(acc, CT, JPEG, capabilities=ALL)
    assert (c.context_id, c.conversion) == (5, Conversion.NONE)
    c = choose_context(acc, CT, EXPLICIT, capabilities=ALL)
    assert (c.context_id, c.transfer_syntax, c.conversion) == (1, IMPLICIT, Conversion.TRANSCODE)
    c = choose_context(accepted((3, CT, BIG)), CT, DEFLATED, capabilities=ALL)
    assert (c.transfer_syntax, c.conversion) == (BIG, Conversion.TRANSCODE)
    c = choose_context(acc, CT, J2K, capabilities=ALL)
    assert (c.context_id, c.transfer_syntax, c.conversion) == (1, IMPLICIT, Conversion.DECODE)
    assert c.convert


def test_an_uncompressed_source_is_never_encoded_lossily() -> None:
    with pytest.raises(NoPresentationContext) as info:
        choose_context(accepted((1, CT, JPEG)), CT, EXPLICIT, capabilities=ALL)
    assert "an uncompressed dataset is only ever encoded losslessly" in str(info.value)
    assert "try: strategy 'universal'" in str(info.value)


def test_lossless_encoding_is_the_last_resort() -> None:
    acc = accepted((1, CT, RLE), (3, CT, J2K), (5, MR_CLASS, IMPLICIT))
    c = choose_context(acc, CT, BIG, capabilities=ALL)
    assert (c.context_id, c.transfer_syntax, c.conversion) == (3, J2K, Conversion.ENCODE)
    c = choose_context({**acc, **accepted((7, CT, IMPLICIT))}, CT, BIG, capabilities=ALL)
    assert c.conversion is Conversion.TRANSCODE  # an uncompressed context wins
    # A compressed source is never re-encoded in another compressed syntax.
    with pytest.raises(NoPresentationContext):
        choose_context(acc, CT, JPEG, capabilities=ALL)
    # No encoder for what the peer takes: say which codec is missing.
    with pytest.raises(NoPresentationContext) as info:
        choose_context(accepted((1, CT, JLS)), CT, EXPLICIT, capabilities=NO_CODECS)
    assert "encoding it in JPEG-LS Lossless Image Compression needs a pixel codec" in str(
        info.value
    )
    assert f"install the pixel codecs ({CODECS_EXTRA}) so it can be encoded" in str(info.value)


def test_missing_codec_names_the_extra_and_every_context() -> None:
    proposed = {1: (JPEG,), 3: (EXPLICIT,), 5: (IMPLICIT,)}
    rejected = {
        1: RejectedContext(
            context_id=1,
            abstract_syntax=SC,
            result=PresentationContextResult.TRANSFER_SYNTAXES_NOT_SUPPORTED,
        )
    }
    acc = accepted((3, SC, EXPLICIT), (5, SC, IMPLICIT), (7, CT, JPEG))
    with pytest.raises(NoPresentationContext) as info:
        choose_context(acc, SC, JPEG, rejected=rejected, proposed=proposed, capabilities=NO_CODECS)
    text = str(info.value)
    assert text.startswith(
        f"cannot send Secondary Capture Image Storage ({SC}) encoded in JPEG Baseline "
        f"(Process 1) ({JPEG}): the peer accepted only Explicit VR Little Endian"
    )
    assert "decompressing it needs a pixel codec, none is installed" in text
    assert (
        "context 1 (JPEG Baseline (Process 1)): rejected, transfer syntax not supported; "
        "context 3 (Explicit VR Little Endian): accepted with Explicit VR Little Endian; "
        "context 5 (Implicit VR Little Endian): accepted with Implicit VR Little Endian"
    ) in text
    assert f"try: install the pixel codecs ({CODECS_EXTRA})" in text
    err = info.value
    assert [a.context_id for a in err.answers] == [1, 3, 5]
    assert err.accepted == (EXPLICIT, IMPLICIT) and not err.retryable
    assert err.advice[0].startswith("install the pixel codecs")


def test_a_syntax_nobody_decodes_says_so() -> None:
    with pytest.raises(NoPresentationContext, match="converting from a compressed transfer"):
        choose_context(accepted((1, SC, IMPLICIT)), SC, MPEG2, capabilities=ALL)


# ------------------------------------------------------------------------- fallback rule


@pytest.mark.parametrize(
    ("exc", "worth"),
    [
        (AssociationRejected(1, 1, 1), True),  # "no reason given": maybe too many contexts
        (AssociationRejected(1, 3, 1), True),
        (AssociationRejected(1, 1, 7), False),  # called AE title: not about contexts
        (AssociationRejected(1, 1, 3), False),
        (AssociationRejected(1, 1, 2), False),
        (AssociationRejected(1, 2, 2), False),
        (AssociationRejected(2, 3, 2), False),  # transient: come back later
        (AssociationAborted("peer aborted", source=2, reason=0), True),
        (NetworkError("connection closed by the peer"), True),
        (NetworkError("connection refused by 127.0.0.1:1"), False),
        (DicomTimeoutError("A-ASSOCIATE response", 5), True),
        (DicomTimeoutError("TCP connection to x:1", 5), False),
        (ValueError("x"), False),
    ],
)
def test_worth_falling_back(exc: BaseException, worth: bool) -> None:
    assert worth_falling_back(exc) is worth
