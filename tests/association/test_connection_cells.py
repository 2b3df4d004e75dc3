"""The Association object follows Table 9-10 for every reachable (state, event) cell.

Each state is reached through the public API (Sta9 and Sta12 are left automatically, see the
connection docstring), then each event is raised the way a shell would raise it: PDU bytes,
garbage (Evt19), transport close (Evt17), time (Evt18) or a user primitive. The expected next
state is computed from the implementation's table here, so this test checks that the object
*applies* the table; test_fsm_table.py checks the table against the standard.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from aiodimse.association import Association, Role, State, negotiate
from aiodimse.association.fsm import TABLE, Context, Event
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
from aiodimse.pdu.codec import encode_pdu

from .pair import make_policy, make_rq

RQ = make_rq()
AC = negotiate(RQ, make_policy())
RJ = AAssociateRJ(result=1, source=1, reason=1)
PDATA = PDataTF(pdvs=(PDV(context_id=1, is_command=True, is_last=True, data=b"\x00\x01"),))
ABORT = AAbort(source=0, reason=0)


def _established(role: Role) -> Association:
    a = Association(role)
    if role is Role.REQUESTOR:
        a.send(RQ, 0.0)
        a.transport_connected(0.0)
        a.receive_data(encode_pdu(AC), 0.0)
    else:
        a.transport_connected(0.0)
        a.receive_data(encode_pdu(RQ), 0.0)
        a.send(AC, 0.0)
    assert a.state is State.Sta6
    return a


def _recipe(state: State, role: Role) -> Association:
    if state is State.Sta1:
        return Association(role)
    if state is State.Sta2:
        a = Association(role)
        a.transport_connected(0.0)
        return a
    if state is State.Sta3:
        a = Association(role)
        a.transport_connected(0.0)
        a.receive_data(encode_pdu(RQ), 0.0)
        return a
    if state in (State.Sta4, State.Sta5):
        a = Association(role)
        a.send(RQ, 0.0)
        if state is State.Sta5:
            a.transport_connected(0.0)
        return a
    a = _established(role)
    if state is State.Sta7:
        a.send(AReleaseRQ(), 0.0)
    elif state is State.Sta8:
        a.receive_data(encode_pdu(AReleaseRQ()), 0.0)
    elif state in (State.Sta10, State.Sta11):
        a.send(AReleaseRQ(), 0.0)
        a.receive_data(encode_pdu(AReleaseRQ()), 0.0)
    elif state is State.Sta13:
        a.send(ABORT, 0.0)
    return a


# (state, role) pairs reachable through the API; Sta9 and Sta12 are transient.
REACHABLE = [
    (State.Sta1, Role.REQUESTOR),
    (State.Sta1, Role.ACCEPTOR),
    (State.Sta2, Role.ACCEPTOR),
    (State.Sta3, Role.ACCEPTOR),
    (State.Sta4, Role.REQUESTOR),
    (State.Sta5, Role.REQUESTOR),
    (State.Sta6, Role.REQUESTOR),
    (State.Sta6, Role.ACCEPTOR),
    (State.Sta7, Role.REQUESTOR),
    (State.Sta7, Role.ACCEPTOR),
    (State.Sta8, Role.ACCEPTOR),
    (State.Sta8, Role.REQUESTOR),
    (State.Sta10, Role.ACCEPTOR),
    (State.Sta11, Role.REQUESTOR),
    (State.Sta13, Role.REQUESTOR),
    (State.Sta13, Role.ACCEPTOR),
]

RECEIVED: dict[Event, PDU] = {
    Event.Evt3: AC,
    Event.Evt4: RJ,
    Event.Evt6: RQ,
    Event.Evt10: PDATA,
    Event.Evt12: AReleaseRQ(),
    Event.Evt13: AReleaseRP(),
    Event.Evt16: ABORT,
}
SENT: dict[Event, PDU] = {
    Event.Evt1: RQ,
    Event.Evt7: AC,
    Event.Evt8: RJ,
    Event.Evt9: PDATA,
    Event.Evt11: AReleaseRQ(),
    Event.Evt14: AReleaseRP(),
    Event.Evt15: ABORT,
}
# After an automatic collision step (AR-9 from Sta9, AR-4 from Sta12).
AUTOMATIC = {State.Sta9: State.Sta11, State.Sta12: State.Sta13}


def _raise(a: Association, event: Event) -> Callable[[], None]:
    if event in RECEIVED:
        return lambda: a.receive_data(encode_pdu(RECEIVED[event]), 1.0)
    if event in SENT:
        return lambda: a.send(SENT[event], 1.0)
    if event is Event.Evt19:
        return lambda: a.receive_data(b"\x09\x00\x00\x00\x00\x00", 1.0)
    if event is Event.Evt17:
        return lambda: a.transport_closed(1.0)
    if event is Event.Evt18:
        return lambda: a.handle_timeout(1e9)
    if event is Event.Evt2:
        return lambda: a.transport_connected(1.0)
    assert event is Event.Evt5
    return lambda: a.transport_connected(1.0)


# transport_connected *is* Evt2 for a requestor and Evt5 for an acceptor.
_NOT_RAISABLE = {Role.REQUESTOR: Event.Evt5, Role.ACCEPTOR: Event.Evt2}
CASES = [(s, r, e) for s, r in REACHABLE for e in Event if e is not _NOT_RAISABLE[r]]


@pytest.mark.parametrize(
    ("state", "role", "event"),
    CASES,
    ids=[f"{s.name}-{r.value}-{e.name}" for s, r, e in CASES],
)
def test_association_applies_the_table(state: State, role: Role, event: Event) -> None:
    a = _recipe(state, role)
    assert a.state is state
    raise_it = _raise(a, event)
    action = TABLE.get((state, event))
    role_ok = not (
        (event is Event.Evt1 and role is not Role.REQUESTOR)
        or (event in (Event.Evt7, Event.Evt8) and role is not Role.ACCEPTOR)
    )
    local = event in SENT or event in (Event.Evt2, Event.Evt5)
    if action is None or not role_ok:
        if local:
            with pytest.raises(LocalProtocolError):
                raise_it()
        else:
            raise_it()  # a blank transport/timer/PDU cell: ignored
        assert a.state is state
        return
    if event in RECEIVED or event is Event.Evt19:
        if state in (State.Sta3, State.Sta8):
            raise_it()
            assert a.state is state  # paused until the user answers (connection docstring)
            return
    if event is Event.Evt18 and a.deadline is None:  # pragma: no cover - ARTIM always runs
        raise AssertionError("ARTIM should run in this state")
    pdu = RQ if event is Event.Evt2 else RECEIVED.get(event) or SENT.get(event)
    ctx = Context(state=state, event=event, role=role, pdu=pdu)
    expected = action(ctx).next_state
    expected = AUTOMATIC.get(expected, expected)
    raise_it()
    assert a.state is expected, action.name
    assert (a.deadline is not None) == (a.state in (State.Sta2, State.Sta13))


def _wire_of_request(rq: PDU) -> bytes:
    a = Association(Role.REQUESTOR)
    a.send(rq, 0.0)
    assert a.data_to_send() == []  # Sta4: nothing before the transport is open
    a.transport_connected(0.0)
    return b"".join(bytes(p) for p in a.data_to_send())


def test_each_request_goes_out_as_its_own_bytes() -> None:
    """Encoded A-ASSOCIATE-RQs are reused per object (sequential associations): another
    request, even an equal one, is never sent as the bytes of the previous one."""
    first, other = make_rq(called="FIRST"), make_rq(called="OTHER")
    for rq in (first, first, other, first, make_rq(called="FIRST")):
        assert _wire_of_request(rq) == encode_pdu(rq)


def test_release_pdus_have_their_fixed_bytes() -> None:
    a = _established(Role.REQUESTOR)
    a.data_to_send()
    a.send(AReleaseRQ(), 0.0)
    assert b"".join(bytes(p) for p in a.data_to_send()) == b"\x05\x00" + (4).to_bytes(
        4, "big"
    ) + bytes(4)
    b = _established(Role.ACCEPTOR)
    b.data_to_send()
    b.receive_data(encode_pdu(AReleaseRQ()), 0.0)
    b.send(AReleaseRP(), 0.0)
    assert b"".join(bytes(p) for p in b.data_to_send()) == b"\x06\x00" + (4).to_bytes(
        4, "big"
    ) + bytes(4)


@pytest.mark.parametrize("role", [Role.REQUESTOR, Role.ACCEPTOR])
def test_pdata_cells_same_with_and_without_transition_logging(
    role: Role, caplog: pytest.LogCaptureFixture
) -> None:
    """Sta6 + Evt9 (DT-1) and Sta6 + Evt10 (DT-2) are applied directly unless transitions
    are logged, when they go through the table: both ways give the same bytes, events and
    state, and both refuse a context that was not accepted."""
    import logging

    def run(debug: bool) -> tuple[object, ...]:
        level = logging.DEBUG if debug else logging.WARNING
        caplog.set_level(level, logger="aiodimse.association")
        a = _established(role)
        a.data_to_send()
        while a.next_event() is not None:
            pass
        a.send(PDATA, 0.0)
        out = b"".join(bytes(p) for p in a.data_to_send())
        a.receive_data(encode_pdu(PDATA), 0.0)
        ev = a.next_event()
        with pytest.raises(LocalProtocolError):
            a.send(
                PDataTF(pdvs=(PDV(context_id=9, is_command=True, is_last=True, data=b"x"),)), 0.0
            )
        state_after_send = a.state
        a.receive_data(
            encode_pdu(
                PDataTF(pdvs=(PDV(context_id=9, is_command=True, is_last=True, data=b"x"),))
            ),
            0.0,
        )
        return out, ev, state_after_send, a.state, b"".join(bytes(p) for p in a.data_to_send())

    fast, table = run(False), run(True)
    assert fast == table
    out, ev, state_after_send, final, abort = fast
    assert out == encode_pdu(PDATA) and ev == PDATA and state_after_send is State.Sta6
    assert final is State.Sta13 and abort[:1] == b"\x07"  # A-ABORT for the unaccepted context


@pytest.mark.parametrize("role", [Role.REQUESTOR, Role.ACCEPTOR])
def test_send_command_set_is_the_one_pdv_pdata_tf_or_refuses(role: Role) -> None:
    """``send_command_set`` queues exactly the bytes ``send`` gives for the one-PDV
    P-DATA-TF (command, last fragment), independently encoded here; it refuses (False,
    nothing queued, no state change) an unaccepted context, a command set longer than the
    peer's maximum PDU, and any state but Sta6."""
    command = bytes(range(40))
    a = _established(role)
    a.data_to_send()
    assert a.send_command_set(1, command)
    sent = b"".join(bytes(p) for p in a.data_to_send())
    pdv_item = (2 + len(command)).to_bytes(4, "big") + bytes([1, 0x03]) + command
    assert sent == b"\x04\x00" + len(pdv_item).to_bytes(4, "big") + pdv_item
    assert sent == encode_pdu(
        PDataTF(pdvs=(PDV(context_id=1, is_command=True, is_last=True, data=command),))
    )
    assert a.state is State.Sta6
    assert not a.send_command_set(9, command)  # context 9 was never accepted
    negotiated = a.negotiated
    assert negotiated is not None
    assert not a.send_command_set(1, bytes(negotiated.peer_max_pdu - 5))  # one byte too long
    assert a.send_command_set(1, bytes(negotiated.peer_max_pdu - 6))  # exactly fits
    a.data_to_send()
    if role is Role.REQUESTOR:
        a.send(AReleaseRQ(), 0.0)  # Sta7: awaiting the A-RELEASE-RP
    else:
        a.receive_data(encode_pdu(AReleaseRQ()), 0.0)  # Sta8: our answer awaited
    assert a.state is not State.Sta6
    a.data_to_send()
    assert not a.send_command_set(1, command) and a.data_to_send() == []
