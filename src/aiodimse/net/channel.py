"""One association over one byte stream: the shell around the sans-I/O core.

Theory of operation
-------------------
A :class:`Channel` owns a transport (:mod:`aiodimse.net.transport`) and a sans-I/O
:class:`aiodimse.association.connection.Association` (the PS3.8 state machine with its PDU
decoder). At most one task, the *reader*, awaits the transport: it hands each chunk to the
core, sends what the core queued, and dispatches what the core indicated. Every other task
talks to the peer by handing PDUs to the core and flushing under one send lock, so bytes
leave in the order the core produced them.

On asyncio the transport also reads in the loop's callback, where the channel handles
whatever needs no waiting; a channel started with :meth:`Channel.start_lazily` (the
requestor's and the acceptor's, on asyncio) has no reader task until something needs one.
That part is a module of its own, :mod:`aiodimse.net.lazy`.

Time enters the core as the loop's clock (anyio's elsewhere). The core's ARTIM deadline,
a partial PDU's deadline and the network idle timeout are folded into **one** deadline:
the cancel scope around the reader loop, re-armed after every chunk, or while there is no
reader one loop timer. Waiting policies of the user (C-ECHO response within 10 s...)
belong to the caller and are applied around the wait (:mod:`aiodimse.net.waits`).

DIMSE messages coming in and going out are the channel's other two parts, each a module
of its own: :mod:`aiodimse.net.inbound` (reassembly into sinks, responses to the operations
waiting for them, requests to ``on_request`` within the window) and
:mod:`aiodimse.net.outbound` (fragmenting, one message at a time, waiting for responses);
:mod:`aiodimse.net.channel_state` declares what the parts share.

Transport errors are translated here, once, into :mod:`aiodimse.errors`.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import deque
from collections.abc import (
    Awaitable,
    Callable,
    Sequence,
)

import anyio
import anyio.abc
from anyio.streams.memory import MemoryObjectSendStream

from ..association.connection import Association as CoreAssociation
from ..association.connection import Buffer, Role
from ..association.events import (
    CloseRequested,
    ConnectRequested,
    ProviderAbort,
    TransportClosed,
)
from ..association.negotiation import Negotiated
from ..config import Limits, Timeouts
from ..constants import AbortSource, abort_reason_text
from ..dimse.assembler import (
    MessageAssembler,
)
from ..dimse.fragmenter import Fragmenter
from ..dimse.messages import DimseMessage
from ..errors import (
    AssociationAborted,
    AssociationError,
    AssociationRejected,
    DicomError,
    DicomTimeoutError,
    NetworkError,
)
from ..pdu import (
    PDU,
    AAbort,
    AAssociateAC,
    AAssociateRJ,
    AAssociateRQ,
    AReleaseRP,
    AReleaseRQ,
    PDataTF,
)
from .channel_state import Event, Lock
from .diagnostics import BULK_READ, describe_error, quickack_socket, rearm_quickack, summarize
from .inbound import (
    Inbound,
    Incoming,
    InlineResponder,
    Received,
    RequestDone,
    RequestHandler,
    RequestStarter,
    SinkFactory,
    WriteNowait,
)
from .lazy import Lazy
from .loop import asyncio_loop
from .outbound import Outbound
from .transport import Transport
from .waits import Signal, TaskSet, acquire, fail_after

__all__ = [
    "AssociateDecider",
    "AssociateHandler",
    "Channel",
    "InlineResponder",
    "Received",
    "RequestDone",
    "RequestHandler",
    "RequestStarter",
    "SinkFactory",
    "WriteNowait",
]

log = logging.getLogger("aiodimse.net")


AssociateHandler = Callable[[AAssociateRQ], Awaitable[AAssociateAC | AAssociateRJ]]
AssociateDecider = Callable[[AAssociateRQ], AAssociateAC | AAssociateRJ]


class Channel(Lazy, Inbound, Outbound):
    """Drives one association (either role) over ``stream``. Create, then ``run()``."""

    def __init__(
        self,
        transport: Transport,
        core: CoreAssociation,
        *,
        limits: Limits,
        timeouts: Timeouts,
        peer: str = "",
        tcp_quickack: bool = True,
        loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        """``loop``: the asyncio loop it runs on, when created outside a task of it (an
        acceptor's loop callback); found out otherwise."""
        self._transport = transport
        self._quickack_sock = quickack_socket(transport) if tcp_quickack else None
        self._core = core
        self.limits = limits
        self.timeouts = timeouts
        self.peer = peer
        if loop is None:
            loop = asyncio_loop()
        #: On asyncio the channel uses the loop's own primitives and clock (lighter than
        #: anyio's, and usable from loop callbacks: see :meth:`_fast_input`).
        self._native = loop is not None
        self._send_lock: Lock = asyncio.Lock() if self._native else anyio.Lock()
        self._closed: Event = Signal() if self._native else anyio.Event()
        #: Established, rejected or ended.
        self._settled: Event = Signal() if self._native else anyio.Event()
        self._released = False
        self._rq: AAssociateRQ | None = None
        self._ac: AAssociateAC | None = None
        self.negotiated: Negotiated | None = None
        self.rejection: AssociationRejected | None = None
        self.error: AssociationError | None = None
        self._assembler: MessageAssembler | None = None
        self._fragmenter: Fragmenter | None = None
        self._perform_slots: anyio.Semaphore | None = None
        self._performs = 1
        self._message_lock: Lock = asyncio.Lock() if self._native else anyio.Lock()
        self._incoming: Incoming | None = None
        self._waiters: dict[int, MemoryObjectSendStream[Received]] = {}
        #: Single-response requests on asyncio (:meth:`request_one`): Message ID -> future
        #: (its result ``None`` when the association ended first).
        self._once: dict[int, asyncio.Future[Received | None]] = {}
        #: Message ID of a request we perform -> event set when the peer sends C-CANCEL.
        self.cancellations: dict[int, anyio.Event] = {}
        self._task_group: anyio.abc.TaskGroup | TaskSet | None = None
        self.on_associate: AssociateHandler | None = None
        #: A synchronous ``on_associate`` (preferred when set): lets the fast path below
        #: answer an A-ASSOCIATE-RQ from the transport's read callback.
        self.decide_association: AssociateDecider | None = None
        self.on_request: RequestHandler | None = None
        #: Requests for which this returns True are performed by the reader itself instead
        #: of a task of their own (a handler known to answer at once, e.g. the default
        #: C-ECHO): no task spawned, no extra trip through the event loop.
        self.inline_request: Callable[[DimseMessage], bool] | None = None
        #: Like ``inline_request`` but answered synchronously, so the fast path can reply
        #: from the read callback (the default C-ECHO SCP).
        self.inline_response: InlineResponder | None = None
        #: Starts a request from the read callback, finished by loop callbacks instead of a
        #: task (see :data:`~aiodimse.net.inbound.RequestStarter`).
        self.start_request: RequestStarter | None = None
        self.sink_factory: SinkFactory | None = None
        self._idle_deadline = math.inf
        self._pdu_deadline = math.inf
        self._busy = 0  # handlers running + responses awaited
        self._timer: anyio.CancelScope | None = None
        #: The reader task started by :meth:`start_lazily` once there is work for it.
        self._reader: asyncio.Task[None] | None = None
        self._lazy = False
        #: While lazy (no reader task): the loop timer standing in for the reader's deadline
        #: (:meth:`_arm_lazy_timer`); it starts the reader when a deadline passes.
        self._lazy_timer: asyncio.TimerHandle | None = None
        self._deferred_flush: asyncio.Handle | None = None
        self._deferred = 0
        #: Set by an owner that does not call :meth:`stop` (the acceptor): called once when
        #: the channel has ended and its connection is closed, by whoever ended it.
        self.on_finished: Callable[[], None] | None = None
        self._debug = log.isEnabledFor(logging.DEBUG)
        #: Work the fast path handed to the reader, run before the core's next events.
        self._stash: deque[Callable[[], Awaitable[None]]] = deque()
        #: The clock: the asyncio loop's own on asyncio (callable from loop callbacks,
        #: where anyio cannot tell which library runs), anyio's elsewhere (trio).
        self._now: Callable[[], float] = anyio.current_time
        if self._native:
            assert loop is not None
            # The standard loop's time() is time.monotonic(): call that directly (read
            # after every read callback); other loops (uvloop) keep their own.
            plain = type(loop).time is asyncio.BaseEventLoop.time
            self._now = time.monotonic if plain else loop.time
        #: The transport's send without waiting (asyncio, a socket of ours), tried first.
        self._send_nowait: Callable[[Sequence[Buffer]], bool] | None = (
            getattr(transport, "send_nowait", None) if self._native else None
        )
        #: Whether the transport holds bytes written without waiting (looked up once: asked
        #: on every flush).
        self._has_backlog: Callable[[], bool] | None = getattr(transport, "has_backlog", None)
        set_fast_path = getattr(transport, "set_fast_path", None)
        if set_fast_path is not None:
            set_fast_path(self._fast_input, self._fast_eof)

    # -- properties ---------------------------------------------------------------------------

    @property
    def is_established(self) -> bool:
        return self.negotiated is not None and not self._closed.is_set()

    @property
    def is_native(self) -> bool:
        """Running on asyncio with the loop's own primitives (see :meth:`_fast_input`)."""
        return self._native

    @property
    def transport(self) -> Transport:
        """The bytes underneath (e.g. asked by the storage SCU whether it can send file
        regions with ``sendfile``)."""
        return self._transport

    @property
    def is_closed(self) -> bool:
        return self._closed.is_set()

    @property
    def request(self) -> AAssociateRQ | None:
        """The A-ASSOCIATE-RQ of this association (ours as requestor, the peer's as acceptor)."""
        return self._rq

    # -- running -------------------------------------------------------------------------------

    async def run(
        self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        """Read until the association ends; handlers run in a task group owned here (on
        asyncio: plain tasks owned here, cancelled and awaited when the association ends)."""
        if self._native:
            await self._run_native(task_status)
            return
        try:
            async with anyio.create_task_group() as tg:
                self._task_group = tg
                task_status.started()
                try:
                    await self._read_loop()
                finally:
                    await self._discard_incoming()
                    self._finish()
                    tg.cancel_scope.cancel()
        finally:
            with anyio.CancelScope(shield=True):
                await self._close_stream()

    async def _run_native(self, task_status: anyio.abc.TaskStatus[None]) -> None:
        group = self._task_group
        if not isinstance(group, TaskSet):  # start_lazily() made it already
            group = self._task_group = TaskSet(self.peer)
        task_status.started()
        try:
            await self._read_loop()
        finally:
            await self._wind_down(group)

    async def _wind_down(self, group: TaskSet) -> None:
        """The end of an association on asyncio: partial input removed, waiters told,
        tasks cancelled and awaited, the connection closed."""
        try:
            await self._discard_incoming()
            self._finish()
            if group.cancel():
                with anyio.CancelScope(shield=True):
                    await group.wait()
        finally:
            try:
                if getattr(self._transport, "closes_at_once", False):
                    await self._close_stream()  # never waits: nothing to shield
                else:
                    with anyio.CancelScope(shield=True):
                        await self._close_stream()
            finally:
                self._ended()

    def _ended(self) -> None:
        """The channel's work is over and its connection closed: tell an owner that asked
        (``on_finished``), once."""
        self._cancel_lazy_timer()
        if self._deferred_flush is not None:
            self._deferred_flush.cancel()
            self._deferred_flush = None
        self._core.release_buffers()
        # The transport holds our bound methods and we hold its (and the server's
        # connection object's): drop them, so that the connection's objects are freed by
        # reference counting when their owner lets go, not left to the cyclic garbage
        # collector (whose passes cost CPU in proportion to what they find).
        set_fast_path = getattr(self._transport, "set_fast_path", None)
        if set_fast_path is not None:
            set_fast_path(None, None)
        self._send_nowait = self._has_backlog = None
        self.decide_association = self.on_associate = None
        done, self.on_finished = self.on_finished, None
        if done is not None:
            done()

    def now(self) -> float:
        """The channel's clock: the asyncio loop's on asyncio, anyio's elsewhere."""
        return self._now()

    def _deadline(self) -> float:
        """The one deadline of the reader: ARTIM, a partial PDU's, or network idleness."""
        d = self._pdu_deadline
        artim = self._core.deadline
        if artim is not None and artim < d:
            d = artim
        if self._busy == 0 and self._idle_deadline < d:
            d = self._idle_deadline
        return d

    def _retime(self, timer: anyio.CancelScope) -> None:
        """Move the reader's timer to :meth:`_deadline`, only when it changed: setting a
        cancel scope's deadline cancels and reschedules a loop timer even for the same
        value, and the deadline is recomputed after every read."""
        d = self._deadline()
        if d != timer.deadline:
            timer.deadline = d

    def _rearm_idle(self, now: float) -> None:
        if self.timeouts.network is not None and self.negotiated is not None:
            self._idle_deadline = now + self.timeouts.network
        else:
            self._idle_deadline = math.inf

    def _rearm_pdu(self, now: float, buffered: int) -> None:
        """``buffered``: the core's ``buffered_bytes`` (a partial PDU's bytes)."""
        if buffered == 0 or self.timeouts.pdu is None:
            self._pdu_deadline = math.inf
        elif self._pdu_deadline == math.inf:
            self._pdu_deadline = now + self.timeouts.pdu

    def _busy_changed(self, delta: int) -> None:
        """An operation started or ended: idleness counts only when nothing is going on."""
        self._busy += delta
        if self._busy == 0:
            self._rearm_idle(self._now())
        if self._timer is not None:
            self._retime(self._timer)
        elif self._lazy:
            self._arm_lazy_timer()

    async def _read_loop(self) -> None:
        transport = self._transport
        core = self._core
        while not self._closed.is_set():
            with anyio.CancelScope(deadline=self._deadline()) as timer:
                self._timer = timer
                while True:
                    try:
                        n = await transport.receive(core, self._now())
                    except anyio.ClosedResourceError:
                        self._lost("connection closed")
                        return
                    except (anyio.BrokenResourceError, OSError) as exc:
                        self._lost(f"connection broken: {describe_error(exc)}")
                        return
                    if n == 0:
                        self._lost("peer closed the connection")
                        return
                    if self._quickack_sock is not None and n < BULK_READ:
                        rearm_quickack(self._quickack_sock)
                    now = self._now()
                    await self._pump(now)
                    if self._closed.is_set():
                        return
                    self._rearm_idle(now)
                    self._rearm_pdu(now, self._core.buffered_bytes)
                    self._retime(timer)
            self._timer = None
            if timer.cancelled_caught:
                now = self._now()
                artim = core.deadline
                if artim is not None and now >= artim:
                    log.info("%s: ARTIM expired in %s", self.peer, core.state.name)
                    core.handle_timeout(now)
                    await self._pump(now)
                    self._fail(DicomTimeoutError("the peer (ARTIM timer)", self.timeouts.acse or 0))
                    if not self._closed.is_set():
                        self._closed.set()
                    return
                if now >= self._pdu_deadline:
                    log.warning(
                        "%s: a PDU did not complete within %s s, aborting",
                        self.peer,
                        self.timeouts.pdu,
                    )
                    self._fail(DicomTimeoutError("the rest of a PDU", self.timeouts.pdu or 0))
                    await self._abort_now(AbortSource.SERVICE_PROVIDER, 0)
                    return
                if self._busy == 0 and now >= self._idle_deadline:
                    log.warning("%s: network idle timeout, aborting", self.peer)
                    self._fail(DicomTimeoutError("network activity", self.timeouts.network or 0))
                    await self._abort_now(AbortSource.SERVICE_USER, 0)
                    return

    def _lost(self, why: str) -> None:
        self._core.transport_closed(self._now())
        self._drain_events_after_close()
        self._fail(NetworkError(f"{self.peer}: {why}"))
        self._closed.set()

    def _drain_events_after_close(self) -> None:
        while (ev := self._core.next_event()) is not None:
            if isinstance(ev, ProviderAbort | TransportClosed | CloseRequested):
                continue
            log.debug("%s: event after close ignored: %r", self.peer, ev)

    def _fail(self, error: AssociationError) -> None:
        if self.error is None and not self._released:
            self.error = error
        self._close_waiters()
        self._settled.set()

    def _close_waiters(self) -> None:
        """Operations awaiting responses see the end of their stream (and ``self.error``)."""
        for send in self._waiters.values():
            send.close()
        self._waiters.clear()
        for fut in self._once.values():
            if not fut.done():
                fut.set_result(None)
        self._once.clear()

    async def _discard_incoming(self) -> None:
        """The association ended mid-message: partial output is removed (ROBUSTNESS 47)."""
        inc, self._incoming = self._incoming, None
        if inc is not None and inc.sink is not None:
            with anyio.CancelScope(shield=True):
                await inc.sink.discard()

    def _finish(self) -> None:
        if self.error is None and not self._released and self.rejection is None:
            self.error = NetworkError(f"{self.peer}: association ended")
        self._close_waiters()
        self._closed.set()
        self._settled.set()

    async def _close_stream(self) -> None:
        try:
            await self._transport.aclose()
        except (OSError, anyio.BrokenResourceError, anyio.ClosedResourceError):
            pass

    # -- the core's output ---------------------------------------------------------------------

    async def _flush(self) -> None:
        """Write what the core queued, in order. Bytes are drained only under the lock, so
        concurrent flushers never reorder them; an uncontended flush does not yield."""
        if not self._core.has_data_to_send and not self._transport_backlog():
            return
        lock = self._send_lock
        send_nowait = self._send_nowait
        taken: list[Buffer] | None = None
        if send_nowait is not None and not lock.locked():
            # The socket usually takes a short write at once: no lock, no trip through the
            # transport's waiting send. What it does not take stays queued in the transport,
            # in order, and is written below (send() writes that backlog first).
            taken = self._core.data_to_send()
            try:
                if send_nowait(taken):
                    if not self._transport_backlog():
                        return
                    taken = []
            except OSError as exc:
                raise NetworkError(f"{self.peer}: sending failed: {describe_error(exc)}") from exc
        await acquire(lock)  # free here: taken without yielding, nothing was queued since
        try:
            parts = self._core.data_to_send()
            if taken:
                parts = [*taken, *parts]
            # One write, header and payload gathered (also drains what the fast path left).
            await self._transport.send(parts)
        except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError) as exc:
            raise NetworkError(f"{self.peer}: sending failed: {describe_error(exc)}") from exc
        finally:
            lock.release()

    def _transport_backlog(self) -> bool:
        backlog = self._has_backlog
        return backlog is not None and backlog()

    def _flush_nowait(self) -> bool:
        """The fast path's flush: write what the core queued without waiting. False when
        the socket did not take it all (the rest is kept in order by the transport and
        written by the next :meth:`_flush`) or another task is sending."""
        if not self._core.has_data_to_send:
            return True
        if self._send_lock.locked():
            return False
        try:
            return bool(self._transport.write_nowait(self._core.data_to_send()))  # type: ignore[attr-defined]
        except OSError as exc:
            self._fail(NetworkError(f"{self.peer}: sending failed: {describe_error(exc)}"))
            self._closed.set()
            return False

    async def _pump(self, now: float) -> None:
        """Send what the core queued and act on what it indicated (first what the fast
        path handed over, in the order it arrived)."""
        try:
            await self._flush()
        except NetworkError as exc:
            self._fail(exc)
            self._closed.set()
            return
        core = self._core
        stash = self._stash
        while True:
            if stash:
                await stash.popleft()()
            else:
                ev = core.next_event()
                if ev is None:
                    return
                await self._dispatch(ev, now)
            try:
                await self._flush()
            except NetworkError as exc:
                self._fail(exc)
                self._closed.set()
                return

    def _send_pdu(self, pdu: PDU, now: float) -> None:
        """Hand a PDU to the core (it queues the bytes; :meth:`_flush` writes them)."""
        if self._debug:
            log.debug("%s: sending %s", self.peer, summarize(pdu))
        self._core.send(pdu, now)

    async def _dispatch(self, ev: object, now: float) -> None:
        if self._dispatch_now(ev, now):
            return
        if isinstance(ev, PDataTF):
            await self._on_pdata(ev, now)
        elif isinstance(ev, AAssociateRQ):
            assert self.on_associate is not None  # _dispatch_now checked
            self._answer_association(await self.on_associate(ev), now)

    def _dispatch_now(self, ev: object, now: float) -> bool:
        """Handle ``ev`` if that needs no waiting; False leaves it to :meth:`_dispatch`
        (nothing done then)."""
        if isinstance(ev, PDataTF):
            return self._pdata_now(ev, now)
        if self._debug:
            log.debug("%s: received %s", self.peer, summarize(ev))
        if isinstance(ev, AAssociateRQ):
            self._rq = ev
            if self.decide_association is not None:
                self._answer_association(self.decide_association(ev), now)
                return True
            if self.on_associate is None:
                raise AssociationError("no acceptor policy for an incoming association")
            return False
        elif isinstance(ev, AAssociateAC):
            # The core validated the AC against our RQ (an AC accepting what we never
            # proposed is Evt19 there: A-ABORT, never reported established; ROBUSTNESS 20).
            self._set_established()
        elif isinstance(ev, AAssociateRJ):
            self.rejection = AssociationRejected(ev.result, ev.source, ev.reason)
            self._settled.set()
        elif isinstance(ev, AReleaseRQ):
            # PS3.8 9.2: we always agree to release; in-flight operations end with it.
            self._send_pdu(AReleaseRP(), now)
            self._released = True
            self._close_waiters()
        elif isinstance(ev, AReleaseRP):
            self._released = True
        elif isinstance(ev, AAbort):
            why = abort_reason_text(ev.source, ev.reason)
            msg = f"{self.peer}: peer aborted the association: {why}"
            self._fail(AssociationAborted(msg, source=ev.source, reason=ev.reason))
        elif isinstance(ev, ProviderAbort):
            who = "the peer's service provider" if ev.received else "us"
            self._fail(
                AssociationAborted(
                    f"{self.peer}: association aborted by {who}: {ev.detail}",
                    source=2,
                    reason=int(ev.reason),
                )
            )
        elif isinstance(ev, ConnectRequested):
            self._core.transport_connected(now)
        elif isinstance(ev, CloseRequested | TransportClosed):
            self._closed.set()
        else:  # pragma: no cover - new event kinds must be handled explicitly
            log.debug("%s: unhandled event %r", self.peer, ev)
        return True

    def _answer_association(self, answer: AAssociateAC | AAssociateRJ, now: float) -> None:
        self._send_pdu(answer, now)
        if self._send_nowait is not None:
            self._flush_nowait()  # the answer first; setting up for the messages after it
        if isinstance(answer, AAssociateAC):
            self._set_established()
        else:
            self.rejection = AssociationRejected(answer.result, answer.source, answer.reason)
            self._settled.set()

    def _set_established(self) -> None:
        negotiated = self._core.negotiated
        assert negotiated is not None  # the core sets it with the AC
        self.negotiated = negotiated
        self._fragmenter = Fragmenter(negotiated.peer_max_pdu, limits=self.limits)
        # PS3.7 D.3.3.3: the AC's 53H says how many the requestor may invoke (the acceptor
        # performs those) and how many the acceptor may invoke (the requestor performs).
        performed = (
            negotiated.max_operations_invoked
            if self._core.role is Role.ACCEPTOR
            else negotiated.max_operations_performed
        )
        self._performs = max(1, performed)  # its semaphore made on first use: _slots()
        self._assembler = MessageAssembler(
            negotiated.accepted,
            limits=self.limits,
            # No cap here: a MemorySink enforces Limits.max_in_memory_dataset itself, a file
            # sink (storage SCP) streams any size to disk with bounded memory.
            max_dataset_length=None,
        )
        self._settled.set()

    # -- ACSE, user side ----------------------------------------------------------------------

    async def associate(self, rq: AAssociateRQ) -> Negotiated:
        """As requestor: send ``rq`` and wait for the answer (``Timeouts.acse``)."""
        self._rq = rq
        now = self._now()
        self._send_pdu(rq, now)
        await self._pump(now)
        try:
            await self._wait(self._settled, self.timeouts.acse)
        except TimeoutError:
            await self._abort_now(AbortSource.SERVICE_USER, 0)
            raise DicomTimeoutError("A-ASSOCIATE response", self.timeouts.acse or 0) from None
        if self.rejection is not None:
            raise self.rejection
        if self.negotiated is None:
            raise self.error or AssociationAborted(f"{self.peer}: association failed")
        return self.negotiated

    @staticmethod
    async def _wait(event: Event, seconds: float | None) -> None:
        """Wait until ``event`` is set; :class:`TimeoutError` after ``seconds`` (``None``:
        no limit). On asyncio on one loop timer (:meth:`Signal.wait_for`)."""
        if isinstance(event, Signal):
            if not await event.wait_for(seconds):
                raise TimeoutError
            return
        async with fail_after(False, seconds):
            await event.wait()

    async def release(self) -> None:
        """A-RELEASE (PS3.8 9.2): wait for the RP (``Timeouts.acse``), else abort."""
        if self._closed.is_set():
            return
        now = self._now()
        self._send_pdu(AReleaseRQ(), now)
        try:
            await self._flush()
            await self._wait(self._closed, self.timeouts.acse)
        except TimeoutError:
            # ROBUSTNESS 17: a peer that never answers our release is aborted.
            log.warning("%s: no A-RELEASE-RP within %s s, aborting", self.peer, self.timeouts.acse)
            await self._abort_now(AbortSource.SERVICE_USER, 0)
        except NetworkError:
            self._closed.set()

    async def abort(self) -> None:
        """Send A-ABORT (source 0, service user) and close; bounded by ``Timeouts.abort``."""
        await self._abort_now(AbortSource.SERVICE_USER, 0)

    async def _abort_now(self, source: int, reason: int) -> None:
        if self._closed.is_set():
            return
        self._cancel_lazy_timer()
        with anyio.move_on_after(self.timeouts.abort, shield=True):
            try:
                self._send_pdu(AAbort(source=source, reason=reason), self._now())
                await self._flush()
            except (DicomError, OSError):
                pass
        self._fail(self.error or AssociationAborted(f"{self.peer}: association aborted locally"))
        self._closed.set()
        with anyio.CancelScope(shield=True):
            await self._close_stream()

    async def wait_closed(self) -> None:
        await self._closed.wait()
