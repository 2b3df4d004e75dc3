"""Presentation contexts for C-STORE as SCU: what to propose and which one carries an instance.

Pure functions, no I/O (PS3.8 9.3.2.2 presentation context items, PS3.5 Annex A transfer
syntaxes, PS3.4 B.4 storage SOP classes).

Proposing (:func:`propose_contexts`) follows a :class:`~.ts_strategies.Strategy`. The default,
``AUTO``, does what dcmtk's and dcm4che's ``storescu`` do: for each SOP class of the batch,
one context **per transfer syntax** the instances are encoded in (an acceptor picks one
transfer syntax per context, PS3.8 9.3.3.2, so offering a file's own syntax alone is the only
way to be sure it is sent bit for bit), plus Explicit and Implicit VR Little Endian as
separate fallback contexts when some instance of that class can be converted to them
(:class:`~.ts_strategies.Capabilities`). A SOP class unknown to pydicom's dictionary
(private, or newer) is proposed like any other. When that exceeds the 128 contexts of one
association the fallbacks of each class are merged into one context; if it still does not fit
:class:`TooManyContexts` is raised (:func:`split_batches` cuts a batch into parts that fit).

Choosing (:func:`choose_context`): the accepted context with the instance's own transfer
syntax (bit-preserving); else the accepted uncompressed syntax it converts to with the least
loss (:meth:`Capabilities.targets`: streaming transcoding between uncompressed syntaxes, or
decoding a compressed one); else, for an uncompressed instance, an accepted lossless
compressed syntax we can encode it in (:meth:`Capabilities.encode_targets`; never lossy);
else :class:`NoPresentationContext`, whose text names the SOP class, the transfer syntax,
every context proposed for the class with the peer's answer, and what to try.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final, Protocol, TypeVar

from ..association.negotiation import AcceptedContext, RejectedContext
from ..constants import (
    DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN,
    EXPLICIT_VR_BIG_ENDIAN,
    EXPLICIT_VR_LITTLE_ENDIAN,
    IMPLICIT_VR_LITTLE_ENDIAN,
    PresentationContextResult,
)
from ..errors import ContextNotAccepted, LocalProtocolError
from .contexts import Context
from .ts_strategies import (
    CODECS_EXTRA,
    DECODABLE_CANDIDATES,
    ENCODABLE_CANDIDATES,
    LOSSLESS_COMPRESSED,
    NATIVE,
    Capabilities,
    Strategy,
)

__all__ = [
    "CONVERSION_TARGETS",
    "CONVERTIBLE",
    "MAX_CONTEXTS",
    "ContextAnswer",
    "ContextChoice",
    "Conversion",
    "InstanceLike",
    "NoPresentationContext",
    "TooManyContexts",
    "choose_context",
    "propose_contexts",
    "split_batches",
    "uid_name",
]

#: PS3.8 9.3.2.2: presentation context IDs are odd 1..255, so at most 128 per association.
MAX_CONTEXTS: Final = 128

#: The uncompressed transfer syntaxes the streaming transcoder converts among themselves
#: (PS3.5 A.1-A.3, A.5).
CONVERTIBLE: Final = NATIVE
#: The fallbacks ``AUTO`` proposes, in our order of preference (explicit VR keeps the VRs of
#: private elements that implicit VR loses).
CONVERSION_TARGETS: Final = (EXPLICIT_VR_LITTLE_ENDIAN, IMPLICIT_VR_LITTLE_ENDIAN)

_CONSERVATIVE: Final = (EXPLICIT_VR_LITTLE_ENDIAN, IMPLICIT_VR_LITTLE_ENDIAN)
_STANDARD: Final = (*_CONSERVATIVE, EXPLICIT_VR_BIG_ENDIAN)


class InstanceLike(Protocol):
    """Anything that names a SOP class and the transfer syntax its dataset is encoded in."""

    @property
    def sop_class_uid(self) -> str: ...

    @property
    def transfer_syntax_uid(self) -> str: ...


_I = TypeVar("_I", bound=InstanceLike)


def uid_name(uid: str) -> str:
    """``"Name (uid)"`` from pydicom's UID dictionary, or just the UID when unknown."""
    from pydicom.uid import UID

    name = UID(uid).name
    return uid if not name or name == uid else f"{name} ({uid})"


def _short_name(uid: str) -> str:
    from pydicom.uid import UID

    name = UID(uid).name
    return name if name and name != uid else uid


class TooManyContexts(LocalProtocolError):
    """The batch needs more presentation contexts than one association can carry (128)."""

    def __init__(self, needed: int, sop_classes: int) -> None:
        super().__init__(
            f"{sop_classes} SOP classes need {needed} presentation contexts, more than the "
            f"{MAX_CONTEXTS} one association can carry (PS3.8 9.3.2.2); send the files "
            "over several associations"
        )
        self.needed = needed
        self.sop_classes = sop_classes


