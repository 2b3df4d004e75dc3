"""DIMSE messages coming in: the part of a :class:`~aiodimse.net.channel.Channel` that
reassembles them and hands them on.

Theory of operation
-------------------
Each P-DATA-TF's PDVs go to :class:`aiodimse.dimse.assembler.MessageAssembler` (PS3.8
Annex E: order, no interleaving, size). A command that announces a dataset opens a sink for
it: the ``sink_factory``'s (a file, say) or memory bounded by
``Limits.max_in_memory_dataset``; data fragments go to that sink as they arrive. A complete
message is *delivered*:

* a response (PS3.7 9.3.1.2) to the operation waiting for its Message ID Being Responded
  To, through a future (single-response operations on asyncio) or a bounded stream whose
  fullness stops the reader (backpressure); one nobody waits for is logged and ignored
  (ROBUSTNESS 26);
* a C-CANCEL to the operation it names;
* a request to ``on_request`` in a task of its own, at most the negotiated number at once
  (PS3.7 D.3.3.3: the reader waits for a free slot), or answered at once by
  ``inline_response`` (the default C-ECHO SCP), or started at once by ``start_request``
  and finished by loop callbacks (the storage SCP's C-STORE: a worker thread writes the
  file, its completion sends the response), with no task.

Everything that needs no waiting can run in the transport's read callback (the ``*_now``
methods, used by the channel's fast path); the rest runs in the reader. A malformed command
is answered with a failure status when it can be, else the association is aborted
(PS3.7 C.5).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, cast

import anyio

from ..constants import AbortSource
from ..dimse.assembler import (
    CommandReceived,
    DataFragment,
    MalformedCommand,
    MessageComplete,
)
from ..dimse.messages import CCancelRQ, DimseMessage, DimseResponse
from ..errors import AssociationAborted, DicomError, RemoteProtocolError
from ..pdu import PDV, AAbort, PDataTF
from .channel_state import ChannelState
from .diagnostics import summarize
from .sinks import DatasetSink, MemorySink
from .waits import TaskSet

if TYPE_CHECKING:
    from .channel import Channel

__all__ = [
    "Inbound",
    "Incoming",
    "InlineResponder",
    "Received",
    "RequestDone",
    "RequestHandler",
    "RequestStarter",
    "SinkFactory",
    "WriteNowait",
]

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
class Incoming:
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


RequestHandler = Callable[["Channel", Received], Awaitable[None]]
#: Answers a request at once (no I/O, no waiting): the response, or ``None`` to let
#: ``on_request`` perform it.
InlineResponder = Callable[[DimseMessage], "DimseResponse | None"]
#: Given by the channel to a :data:`RequestStarter`: call it once the request is performed
#: (``None``), or with the async rest of the work (sending a response that could not go
#: out at once, say), which the channel then runs in a task. Either way the request's
#: slot in the window is freed after that.
RequestDone = Callable[[Callable[[], Awaitable[None]] | None], None]
#: Starts performing a request from the transport's read callback, without a task: True
#: when it took the request and will call ``done`` exactly once (at once, or later from a
#: loop callback); False: nothing was done, ``on_request`` performs it in a task. It never
#: raises. Used on asyncio only (the channel's :class:`~aiodimse.net.waits.TaskSet` counts
#: the request as running until ``done``: the association's end waits for it).
RequestStarter = Callable[["Channel", Received, RequestDone], bool]


class Inbound(ChannelState):
    """DIMSE in (see the module docstring); mixed into :class:`~aiodimse.net.channel.Channel`."""

    def _channel(self) -> Channel:
        """The channel this part belongs to, as handlers and sink factories receive it."""
        # Inbound exists only as a base of Channel: this object is that channel.
        return cast("Channel", self)

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
        elif isinstance(ev, CommandReceived):
            # A dataset follows: the sink factory (synchronous, as in the reader; what it
            # raises goes to the reader like any error of the fast path) opens its sink.
            self._command_received(ev)
        elif isinstance(ev, MessageComplete):
            inc = self._incoming
            assert inc is not None  # the assembler checked the order
            sink = inc.sink
            if sink is not None:
                close_nowait: Callable[[], bool] | None = getattr(sink, "close_nowait", None)
                if close_nowait is None or not close_nowait():
                    stash.append(partial(self._handle_assembled, ev))  # close() waits
                    return
            self._incoming = None
            received = self._received(inc)
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
                sink = self.sink_factory(self._channel(), ev.context_id, ev.message)
            if sink is None:
                sink = MemorySink(self.limits.max_in_memory_dataset)
        write_nowait: WriteNowait | None = getattr(sink, "write_nowait", None)
        self._incoming = Incoming(ev.context_id, ev.message, sink, write_nowait)

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
            if inc.sink is not None:
                await inc.sink.close()
            await self._deliver(self._received(inc))

    def _received(self, inc: Incoming) -> Received:
        """The complete message of ``inc``, its sink closed."""
        sink = inc.sink
        dataset: bytes | None = None
        if isinstance(sink, MemorySink):
            if sink.error is not None:
                log.error("%s: %s", self.peer, sink.error)
            else:
                dataset = sink.getvalue()
        return Received(context_id=inc.context_id, message=inc.message, dataset=dataset, sink=sink)

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
        self._start_or_perform(received)
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
            self._start_or_perform(received)

    def _start_or_perform(self, received: Received) -> None:
        """Perform ``received`` (its slot taken): started at once by ``start_request`` when
        that takes it, else in a task."""
        starter = self.start_request
        group = self._task_group
        if starter is not None and isinstance(group, TaskSet):
            group.hold()
            if starter(self._channel(), received, self._started_done):
                return
            group.unhold()
        self._perform(received)

    def _started_done(self, rest: Callable[[], Awaitable[None]] | None) -> None:
        """The :data:`RequestDone` of a request ``start_request`` took."""
        group = self._task_group
        assert isinstance(group, TaskSet)
        if rest is not None:
            group.perform(partial(self._perform_job, rest, "the rest of a request"))
        else:
            self._request_ended()
        group.unhold()

    def _perform(self, received: Received) -> None:
        """Run the handler of ``received`` in a task of the channel's (on asyncio a worker
        of its :class:`~aiodimse.net.waits.TaskSet`, reused from request to request)."""
        group = self._task_group
        assert group is not None
        if isinstance(group, TaskSet):
            group.perform(partial(self._run_request, received))
        else:
            group.start_soon(self._run_request, received)

    def _slots(self) -> anyio.Semaphore:
        """The semaphore bounding the requests we perform at once (PS3.7 D.3.3.3), made on
        first use (an association that performs none, a requestor's, needs none)."""
        slots = self._perform_slots
        if slots is None:
            slots = self._perform_slots = anyio.Semaphore(self._performs)
        return slots

    async def _run_request(self, received: Received) -> None:
        assert self.on_request is not None
        job = partial(self.on_request, self._channel(), received)
        await self._perform_job(job, type(received.message).__name__)

    async def _perform_job(self, job: Callable[[], Awaitable[None]], what: str) -> None:
        """Run the work of a request we perform, then free its slot in the window."""
        try:
            await job()
        except DicomError as exc:
            # After the association ended, every queued handler fails the same way: say it once.
            level = logging.DEBUG if self._closed.is_set() else logging.WARNING
            log.log(level, "%s: handling %s failed: %s", self.peer, what, exc)
        except Exception:
            # A bug in a handler ends this association (A-ABORT), never the whole server.
            log.exception("%s: handling %s raised", self.peer, what)
            await self.abort()
        finally:
            self._request_ended()

    def _request_ended(self) -> None:
        assert self._perform_slots is not None
        self._perform_slots.release()
        self._busy_changed(-1)
