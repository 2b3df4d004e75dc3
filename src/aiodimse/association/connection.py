"""The sans-I/O association: PS3.8 9.2 state machine + PDU codec, no sockets, no clock.

Theory of operation
-------------------
An :class:`Association` is one end of one transport connection. It is driven by four kinds
of input and produces three kinds of output; it never blocks, reads a clock or touches a
socket (like h11's ``Connection`` and aioquic's ``QuicConnection``):

Inputs
  * transport notifications: :meth:`~Association.transport_connected` (requestor: Evt2,
    acceptor: Evt5), :meth:`~Association.receive_data` or the zero-copy pair
    :meth:`~Association.get_buffer`/:meth:`~Association.buffer_updated` (every complete PDU
    raises its event Evt3..Evt16, an undecodable one Evt19),
    :meth:`~Association.transport_closed` (Evt17);
  * the timer: :meth:`~Association.handle_timeout` raises Evt18 once ``now`` has reached
    :attr:`~Association.deadline` (ARTIM, PS3.8 9.1.5);
  * user primitives: :meth:`~Association.send` with the PDU value that *is* the request or
    response (A-ASSOCIATE-RQ -> Evt1, AC -> Evt7, RJ -> Evt8, P-DATA-TF -> Evt9,
    A-RELEASE-RQ -> Evt11, A-RELEASE-RP -> Evt14, A-ABORT -> Evt15). A primitive the table
    does not allow in the current state raises :class:`~aiodimse.errors.LocalProtocolError`
    and changes nothing;
  * ``now``: every call takes the caller's monotonic time in seconds.

Outputs
  * :meth:`~Association.data_to_send`: the bytes to write, as a gather list (P-DATA payloads
    are the caller's buffers, not copies);
  * :meth:`~Association.next_event`: indications and confirmations for the user, in order
    (see :mod:`aiodimse.association.events`): the received PDUs themselves, ``ProviderAbort``,
    ``ConnectRequested`` (AE-1), ``CloseRequested`` and ``TransportClosed``;
  * :attr:`~Association.deadline` (ARTIM), :attr:`~Association.wants_transport_open` and
    :attr:`~Association.wants_close` (the same facts as the ``ConnectRequested`` /
    ``CloseRequested`` events, as flags for a shell that polls).

A shell loop is therefore: feed input; write ``data_to_send()``; handle every
``next_event()``; if ``wants_close``, close the transport after writing; re-arm one timer at
``deadline``.

Peer faults never raise. An undecodable PDU, an A-ASSOCIATE-AC that accepts a context we did
not propose or a transfer syntax we did not offer (ROBUSTNESS 20), or a P-DATA-TF on a
context that was not accepted (ROBUSTNESS 7) is Evt19: the table's answer (AA-8: A-ABORT with
source 2 and the error's reason, A-P-ABORT indication, ARTIM) is queued, and no further byte
from the peer is decoded. In Sta2 the table's AA-1 applies (A-ABORT, source 0).

Pausing: while the association waits for the local user's response (Sta3: A-ASSOCIATE
response; Sta8: A-RELEASE response), received bytes are buffered but not processed until the
user has answered with :meth:`~Association.send`, which then processes them. PS3.8 leaves to
the implementation when the transport is read, and a correct peer sends nothing in these
states; so a user answering an indication is never refused because a later PDU in the same
read already moved the state on. More than 64 KiB buffered meanwhile is processed at once
(memory stays bounded; the table then aborts).

Choices the standard leaves open, made here:
  * Release collision (Sta9..Sta12) is answered automatically (AR-9 and AR-4 are issued by
    this object and the collision's A-RELEASE indication is not shown), so a user who sent
    A-RELEASE-RQ just sees the ``AReleaseRP`` confirmation, as requestor or acceptor
    (ROBUSTNESS 16).
  * The service provider's AE-6 check is :func:`~aiodimse.association.negotiation.
    provider_rejection` (protocol version bit 0, PS3.8 9.3.2 -> RJ 1, 2, 2).
  * Transport notifications in a blank cell (bytes while Sta1/Sta4, a close in Sta1, ARTIM
    expiry when it is not running) are ignored; transport_connected in the wrong state is
    misuse and raises.
  * After a negotiated association, :attr:`~Association.negotiated` holds what was agreed.
    Outgoing P-DATA must use accepted contexts and fit the peer's maximum length.
"""