@dataclass(frozen=True, slots=True, kw_only=True)
class ContextAnswer:
    """One context proposed for a SOP class and the peer's answer (PS3.8 9.3.3.2)."""

    context_id: int
    #: What we proposed (empty when unknown).
    proposed: tuple[str, ...] = ()
    result: PresentationContextResult = PresentationContextResult.ACCEPTANCE
    #: The transfer syntax the peer picked, when it accepted.
    transfer_syntax: str | None = None

    def describe(self) -> str:
        """``context 3 (JPEG Baseline (Process 1)): rejected, transfer syntax not supported``."""
        offered = ", ".join(_short_name(t) for t in self.proposed)
        head = f"context {self.context_id}" + (f" ({offered})" if offered else "")
        if self.result == PresentationContextResult.ACCEPTANCE and self.transfer_syntax:
            return f"{head}: accepted with {_short_name(self.transfer_syntax)}"
        return f"{head}: rejected, {_result_text(self.result)}"


class NoPresentationContext(ContextNotAccepted):
    """No accepted presentation context can carry this instance; nothing was sent.

    ``accepted`` lists the transfer syntaxes the peer accepted for the SOP class (empty when
    it accepted none); ``rejected`` the peer's reasons for contexts it rejected; ``answers``
    every context proposed for the class with the peer's answer; ``advice`` what to try.
    ``peer_answer`` is the text after "cannot send <what>: ".
    """

    def __init__(
        self,
        sop_class_uid: str,
        transfer_syntax_uid: str,
        *,
        accepted: tuple[str, ...] = (),
        rejected: tuple[PresentationContextResult, ...] = (),
        proposed: bool = True,
        answers: tuple[ContextAnswer, ...] = (),
        capabilities: Capabilities | None = None,
    ) -> None:
        caps = capabilities if capabilities is not None else Capabilities()
        what = f"{uid_name(sop_class_uid)} encoded in {uid_name(transfer_syntax_uid)}"
        advice: list[str] = []
        if accepted:
            peer = "the peer accepted only " + ", ".join(uid_name(ts) for ts in accepted)
            why = _why_not_converted(transfer_syntax_uid, caps, accepted)
            if why:
                peer += f" ({why})"
        elif rejected:
            reasons = sorted({_result_text(r) for r in rejected})
            peer = "the peer rejected every context proposed for it: " + "; ".join(reasons)
        elif proposed:
            peer = "the peer accepted no context for this SOP class"
        else:
            peer = "no presentation context was proposed for this SOP class"
        if answers:
            peer += "; " + "; ".join(a.describe() for a in answers)
        if transfer_syntax_uid in DECODABLE_CANDIDATES and transfer_syntax_uid not in caps.decode:
            advice.append(f"install the pixel codecs ({CODECS_EXTRA}) so it can be decompressed")
        elif transfer_syntax_uid in NATIVE and any(
            t in ENCODABLE_CANDIDATES and t not in caps.encode for t in accepted
        ):
            advice.append(f"install the pixel codecs ({CODECS_EXTRA}) so it can be encoded")
        if rejected and all(
            r == PresentationContextResult.ABSTRACT_SYNTAX_NOT_SUPPORTED for r in rejected
        ):
            advice.append("configure the peer to accept this SOP class")
        elif proposed and caps.convertible(transfer_syntax_uid):
            advice.append("strategy 'universal' (Implicit VR Little Endian only)")
        elif not proposed:
            advice.append("propose contexts for these files (propose_contexts)")
        if advice:
            peer += "; try: " + ", or ".join(advice)
        super().__init__(f"cannot send {what}: {peer}")
        self.sop_class_uid = sop_class_uid
        self.transfer_syntax_uid = transfer_syntax_uid
        self.accepted = accepted
        self.rejected = rejected
        self.answers = answers
        self.advice = tuple(advice)
        self.peer_answer = peer


def _why_not_converted(source: str, caps: Capabilities, accepted: tuple[str, ...]) -> str:
    if source in NATIVE:
        if source not in caps.transcode:
            return "the streaming transcoder is not available"
        wanted = [t for t in accepted if t in ENCODABLE_CANDIDATES and t not in caps.encode]
        if wanted:
            return f"encoding it in {_short_name(wanted[0])} needs a pixel codec"
        return "an uncompressed dataset is only ever encoded losslessly"
    if source in DECODABLE_CANDIDATES:
        if source not in caps.decode:
            return "decompressing it needs a pixel codec, none is installed"
        return ""
    return "converting from a compressed transfer syntax is not supported"


