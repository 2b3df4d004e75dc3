"""The DICOM Upper Layer state machine of PS3.8 9.2 as data.

* :class:`State` is Table 9-1..9-5 (Sta1..Sta13), :class:`Event` the 19 events of Table 9-10.
* Each action of Tables 9-6..9-9 (AE-1..AE-8, DT-1..DT-2, AR-1..AR-10, AA-1..AA-8) is an
  :class:`Action`: a name, the standard's definition, and a small *pure* function from a
  :class:`Context` (role, the PDU or error that came with the event) to a :class:`Transition`
  (the next state and a tuple of effects). The next state is decided there and nowhere else.
* :data:`TABLE` is Table 9-10: ``dict[(State, Event), Action]``. A blank cell of Table 9-10 is
  simply absent. Blank cells are combinations the standard does not define because they cannot
  happen to a correct implementation (a PDU in Sta1/Sta4 where no transport exists, a second
  transport indication, a local primitive in the wrong state, ARTIM expiry when it is not
  running); :class:`~aiodimse.association.connection.Association` raises
  :class:`~aiodimse.errors.LocalProtocolError` for local primitives in a blank cell and ignores
  transport notifications and timer expiries that a blank cell makes meaningless.

Effects are descriptions, never I/O: :class:`SendPDU`, :class:`Indicate` (hand an event to the
user), :class:`StartARTIM`, :class:`StopARTIM`, :class:`OpenTransport`, :class:`CloseTransport`.
The association object interprets them.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import NamedTuple, TypeVar

from ..constants import AbortReason, AbortSource
from ..errors import LocalProtocolError, RemoteProtocolError
from ..pdu.pdus import (
    PDU,
    AAbort,
    AAssociateAC,
    AAssociateRJ,
    AAssociateRQ,
    AReleaseRP,
    AReleaseRQ,
    PDataTF,
)
from .events import AssociationEvent, ProviderAbort

_T = TypeVar("_T")


class Role(enum.Enum):
    """Which end of the association this is (PS3.8 7.1: association-requestor/acceptor)."""

    REQUESTOR = "requestor"
    ACCEPTOR = "acceptor"


_STATE_TEXT = {
    1: "Idle",
    2: "Transport connection open (Awaiting A-ASSOCIATE-RQ PDU)",
    3: "Awaiting local A-ASSOCIATE response primitive (from local user)",
    4: "Awaiting transport connection opening to complete (from local transport service)",
    5: "Awaiting A-ASSOCIATE-AC or A-ASSOCIATE-RJ PDU",
    6: "Association established and ready for data transfer",
    7: "Awaiting A-RELEASE-RP PDU",
    8: "Awaiting local A-RELEASE response primitive (from local user)",
    9: "Release collision requestor side; awaiting A-RELEASE response (from local user)",
    10: "Release collision acceptor side; awaiting A-RELEASE-RP PDU",
    11: "Release collision requestor side; awaiting A-RELEASE-RP PDU",
    12: "Release collision acceptor side; awaiting A-RELEASE response primitive (from local user)",
    13: "Awaiting Transport Connection Close Indication (Association no longer exists)",
}


class State(enum.IntEnum):
    """PS3.8 9.2.1, Tables 9-1 to 9-5 (``State.Sta6.description`` gives the standard's words)."""

    Sta1 = 1  #: Idle
    Sta2 = 2  #: Transport connection open (Awaiting A-ASSOCIATE-RQ PDU)
    Sta3 = 3  #: Awaiting local A-ASSOCIATE response primitive (from local user)
    Sta4 = 4  #: Awaiting transport connection opening to complete
    Sta5 = 5  #: Awaiting A-ASSOCIATE-AC or A-ASSOCIATE-RJ PDU
    Sta6 = 6  #: Association established and ready for data transfer
    Sta7 = 7  #: Awaiting A-RELEASE-RP PDU
    Sta8 = 8  #: Awaiting local A-RELEASE response primitive (from local user)
    Sta9 = 9  #: Release collision requestor side; awaiting A-RELEASE response (local user)
    Sta10 = 10  #: Release collision acceptor side; awaiting A-RELEASE-RP PDU
    Sta11 = 11  #: Release collision requestor side; awaiting A-RELEASE-RP PDU
    Sta12 = 12  #: Release collision acceptor side; awaiting A-RELEASE response (local user)
    Sta13 = 13  #: Awaiting Transport Connection Close Indication (no association)

    @property
    def description(self) -> str:
        return _STATE_TEXT[self.value]


_EVENT_TEXT = {
    1: "A-ASSOCIATE Request (local user)",
    2: "Transport Conn. Confirm (local transport service)",
    3: "A-ASSOCIATE-AC PDU (received on transport connection)",
    4: "A-ASSOCIATE-RJ PDU (received on transport connection)",
    5: "Transport Connection Indication (local transport service)",
    6: "A-ASSOCIATE-RQ PDU (received on transport connection)",
    7: "A-ASSOCIATE response primitive (accept)",
    8: "A-ASSOCIATE response primitive (reject)",
    9: "P-DATA request primitive",
    10: "P-DATA-TF PDU",
    11: "A-RELEASE Request primitive",
    12: "A-RELEASE-RQ PDU (received on open transport connection)",
    13: "A-RELEASE-RP PDU (received on transport connection)",
    14: "A-RELEASE Response primitive",
    15: "A-ABORT Request primitive",
    16: "A-ABORT PDU (received on open transport connection)",
    17: "Transport connection closed indication (local transport service)",
    18: "ARTIM timer expired (Association reject/release timer)",
    19: "Unrecognized or invalid PDU received",
}


class Event(enum.IntEnum):
    """PS3.8 9.2.3, the rows of Table 9-10 (``Event.Evt3.description`` gives the words)."""

    Evt1 = 1  #: A-ASSOCIATE Request (local user)
    Evt2 = 2  #: Transport Conn. Confirm (local transport service)
    Evt3 = 3  #: A-ASSOCIATE-AC PDU (received on transport connection)
    Evt4 = 4  #: A-ASSOCIATE-RJ PDU (received on transport connection)
    Evt5 = 5  #: Transport Connection Indication (local transport service)
    Evt6 = 6  #: A-ASSOCIATE-RQ PDU (received on transport connection)
    Evt7 = 7  #: A-ASSOCIATE response primitive (accept)
    Evt8 = 8  #: A-ASSOCIATE response primitive (reject)
    Evt9 = 9  #: P-DATA request primitive
    Evt10 = 10  #: P-DATA-TF PDU
    Evt11 = 11  #: A-RELEASE Request primitive
    Evt12 = 12  #: A-RELEASE-RQ PDU (received on open transport connection)
    Evt13 = 13  #: A-RELEASE-RP PDU (received on transport connection)
    Evt14 = 14  #: A-RELEASE Response primitive
    Evt15 = 15  #: A-ABORT Request primitive
    Evt16 = 16  #: A-ABORT PDU (received on open transport connection)
    Evt17 = 17  #: Transport connection closed indication (local transport service)
    Evt18 = 18  #: ARTIM timer expired (Association reject/release timer)
    Evt19 = 19  #: Unrecognized or invalid PDU received

    @property
    def description(self) -> str:
        return _EVENT_TEXT[self.value]


#: Events that are local primitives from the user (the rest come from the transport, the
#: peer or the timer).
USER_EVENTS = frozenset(
    {Event.Evt1, Event.Evt7, Event.Evt8, Event.Evt9, Event.Evt11, Event.Evt14, Event.Evt15}
)

#: Received PDU class -> the event it raises (PS3.8 Table 9-10 rows).
PDU_EVENTS: dict[type[object], Event] = {
    AAssociateAC: Event.Evt3,
    AAssociateRJ: Event.Evt4,
    AAssociateRQ: Event.Evt6,
    PDataTF: Event.Evt10,
    AReleaseRQ: Event.Evt12,
    AReleaseRP: Event.Evt13,
    AAbort: Event.Evt16,
}

#: PDU the user hands to ``Association.send`` -> the local primitive event.
USER_PDU_EVENTS: dict[type[object], Event] = {
    AAssociateRQ: Event.Evt1,
    AAssociateAC: Event.Evt7,
    AAssociateRJ: Event.Evt8,
    PDataTF: Event.Evt9,
    AReleaseRQ: Event.Evt11,
    AReleaseRP: Event.Evt14,
    AAbort: Event.Evt15,
}


# --- effects ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SendPDU:
    """Encode ``pdu`` and queue it on the transport."""

    pdu: PDU


@dataclass(frozen=True, slots=True)
class Indicate:
    """Hand ``event`` to the user (an indication or confirmation primitive)."""

    event: AssociationEvent


@dataclass(frozen=True, slots=True)
class StartARTIM:
    """Start, or restart if running, the ARTIM timer (PS3.8 9.1.5)."""


@dataclass(frozen=True, slots=True)
class StopARTIM:
    """Stop the ARTIM timer if it is running."""


@dataclass(frozen=True, slots=True)
class OpenTransport:
    """Issue a TRANSPORT CONNECT request to the local transport service (AE-1)."""


@dataclass(frozen=True, slots=True)
class CloseTransport:
    """Close the transport connection (after sending whatever is queued)."""


Effect = SendPDU | Indicate | StartARTIM | StopARTIM | OpenTransport | CloseTransport


class Context(NamedTuple):
    """What an action may look at; everything else is none of its business. Immutable, and
    a named tuple rather than a frozen dataclass: one is built per event, and a tuple is
    built several times faster.

    * ``pdu``: the received PDU (Evt3, 4, 6, 10, 12, 13, 16), the PDU the user asked to send
      (Evt1, 7, 8, 9, 11, 14, 15), or the stored A-ASSOCIATE-RQ for AE-2 (Evt2).
    * ``error``: for Evt19, the decoder's or validator's error; it carries the A-ABORT reason.
    * ``rejection``: for AE-6, the service provider's verdict on the A-ASSOCIATE-RQ
      (``None`` = acceptable; otherwise the A-ASSOCIATE-RJ to send, e.g. PS3.8 9.3.2
      protocol version without bit 0 -> RJ(1, 2, 2)).
    """

    state: State
    event: Event
    role: Role
    pdu: PDU | None = None
    error: RemoteProtocolError | None = None
    rejection: AAssociateRJ | None = None


@dataclass(frozen=True, slots=True)
class Transition:
    """The result of an action: where the machine goes, and what must happen."""

    next_state: State
    effects: tuple[Effect, ...] = ()


@dataclass(frozen=True, slots=True)
class Action:
    """One action of PS3.8 Tables 9-6..9-9: ``name`` as the standard spells it (``"AA-8"``)."""

    name: str
    definition: str
    run: Callable[[Context], Transition]

    def __call__(self, ctx: Context) -> Transition:
        return self.run(ctx)

    def __repr__(self) -> str:
        return f"<Action {self.name}>"


def _pdu(ctx: Context, kind: type[_T]) -> _T:
    pdu = ctx.pdu
    if not isinstance(pdu, kind):
        raise LocalProtocolError(
            f"{ctx.event.name} in {ctx.state.name} needs a {kind.__name__}, got {pdu!r}"
        )
    return pdu


def _abort_reason(ctx: Context) -> int:
    # Evt19 carries the decoder's diagnosis; any other PDU in a wrong state is "unexpected".
    if ctx.error is not None:
        return int(ctx.error.abort_reason)
    return int(AbortReason.UNEXPECTED_PDU)


def _abort_detail(ctx: Context) -> str:
    if ctx.error is not None:
        return str(ctx.error)
    kind = type(ctx.pdu).__name__
    return f"unexpected {kind} ({ctx.event.name}) in {ctx.state.name}"


# The transitions that depend on nothing in their context: built once (frozen values,
# shared), not per event; the actions below return them.
_AE_1 = Transition(State.Sta4, (OpenTransport(),))
_AE_5 = Transition(State.Sta2, (StartARTIM(),))
_AR_1 = Transition(State.Sta7, (SendPDU(AReleaseRQ()),))
_AR_2 = Transition(State.Sta8, (Indicate(AReleaseRQ()),))
_AR_3 = Transition(State.Sta1, (Indicate(AReleaseRP()), CloseTransport()))
_AR_4 = Transition(State.Sta13, (SendPDU(AReleaseRP()), StartARTIM()))
_AR_5 = Transition(State.Sta1, (StopARTIM(),))
_AR_9 = Transition(State.Sta11, (SendPDU(AReleaseRP()),))
_AR_10 = Transition(State.Sta12, (Indicate(AReleaseRP()),))
_AA_2 = Transition(State.Sta1, (StopARTIM(), CloseTransport()))


# --- PS3.8 Table 9-6: association establishment --------------------------------------------


def _ae_1(ctx: Context) -> Transition:
    return _AE_1


def _ae_2(ctx: Context) -> Transition:
    return Transition(State.Sta5, (SendPDU(_pdu(ctx, AAssociateRQ)),))


def _ae_3(ctx: Context) -> Transition:
    ac = _pdu(ctx, AAssociateAC)
    return Transition(State.Sta6, (Indicate(ac),))


def _ae_4(ctx: Context) -> Transition:
    rj = _pdu(ctx, AAssociateRJ)
    return Transition(State.Sta1, (Indicate(rj), CloseTransport()))


def _ae_5(ctx: Context) -> Transition:
    # Accepting the TCP connection is the "transport connection response" (PS3.8 9.1.2).
    return _AE_5


def _ae_6(ctx: Context) -> Transition:
    rq = _pdu(ctx, AAssociateRQ)
    if ctx.rejection is None:
        return Transition(State.Sta3, (StopARTIM(), Indicate(rq)))
    return Transition(State.Sta13, (StopARTIM(), SendPDU(ctx.rejection), StartARTIM()))


def _ae_7(ctx: Context) -> Transition:
    return Transition(State.Sta6, (SendPDU(_pdu(ctx, AAssociateAC)),))


def _ae_8(ctx: Context) -> Transition:
    return Transition(State.Sta13, (SendPDU(_pdu(ctx, AAssociateRJ)), StartARTIM()))


# --- Table 9-7: data transfer --------------------------------------------------------------


def _dt_1(ctx: Context) -> Transition:
    return Transition(State.Sta6, (SendPDU(_pdu(ctx, PDataTF)),))


def _dt_2(ctx: Context) -> Transition:
    pdata = _pdu(ctx, PDataTF)
    return Transition(State.Sta6, (Indicate(pdata),))


# --- Table 9-8: association release -------------------------------------------------------


def _ar_1(ctx: Context) -> Transition:
    return _AR_1


def _ar_2(ctx: Context) -> Transition:
    return _AR_2


def _ar_3(ctx: Context) -> Transition:
    return _AR_3


def _ar_4(ctx: Context) -> Transition:
    return _AR_4


def _ar_5(ctx: Context) -> Transition:
    return _AR_5


def _ar_6(ctx: Context) -> Transition:
    pdata = _pdu(ctx, PDataTF)
    return Transition(State.Sta7, (Indicate(pdata),))


def _ar_7(ctx: Context) -> Transition:
    return Transition(State.Sta8, (SendPDU(_pdu(ctx, PDataTF)),))


def _ar_8(ctx: Context) -> Transition:
    # Release collision: the association-requestor goes to Sta9, the acceptor to Sta10.
    nxt = State.Sta9 if ctx.role is Role.REQUESTOR else State.Sta10
    return Transition(nxt, (Indicate(AReleaseRQ()),))


def _ar_9(ctx: Context) -> Transition:
    return _AR_9


def _ar_10(ctx: Context) -> Transition:
    return _AR_10


# --- Table 9-9: association abort ---------------------------------------------------------


def _aa_1(ctx: Context) -> Transition:
    if ctx.event is Event.Evt15:
        # A-ABORT request: the user's PDU as given (normally source 0).
        abort = _pdu(ctx, AAbort)
    else:
        # A PDU before the A-ASSOCIATE-RQ (Sta2): AA-1 sends the service-user source.
        abort = AAbort(source=AbortSource.SERVICE_USER, reason=0)
    return Transition(State.Sta13, (SendPDU(abort), StartARTIM()))


def _aa_2(ctx: Context) -> Transition:
    return _AA_2


def _aa_3(ctx: Context) -> Transition:
    abort = _pdu(ctx, AAbort)
    event: AssociationEvent
    if abort.source == AbortSource.SERVICE_PROVIDER:
        event = ProviderAbort(
            reason=abort.reason, received=True, detail="A-ABORT from the peer's service provider"
        )
    else:
        event = abort
    return Transition(State.Sta1, (Indicate(event), CloseTransport()))


def _aa_4(ctx: Context) -> Transition:
    lost = ProviderAbort(
        reason=AbortReason.NOT_SPECIFIED,
        received=False,
        detail=f"transport connection closed in {ctx.state.name}",
    )
    return Transition(State.Sta1, (Indicate(lost),))


def _aa_5(ctx: Context) -> Transition:
    return Transition(State.Sta1, (StopARTIM(),))


def _aa_6(ctx: Context) -> Transition:
    return Transition(State.Sta13)


def _aa_7(ctx: Context) -> Transition:
    abort = AAbort(source=AbortSource.SERVICE_PROVIDER, reason=_abort_reason(ctx))
    return Transition(State.Sta13, (SendPDU(abort),))


def _aa_8(ctx: Context) -> Transition:
    reason = _abort_reason(ctx)
    abort = AAbort(source=AbortSource.SERVICE_PROVIDER, reason=reason)
    indication = ProviderAbort(reason=reason, received=False, detail=_abort_detail(ctx))
    return Transition(State.Sta13, (SendPDU(abort), Indicate(indication), StartARTIM()))


AE_1 = Action("AE-1", "Issue TRANSPORT CONNECT request primitive to local transport service", _ae_1)
AE_2 = Action("AE-2", "Send A-ASSOCIATE-RQ-PDU", _ae_2)
AE_3 = Action("AE-3", "Issue A-ASSOCIATE confirmation (accept) primitive", _ae_3)
AE_4 = Action(
    "AE-4",
    "Issue A-ASSOCIATE confirmation (reject) primitive and close transport connection",
    _ae_4,
)
AE_5 = Action("AE-5", "Issue Transport connection response primitive; start ARTIM timer", _ae_5)
AE_6 = Action(
    "AE-6",
    "Stop ARTIM timer and if A-ASSOCIATE-RQ acceptable by service-provider issue A-ASSOCIATE"
    " indication primitive, otherwise issue A-ASSOCIATE-RJ-PDU and start ARTIM timer",
    _ae_6,
)
AE_7 = Action("AE-7", "Send A-ASSOCIATE-AC PDU", _ae_7)
AE_8 = Action("AE-8", "Send A-ASSOCIATE-RJ PDU and start ARTIM timer", _ae_8)
DT_1 = Action("DT-1", "Send P-DATA-TF PDU", _dt_1)
DT_2 = Action("DT-2", "Send P-DATA indication primitive", _dt_2)
AR_1 = Action("AR-1", "Send A-RELEASE-RQ PDU", _ar_1)
AR_2 = Action("AR-2", "Issue A-RELEASE indication primitive", _ar_2)
AR_3 = Action(
    "AR-3", "Issue A-RELEASE confirmation primitive, and close transport connection", _ar_3
)
AR_4 = Action("AR-4", "Issue A-RELEASE-RP PDU and start ARTIM timer", _ar_4)
AR_5 = Action("AR-5", "Stop ARTIM timer", _ar_5)
AR_6 = Action("AR-6", "Issue P-DATA indication", _ar_6)
AR_7 = Action("AR-7", "Issue P-DATA-TF PDU", _ar_7)
AR_8 = Action("AR-8", "Issue A-RELEASE indication (release collision)", _ar_8)
AR_9 = Action("AR-9", "Send A-RELEASE-RP PDU", _ar_9)
AR_10 = Action("AR-10", "Issue A-RELEASE confirmation primitive", _ar_10)
AA_1 = Action(
    "AA-1",
    "Send A-ABORT PDU (service-user source) and start (or restart if already started) ARTIM timer",
    _aa_1,
)
AA_2 = Action("AA-2", "Stop ARTIM timer if running. Close transport connection", _aa_2)
AA_3 = Action(
    "AA-3",
    "If (service-user initiated abort): issue A-ABORT indication and close transport"
    " connection; otherwise (service-provider initiated abort): issue A-P-ABORT indication"
    " and close transport connection",
    _aa_3,
)
AA_4 = Action("AA-4", "Issue A-P-ABORT indication primitive", _aa_4)
AA_5 = Action("AA-5", "Stop ARTIM timer", _aa_5)
AA_6 = Action("AA-6", "Ignore PDU", _aa_6)
AA_7 = Action("AA-7", "Send A-ABORT PDU", _aa_7)
AA_8 = Action(
    "AA-8",
    "Send A-ABORT PDU (service-provider source), issue an A-P-ABORT indication, and start"
    " ARTIM timer",
    _aa_8,
)

ACTIONS: tuple[Action, ...] = (
    AE_1, AE_2, AE_3, AE_4, AE_5, AE_6, AE_7, AE_8, DT_1, DT_2,
    AR_1, AR_2, AR_3, AR_4, AR_5, AR_6, AR_7, AR_8, AR_9, AR_10,
    AA_1, AA_2, AA_3, AA_4, AA_5, AA_6, AA_7, AA_8,
)  # fmt: skip


def _states(first: int, last: int) -> tuple[State, ...]:
    return tuple(State(i) for i in range(first, last + 1))


_S = State
# Sta3, Sta5 and Sta6..Sta12: every state in which an association is being negotiated or
# exists and a peer PDU may arrive (Sta4 has no transport yet).
_ASSOC = (_S.Sta3, _S.Sta5, *_states(6, 12))


def _row(*cells: tuple[Iterable[State], Action]) -> dict[State, Action]:
    out: dict[State, Action] = {}
    for states, action in cells:
        for s in states:
            out[s] = action
    return out


# PS3.8 Table 9-10, one row per event; a state absent from a row is a blank cell. Within a row
# a later (states, action) pair overrides an earlier one, so a general rule comes first.
_ROWS: dict[Event, dict[State, Action]] = {
    Event.Evt1: _row(([_S.Sta1], AE_1)),
    Event.Evt2: _row(([_S.Sta4], AE_2)),
    Event.Evt3: _row(([_S.Sta2], AA_1), (_ASSOC, AA_8), ([_S.Sta5], AE_3), ([_S.Sta13], AA_6)),
    Event.Evt4: _row(([_S.Sta2], AA_1), (_ASSOC, AA_8), ([_S.Sta5], AE_4), ([_S.Sta13], AA_6)),
    Event.Evt5: _row(([_S.Sta1], AE_5)),
    Event.Evt6: _row(([_S.Sta2], AE_6), (_ASSOC, AA_8), ([_S.Sta13], AA_7)),
    Event.Evt7: _row(([_S.Sta3], AE_7)),
    Event.Evt8: _row(([_S.Sta3], AE_8)),
    Event.Evt9: _row(([_S.Sta6], DT_1), ([_S.Sta8], AR_7)),
    Event.Evt10: _row(
        ([_S.Sta2], AA_1), (_ASSOC, AA_8), ([_S.Sta6], DT_2), ([_S.Sta7], AR_6), ([_S.Sta13], AA_6)
    ),
    Event.Evt11: _row(([_S.Sta6], AR_1)),
    Event.Evt12: _row(
        ([_S.Sta2], AA_1), (_ASSOC, AA_8), ([_S.Sta6], AR_2), ([_S.Sta7], AR_8), ([_S.Sta13], AA_6)
    ),
    Event.Evt13: _row(
        ([_S.Sta2], AA_1),
        (_ASSOC, AA_8),
        ([_S.Sta7, _S.Sta11], AR_3),
        ([_S.Sta10], AR_10),
        ([_S.Sta13], AA_6),
    ),
    Event.Evt14: _row(([_S.Sta8, _S.Sta12], AR_4), ([_S.Sta9], AR_9)),
    Event.Evt15: _row((_ASSOC, AA_1), ([_S.Sta4], AA_2)),
    Event.Evt16: _row(([_S.Sta2, _S.Sta13], AA_2), (_ASSOC, AA_3)),
    Event.Evt17: _row(([_S.Sta2], AA_5), ((_S.Sta4, *_ASSOC), AA_4), ([_S.Sta13], AR_5)),
    Event.Evt18: _row(([_S.Sta2, _S.Sta13], AA_2)),
    Event.Evt19: _row(([_S.Sta2], AA_1), (_ASSOC, AA_8), ([_S.Sta13], AA_7)),
}

#: PS3.8 Table 9-10: (state, event) -> action. Blank cells are absent.
TABLE: dict[tuple[State, Event], Action] = {
    (state, event): action for event, row in _ROWS.items() for state, action in row.items()
}


def _sample_pdu(event: Event) -> PDU | None:
    rq = AAssociateRQ(called_ae_title="B", calling_ae_title="A", presentation_contexts=())
    ac = AAssociateAC(called_ae_title="B", calling_ae_title="A", presentation_contexts=())
    rj = AAssociateRJ(result=1, source=1, reason=1)
    samples: dict[Event, PDU] = {
        Event.Evt1: rq,
        Event.Evt2: rq,
        Event.Evt6: rq,
        Event.Evt3: ac,
        Event.Evt7: ac,
        Event.Evt4: rj,
        Event.Evt8: rj,
        Event.Evt9: PDataTF(pdvs=()),
        Event.Evt10: PDataTF(pdvs=()),
        Event.Evt11: AReleaseRQ(),
        Event.Evt12: AReleaseRQ(),
        Event.Evt13: AReleaseRP(),
        Event.Evt14: AReleaseRP(),
        Event.Evt15: AAbort(source=0, reason=0),
        Event.Evt16: AAbort(source=0, reason=0),
    }
    return samples.get(event)


def sample_contexts(state: State, event: Event) -> list[Context]:
    """Representative contexts for one cell: both roles and, for AE-6, both verdicts.

    Used to enumerate every branch of an action (diagram, tests).
    """
    pdu = _sample_pdu(event)
    error = RemoteProtocolError("sample", abort_reason=AbortReason.INVALID_PDU_PARAMETER_VALUE)
    out = []
    for role in Role:
        for rejection in (None, AAssociateRJ(result=1, source=2, reason=2)):
            out.append(
                Context(
                    state=state,
                    event=event,
                    role=role,
                    pdu=pdu,
                    error=error if event is Event.Evt19 else None,
                    rejection=rejection if event is Event.Evt6 else None,
                )
            )
    return out


def next_states(state: State, event: Event) -> frozenset[State]:
    """Every state the action in cell (``state``, ``event``) can lead to (empty if blank)."""
    action = TABLE.get((state, event))
    if action is None:
        return frozenset()
    return frozenset(action(ctx).next_state for ctx in sample_contexts(state, event))


def state_diagram_mermaid() -> str:
    """PS3.8 Table 9-10 as a Mermaid ``stateDiagram-v2`` (one edge per state pair, labelled
    ``EvtN/ACTION`` for every cell that takes it)."""
    edges: dict[tuple[State, State], list[str]] = {}
    for (state, event), action in TABLE.items():
        for nxt in sorted(next_states(state, event), key=lambda s: s.value):
            edges.setdefault((state, nxt), []).append(f"{event.name}/{action.name}")
    lines = ["stateDiagram-v2", "    [*] --> Sta1"]
    for s in State:
        # Mermaid reads ";" as a statement separator.
        lines.append(f"    {s.name}: {s.name} {s.description.replace(';', ',')}")
    for (src, dst), labels in sorted(
        edges.items(), key=lambda kv: (kv[0][0].value, kv[0][1].value)
    ):
        lines.append(f"    {src.name} --> {dst.name}: {', '.join(labels)}")
    return "\n".join(lines) + "\n"


__all__ = [
    "ACTIONS",
    "PDU_EVENTS",
    "TABLE",
    "USER_EVENTS",
    "USER_PDU_EVENTS",
    "Action",
    "CloseTransport",
    "Context",
    "Effect",
    "Event",
    "Indicate",
    "OpenTransport",
    "Role",
    "SendPDU",
    "StartARTIM",
    "State",
    "StopARTIM",
    "Transition",
    "next_states",
    "sample_contexts",
    "state_diagram_mermaid",
]
