"""Presentation contexts for C-STORE as SCU: what to propose and which one carries an instance.

Pure functions, no I/O (PS3.8 9.3.2.2 presentation context items, PS3.5 Annex A transfer
syntaxes, PS3.4 B.4 storage SOP classes).

Proposing (:func:`propose_contexts`), as dcmtk's ``storescu`` and dcm4che's ``storescu`` do:
for each SOP class of the batch, one context **per transfer syntax** the instances are
encoded in (an acceptor picks one transfer syntax per context, PS3.8 9.3.3.2, so offering a
file's own syntax alone is the only way to be sure it is sent bit for bit), plus Explicit and
Implicit VR Little Endian as separate fallback contexts when some instance of that class can
be converted to them (:data:`CONVERTIBLE`). A SOP class unknown to pydicom's dictionary
(private, or newer) is proposed like any other. When that exceeds the 128 contexts of one
association the fallbacks of each class are merged into one context; if it still does not fit
:class:`TooManyContexts` is raised (send the batch over several associations).

Choosing (:func:`choose_context`): the accepted context with the instance's own transfer
syntax (bit-preserving); else, for a source in :data:`CONVERTIBLE`, an accepted Explicit or
Implicit VR Little Endian context (the dataset is re-encoded); else
:class:`NoPresentationContext`, whose text names the SOP class, the transfer syntax and
what the peer accepted or rejected for that class.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Final, Protocol

from ..association.negotiation import AcceptedContext, RejectedContext
from ..constants import (
    DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN,
    EXPLICIT_VR_LITTLE_ENDIAN,
    IMPLICIT_VR_LITTLE_ENDIAN,
    PresentationContextResult,
)
from ..errors import ContextNotAccepted, LocalProtocolError
from .contexts import Context

__all__ = [
    "CONVERSION_TARGETS",
    "CONVERTIBLE",
    "MAX_CONTEXTS",
    "ContextChoice",
    "InstanceLike",
    "NoPresentationContext",
    "TooManyContexts",
    "choose_context",
    "propose_contexts",
    "uid_name",
]

#: PS3.8 9.3.2.2: presentation context IDs are odd 1..255, so at most 128 per association.
MAX_CONTEXTS: Final = 128

#: Transfer syntaxes whose datasets we can re-encode in memory without a pixel codec and
#: without loss: native little-endian Pixel Data, or the whole dataset deflated (PS3.5 A.5).
#: Explicit VR Big Endian is not here: re-encoding it as little endian would need the
#: Pixel Data byte-swapped, which pydicom's writer does not do.
CONVERTIBLE: Final = frozenset(
    {IMPLICIT_VR_LITTLE_ENDIAN, EXPLICIT_VR_LITTLE_ENDIAN, DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN}
)
#: What a convertible source may be re-encoded into, in our order of preference (explicit
#: VR keeps the VRs of private elements that implicit VR loses).
CONVERSION_TARGETS: Final = (EXPLICIT_VR_LITTLE_ENDIAN, IMPLICIT_VR_LITTLE_ENDIAN)


class InstanceLike(Protocol):
    """Anything that names a SOP class and the transfer syntax its dataset is encoded in."""

    @property
    def sop_class_uid(self) -> str: ...

    @property
    def transfer_syntax_uid(self) -> str: ...


def uid_name(uid: str) -> str:
    """``"Name (uid)"`` from pydicom's UID dictionary, or just the UID when unknown."""
    from pydicom.uid import UID

    name = UID(uid).name
    return uid if not name or name == uid else f"{name} ({uid})"


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


class NoPresentationContext(ContextNotAccepted):
    """No accepted presentation context can carry this instance; nothing was sent.

    ``accepted`` lists the transfer syntaxes the peer accepted for the SOP class (empty when
    it accepted none); ``rejected`` the peer's reasons for contexts it rejected.
    """

    def __init__(
        self,
        sop_class_uid: str,
        transfer_syntax_uid: str,
        *,
        accepted: tuple[str, ...] = (),
        rejected: tuple[PresentationContextResult, ...] = (),
        proposed: bool = True,
    ) -> None:
        what = f"{uid_name(sop_class_uid)} encoded in {uid_name(transfer_syntax_uid)}"
        if accepted:
            peer = "the peer accepted only " + ", ".join(uid_name(ts) for ts in accepted)
            if transfer_syntax_uid not in CONVERTIBLE:
                peer += " (converting from a compressed transfer syntax is not supported)"
        elif rejected:
            reasons = sorted({_result_text(r) for r in rejected})
            peer = "the peer rejected every context proposed for it: " + "; ".join(reasons)
        elif proposed:
            peer = "the peer accepted no context for this SOP class"
        else:
            peer = "no presentation context was proposed for this SOP class"
        super().__init__(f"cannot send {what}: {peer}")
        self.sop_class_uid = sop_class_uid
        self.transfer_syntax_uid = transfer_syntax_uid
        self.accepted = accepted
        self.rejected = rejected
        self.peer_answer = peer