def _result_text(result: PresentationContextResult) -> str:
    # PS3.8 9.3.3.2, Table 9-18.
    return {
        PresentationContextResult.USER_REJECTION: "user rejection",
        PresentationContextResult.NO_REASON: "no reason given",
        PresentationContextResult.ABSTRACT_SYNTAX_NOT_SUPPORTED: "SOP class not supported",
        PresentationContextResult.TRANSFER_SYNTAXES_NOT_SUPPORTED: "transfer syntax not supported",
    }.get(result, f"result {int(result)}")


# ------------------------------------------------------------------------------ proposing


def _by_class(instances: Iterable[InstanceLike]) -> dict[str, list[str]]:
    by_class: dict[str, list[str]] = {}
    for inst in instances:
        own = by_class.setdefault(inst.sop_class_uid, [])
        if inst.transfer_syntax_uid not in own:
            own.append(inst.transfer_syntax_uid)
    return by_class


def _group(allowed: Sequence[str], own: Sequence[str]) -> tuple[str, ...]:
    """``allowed``, the class's own syntaxes among them first (in their first-seen order)."""
    return tuple(dict.fromkeys([*(t for t in own if t in allowed), *allowed]))


def class_contexts(
    strategy: Strategy,
    sop_class: str,
    own: Sequence[str],
    capabilities: Capabilities,
    *,
    compact: bool = False,
) -> list[Context]:
    """The contexts ``strategy`` proposes for one SOP class whose instances are encoded in
    ``own`` (``compact``: ``AUTO``'s merged fallbacks)."""

    def ctx(*syntaxes: str) -> Context:
        return Context(abstract_syntax=sop_class, transfer_syntaxes=syntaxes)

    if strategy is Strategy.UNIVERSAL:
        return [ctx(IMPLICIT_VR_LITTLE_ENDIAN)]
    if strategy is Strategy.CONSERVATIVE:
        return [ctx(*_group(_CONSERVATIVE, own))]
    if strategy is Strategy.STANDARD:
        return [ctx(*_group(_STANDARD, own))]
    converts = any(capabilities.convertible(ts) for ts in own)
    if strategy in (Strategy.COMPRESSION, Strategy.EXTENDED):
        keep = (
            LOSSLESS_COMPRESSED | {DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN}
            if strategy is Strategy.COMPRESSION
            else None
        )
        out = [ctx(ts) for ts in own if ts not in _STANDARD and (keep is None or ts in keep)]
        out.append(ctx(*_group(_STANDARD, own)))
        if (
            DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN not in own
            and DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN in capabilities.transcode
            and converts
        ):
            # Deflate (PS3.5 A.5) is lossless and needs no codec: we can always produce it.
            out.append(ctx(DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN))
        encodable = dict.fromkeys(t for ts in own for t in capabilities.encode_targets(ts))
        lossless = tuple(t for t in encodable if t not in own)
        if lossless:
            out.append(ctx(*lossless))  # lossless encoding, the last resort
        return out
    # AUTO
    out = [ctx(ts) for ts in own]
    reachable = {t for ts in own for t in capabilities.targets(ts)}
    missing = tuple(t for t in CONVERSION_TARGETS if t in reachable and t not in own)
    if missing:
        if compact:
            out.append(ctx(*missing))
        else:
            out.extend(ctx(t) for t in missing)
    return out


def propose_contexts(
    instances: Iterable[InstanceLike],
    *,
    strategy: Strategy = Strategy.AUTO,
    max_contexts: int = MAX_CONTEXTS,
    capabilities: Capabilities | None = None,
) -> list[Context]:
    """The presentation contexts to propose for sending ``instances`` (see the module
    docstring and :class:`~.ts_strategies.Strategy`).

    Classes and transfer syntaxes keep the order in which they first appear.
    ``capabilities`` defaults to what this installation can convert. Raises
    :class:`TooManyContexts` when even the compact form exceeds ``max_contexts``.
    """
    caps = capabilities if capabilities is not None else Capabilities.detect()
    by_class = _by_class(instances)

    def build(compact: bool) -> list[Context]:
        return [
            c
            for sop, own in by_class.items()
            for c in class_contexts(strategy, sop, own, caps, compact=compact)
        ]

    separate = build(False)
    if len(separate) <= max_contexts:
        return separate
    if strategy is Strategy.AUTO:
        compact = build(True)
        if len(compact) <= max_contexts:
            return compact
        separate = compact
    raise TooManyContexts(len(separate), len(by_class))