from __future__ import annotations

import logging
import struct
from collections import deque

from ..config import Limits
from ..constants import AbortReason
from ..errors import LocalProtocolError, PDUDecodeError, RemoteProtocolError
from ..pdu.codec import PDUDecoder, encode_pdu
from ..pdu.pdus import (
    PDU,
    AAssociateAC,
    AAssociateRJ,
    AAssociateRQ,
    AReleaseRP,
    AReleaseRQ,
    PDataTF,
    pdata_tf_parts,
)
from .events import (
    AssociationEvent,
    CloseRequested,
    ConnectRequested,
    TransportClosed,
)
from .fsm import (
    AR_8,
    PDU_EVENTS,
    TABLE,
    USER_PDU_EVENTS,
    CloseTransport,
    Context,
    Effect,
    Event,
    Indicate,
    OpenTransport,
    Role,
    SendPDU,
    StartARTIM,
    State,
    StopARTIM,
)
from .negotiation import Negotiated, check_accept, provider_rejection

log = logging.getLogger("aiodimse.association")

#: A P-DATA-TF holding one PDV: PDU type, reserved, PDU length, item length, presentation
#: context ID, message control header (PS3.8 9.3.5.1).
_ONE_PDV = struct.Struct(">BBIIBB")
_NO_TRANSPORT = (State.Sta1, State.Sta4)
# States that wait for the local user's response primitive; see "Pausing" in the docstring.
_AWAITING_USER = (State.Sta3, State.Sta8)
_AWAITING_USER_BUFFER_CAP = 64 * 1024
_DEFAULT_LIMITS = Limits()

Buffer = bytes | memoryview


#: The last A-ASSOCIATE-RQ encoded and its bytes (held, so the identity test is sound).
_RQ_MEMO: list[tuple[AAssociateRQ, bytes]] = []
#: PS3.8 9.3.6-9.3.7: the release PDUs have no parameters (their bytes never change).
_RELEASE_BYTES: dict[type[PDU], bytes] = {
    AReleaseRQ: encode_pdu(AReleaseRQ()),
    AReleaseRP: encode_pdu(AReleaseRP()),
}


def _debug() -> bool:
    """Whether transitions are logged (then every one goes through the table)."""
    return log.isEnabledFor(logging.DEBUG)


