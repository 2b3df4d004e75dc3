"""Properties of the state machine over every (state, event) pair, and of the Association
object under arbitrary sequences of user calls, peer PDUs, garbage, closes and timeouts."""

from __future__ import annotations

import hypothesis.strategies as st
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from aiodimse.association import Association, Role, State, negotiate
from aiodimse.association.fsm import (
    TABLE,
    USER_EVENTS,
    CloseTransport,
    Event,
    Indicate,
    OpenTransport,
    SendPDU,
    StartARTIM,
    StopARTIM,
    sample_contexts,
)
from aiodimse.config import Limits
from aiodimse.errors import LocalProtocolError
from aiodimse.pdu import (
    PDU,
    PDV,
    AAbort,
    AAssociateRJ,
    AReleaseRP,
    AReleaseRQ,
    PDataTF,
)
from aiodimse.pdu.codec import PDUDecoder, encode_pdu

from .pair import make_policy, make_rq

EFFECTS = (SendPDU, Indicate, StartARTIM, StopARTIM, OpenTransport, CloseTransport)


@given(state=st.sampled_from(State), event=st.sampled_from(Event))
@settings(max_examples=300)
def test_every_cell_is_total_and_lands_in_a_state(state: State, event: Event) -> None:
    action = TABLE.get((state, event))
    if action is None:
        return
    for ctx in sample_contexts(state, event):
        result = action(ctx)
        assert result.next_state in State
        assert all(isinstance(e, EFFECTS) for e in result.effects)
        # ARTIM runs exactly in Sta2 and Sta13: an action that lands elsewhere stops it or
        # never had it running; one that lands in Sta2/Sta13 from elsewhere starts it.
        starts = any(isinstance(e, StartARTIM) for e in result.effects)
        if starts:
            assert result.next_state in (State.Sta2, State.Sta13)


_USER_PDUS: dict[Event, PDU] = {
    Event.Evt1: make_rq(),
    Event.Evt9: PDataTF(pdvs=(PDV(context_id=1, is_command=True, is_last=True, data=b"x"),)),
    Event.Evt11: AReleaseRQ(),
    Event.Evt14: AReleaseRP(),
    Event.Evt15: AAbort(source=0, reason=0),
    Event.Evt8: AAssociateRJ(result=1, source=1, reason=1),
}


@pytest.mark.parametrize("role", list(Role))
@pytest.mark.parametrize("event", sorted(_USER_PDUS, key=lambda e: e.value))
def test_user_primitive_in_blank_cell_raises_local_error(role: Role, event: Event) -> None:
    assert event in USER_EVENTS
    assoc = Association(role)  # Sta1: only Evt1 (requestor) is allowed
    pdu = _USER_PDUS[event]
    if event is Event.Evt1 and role is Role.REQUESTOR:
        assoc.send(pdu, 0.0)
        assert assoc.state is State.Sta4
        return
    with pytest.raises(LocalProtocolError):
        assoc.send(pdu, 0.0)
    assert assoc.state is State.Sta1
    assert assoc.data_to_send() == [] and assoc.next_event() is None


# -- stateful --------------------------------------------------------------------------

_PEER_PDUS = [
    make_rq(),
    make_rq(protocol_version=2),
    make_rq(called="ELSEWHERE"),
    AReleaseRQ(),
    AReleaseRP(),
    AAbort(source=0, reason=0),
    AAbort(source=2, reason=6),
    AAssociateRJ(result=1, source=1, reason=7),
    PDataTF(pdvs=(PDV(context_id=1, is_command=True, is_last=True, data=b"\x00" * 10),)),
    PDataTF(pdvs=(PDV(context_id=7, is_command=False, is_last=False, data=b"zz"),)),
]

_POLITE_PDUS = [
    AReleaseRQ(),
    AReleaseRP(),
    PDataTF(pdvs=(PDV(context_id=3, is_command=False, is_last=True, data=b"\x02" * 30),)),
]

_LOCAL_PDUS = [
    AReleaseRQ(),
    AReleaseRP(),
    AAbort(source=0, reason=0),
    PDataTF(pdvs=(PDV(context_id=1, is_command=True, is_last=True, data=b"\x01" * 20),)),
    PDataTF(pdvs=(PDV(context_id=5, is_command=True, is_last=True, data=b"\x01"),)),
    AAssociateRJ(result=2, source=3, reason=2),
]


class AssociationMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.assoc: Association | None = None
        self.now = 0.0
        self.stream = PDUDecoder(Limits(max_pdu_length=1 << 20))
        self.sent: list[PDU] = []

    @initialize(role=st.sampled_from(Role))
    def create(self, role: Role) -> None:
        self.assoc = Association(role, artim_timeout=5.0)

    @rule()
    @precondition(lambda self: self.assoc is not None and self.assoc.state is State.Sta1)
    def establish(self) -> None:
        """A whole handshake in one step, so that the later states are explored too."""
        assert self.assoc is not None
        assoc, rq = self.assoc, make_rq()
        self.stream = PDUDecoder(Limits(max_pdu_length=1 << 20))
        if assoc.role is Role.REQUESTOR:
            assoc.send(rq, self.now)
            assoc.transport_connected(self.now)
            assoc.receive_data(encode_pdu(negotiate(rq, make_policy())), self.now)
        else:
            assoc.transport_connected(self.now)
            assoc.receive_data(encode_pdu(rq), self.now)
            assoc.send(negotiate(rq, make_policy()), self.now)
        assert assoc.state is State.Sta6
        self._collect()

    def _user(self, call: object) -> None:
        assert self.assoc is not None
        before = self.assoc.state
        try:
            call()  # type: ignore[operator]
        except LocalProtocolError:
            assert self.assoc.state is before
        self._collect()

    def _collect(self) -> None:
        assert self.assoc is not None
        for part in self.assoc.data_to_send():
            self.stream.feed(part)
        while (pdu := self.stream.next_pdu()) is not None:  # raises if we sent garbage
            self.sent.append(pdu)
        while self.assoc.next_event() is not None:
            pass

    @rule()
    @precondition(lambda self: self.assoc is not None)
    def connect(self) -> None:
        assert self.assoc is not None
        assoc = self.assoc
        if assoc.state in (State.Sta1, State.Sta4):
            self.stream = PDUDecoder(Limits(max_pdu_length=1 << 20))
        self._user(lambda: assoc.transport_connected(self.now))

    @rule()
    @precondition(lambda self: self.assoc is not None)
    def user_associate(self) -> None:
        assert self.assoc is not None
        assoc = self.assoc
        self._user(lambda: assoc.send(make_rq(), self.now))

    @rule()
    @precondition(lambda self: self.assoc is not None and self.assoc.request is not None)
    def user_answers(self) -> None:
        assert self.assoc is not None and self.assoc.request is not None
        assoc, answer = self.assoc, negotiate(self.assoc.request, make_policy())
        self._user(lambda: assoc.send(answer, self.now))

    @rule(pdu=st.sampled_from(_LOCAL_PDUS))
    @precondition(lambda self: self.assoc is not None)
    def user_sends(self, pdu: PDU) -> None:
        assert self.assoc is not None
        assoc = self.assoc
        self._user(lambda: assoc.send(pdu, self.now))

    def _feed(self, data: bytes, cut: int) -> None:
        assert self.assoc is not None
        cut = min(cut, len(data))
        self.assoc.receive_data(data[:cut], self.now)
        self.assoc.receive_data(data[cut:], self.now)
        self._collect()

    @rule(pdu=st.sampled_from(_PEER_PDUS), cut=st.integers(0, 80))
    @precondition(lambda self: self.assoc is not None)
    def peer_sends(self, pdu: PDU, cut: int) -> None:
        self._feed(encode_pdu(pdu, strict=False), cut)

    @rule(pdu=st.sampled_from(_POLITE_PDUS), cut=st.integers(0, 80))
    @precondition(lambda self: self.assoc is not None)
    def peer_sends_release_or_data(self, pdu: PDU, cut: int) -> None:
        self._feed(encode_pdu(pdu), cut)

    @rule(pdu=st.sampled_from(_POLITE_PDUS))
    @precondition(lambda self: self.assoc is not None)
    def user_sends_release_or_data(self, pdu: PDU) -> None:
        assert self.assoc is not None
        assoc = self.assoc
        self._user(lambda: assoc.send(pdu, self.now))

    @rule(cut=st.integers(0, 80))
    @precondition(lambda self: self.assoc is not None and self.assoc.request is not None)
    def peer_answers(self, cut: int) -> None:
        assert self.assoc is not None and self.assoc.request is not None
        self._feed(encode_pdu(negotiate(self.assoc.request, make_policy())), cut)

    @rule(data=st.binary(max_size=40))
    @precondition(lambda self: self.assoc is not None)
    def peer_garbage(self, data: bytes) -> None:
        self._feed(data, len(data) // 2)

    @rule()
    @precondition(lambda self: self.assoc is not None)
    def transport_closes(self) -> None:
        assert self.assoc is not None
        self.assoc.transport_closed(self.now)
        self._collect()

    @rule(dt=st.floats(0, 10))
    @precondition(lambda self: self.assoc is not None)
    def time_passes(self, dt: float) -> None:
        assert self.assoc is not None
        self.now += dt
        self.assoc.handle_timeout(self.now)
        self._collect()

    @invariant()
    def consistent(self) -> None:
        if self.assoc is None:
            return
        state = self.assoc.state
        assert state in State
        # ARTIM is running exactly in Sta2 and Sta13 (PS3.8 9.2: AE-5, AE-6/8, AR-4, AA-1/8).
        assert (self.assoc.deadline is not None) == (state in (State.Sta2, State.Sta13))
        if self.assoc.wants_close:
            assert state is State.Sta1
        # Release collision states are never left waiting for the user.
        assert state not in (State.Sta9, State.Sta12)
        if state is State.Sta6:
            assert self.assoc.negotiated is not None


TestAssociationMachine = AssociationMachine.TestCase
TestAssociationMachine.settings = settings(
    max_examples=250,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
