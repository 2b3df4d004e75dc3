"""Fuzz an acceptor Association with arbitrary bytes in arbitrary pieces.

Invariant: whatever bytes arrive, in whatever pieces, the acceptor never raises (this harness
makes only valid user calls, so not even LocalProtocolError), is always in one of the 13 PS3.8
states with ARTIM running exactly in Sta2 and Sta13, and everything it writes decodes as a
sequence of valid PDUs; once it has written an A-ABORT it writes nothing but A-ABORTs.

The harness plays a user that answers every A-ASSOCIATE-RQ through ``negotiate`` and every
A-RELEASE-RQ with A-RELEASE-RP, and a transport that closes when asked to.

Input layout: byte 0 = piece size - 1 (1..256 bytes per ``receive_data``), byte 1 bit 0 =
use the zero-copy ``get_buffer``/``buffer_updated`` path, bit 1 = let ARTIM expire between
pieces; the rest is the peer's byte stream.

Run: ``.venv/bin/python fuzz/fuzz_acceptor.py -max_total_time=60 fuzz/corpus/acceptor``.
``test_one_input`` is importable without atheris (tests/association run it on the corpus).
"""

from __future__ import annotations

import logging
import sys

if __name__ == "__main__":  # instrument only our package for coverage feedback
    import atheris  # type: ignore[import-not-found,unused-ignore]

    with atheris.instrument_imports(include=["aiodimse"]):
        import aiodimse.association
        import aiodimse.pdu.codec  # noqa: F401

from aiodimse.association import (
    AcceptorPolicy,
    Association,
    CloseRequested,
    Role,
    State,
    negotiate,
)
from aiodimse.config import Limits
from aiodimse.constants import (
    EXPLICIT_VR_LITTLE_ENDIAN,
    IMPLICIT_VR_LITTLE_ENDIAN,
    VERIFICATION_SOP_CLASS,
)
from aiodimse.pdu import AAbort, AAssociateRQ, AReleaseRP, AReleaseRQ, UserInformation
from aiodimse.pdu.codec import PDUDecoder

LIMITS = Limits(max_pdu_length=16384)
POLICY = AcceptorPolicy(
    ae_title=None,
    supported={
        VERIFICATION_SOP_CLASS: (IMPLICIT_VR_LITTLE_ENDIAN,),
        "1.2.840.10008.5.1.4.1.1.2": (EXPLICIT_VR_LITTLE_ENDIAN, IMPLICIT_VR_LITTLE_ENDIAN),
    },
    scp_roles={"1.2.840.10008.5.1.4.1.1.2": (True, True)},
    async_operations_window=(4, 4),
    user_information=UserInformation(),
    limits=LIMITS,
)
ARTIM = 30.0


class _Wire:
    """What the acceptor wrote, decoded back, with the 'nothing after an abort' check."""

    def __init__(self) -> None:
        self.decoder = PDUDecoder(Limits(max_pdu_length=1 << 24))
        self.aborted = False

    def take(self, assoc: Association) -> None:
        for part in assoc.data_to_send():
            self.decoder.feed(part)
        while (pdu := self.decoder.next_pdu()) is not None:  # raises on anything invalid
            if self.aborted:
                assert isinstance(pdu, AAbort), f"{pdu!r} written after an A-ABORT"
            self.aborted = self.aborted or isinstance(pdu, AAbort)


def _check(assoc: Association) -> None:
    state = assoc.state
    assert isinstance(state, State)
    assert (assoc.deadline is not None) == (state in (State.Sta2, State.Sta13)), state
    assert state not in (State.Sta4, State.Sta5), "an acceptor never requests"


def _serve(assoc: Association, wire: _Wire, now: float) -> bool:
    """Answer events like a user would; return False once the transport should close."""
    open_ = True
    while (event := assoc.next_event()) is not None:
        if isinstance(event, AAssociateRQ):
            assoc.send(negotiate(event, POLICY), now)
        elif isinstance(event, AReleaseRQ):
            assoc.send(AReleaseRP(), now)
        elif isinstance(event, CloseRequested):
            open_ = False
        wire.take(assoc)
    wire.take(assoc)
    return open_


def test_one_input(data: bytes) -> None:
    """Run one input; raise AssertionError (or anything else) if the invariant breaks."""
    if len(data) < 2:
        return
    piece = data[0] + 1
    zero_copy = bool(data[1] & 1)
    expire = bool(data[1] & 2)
    stream = data[2:]
    assoc = Association(Role.ACCEPTOR, limits=LIMITS, artim_timeout=ARTIM)
    wire = _Wire()
    now = 0.0
    assoc.transport_connected(now)
    _check(assoc)
    open_ = True
    for start in range(0, len(stream), piece):
        chunk = stream[start : start + piece]
        now += 1.0
        if zero_copy:
            buf = assoc.get_buffer(len(chunk))
            buf[: len(chunk)] = chunk
            assoc.buffer_updated(len(chunk), now)
        else:
            assoc.receive_data(chunk, now)
        open_ = _serve(assoc, wire, now)
        _check(assoc)
        if expire and assoc.deadline is not None:
            now = assoc.deadline
            assoc.handle_timeout(now)
            open_ = _serve(assoc, wire, now) and open_
            _check(assoc)
        if not open_ or assoc.state is State.Sta1:
            break
    assoc.transport_closed(now + 1.0)
    _serve(assoc, wire, now + 1.0)
    assert assoc.state is State.Sta1
    assert assoc.deadline is None
    assert assoc.data_to_send() == []


def main() -> None:
    import atheris  # type: ignore[import-not-found,unused-ignore]

    logging.disable(logging.CRITICAL)
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