class Association:
    """One end of one DICOM association (PS3.8 9.2), sans I/O. See the module docstring."""

    def __init__(
        self, role: Role, *, limits: Limits = _DEFAULT_LIMITS, artim_timeout: float = 30.0
    ) -> None:
        if artim_timeout <= 0:
            raise ValueError("artim_timeout must be positive")
        self._role = role
        self._limits = limits
        self._artim_timeout = artim_timeout
        self._state = State.Sta1
        self._decoder = PDUDecoder(limits)
        self._rx_stopped = False
        self._out: list[Buffer] = []
        self._events: deque[AssociationEvent] = deque()
        self._deadline: float | None = None
        self._wants_open = False
        self._wants_close = False
        self._request: AAssociateRQ | None = None
        self._negotiated: Negotiated | None = None
        self._encoded: tuple[PDU, list[Buffer]] | None = None
        # Our A-ASSOCIATE-RQ, encoded once: issued in Sta1 (Evt1), sent on Evt2 (AE-2).
        self._request_parts: list[Buffer] | None = None
        #: Debug logging of transitions, decided once per association (as the channel's
        #: own): on, every event goes through the table and is logged.
        self._trace = _debug()

    # -- introspection ---------------------------------------------------------------

    @property
    def role(self) -> Role:
        return self._role

    @property
    def state(self) -> State:
        """The current PS3.8 state (Sta1..Sta13)."""
        return self._state

    @property
    def limits(self) -> Limits:
        return self._limits

    @property
    def deadline(self) -> float | None:
        """When ARTIM expires (caller's clock), or ``None`` when it is not running."""
        return self._deadline

    @property
    def wants_transport_open(self) -> bool:
        """AE-1 asked for a transport connection that is not yet reported connected."""
        return self._wants_open

    @property
    def wants_close(self) -> bool:
        """The state machine closed the transport: write ``data_to_send()``, then close."""
        return self._wants_close

    @property
    def request(self) -> AAssociateRQ | None:
        """The A-ASSOCIATE-RQ of this association: ours as requestor, the peer's as acceptor."""
        return self._request

    @property
    def negotiated(self) -> Negotiated | None:
        """What was agreed, once an A-ASSOCIATE-AC was sent (acceptor) or accepted (requestor)."""
        return self._negotiated

    @property
    def buffered_bytes(self) -> int:
        """Bytes received and not yet decoded as PDUs (a partial PDU, or paused input)."""
        return self._decoder.buffered_bytes

    @property
    def is_established(self) -> bool:
        """Sta6: ready for data transfer."""
        return self._state is State.Sta6

    # -- outputs ---------------------------------------------------------------------

    @property
    def has_data_to_send(self) -> bool:
        """True when :meth:`data_to_send` would return something."""
        return bool(self._out)

    def data_to_send(self) -> list[Buffer]:
        """Everything queued for the transport since the last call, in order (drained)."""
        out, self._out = self._out, []
        return out

    def next_event(self) -> AssociationEvent | None:
        """The next event for the user, or ``None`` when there is none (drained in order)."""
        return self._events.popleft() if self._events else None

    # -- transport notifications ------------------------------------------------------

    def transport_connected(self, now: float) -> None:
        """The transport is open: Evt2 (requestor, Sta4) or Evt5 (acceptor, Sta1)."""
        if self._role is Role.REQUESTOR:
            if self._state is not State.Sta4:
                raise LocalProtocolError(f"transport_connected in {self._state.name}, not Sta4")
            event = Event.Evt2
        else:
            if self._state is not State.Sta1:
                raise LocalProtocolError(f"transport_connected in {self._state.name}, not Sta1")
            event = Event.Evt5
            self._request = None
            self._negotiated = None
        self._decoder = PDUDecoder(self._limits)
        self._rx_stopped = False
        self._wants_open = False
        self._wants_close = False
        self._run(event, now, pdu=self._request if event is Event.Evt2 else None)

    def receive_data(self, data: bytes | bytearray | memoryview, now: float) -> None:
        """Bytes from the peer (copied into the decoder); runs the events of complete PDUs."""
        if not self._receiving():
            if data:
                log.debug("discarding %d bytes received in %s", len(data), self._state.name)
            return
        self._decoder.feed(data)
        self._drain(now)

    def get_buffer(self, sizehint: int = -1) -> memoryview:
        """Writable space for received bytes (zero-copy variant of :meth:`receive_data`)."""
        return self._decoder.get_buffer(sizehint)

    def buffer_updated(self, nbytes: int, now: float) -> None:
        """``nbytes`` were written at the start of the last :meth:`get_buffer` view."""
        self._decoder.buffer_updated(nbytes)
        if self._receiving():
            self._drain(now)

    def buffer_filled(self, nbytes: int) -> None:
        """Commit ``nbytes`` written into the last :meth:`get_buffer` view *without* decoding
        them yet; :meth:`process_received` decodes everything committed so far.

        For a shell that reads in a transport callback (several reads may land before its
        reader runs) while the state machine advances only when its reader asks.
        """
        self._decoder.buffer_updated(nbytes)

    def process_received(self, now: float) -> None:
        """Run the events of the complete PDUs committed by :meth:`buffer_filled`."""
        self._drain(now)  # which checks _receiving() first

    def transport_closed(self, now: float) -> None:
        """The transport connection is closed (Evt17); ignored in Sta1 (already closed)."""
        self._wants_open = False
        self._wants_close = False
        self._rx_stopped = True
        if self._state is State.Sta1:
            return
        self._run(Event.Evt17, now)
        self._events.append(TransportClosed())

    def release_buffers(self) -> None:
        """Nothing more will be received: the decoder's receive buffer goes back to the
        shared pool when nothing still refers to it (:meth:`PDUDecoder.recycle`)."""
        self._decoder.recycle()

    def handle_timeout(self, now: float) -> None:
        """Evt18 if the ARTIM deadline has passed; otherwise nothing."""
        if self._deadline is None or now < self._deadline:
            return
        if (self._state, Event.Evt18) not in TABLE:  # pragma: no cover - ARTIM runs in 2, 13
            self._deadline = None
            return
        log.info("ARTIM expired in %s", self._state.name)
        self._run(Event.Evt18, now)

    # -- user primitives --------------------------------------------------------------

    def send(self, pdu: PDU, now: float) -> None:
        """Issue the request/response primitive that ``pdu`` is (see the module docstring).

        Raises :class:`~aiodimse.errors.LocalProtocolError` if the primitive is not allowed
        in this state or for this role, or ``pdu`` is invalid; nothing changes then.
        """
        if type(pdu) is PDataTF and self._state is State.Sta6 and not self._trace:
            # The commonest cell, applied directly: Sta6 + Evt9 -> DT-1, send the P-DATA-TF
            # PDU and stay in Sta6 (PS3.8 Table 9-7); the same checks as below.
            self._check_outgoing(pdu)
            self._out.extend(self._encode(pdu))
            return
        event = USER_PDU_EVENTS.get(type(pdu))
        if event is None:
            raise LocalProtocolError(f"{type(pdu).__name__} is not a PDU")
        if (event is Event.Evt1 and self._role is not Role.REQUESTOR) or (
            event in (Event.Evt7, Event.Evt8) and self._role is not Role.ACCEPTOR
        ):
            raise LocalProtocolError(
                f"an association {self._role.value} cannot send {type(pdu).__name__}"
            )
        if (self._state, event) not in TABLE:
            raise LocalProtocolError(
                f"cannot send {type(pdu).__name__} ({event.name}) in {self._state.name}: "
                f"{self._state.description}"
            )
        negotiated = self._check_outgoing(pdu)
        parts = self._encode(pdu)
        before = self._state
        if isinstance(pdu, AAssociateRQ):
            self._request = pdu
            self._request_parts = parts
            self._negotiated = None
        if negotiated is not None:
            self._negotiated = negotiated
        self._encoded = (pdu, parts)
        try:
            self._run(event, now, pdu=pdu)
        finally:
            self._encoded = None
        if before in _AWAITING_USER and self._receiving():
            self._drain(now)  # PDUs that arrived while we waited for the user

    def send_command_set(self, context_id: int, command: bytes) -> bool:
        """Send ``command``, an encoded DIMSE command set with no dataset after it, as one
        P-DATA-TF of one PDV, its last fragment (PS3.8 E.2: message control header 03H):
        what :meth:`send` does with such a PDU, without the PDU being built. False, nothing
        queued, when this shortcut does not apply (not in Sta6, transitions being logged,
        a context not accepted, longer than the peer's maximum PDU length): then fragment
        it and use :meth:`send`."""
        agreed = self._negotiated
        if self._state is not State.Sta6 or agreed is None or self._trace:
            return False
        n = len(command)
        if not 0 < n <= agreed.peer_max_pdu - 6 or context_id not in agreed.accepted:
            return False
        # Sta6 + Evt9 -> DT-1: send the P-DATA-TF PDU, stay in Sta6 (PS3.8 Table 9-7).
        self._out.append(_ONE_PDV.pack(0x04, 0, 6 + n, 2 + n, context_id, 0x03))
        self._out.append(command)
        return True

    # -- internals --------------------------------------------------------------------

    def _receiving(self) -> bool:
        return not self._rx_stopped and self._state not in _NO_TRANSPORT

    def _encode(self, pdu: PDU) -> list[Buffer]:
        try:
            if isinstance(pdu, PDataTF):
                if not pdu.pdvs:
                    raise LocalProtocolError("a P-DATA-TF needs at least one PDV (PS3.8 9.3.5)")
                return pdata_tf_parts(pdu.pdvs)
            fixed = _RELEASE_BYTES.get(type(pdu))
            if fixed is not None:
                return [fixed]
            if type(pdu) is AAssociateRQ:
                # A requestor usually sends the same (frozen) RQ on association after
                # association: encode that object once.
                if not _RQ_MEMO or _RQ_MEMO[0][0] is not pdu:
                    _RQ_MEMO[:] = [(pdu, encode_pdu(pdu))]
                return [_RQ_MEMO[0][1]]
            return [encode_pdu(pdu)]
        except (ValueError, TypeError) as exc:
            raise LocalProtocolError(f"cannot encode {type(pdu).__name__}: {exc}") from exc

    def _check_outgoing(self, pdu: PDU) -> Negotiated | None:
        if isinstance(pdu, AAssociateRQ | AAssociateAC):
            ours = pdu.user_information.maximum_length
            if ours is None or not 0 < ours <= self._limits.max_pdu_length:
                # PS3.8 D.1: what we advertise is what the decoder enforces.
                raise LocalProtocolError(
                    f"our Maximum Length sub-item must be 1..{self._limits.max_pdu_length} "
                    f"(limits.max_pdu_length), got {ours}"
                )
        if isinstance(pdu, AAssociateAC):
            assert self._request is not None  # Evt7 only exists in Sta3
            try:
                return check_accept(self._request, pdu, self._limits, role=Role.ACCEPTOR)
            except RemoteProtocolError as exc:
                raise LocalProtocolError(f"our A-ASSOCIATE-AC does not fit the RQ: {exc}") from exc
        if isinstance(pdu, PDataTF):
            agreed = self._negotiated
            assert agreed is not None  # Evt9 only exists in Sta6 and Sta8
            total = 0
            for pdv in pdu.pdvs:
                if pdv.context_id not in agreed.accepted:
                    raise LocalProtocolError(
                        f"presentation context {pdv.context_id} was not accepted"
                    )
                total += 6 + len(pdv.data)
            if total > agreed.peer_max_pdu:
                raise LocalProtocolError(
                    f"P-DATA-TF of {total} bytes exceeds the peer's maximum {agreed.peer_max_pdu}"
                )
        return None

    def _drain(self, now: float) -> None:
        decoder = self._decoder
        # _receiving(), inlined: checked before every PDU (an event may stop reception).
        while not self._rx_stopped and self._state not in _NO_TRANSPORT:
            if (
                self._state in _AWAITING_USER
                and decoder.buffered_bytes <= _AWAITING_USER_BUFFER_CAP
            ):
                return  # resumed by send() once the user has answered
            try:
                pdu = decoder.next_pdu()
            except PDUDecodeError as exc:
                log.warning("invalid PDU from the peer in %s: %s", self._state.name, exc)
                self._peer_fault(exc, now)
                return
            if pdu is None:
                return
            self._on_pdu(pdu, now)

    def _peer_fault(self, error: RemoteProtocolError, now: float) -> None:
        # Evt19; the byte stream cannot be trusted any more, so nothing further is decoded.
        self._rx_stopped = True
        self._run(Event.Evt19, now, error=error)

    def _on_pdu(self, pdu: PDU, now: float) -> None:
        event = PDU_EVENTS[type(pdu)]
        state = self._state
        rejection: AAssociateRJ | None = None
        if event is Event.Evt6 and state is State.Sta2:
            assert isinstance(pdu, AAssociateRQ)
            self._request = pdu
            rejection = provider_rejection(pdu)
        elif event is Event.Evt3 and state is State.Sta5:
            assert isinstance(pdu, AAssociateAC) and self._request is not None
            try:
                self._negotiated = check_accept(self._request, pdu, self._limits)
            except RemoteProtocolError as exc:
                # ROBUSTNESS 20: never established; abort as for an invalid PDU.
                log.warning("invalid A-ASSOCIATE-AC: %s", exc)
                self._peer_fault(exc, now)
                return
        elif event is Event.Evt10 and state in (State.Sta6, State.Sta7):
            assert isinstance(pdu, PDataTF) and self._negotiated is not None
            accepted = self._negotiated.accepted
            for pdv in pdu.pdvs:
                if pdv.context_id not in accepted:
                    self._peer_fault(
                        RemoteProtocolError(
                            f"P-DATA-TF on presentation context {pdv.context_id}, not accepted",
                            abort_reason=AbortReason.INVALID_PDU_PARAMETER_VALUE,
                        ),
                        now,
                    )
                    return
            if state is State.Sta6 and not self._trace:
                # The commonest cell, applied directly: Sta6 + Evt10 -> DT-2, indicate the
                # P-DATA and stay in Sta6 (PS3.8 Table 9-7).
                self._events.append(pdu)
                return
        self._run(event, now, pdu=pdu, rejection=rejection)

    def _run(
        self,
        event: Event,
        now: float,
        *,
        pdu: PDU | None = None,
        error: RemoteProtocolError | None = None,
        rejection: AAssociateRJ | None = None,
    ) -> None:
        state = self._state
        action = TABLE.get((state, event))
        if action is None:
            log.debug("%s in %s: blank cell, ignored", event.name, state.name)
            return
        ctx = Context(state, event, self._role, pdu, error, rejection)  # positional: fastest
        transition = action(ctx)
        self._state = transition.next_state
        if log.isEnabledFor(logging.DEBUG):
            log.debug(
                "%s: %s + %s -> %s -> %s",
                self._role.value,
                state.name,
                event.name,
                action.name,
                transition.next_state.name,
            )
        for effect in transition.effects:
            if action is AR_8 and isinstance(effect, Indicate):
                continue  # release collision: answered below, the user sees the confirmation
            self._apply(effect, now)
        # Release collision, PS3.8 9.2.2 AR-8..AR-10: issue the A-RELEASE response ourselves.
        if self._state in (State.Sta9, State.Sta12):
            self._run(Event.Evt14, now, pdu=AReleaseRP())

    def _apply(self, effect: Effect, now: float) -> None:
        if isinstance(effect, SendPDU):
            encoded = self._encoded
            if encoded is not None and encoded[0] is effect.pdu:
                self._out.extend(encoded[1])
            elif effect.pdu is self._request and self._request_parts is not None:
                self._out.extend(self._request_parts)
            else:
                self._out.extend(self._encode(effect.pdu))
        elif isinstance(effect, Indicate):
            self._events.append(effect.event)
        elif isinstance(effect, StartARTIM):
            self._deadline = now + self._artim_timeout
        elif isinstance(effect, StopARTIM):
            self._deadline = None
        elif isinstance(effect, OpenTransport):
            self._wants_open = True
            self._wants_close = False
            self._events.append(ConnectRequested())
        elif isinstance(effect, CloseTransport):
            self._wants_close = True
            self._rx_stopped = True
            self._events.append(CloseRequested())


__all__ = ["Association", "Role"]
