# ruff: noqa: E501  (the transcribed Table 9-10 grid is wider than 100 columns)
"""PS3.8 Table 9-10, cell by cell, against ``aiodimse.association.fsm.TABLE``.

The grid below is transcribed by hand from PS3.8 9.2.3 Table 9-10 (rows: events, columns:
states). A cell is ``ACTION:NEXT`` where NEXT is the next state number given for the action in
Tables 9-6..9-9; ``AE-6:3|13`` means Sta3 if the A-ASSOCIATE-RQ is acceptable by the service
provider, Sta13 otherwise; ``AR-8:9|10`` means Sta9 for the association-requestor, Sta10 for
the acceptor. ``.`` is a blank cell. Nothing here is imported from the implementation's table.
"""

from __future__ import annotations

import pytest

from aiodimse.association.fsm import (
    TABLE,
    Context,
    Event,
    Role,
    SendPDU,
    State,
    next_states,
    state_diagram_mermaid,
)
from aiodimse.errors import RemoteProtocolError
from aiodimse.pdu import (
    PDU,
    AAbort,
    AAssociateAC,
    AAssociateRJ,
    AAssociateRQ,
    AReleaseRP,
    AReleaseRQ,
    PDataTF,
)

# fmt: off
GRID = """
       Sta1   Sta2      Sta3    Sta4   Sta5    Sta6    Sta7     Sta8    Sta9    Sta10    Sta11   Sta12   Sta13
Evt1   AE-1:4 .         .       .      .       .       .        .       .       .        .       .       .
Evt2   .      .         .       AE-2:5 .       .       .        .       .       .        .       .       .
Evt3   .      AA-1:13   AA-8:13 .      AE-3:6  AA-8:13 AA-8:13  AA-8:13 AA-8:13 AA-8:13  AA-8:13 AA-8:13 AA-6:13
Evt4   .      AA-1:13   AA-8:13 .      AE-4:1  AA-8:13 AA-8:13  AA-8:13 AA-8:13 AA-8:13  AA-8:13 AA-8:13 AA-6:13
Evt5   AE-5:2 .         .       .      .       .       .        .       .       .        .       .       .
Evt6   .      AE-6:3|13 AA-8:13 .      AA-8:13 AA-8:13 AA-8:13  AA-8:13 AA-8:13 AA-8:13  AA-8:13 AA-8:13 AA-7:13
Evt7   .      .         AE-7:6  .      .       .       .        .       .       .        .       .       .
Evt8   .      .         AE-8:13 .      .       .       .        .       .       .        .       .       .
Evt9   .      .         .       .      .       DT-1:6  .        AR-7:8  .       .        .       .       .
Evt10  .      AA-1:13   AA-8:13 .      AA-8:13 DT-2:6  AR-6:7   AA-8:13 AA-8:13 AA-8:13  AA-8:13 AA-8:13 AA-6:13
Evt11  .      .         .       .      .       AR-1:7  .        .       .       .        .       .       .
Evt12  .      AA-1:13   AA-8:13 .      AA-8:13 AR-2:8  AR-8:9|10 AA-8:13 AA-8:13 AA-8:13 AA-8:13 AA-8:13 AA-6:13
Evt13  .      AA-1:13   AA-8:13 .      AA-8:13 AA-8:13 AR-3:1   AA-8:13 AA-8:13 AR-10:12 AR-3:1  AA-8:13 AA-6:13
Evt14  .      .         .       .      .       .       .        AR-4:13 AR-9:11 .        .       AR-4:13 .
Evt15  .      .         AA-1:13 AA-2:1 AA-1:13 AA-1:13 AA-1:13  AA-1:13 AA-1:13 AA-1:13  AA-1:13 AA-1:13 .
Evt16  .      AA-2:1    AA-3:1  .      AA-3:1  AA-3:1  AA-3:1   AA-3:1  AA-3:1  AA-3:1   AA-3:1  AA-3:1  AA-2:1
Evt17  .      AA-5:1    AA-4:1  AA-4:1 AA-4:1  AA-4:1  AA-4:1   AA-4:1  AA-4:1  AA-4:1   AA-4:1  AA-4:1  AR-5:1
Evt18  .      AA-2:1    .       .      .       .       .        .       .       .        .       .       AA-2:1
Evt19  .      AA-1:13   AA-8:13 .      AA-8:13 AA-8:13 AA-8:13  AA-8:13 AA-8:13 AA-8:13  AA-8:13 AA-8:13 AA-7:13
"""
# fmt: on


def _parse_grid() -> dict[tuple[str, str], str]:
    lines = [line.split() for line in GRID.strip().splitlines()]
    header, rows = lines[0], lines[1:]
    assert header == [f"Sta{i}" for i in range(1, 14)]
    cells: dict[tuple[str, str], str] = {}
    assert [r[0] for r in rows] == [f"Evt{i}" for i in range(1, 20)]
    for row in rows:
        assert len(row) == 14, row
        for state, cell in zip(header, row[1:], strict=True):
            cells[(state, row[0])] = cell
    return cells


CELLS = _parse_grid()