def split_batches(
    instances: Sequence[_I],
    *,
    strategy: Strategy = Strategy.AUTO,
    max_contexts: int = MAX_CONTEXTS,
    capabilities: Capabilities | None = None,
) -> list[list[_I]]:
    """Cut ``instances`` into batches whose proposals fit one association each.

    SOP classes are packed in first-seen order; all instances of a class go in the same
    batch, and each batch keeps the instances' order. A batch whose classes fit separately
    uses the full proposal, one that does not uses ``AUTO``'s compact form. Raises
    :class:`TooManyContexts` only when one SOP class alone needs more than ``max_contexts``.
    """
    caps = capabilities if capabilities is not None else Capabilities.detect()
    by_class = _by_class(instances)
    batches: list[list[str]] = []
    used = 0
    for sop, own in by_class.items():
        need = len(class_contexts(strategy, sop, own, caps, compact=True))
        if need > max_contexts:
            raise TooManyContexts(need, 1)
        if not batches or used + need > max_contexts:
            batches.append([])
            used = 0
        batches[-1].append(sop)
        used += need
    where = {sop: n for n, classes in enumerate(batches) for sop in classes}
    out: list[list[_I]] = [[] for _ in batches]
    for inst in instances:
        out[where[inst.sop_class_uid]].append(inst)
    return out


# ------------------------------------------------------------------------------ choosing


class Conversion(enum.Enum):
    """How an instance's dataset becomes the chosen transfer syntax."""

    NONE = "none"  # sent as stored, bit for bit
    TRANSCODE = "transcode"  # uncompressed -> uncompressed, streaming (lossless)
    DECODE = "decode"  # compressed -> uncompressed, Pixel Data decoded frame by frame
    ENCODE = "encode"  # uncompressed -> lossless compressed, in memory


@dataclass(frozen=True, slots=True, kw_only=True)
class ContextChoice:
    """The context that carries an instance and how its dataset gets there."""

    context_id: int
    transfer_syntax: str
    conversion: Conversion = Conversion.NONE

    @property
    def convert(self) -> bool:
        """The dataset is re-encoded in ``transfer_syntax``."""
        return self.conversion is not Conversion.NONE


def choose_context(
    accepted: Mapping[int, AcceptedContext],
    sop_class_uid: str,
    transfer_syntax_uid: str,
    *,
    rejected: Mapping[int, RejectedContext] | None = None,
    proposed: Mapping[int, tuple[str, ...]] | None = None,
    capabilities: Capabilities | None = None,
) -> ContextChoice:
    """The accepted context to send an instance over (see the module docstring).

    ``accepted``/``rejected`` are the association's negotiated contexts, ``proposed`` (if
    known) the transfer syntaxes we offered per context ID, used to explain a failure.
    Among equals the lowest context ID wins. Raises :class:`NoPresentationContext` when
    none fits.
    """
    caps = capabilities if capabilities is not None else Capabilities.detect()
    mine = sorted(
        (cid, ctx) for cid, ctx in accepted.items() if ctx.abstract_syntax == sop_class_uid
    )
    for cid, ctx in mine:
        if ctx.transfer_syntax == transfer_syntax_uid:
            return ContextChoice(context_id=cid, transfer_syntax=ctx.transfer_syntax)
    how = Conversion.TRANSCODE if transfer_syntax_uid in caps.transcode else Conversion.DECODE
    for target in caps.targets(transfer_syntax_uid):
        for cid, ctx in mine:
            if ctx.transfer_syntax == target:
                return ContextChoice(context_id=cid, transfer_syntax=target, conversion=how)
    for target in caps.encode_targets(transfer_syntax_uid):
        for cid, ctx in mine:
            if ctx.transfer_syntax == target:
                return ContextChoice(
                    context_id=cid, transfer_syntax=target, conversion=Conversion.ENCODE
                )
    refused = sorted(
        (cid, r) for cid, r in (rejected or {}).items() if r.abstract_syntax == sop_class_uid
    )
    offered = proposed or {}
    answers = tuple(
        sorted(
            [
                ContextAnswer(
                    context_id=cid,
                    proposed=offered.get(cid, ()),
                    transfer_syntax=ctx.transfer_syntax,
                )
                for cid, ctx in mine
            ]
            + [
                ContextAnswer(context_id=cid, proposed=offered.get(cid, ()), result=r.result)
                for cid, r in refused
            ],
            key=lambda a: a.context_id,
        )
    )
    raise NoPresentationContext(
        sop_class_uid,
        transfer_syntax_uid,
        accepted=tuple(dict.fromkeys(ctx.transfer_syntax for _, ctx in mine)),
        rejected=tuple(r.result for _, r in refused),
        proposed=bool(mine or refused),
        answers=answers,
        capabilities=caps,
    )
