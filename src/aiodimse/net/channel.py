"""One association over one byte stream: the shell around the sans-I/O core.

Theory of operation
-------------------
A :class:`Channel` owns a transport (:mod:`aiodimse.net.transport`) and a sans-I/O
:class:`aiodimse.association.connection.Association` (the PS3.8 state machine with its PDU
decoder). At most one task, the *reader*, awaits the transport: it hands each chunk to the
core, sends what the core queued, and dispatches what the core indicated. Every other task
talks to the peer by handing PDUs to the core and flushing under one send lock, so bytes
leave in the order the core produced them.

On asyncio the transport also reads in the loop's callback, and :meth:`Channel._fast_input`
handles there whatever needs no waiting (ACSE PDUs, complete command-only messages, the
default C-ECHO answer); a channel started with :meth:`Channel.start_lazily` (the requestor's
and the acceptor's, on asyncio) has no reader task until something needs one.

Time enters the core as the loop's clock (anyio's elsewhere). The core's ARTIM deadline,
a partial PDU's deadline and the network idle timeout are folded into **one** deadline:
the cancel scope around the reader loop, re-armed after every chunk, or while there is no
reader one loop timer. Waiting policies of the user (C-ECHO response within 10 s...)
belong to the caller and are applied around the wait (:mod:`aiodimse.net.waits`).

DIMSE messages are reassembled by :class:`aiodimse.dimse.assembler.MessageAssembler`; each
incoming dataset goes to a sink (in memory, bounded by ``Limits.max_in_memory_dataset``, or
a file); responses go to the operation waiting for their Message ID Being Responded To, and
requests to the ``on_request`` callback, each in its own task.

Transport errors are translated here, once, into :mod:`aiodimse.errors`.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import deque
from collections.abc import (
    AsyncIterable,
    AsyncIterator,
    Awaitable,
    Callable,
    Iterable,
    Sequence,
)
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import partial

import anyio
import anyio.abc
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

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
    CommandReceived,
    DataFragment,
    MalformedCommand,
    MessageAssembler,
    MessageComplete,
)
from ..dimse.command_codec import encode_command
from ..dimse.fragmenter import Fragmenter
from ..dimse.messages import CCancelRQ, DimseMessage, DimseRequest, DimseResponse
from ..dimse.operations import DEFAULT_MESSAGE_ID_ALLOCATOR
from ..errors import (
    AssociationAborted,
    AssociationError,
    AssociationRejected,
    DicomError,
    DicomTimeoutError,
    NetworkError,
    RemoteProtocolError,
)
from ..pdu import (
    PDU,
    PDV,
    AAbort,
    AAssociateAC,
    AAssociateRJ,
    AAssociateRQ,
    AReleaseRP,
    AReleaseRQ,
    PDataTF,
)
from .diagnostics import describe_error, quickack_socket, rearm_quickack, summarize
from .loop import asyncio_loop
from .sinks import DatasetSink, MemorySink
from .transport import Transport
from .waits import Signal, TaskSet, acquire, expire, fail_after

log = logging.getLogger("aiodimse.net")


@dataclass(slots=True, kw_only=True)
class Received:
    """A complete incoming DIMSE message.

    ``dataset`` holds the bytes when the dataset went to the default in-memory sink;
    ``sink`` is the sink the ``sink_factory`` chose (a file sink, say), already closed.
    """

    context_id: int
    message: DimseMessage
    dataset: bytes | None = None
    sink: DatasetSink | None = None


@dataclass(slots=True)
class _Incoming:
    context_id: int
    message: DimseMessage
    sink: DatasetSink | None
    #: The sink's optional ``write_nowait(data) -> bool`` (see :data:`WriteNowait`).
    write_nowait: WriteNowait | None = None


#: A sink may offer ``write_nowait(data: memoryview) -> bool``: take ``data`` at once, with
#: no waiting (True), or take nothing (False: the reader awaits ``write`` for it instead).
#: Data fragments of a message whose sink has it are then consumed in the transport's read
#: callback (asyncio), without a trip through the reader task per read (a discarding SCP).
WriteNowait = Callable[[memoryview], bool]


#: Chooses the sink for the dataset of an incoming message; ``None``: keep it in memory.
SinkFactory = Callable[["Channel", int, DimseMessage], "DatasetSink | None"]


AssociateHandler = Callable[[AAssociateRQ], Awaitable[AAssociateAC | AAssociateRJ]]
AssociateDecider = Callable[[AAssociateRQ], AAssociateAC | AAssociateRJ]
RequestHandler = Callable[["Channel", Received], Awaitable[None]]
#: Answers a request at once (no I/O, no waiting): the response, or ``None`` to let
#: ``on_request`` perform it.
InlineResponder = Callable[[DimseMessage], "DimseResponse | None"]


try:
    from sniffio import thread_local as _sniffio_local
except ImportError:  # pragma: no cover - anyio without sniffio detects asyncio itself
    _sniffio_local = None  # type: ignore[assignment]


async def _reraise(exc: BaseException) -> None:
    raise exc


_Lock = anyio.Lock | asyncio.Lock
_Event = anyio.Event | Signal


class Channel:
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
        self._send_lock: _Lock = asyncio.Lock() if self._native else anyio.Lock()
        self._closed: _Event = Signal() if self._native else anyio.Event()
        #: Established, rejected or ended.
        self._settled: _Event = Signal() if self._native else anyio.Event()
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
        self._message_lock: _Lock = asyncio.Lock() if self._native else anyio.Lock()
        self._incoming: _Incoming | None = None
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

    def _wind_down_now(self) -> bool:
        """:meth:`_wind_down` without waiting, for a channel running lazily with no reader:
        possible when no partial message, no handler task and no unsent bytes are left
        (the connection then closes at once). False (nothing done) otherwise: the reader
        must do it."""
        group = self._task_group
        if self._incoming is not None or self._stash:
            return False
        if isinstance(group, TaskSet) and group.running():
            return False
        close_now = getattr(self._transport, "close_now", None)
        if close_now is None or not close_now():
            return False
        self._lazy = False
        self._finish()
        self._ended()
        return True

    def start_lazily(self, *, at_once: bool = False) -> bool:
        """On asyncio, instead of running :meth:`run` as a task from the start: the
        transport's read callback feeds the fast path (:meth:`_fast_input`), and the
        reader task is started only when something needs it (work the fast path cannot
        do, a timer to run, the peer closing). A short association (associate, C-ECHO,
        release) then never has a reader task. End it with :meth:`stop`. False (nothing
        changed) where this is not possible: run :meth:`run` as usual then."""
        read_ahead = getattr(self._transport, "read_ahead", None)
        if not self._native or read_ahead is None:
            return False
        self._task_group = TaskSet(self.peer)
        self._lazy = True  # before any read: what arrives at once is handled lazily
        if not read_ahead(self._core, self.start_reader, at_once=at_once):
            self._task_group = None
            self._lazy = False
            return False
        if self._lazy:  # the timers (ARTIM from the start, as acceptor) on the loop's clock
            self._arm_lazy_timer()
        return True

    def _arm_lazy_timer(self) -> None:
        """While lazy: make sure a loop timer fires by :meth:`_deadline` (one timer, moved
        only when the deadline comes earlier; one that fires early is set again)."""
        d = self._deadline()
        handle = self._lazy_timer
        if d == math.inf:
            if handle is not None:  # nothing to time: let the channel go when it ends
                self._cancel_lazy_timer()
            return
        if handle is not None:
            if handle.when() <= d:
                return
            handle.cancel()
        self._lazy_timer = asyncio.get_running_loop().call_at(d, self._on_lazy_timer)

    def _cancel_lazy_timer(self) -> None:
        handle, self._lazy_timer = self._lazy_timer, None
        if handle is not None:
            handle.cancel()

    def _on_lazy_timer(self) -> None:
        self._lazy_timer = None
        if not self._lazy or self._closed.is_set():
            return
        if self._now() < self._deadline():
            self._arm_lazy_timer()  # moved later meanwhile
            return
        # A deadline passed (ARTIM, a partial PDU's, network idleness): the reader finds
        # it so at once and acts as it always does.
        self.start_reader()

    def now(self) -> float:
        """The channel's clock: the asyncio loop's on asyncio, anyio's elsewhere."""
        return self._now()

    def start_reader(self) -> None:
        """On asyncio: run :meth:`run` as a task of the channel's own (at once, or when
        :meth:`start_lazily` finds it needed); end it with :meth:`stop`."""
        if self._reader is None:
            self._lazy = False
            self._cancel_lazy_timer()
            self._reader = asyncio.get_running_loop().create_task(self.run())
            if self.on_finished is not None:  # no owner awaits it: report what it raised
                self._reader.add_done_callback(self._reader_done)

    def _reader_done(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and (exc := task.exception()) is not None:
            log.error("%s: the association's reader failed: %r", self.peer, exc, exc_info=exc)

    async def stop(self) -> BaseException | None:
        """After :meth:`start_reader` or :meth:`start_lazily`: end the channel's work
        (cancel and await the reader if it was started, else wind down here); returns what
        the reader raised."""
        reader = self._reader
        self._cancel_lazy_timer()
        if reader is None:
            if self._wind_down_now():  # the common end: nothing left to wait for
                return None
            self._lazy = False
            group = self._task_group
            assert isinstance(group, TaskSet)
            await self._wind_down(group)
            return None
        with anyio.CancelScope(shield=True):
            if not reader.done():
                reader.cancel()
            await asyncio.wait({reader})
        return None if reader.cancelled() else reader.exception()

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

    def _rearm_pdu(self, now: float) -> None:
        if self._core.buffered_bytes == 0 or self.timeouts.pdu is None:
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
                    if self._quickack_sock is not None:
                        rearm_quickack(self._quickack_sock)
                    now = self._now()
                    await self._pump(now)
                    if self._closed.is_set():
                        return
                    self._rearm_idle(now)
                    self._rearm_pdu(now)
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

    def _fast_input(self) -> bool:
        """Called by the transport's read callback (asyncio) after new bytes arrived while
        the reader waits: run the state machine and handle what needs no waiting (ACSE
        PDUs, complete command-only messages, the inline C-ECHO answer) right there, with
        no trip through the reader task. Returns False when the reader must take over
        (what it cannot do here is queued in ``_stash``, in order)."""
        if self._closed.is_set() or self._stash:
            return False
        now = self._now()
        core = self._core
        # anyio finds its backend through sniffio, which sees no task in a loop callback:
        # say it here (anyio calls that need no task, e.g. Event.set, then work).
        local = _sniffio_local
        previous = local.name if local is not None else None
        if local is not None:
            local.name = "asyncio"
        try:
            core.process_received(now)
            while (ev := core.next_event()) is not None:
                if not self._dispatch_now(ev, now):
                    self._stash.append(partial(self._dispatch, ev, now))
                    return False
                if not self._flush_nowait() or self._stash:
                    return False
                if self._closed.is_set():
                    # Without a reader (start_lazily) nothing is left for one: the owner
                    # closes the connection (stop()), or with no owner waiting
                    # (on_finished) it is closed here; else the reader sees it and ends.
                    if not self._lazy:
                        return False
                    return self.on_finished is None or self._wind_down_now()
            if not self._flush_nowait():  # what the core answered by itself (AR-9...)
                return False
        except Exception as exc:  # raised in the reader, as if it had done the work
            self._stash.append(partial(_reraise, exc))
            return False
        finally:
            if local is not None:
                local.name = previous
        if self._quickack_sock is not None and self._peer_may_wait():
            rearm_quickack(self._quickack_sock)
        self._rearm_idle(now)
        self._rearm_pdu(now)
        timer = self._timer
        if timer is not None:
            self._retime(timer)
        elif self._lazy:
            self._arm_lazy_timer()
        return True

    def _fast_eof(self, error: OSError | None) -> bool:
        """Called by the transport's read callback when the peer closed the connection (or
        it broke: ``error``) while the channel runs lazily: with no owner waiting
        (``on_finished``) the end is handled here when nothing needs waiting for. False:
        the reader must handle it (nothing done then)."""
        if not self._lazy or self.on_finished is None or self._stash or self._closed.is_set():
            return False
        group = self._task_group
        if self._incoming is not None or (isinstance(group, TaskSet) and group.running()):
            return False
        local = _sniffio_local
        previous = local.name if local is not None else None
        if local is not None:
            local.name = "asyncio"
        try:
            why = "peer closed the connection"
            if error is not None:
                why = f"connection broken: {describe_error(error)}"
            self._lost(why)
            if not self._wind_down_now():  # the reader finds the channel closed and ends
                self.start_reader()
        finally:
            if local is not None:
                local.name = previous
        return True

    def _peer_may_wait(self) -> bool:
        """Whether the peer may be waiting for our ACK: a sender with Nagle on holds its
        next small write until its last one is acknowledged, and Linux delays our ACK by up
        to 40 ms. That matters while part of a PDU or message is here or more responses are
        due; otherwise it is our turn to write, and what we write carries the ACK (so the
        fast path spares a ``setsockopt`` and a bare ACK segment per message)."""
        if self._core.buffered_bytes or self._incoming is not None or self._waiters:
            return True
        answered = 0
        for fut in self._once.values():
            answered += fut.done()
        return self._busy > answered

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

    # -- DIMSE in ------------------------------------------------------------------------------

    def _pdata_now(self, pdata: PDataTF, now: float) -> bool:
        """The fast path for P-DATA: one complete command PDV (a response, a C-ECHO, a
        C-CANCEL, or the command of a request whose dataset follows), or data PDVs of the
        message in progress when its sink takes data without waiting (``write_nowait``).
        Anything else goes to :meth:`_on_pdata` (False: nothing done); what cannot be done
        here once a PDV was taken is queued in ``_stash``, in order."""
        if self._debug:
            log.debug("%s: received %s", self.peer, summarize(pdata))
        pdvs = pdata.pdvs
        if self._assembler is None or not pdvs:
            return False
        inc = self._incoming
        if inc is None:
            pdv = pdvs[0]
            if len(pdvs) != 1 or not (pdv.is_command and pdv.is_last):
                return False
        elif inc.write_nowait is None:
            return False
        else:
            for pdv in pdvs:
                if pdv.is_command:  # a command of the next message: the reader's job
                    return False
        for pdv in pdvs:
            events = self._assemble(pdv, now)
            if events is None:
                if self.error is not None:
                    return True  # aborted: nothing more to do
                continue  # a malformed command was answered with a failure status
            for ev in events:
                self._assembled_now(ev)
        return True

    def _assembled_now(self, ev: object) -> None:
        """:meth:`_handle_assembled` for what needs no waiting; the rest goes to ``_stash``
        (and everything after it, to keep the order)."""
        stash = self._stash
        if stash:  # keep the order: the reader does the rest
            stash.append(partial(self._handle_assembled, ev))
        elif isinstance(ev, DataFragment):
            inc = self._incoming
            if inc is not None and inc.sink is not None:
                write = inc.write_nowait
                if write is None or not write(ev.data):
                    stash.append(partial(self._handle_assembled, ev))
        elif isinstance(ev, CommandReceived) and ev.message.has_dataset:
            # The sink factory (application code) runs in the reader, never here.
            stash.append(partial(self._handle_assembled, ev))
        elif isinstance(ev, CommandReceived):
            self._command_received(ev)
        elif isinstance(ev, MessageComplete):
            inc = self._incoming
            assert inc is not None  # the assembler checked the order
            if inc.sink is not None:  # closed and delivered by the reader
                stash.append(partial(self._handle_assembled, ev))
                return
            self._incoming = None
            received = Received(context_id=inc.context_id, message=inc.message)
            if not self._deliver_now(received):
                stash.append(partial(self._deliver, received))
        else:  # pragma: no cover - the assembler gives the three events above
            stash.append(partial(self._handle_assembled, ev))

    def _assemble(self, pdv: PDV, now: float) -> Sequence[object] | None:
        """Feed one PDV to the assembler; protocol errors are answered here (no waiting)
        and give ``None``."""
        assert self._assembler is not None
        try:
            return self._assembler.receive_pdv(pdv)
        except MalformedCommand as exc:
            self._malformed_command(exc, now)
        except RemoteProtocolError as exc:
            # PS3.8 Annex E violated (order, interleaving, size): A-ABORT with the
            # reason the error carries (ROBUSTNESS 22-23).
            log.error("%s: %s; aborting", self.peer, exc)
            self._fail(
                AssociationAborted(f"{self.peer}: {exc}", source=2, reason=int(exc.abort_reason))
            )
            self._send_pdu(
                AAbort(source=AbortSource.SERVICE_PROVIDER, reason=exc.abort_reason), now
            )
        return None

    def _command_received(self, ev: CommandReceived) -> None:
        sink: DatasetSink | None = None
        if ev.message.has_dataset:
            if self.sink_factory is not None:
                sink = self.sink_factory(self, ev.context_id, ev.message)
            if sink is None:
                sink = MemorySink(self.limits.max_in_memory_dataset)
        write_nowait: WriteNowait | None = getattr(sink, "write_nowait", None)
        self._incoming = _Incoming(ev.context_id, ev.message, sink, write_nowait)

    async def _on_pdata(self, pdata: PDataTF, now: float) -> None:
        if self._assembler is None:
            return
        for pdv in pdata.pdvs:
            events = self._assemble(pdv, now)
            if events is None:
                if self.error is not None:
                    return  # aborted
                continue  # a malformed command was answered with a failure status
            for ev in events:
                await self._handle_assembled(ev)

    async def _handle_assembled(self, ev: object) -> None:
        """One event of the assembler: data to the sink, a command opens one, a complete
        message is delivered."""
        if isinstance(ev, DataFragment):
            inc = self._incoming
            if inc is not None and inc.sink is not None:
                await inc.sink.write(ev.data)
        elif isinstance(ev, CommandReceived):
            self._command_received(ev)
        elif isinstance(ev, MessageComplete):
            inc = self._incoming
            assert inc is not None  # the assembler checked the order
            self._incoming = None
            dataset: bytes | None = None
            if inc.sink is not None:
                await inc.sink.close()
                if isinstance(inc.sink, MemorySink):
                    if inc.sink.error is not None:
                        log.error("%s: %s", self.peer, inc.sink.error)
                    else:
                        dataset = inc.sink.getvalue()
            await self._deliver(
                Received(
                    context_id=inc.context_id,
                    message=inc.message,
                    dataset=dataset,
                    sink=inc.sink,
                )
            )

    def _malformed_command(self, exc: MalformedCommand, now: float) -> None:
        """PS3.7 C.5 / ROBUSTNESS 24: answer with a failure status when possible, else abort."""
        from ..dimse.messages import response_class_for

        cls = None
        if exc.command_field is not None:
            from ..dimse.messages import MESSAGE_CLASSES, CommandField

            try:
                rq_cls = MESSAGE_CLASSES.get(CommandField(exc.command_field))
            except ValueError:
                rq_cls = None
            cls = response_class_for(rq_cls) if rq_cls is not None else None
        if exc.status is not None and exc.message_id is not None and cls is not None:
            log.warning("%s: %s; answering 0x%04X", self.peer, exc, exc.status)
            rsp = cls(
                message_id_being_responded_to=exc.message_id,
                status=exc.status,
                error_comment=str(exc.cause)[:64] or None,
                offending_element=exc.offending_element or None,
            )
            if self._task_group is not None:
                self._task_group.start_soon(self.send_message, exc.context_id, rsp)
            return
        log.error("%s: %s; aborting", self.peer, exc)
        self._fail(
            AssociationAborted(f"{self.peer}: {exc}", source=2, reason=int(exc.abort_reason))
        )
        self._send_pdu(AAbort(source=AbortSource.SERVICE_PROVIDER, reason=exc.abort_reason), now)

    def _deliver_now(self, received: Received) -> bool:
        """Deliver ``received`` if that needs no waiting; False: nothing done, the caller
        hands it to :meth:`_deliver`."""
        msg = received.message
        if isinstance(msg, CCancelRQ):
            # PS3.7 9.3.2.3: C-CANCEL refers to an operation we perform; unknown ones are
            # logged and ignored (ROBUSTNESS 26).
            cancel = self.cancellations.get(msg.message_id_being_responded_to)
            if cancel is None:
                log.info(
                    "%s: C-CANCEL for unknown message ID %d ignored",
                    self.peer,
                    msg.message_id_being_responded_to,
                )
            else:
                cancel.set()
            return True
        if isinstance(msg, DimseResponse):
            responding_to = msg.message_id_being_responded_to
            once = self._once.get(responding_to)
            if once is not None:
                # Left in ``_once`` (its requestor removes it) so that :meth:`_peer_may_wait`
                # counts it as answered.
                if not once.done():
                    once.set_result(received)
                else:
                    log.warning(
                        "%s: second response to message ID %d ignored", self.peer, responding_to
                    )
                return True
            send = self._waiters.get(responding_to)
            if send is None:
                # ROBUSTNESS 26: a response to an unknown Message ID is logged and ignored.
                log.warning(
                    "%s: response to unknown message ID %d ignored", self.peer, responding_to
                )
                return True
            try:
                send.send_nowait(received)
            except anyio.WouldBlock:
                return False
            except (anyio.BrokenResourceError, anyio.ClosedResourceError):
                log.info("%s: response to message %d no longer awaited", self.peer, responding_to)
            return True
        if self.on_request is None or self._task_group is None:
            log.warning("%s: request %s ignored (no handler)", self.peer, type(msg).__name__)
            return True
        responder = self.inline_response
        if responder is not None and not self._message_lock.locked():
            rsp = responder(msg)
            if rsp is not None:
                # Answered at once, from here: no task, no slot held across a wait.
                self._send_message_now(received.context_id, rsp)
                return True
        # PS3.7 D.3.3.3: perform at most the negotiated number of operations at once; the
        # reader waits for a free slot (backpressure) rather than spawning without bound.
        if self.inline_request is not None and self.inline_request(msg):
            return False  # performed by the reader itself
        try:
            self._slots().acquire_nowait()
        except anyio.WouldBlock:
            return False
        self._busy_changed(+1)
        self._task_group.start_soon(self._run_request, received)
        return True

    async def _deliver(self, received: Received) -> None:
        msg = received.message
        if isinstance(msg, DimseResponse):
            responding_to = msg.message_id_being_responded_to
            send = self._waiters.get(responding_to)
            if send is not None:
                try:
                    # Blocks the reader while the consumer is behind: backpressure.
                    await send.send(received)
                except (anyio.BrokenResourceError, anyio.ClosedResourceError):
                    log.info(
                        "%s: response to message %d no longer awaited", self.peer, responding_to
                    )
                return
        if self._deliver_now(received):
            return
        assert self.on_request is not None and self._task_group is not None
        await self._slots().acquire()
        self._busy_changed(+1)
        if self.inline_request is not None and self.inline_request(msg):
            await self._run_request(received)
        else:
            self._task_group.start_soon(self._run_request, received)

    def _slots(self) -> anyio.Semaphore:
        """The semaphore bounding the requests we perform at once (PS3.7 D.3.3.3), made on
        first use (an association that performs none, a requestor's, needs none)."""
        slots = self._perform_slots
        if slots is None:
            slots = self._perform_slots = anyio.Semaphore(self._performs)
        return slots

    async def _run_request(self, received: Received) -> None:
        assert self.on_request is not None and self._perform_slots is not None
        try:
            await self.on_request(self, received)
        except DicomError as exc:
            # After the association ended, every queued handler fails the same way: say it once.
            level = logging.DEBUG if self._closed.is_set() else logging.WARNING
            log.log(
                level, "%s: handling %s failed: %s", self.peer, type(received.message).__name__, exc
            )
        except Exception:
            # A bug in a handler ends this association (A-ABORT), never the whole server.
            log.exception("%s: handling %s raised", self.peer, type(received.message).__name__)
            await self.abort()
        finally:
            self._perform_slots.release()
            self._busy_changed(-1)

    # -- user side -----------------------------------------------------------------------------

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
    async def _wait(event: _Event, seconds: float | None) -> None:
        """Wait until ``event`` is set; :class:`TimeoutError` after ``seconds`` (``None``:
        no limit). On asyncio on one loop timer (:meth:`Signal.wait_for`)."""
        if isinstance(event, Signal):
            if not await event.wait_for(seconds):
                raise TimeoutError
            return
        async with fail_after(False, seconds):
            await event.wait()

    @asynccontextmanager
    async def expect_responses(
        self, message_id: int
    ) -> AsyncIterator[MemoryObjectReceiveStream[Received]]:
        """Register interest in responses to ``message_id`` (before sending the request)."""
        send, receive = anyio.create_memory_object_stream[Received](64)
        self._waiters[message_id] = send
        self._busy_changed(+1)
        try:
            yield receive
        finally:
            self._busy_changed(-1)
            if self._waiters.get(message_id) is send:
                del self._waiters[message_id]
            send.close()
            receive.close()

    async def request_one(
        self,
        context_id: int,
        message: DimseRequest,
        timeout: float | None,
        what: str,
        *,
        dataset: bytes
        | memoryview
        | Iterable[bytes | memoryview]
        | AsyncIterable[bytes | memoryview]
        | None = None,
        on_sent: Callable[[], None] | None = None,
    ) -> Received:
        """Send a request that has exactly one response (C-ECHO, C-STORE) with its
        ``dataset`` (as :meth:`send_message`), call ``on_sent``, and return the response;
        a timeout aborts the association and names ``what``. On asyncio the response is
        handed over through a future (no response stream)."""
        message_id = message.message_id
        if not self._native:
            async with self.expect_responses(message_id) as responses:
                await self.send_message(context_id, message, dataset)
                if on_sent is not None:
                    on_sent()
                return await self.next_response(responses, timeout, what)
        fut: asyncio.Future[Received | None] = asyncio.get_running_loop().create_future()
        self._once[message_id] = fut
        self._busy_changed(+1)
        try:
            await self.send_message(context_id, message, dataset)
            if on_sent is not None:
                on_sent()
            handle = None if timeout is None else fut.get_loop().call_later(timeout, expire, fut)
            try:
                received = await fut
            except TimeoutError:
                await self.abort()
                raise DicomTimeoutError(what, timeout or 0) from None
            finally:
                if handle is not None:
                    handle.cancel()
        finally:
            self._busy_changed(-1)
            if self._once.get(message_id) is fut:
                del self._once[message_id]
        if received is None:
            raise self.error or AssociationAborted(
                f"{self.peer}: association ended while waiting for {what}"
            )
        return received

    async def next_response(
        self, responses: MemoryObjectReceiveStream[Received], timeout: float | None, what: str
    ) -> Received:
        """Wait for the next response; a timeout aborts the association and names ``what``."""
        try:
            try:
                return responses.receive_nowait()
            except anyio.WouldBlock:
                pass
            async with fail_after(self._native, timeout):
                return await responses.receive()
        except TimeoutError:
            await self.abort()
            raise DicomTimeoutError(what, timeout or 0) from None
        except (anyio.EndOfStream, anyio.ClosedResourceError):
            raise self.error or AssociationAborted(
                f"{self.peer}: association ended while waiting for {what}"
            ) from None

    async def send_message(
        self,
        context_id: int,
        message: DimseMessage,
        dataset: bytes
        | memoryview
        | Iterable[bytes | memoryview]
        | AsyncIterable[bytes | memoryview]
        | None = None,
    ) -> None:
        """Send a DIMSE message (PS3.7) fragmented to the peer's maximum PDU length.

        ``dataset`` may be an async iterable of chunks (e.g. a file read off the loop): it is
        pulled one chunk at a time while the PDUs go out, never joined. If it raises, the
        message is left incomplete on the wire: the caller must abort the association.
        """
        if self.negotiated is None or self._closed.is_set():
            raise self.error or AssociationError("association is not established")
        if self._debug:
            log.debug("%s: sending %r", self.peer, message)
        assert self._fragmenter is not None
        command = encode_command(message)
        # PS3.8 E.1: one message's PDVs are never interleaved with another's.
        lock = self._message_lock
        await acquire(lock)  # uncontended: no trip through the event loop
        try:
            if dataset is None:
                self._send_command_set(context_id, command)
                await self._flush()
                return
            if isinstance(dataset, AsyncIterable):
                # Streamed (large) datasets: one write per PDU keeps what is held in memory
                # to one PDU's worth (grouping them measured ~2 MiB more at the peak).
                pdus = self._fragmenter.apdus(context_id, command, dataset)
                try:
                    async for pdata in pdus:
                        self._send_data_pdu(pdata)
                        await self._flush()
                finally:
                    # An async generator: close it now, not when it is garbage collected.
                    aclose = getattr(pdus, "aclose", None)
                    if aclose is not None:
                        await aclose()
                return
            # A message in memory (a command, a small dataset): its PDUs in gathered writes
            # (one write for a 64 KiB instance instead of one per PDU).
            for group in self._fragmenter.batches(context_id, command, dataset):
                for pdata in group:
                    self._send_data_pdu(pdata)
                await self._flush()
        finally:
            lock.release()

    def _send_message_now(self, context_id: int, message: DimseMessage) -> None:
        """Queue a command-only message (no waiting; the caller flushes). Only while no
        other message is being sent (PS3.8 E.1: never interleaved)."""
        if self._debug:
            log.debug("%s: sending %r", self.peer, message)
        self._send_command_set(context_id, encode_command(message))

    def _send_command_set(self, context_id: int, command: bytes) -> None:
        """Queue a command-only message's encoded command set: one PDU straight from the
        core when it fits (the usual case), else fragmented."""
        self._check_not_ended()
        if self._debug or not self._core.send_command_set(context_id, command):
            assert self._fragmenter is not None
            for pdata in self._fragmenter.pdus(context_id, command, None):
                self._send_data_pdu(pdata)

    def _send_data_pdu(self, pdata: PDataTF) -> None:
        self._check_not_ended()
        self._send_pdu(pdata, self._now())

    def _check_not_ended(self) -> None:
        # The association may end while a long message goes out (the reader saw the peer
        # close or abort): report that, not the core's "cannot send in Sta1".
        if self._closed.is_set() or self.error is not None:
            raise self.error or AssociationError(f"{self.peer}: association ended")

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

    def next_message_id(self) -> int:
        """A Message ID unique in this process while outstanding (PS3.7 9.3.1.1)."""
        if self._once:
            return DEFAULT_MESSAGE_ID_ALLOCATOR.allocate(self._waiters.keys() | self._once.keys())
        return DEFAULT_MESSAGE_ID_ALLOCATOR.allocate(self._waiters)

    async def wait_closed(self) -> None:
        await self._closed.wait()