_RQ = AAssociateRQ(called_ae_title="ANY-SCP", calling_ae_title="ECHOSCU", presentation_contexts=())
_AC = AAssociateAC(called_ae_title="ANY-SCP", calling_ae_title="ECHOSCU", presentation_contexts=())
_RJ = AAssociateRJ(result=1, source=1, reason=7)
_PDATA = PDataTF(pdvs=())
_USER_ABORT = AAbort(source=0, reason=0)
# Which PDU accompanies each event (received or asked to be sent).
_EVENT_PDU: dict[int, PDU] = {
    1: _RQ, 2: _RQ, 3: _AC, 4: _RJ, 6: _RQ, 7: _AC, 8: _RJ, 9: _PDATA, 10: _PDATA,
    11: AReleaseRQ(), 12: AReleaseRQ(), 13: AReleaseRP(), 14: AReleaseRP(), 15: _USER_ABORT,
    16: _USER_ABORT,
}  # fmt: skip
_PROVIDER_RJ = AAssociateRJ(result=1, source=2, reason=2)
_DECODE_ERROR = RemoteProtocolError("bad PDU", abort_reason=6)  # type: ignore[arg-type]

# PS3.8 9.3.8 / Table 9-9: the A-ABORT each abort action puts on the wire, (source, reason).
#  AA-1 on a PDU in Sta2: service-user source (0), reason 0.
#  AA-1 on Evt15: the user's own A-ABORT.
#  AA-7 / AA-8: service-provider source (2); reason 2 (unexpected PDU) for a valid PDU in the
#  wrong state, the decoder's reason (here 6) for Evt19.


def _expected_abort(action: str, event: int) -> tuple[int, int] | None:
    if action == "AA-1":
        return (0, 0)
    if action in ("AA-7", "AA-8"):
        return (2, 6) if event == 19 else (2, 2)
    return None


def _context(state: int, event: int, role: Role, rejection: AAssociateRJ | None) -> Context:
    return Context(
        state=State(state),
        event=Event(event),
        role=role,
        pdu=_EVENT_PDU.get(event),
        error=_DECODE_ERROR if event == 19 else None,
        rejection=rejection,
    )


ALL_CELLS = [(s, e) for e in range(1, 20) for s in range(1, 14)]


@pytest.mark.parametrize(
    ("state", "event"), ALL_CELLS, ids=[f"Sta{s}-Evt{e}" for s, e in ALL_CELLS]
)
def test_cell(state: int, event: int) -> None:
    cell = CELLS[(f"Sta{state}", f"Evt{event}")]
    action = TABLE.get((State(state), Event(event)))
    if cell == ".":
        assert action is None, f"blank cell has {action}"
        return
    name, nxt = cell.split(":")
    assert action is not None, f"expected {name}"
    assert action.name == name

    # Every branch of the action: (role, provider verdict) -> expected next state.
    branches: list[tuple[Role, AAssociateRJ | None, int]] = []
    if name == "AE-6":
        ok, rejected = (int(x) for x in nxt.split("|"))
        branches = [(Role.ACCEPTOR, None, ok), (Role.ACCEPTOR, _PROVIDER_RJ, rejected)]
    elif name == "AR-8":
        req, acc = (int(x) for x in nxt.split("|"))
        branches = [(Role.REQUESTOR, None, req), (Role.ACCEPTOR, None, acc)]
    else:
        branches = [(r, None, int(nxt)) for r in Role]

    for role, rejection, expected in branches:
        result = action(_context(state, event, role, rejection))
        assert result.next_state is State(expected), (role, rejection)
        sent = [e.pdu for e in result.effects if isinstance(e, SendPDU)]
        aborts = [p for p in sent if isinstance(p, AAbort)]
        want = _expected_abort(name, event)
        if want is None:
            assert aborts == []
        else:
            assert [(a.source, a.reason) for a in aborts] == [want]
        if name == "AE-6" and rejection is not None:
            assert sent == [_PROVIDER_RJ]


def test_cell_count() -> None:
    assert len(CELLS) == 13 * 19 == 247
    filled = sum(1 for c in CELLS.values() if c != ".")
    assert filled == len(TABLE) == 123


def test_agrees_with_pynetdicom_transition_table() -> None:
    """An independent transcription (pynetdicom's ``fsm.TRANSITION_TABLE``) agrees too."""
    fsm = pytest.importorskip("pynetdicom.fsm")
    theirs = {(s, e): a for (e, s), a in fsm.TRANSITION_TABLE.items()}
    ours = {(s.name, e.name): a.name for (s, e), a in TABLE.items()}
    assert ours == theirs


def test_next_states_cover_branches() -> None:
    assert next_states(State.Sta2, Event.Evt6) == {State.Sta3, State.Sta13}
    assert next_states(State.Sta7, Event.Evt12) == {State.Sta9, State.Sta10}
    assert next_states(State.Sta1, Event.Evt3) == frozenset()


def test_mermaid_diagram_lists_every_cell() -> None:
    text = state_diagram_mermaid()
    assert text.startswith("stateDiagram-v2\n")
    for (_state, event), action in TABLE.items():
        assert f"{event.name}/{action.name}" in text
    assert "Sta7 --> Sta9: " in text and "Evt12/AR-8" in text
    assert ";" not in text