def _result_text(result: PresentationContextResult) -> str:
    # PS3.8 9.3.3.2, Table 9-18.
    return {
        PresentationContextResult.USER_REJECTION: "user rejection",
        PresentationContextResult.NO_REASON: "no reason given",
        PresentationContextResult.ABSTRACT_SYNTAX_NOT_SUPPORTED: "SOP class not supported",
        PresentationContextResult.TRANSFER_SYNTAXES_NOT_SUPPORTED: "transfer syntax not supported",
    }.get(result, f"result {int(result)}")


def propose_contexts(
    instances: Iterable[InstanceLike], *, max_contexts: int = MAX_CONTEXTS
) -> list[Context]:
    """The presentation contexts to propose for sending ``instances`` (see module docstring).

    Classes and transfer syntaxes keep the order in which they first appear. Raises
    :class:`TooManyContexts` when even the compact form exceeds ``max_contexts``.
    """
    by_class: dict[str, list[str]] = {}
    for inst in instances:
        own = by_class.setdefault(inst.sop_class_uid, [])
        if inst.transfer_syntax_uid not in own:
            own.append(inst.transfer_syntax_uid)
    separate = _contexts(by_class, merge_fallbacks=False)
    if len(separate) <= max_contexts:
        return separate
    compact = _contexts(by_class, merge_fallbacks=True)
    if len(compact) <= max_contexts:
        return compact
    raise TooManyContexts(len(compact), len(by_class))


def _contexts(by_class: Mapping[str, list[str]], *, merge_fallbacks: bool) -> list[Context]:
    out: list[Context] = []
    for sop_class, own in by_class.items():
        out.extend(Context(abstract_syntax=sop_class, transfer_syntaxes=(ts,)) for ts in own)
        if not any(ts in CONVERTIBLE for ts in own):
            continue  # nothing of this class could use an uncompressed fallback
        missing = tuple(ts for ts in CONVERSION_TARGETS if ts not in own)
        if not missing:
            continue
        if merge_fallbacks:
            out.append(Context(abstract_syntax=sop_class, transfer_syntaxes=missing))
        else:
            out.extend(
                Context(abstract_syntax=sop_class, transfer_syntaxes=(ts,)) for ts in missing
            )
    return out


@dataclass(frozen=True, slots=True, kw_only=True)
class ContextChoice:
    """The context that carries an instance; ``convert``: re-encode in ``transfer_syntax``."""

    context_id: int
    transfer_syntax: str
    convert: bool


def choose_context(
    accepted: Mapping[int, AcceptedContext],
    sop_class_uid: str,
    transfer_syntax_uid: str,
    *,
    rejected: Mapping[int, RejectedContext] | None = None,
    convertible: frozenset[str] = CONVERTIBLE,
) -> ContextChoice:
    """The accepted context to send an instance over (see the module docstring).

    ``accepted``/``rejected`` are the association's negotiated contexts. Among equals the
    lowest context ID wins. Raises :class:`NoPresentationContext` when none fits.
    """
    mine = sorted(
        (cid, ctx) for cid, ctx in accepted.items() if ctx.abstract_syntax == sop_class_uid
    )
    for cid, ctx in mine:
        if ctx.transfer_syntax == transfer_syntax_uid:
            return ContextChoice(context_id=cid, transfer_syntax=ctx.transfer_syntax, convert=False)
    if transfer_syntax_uid in convertible:
        for target in CONVERSION_TARGETS:
            for cid, ctx in mine:
                if ctx.transfer_syntax == target:
                    return ContextChoice(context_id=cid, transfer_syntax=target, convert=True)
    refused = tuple(
        r.result for r in (rejected or {}).values() if r.abstract_syntax == sop_class_uid
    )
    accepted_ts = tuple(dict.fromkeys(ctx.transfer_syntax for _, ctx in mine))
    raise NoPresentationContext(
        sop_class_uid,
        transfer_syntax_uid,
        accepted=accepted_ts,
        rejected=refused,
        proposed=bool(mine or refused),
    )
