"""Presentation contexts as the user states them (PS3.8 7.1.1.13, PS3.7 D.3.2)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from ..constants import (
    EXPLICIT_VR_LITTLE_ENDIAN,
    IMPLICIT_VR_LITTLE_ENDIAN,
    VERIFICATION_SOP_CLASS,
)
from ..errors import LocalProtocolError
from ..pdu import PresentationContextRQ

#: The uncompressed defaults every implementation must accept (PS3.5 10.1: Implicit VR LE is
#: the default transfer syntax), in our order of preference.
UNCOMPRESSED: tuple[str, ...] = (EXPLICIT_VR_LITTLE_ENDIAN, IMPLICIT_VR_LITTLE_ENDIAN)


@dataclass(frozen=True, slots=True, kw_only=True)
class Context:
    """An abstract syntax with transfer syntaxes in our order of preference.

    As requestor these are proposed; as acceptor they are what we support, and the first of
    ours that the peer also proposed is chosen.
    """

    abstract_syntax: str
    transfer_syntaxes: tuple[str, ...] = UNCOMPRESSED
    #: Role selection (PS3.7 D.3.3.4): propose/accept SCU and SCP roles for this SOP class.
    scu_role: bool | None = None
    scp_role: bool | None = None

    def __post_init__(self) -> None:
        if not self.transfer_syntaxes:
            raise LocalProtocolError(f"context {self.abstract_syntax}: no transfer syntax")


VERIFICATION = Context(abstract_syntax=VERIFICATION_SOP_CLASS)


def build_requested(contexts: Iterable[Context]) -> tuple[PresentationContextRQ, ...]:
    """Number the contexts 1, 3, 5, ... (PS3.8 9.3.2.2: odd IDs 1-255, at most 128)."""
    items: list[PresentationContextRQ] = []
    for n, ctx in enumerate(contexts):
        if n >= 128:
            raise LocalProtocolError("at most 128 presentation contexts can be proposed")
        items.append(
            PresentationContextRQ(
                context_id=2 * n + 1,
                abstract_syntax=ctx.abstract_syntax,
                transfer_syntaxes=tuple(ctx.transfer_syntaxes),
            )
        )
    if not items:
        raise LocalProtocolError("no presentation context to propose")
    return tuple(items)


def as_contexts(
    values: Sequence[Context | str] | None, default: Sequence[Context]
) -> list[Context]:
    """Accept SOP class UID strings as shorthand for a context with the default syntaxes."""
    if values is None:
        return list(default)
    return [v if isinstance(v, Context) else Context(abstract_syntax=v) for v in values]
