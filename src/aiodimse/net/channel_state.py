"""What the parts of a :class:`~aiodimse.net.channel.Channel` share.

A channel is one class assembled from parts, each a concept of its own module:

* :mod:`aiodimse.net.channel`: the connection and the association (the reader, the timers,
  ACSE: associate, release, abort);
* :mod:`aiodimse.net.lazy`: running on asyncio in the transport's read callback (the fast
  path), with a reader task only when something needs one;
* :mod:`aiodimse.net.inbound`: DIMSE messages coming in (reassembly into sinks, responses
  to the operations waiting for them, requests to their handlers within the window);
* :mod:`aiodimse.net.outbound`: DIMSE messages going out (fragmenting, one message at a
  time, and waiting for the responses to our requests).

:class:`ChannelState` declares the state they share (initialised by
``Channel.__init__``) and the few operations one part calls in another, so each part
type-checks on its own.
"""

from __future__ import annotations

import asyncio
import socket
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import AsyncIterable, Awaitable, Callable, Iterable, Sequence
from typing import TYPE_CHECKING

import anyio
import anyio.abc
from anyio.streams.memory import MemoryObjectSendStream

from ..association.connection import Association as CoreAssociation
from ..association.connection import Buffer
from ..association.negotiation import Negotiated
from ..config import Limits, Timeouts
from ..dimse.assembler import MessageAssembler
from ..dimse.fragmenter import Fragmenter
from ..dimse.messages import DimseMessage
from ..errors import AssociationError
from ..pdu import PDU
from .transport import Transport
from .waits import Signal, TaskSet

if TYPE_CHECKING:
    from .inbound import (
        Incoming,
        InlineResponder,
        Received,
        RequestHandler,
        RequestStarter,
        SinkFactory,
    )

__all__ = ["ChannelState", "Event", "Lock", "OutgoingDataset"]

Lock = anyio.Lock | asyncio.Lock
Event = anyio.Event | Signal
#: A message's dataset as the channel sends it: bytes, chunks, or chunks produced while
#: sending (a file read off the loop); ``None``: no dataset.
OutgoingDataset = (
    bytes | memoryview | Iterable[bytes | memoryview] | AsyncIterable[bytes | memoryview] | None
)


class ChannelState(ABC):
    """State and cross-part operations of a channel (see the module docstring)."""

    # -- set once -------------------------------------------------------------------------
    peer: str
    limits: Limits
    timeouts: Timeouts
    _core: CoreAssociation
    #: On asyncio: the loop's own primitives and clock.
    _native: bool
    _debug: bool
    _now: Callable[[], float]

    # -- the connection ---------------------------------------------------------------------
    _transport: Transport
    #: The socket whose TCP_QUICKACK is re-armed (Linux), else ``None``.
    _quickack_sock: socket.socket | None
    #: Called once when the channel has ended (an owner that does not call ``stop()``).
    on_finished: Callable[[], None] | None
    #: The reader task once started (:mod:`aiodimse.net.lazy`).
    _reader: asyncio.Task[None] | None
    #: Running without a reader task, in the transport's read callback.
    _lazy: bool
    _lazy_timer: asyncio.TimerHandle | None
    #: The reader's cancel scope (its deadline), while it runs.
    _timer: anyio.CancelScope | None
    #: Handlers running plus responses awaited.
    _busy: int

    # -- the association --------------------------------------------------------------------
    negotiated: Negotiated | None
    error: AssociationError | None
    _closed: Event
    _assembler: MessageAssembler | None
    _fragmenter: Fragmenter | None
    _task_group: anyio.abc.TaskGroup | TaskSet | None
    #: Work the fast path handed to the reader, run before the core's next events.
    _stash: deque[Callable[[], Awaitable[None]]]

    # -- DIMSE in ---------------------------------------------------------------------------
    _incoming: Incoming | None
    on_request: RequestHandler | None
    inline_request: Callable[[DimseMessage], bool] | None
    inline_response: InlineResponder | None
    start_request: RequestStarter | None
    sink_factory: SinkFactory | None
    cancellations: dict[int, anyio.Event]
    _perform_slots: anyio.Semaphore | None
    _performs: int

    # -- DIMSE out --------------------------------------------------------------------------
    _message_lock: Lock
    _waiters: dict[int, MemoryObjectSendStream[Received]]
    _once: dict[int, asyncio.Future[Received | None]]
    #: The loop callback writing responses queued together (:mod:`aiodimse.net.outbound`).
    _deferred_flush: asyncio.Handle | None
    #: The transport's send without waiting (asyncio, a socket of ours); ``None`` elsewhere.
    _send_nowait: Callable[[Sequence[Buffer]], bool] | None
    _deferred: int

    # -- operations of one part used by another ---------------------------------------------
    @abstractmethod
    def _fail(self, error: AssociationError) -> None:
        """Record ``error`` as the association's end (first one wins) and wake waiters."""

    @abstractmethod
    async def run(
        self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        """Read until the association ends (the reader)."""

    @abstractmethod
    async def _wind_down(self, group: TaskSet) -> None:
        """The end of an association on asyncio (tasks awaited, connection closed)."""

    @abstractmethod
    def _finish(self) -> None:
        """The association is over: the core's last events handled, waiters told."""

    @abstractmethod
    def _ended(self) -> None:
        """The channel's work is over and its connection closed (once)."""

    @abstractmethod
    def _lost(self, why: str) -> None:
        """The connection was lost (``why``, in words)."""

    @abstractmethod
    def _deadline(self) -> float:
        """The reader's one deadline: ARTIM, a partial PDU's, or network idleness."""

    @abstractmethod
    def _retime(self, timer: anyio.CancelScope) -> None:
        """Move the reader's timer to :meth:`_deadline` when it changed."""

    @abstractmethod
    def _rearm_idle(self, now: float) -> None:
        """Network idleness counts from ``now``."""

    @abstractmethod
    def _rearm_pdu(self, now: float, buffered: int) -> None:
        """A partial PDU's deadline, from the core's ``buffered`` bytes."""

    @abstractmethod
    def _dispatch_now(self, ev: object, now: float) -> bool:
        """Handle an event of the core without waiting; False: nothing done."""

    @abstractmethod
    async def _dispatch(self, ev: object, now: float) -> None:
        """Handle an event of the core (the reader)."""

    @abstractmethod
    def _send_pdu(self, pdu: PDU, now: float) -> None:
        """Hand a PDU to the core (it queues the bytes; :meth:`_flush` writes them)."""

    @abstractmethod
    async def _flush(self) -> None:
        """Write what the core queued, in order."""

    @abstractmethod
    def _flush_nowait(self) -> bool:
        """Write what the core queued without waiting; False: not all of it went out."""

    @abstractmethod
    def _busy_changed(self, delta: int) -> None:
        """Handlers running plus responses awaited changed by ``delta`` (idle timer)."""

    @abstractmethod
    async def abort(self) -> None:
        """Send A-ABORT and close."""

    @abstractmethod
    async def send_message(
        self,
        context_id: int,
        message: DimseMessage,
        dataset: OutgoingDataset = None,
    ) -> None:
        """Send a DIMSE message (:mod:`aiodimse.net.outbound`)."""

    @abstractmethod
    def _send_message_now(self, context_id: int, message: DimseMessage) -> None:
        """Queue a command-only message without waiting (:mod:`aiodimse.net.outbound`)."""
