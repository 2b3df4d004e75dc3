"""Batches of C-STORE: many instances over one association, one result per instance.

:func:`store_many` is ``Association.store_many`` (the AE-level helpers are in
:mod:`aiodimse.services.sending`). One instance is sent by ``storage_scu._store_one``; this
module owns the order, the stop rules, the batch's progress total and the pipeline.

Pipelining (PS3.7 D.3.3.3)
--------------------------
When the acceptor granted an Asynchronous Operations Window of N > 1 requests the requestor
may invoke, up to N C-STORE-RQs are outstanding at once: request *k+1* starts going out as
soon as the last byte of request *k* is handed to the transport, without waiting for the
C-STORE-RSP of *k*; responses are matched by Message ID Being Responded To (the channel
routes them). Requests still leave one whole message at a time, in input order (PS3.8 E.1
forbids interleaving their PDVs). Each instance keeps its own no-progress deadline, armed
only once its turn to send has come. Without a window (N = 1, what dcmtk and most peers
answer) it is strictly one request at a time, as before.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Final

import anyio
import anyio.abc

from ..dimse.messages import Priority
from ..errors import AssociationError, DicomError, DicomTimeoutError, LocalProtocolError
from ..net.channel import Channel
from ..net.filesource import (
    DicomFileError,
    DicomFileInfo,
    Prefetched,
    file_io_limiter,
    prefetch_datasets,
)
from .storage_contexts import ContextChoice, NoPresentationContext
from .storage_scu import (
    StoreItem,
    StoreResult,
    _discard,
    _Resolved,
    _store_one,
    _store_timeout,
    _transport_of,
    choose_instance_context,
    resolve_items,
)
from .store_pacing import (
    MIN_SLICE,
    Progress,
    _event_factory,
    _Meter,
    _Watchdog,
    read_chunk_size,
    slice_size_for,
)
from .store_pacing import (
    _ItemMeter as _ItemMeter,  # re-exported: tests/scp_perf2 import it from here
)
from .store_pipeline import Pump, pump_possible
from .store_regions import regions_possible

if TYPE_CHECKING:
    from .ae import AE

__all__ = ["NOT_SENT_ASSOCIATION_ENDED", "operations_window", "store_many"]

log = logging.getLogger("aiodimse.storescu")

#: How the error of an instance never started because the association ended begins (it can
#: be sent again on another association without risk of a duplicate).
NOT_SENT_ASSOCIATION_ENDED = "not sent: the association ended"

#: Read-ahead of a batch (:class:`_ReadAhead`): dataset bytes held before their turn at
#: most, files held, files held open (a large dataset's first chunk), bytes per thread trip.
READ_AHEAD_BYTES: Final = 8 << 20
READ_AHEAD_FILES: Final = 64
READ_AHEAD_OPEN: Final = 2
READ_AHEAD_TRIP: Final = 4 << 20
#: Files per thread trip at most: half of :data:`READ_AHEAD_FILES`, a trip per low-water
#: mark. A trip costs far more than its thread hand-off: each of the worker's system calls
#: (four per small file) hands the GIL back and forth with the loop. 64 KiB instances,
#: window 16: 32 files per trip instead of 15 took ~7-11 us of SCU CPU per instance off.
READ_AHEAD_TRIP_FILES: Final = 32
#: Files sent as regions held open (only opened: nothing of them in memory) at most. They are
#: opened in trips of up to half as many (the low-water mark), not one trip per file: a
#: worker-thread trip costs the loop a wake-up and the GIL hand-offs (200 x 4 MiB
#: instances: ~1 trip per instance before).
READ_AHEAD_OPEN_REGIONS: Final = 16


def _failed(item: _Resolved | DicomFileError, error: str, *, retryable: bool) -> StoreResult:
    if isinstance(item, DicomFileError):
        return StoreResult(path=item.path, error=error, retryable=retryable)
    return StoreResult(
        sop_class_uid=item.sop_class_uid,
        sop_instance_uid=item.sop_instance_uid,
        source_transfer_syntax=item.transfer_syntax_uid,
        path=item.path if isinstance(item, DicomFileInfo) else None,
        error=error,
        retryable=retryable,
        warnings=item.warnings if isinstance(item, DicomFileInfo) else (),
    )


def _error_text(exc: DicomError) -> str:
    """The reason without what :meth:`StoreResult.describe` already names."""
    if isinstance(exc, NoPresentationContext):
        return f"no presentation context: {exc.peer_answer}"
    if isinstance(exc, DicomFileError):
        return exc.reason
    return str(exc)


@dataclass(slots=True)
class _Stop:
    """Why the items not yet started are not sent (``None``: keep going)."""

    reason: str | None = None
    retryable: bool = False

    def set(self, reason: str, *, retryable: bool) -> None:
        if self.reason is None:
            self.reason, self.retryable = reason, retryable


def operations_window(channel: Channel, window: int | None = None) -> int:
    """How many requests may be outstanding on ``channel``: the number the acceptor allows
    us to invoke (PS3.7 D.3.3.3, 1 without a 53H sub-item), lowered to ``window``."""
    negotiated = channel.negotiated
    agreed = negotiated.max_operations_invoked if negotiated is not None else 1
    if window is not None:
        if window < 1:
            raise LocalProtocolError("window must be at least 1")
        agreed = min(agreed, window)
    return max(1, agreed)


async def store_many(
    channel: Channel,
    ae: AE,
    items: Iterable[StoreItem],
    *,
    continue_on_error: bool = True,
    progress: Progress | None = None,
    on_result: Callable[[StoreResult], None] | None = None,
    timeout: float | None = -1.0,
    priority: int = Priority.MEDIUM,
    window: int | None = None,
    slots: anyio.Semaphore | None = None,
) -> list[StoreResult]:
    """C-STORE each item over this association: one :class:`StoreResult` per item, in the
    order of ``items``.

    Up to :func:`operations_window` requests are outstanding at once (pipelined; see the
    module docstring); ``window`` lowers that number (``1``: one at a time). ``slots``, the
    association's shared window (``Association`` passes it), is held by each outstanding
    request too, so concurrent operations of other tasks count against the same window.

    Never raises for one instance's trouble: a file that cannot be read, a missing context
    or a failure status becomes that item's result; after a failure, the items not yet
    started are sent only with ``continue_on_error``, otherwise they get a "not sent"
    result (requests already outstanding get their real answer). When the association is
    lost, the outstanding ones fail with the reason and the rest are "not sent", all with
    ``retryable=True``.

    ``timeout`` (default ``Timeouts.store``) is a no-progress deadline: one at a time, per
    instance (as :func:`~.storage_scu.store`); pipelined, for the batch: any byte sent or
    any response received re-arms it, so an instance waiting while the peer works through
    the ones before it never times out while the association moves. When it runs out the
    association is aborted.

    ``progress(bytes_sent, total)`` covers the whole batch (totals of all files, adjusted
    when one is re-encoded); ``on_result`` is called with each result as it is known, which
    under a window may differ from the order of ``items`` (the returned list never does).
    """
    resolved = await resolve_items(list(items))
    batch = _Batch(
        channel,
        ae,
        resolved,
        width=operations_window(channel, window),
        slots=slots,
        continue_on_error=continue_on_error,
        progress=progress,
        on_result=on_result,
        timeout=_store_timeout(ae, timeout),
        priority=priority,
    )
    return await batch.run()


async def _acquire(semaphore: anyio.Semaphore) -> None:
    try:
        semaphore.acquire_nowait()
    except anyio.WouldBlock:
        await semaphore.acquire()


def _close_all(files: list[Prefetched]) -> None:
    for pre in files:
        pre.close()


class _ReadAhead:
    """Reads the start of upcoming datasets before their turn, for a batch.

    Only files whose bytes go on the wire as they are (their own transfer syntax accepted)
    are planned, in input order. Many small files are opened, checked, read and closed in
    **one** worker-thread trip (:func:`~aiodimse.net.filesource.prefetch_datasets`); a large
    one gives its first chunk and stays open for the instance's
    :class:`~aiodimse.net.filesource.DatasetReader` (one sent as file regions is only
    opened: :class:`~aiodimse.services.store_regions.RegionReader` reads nothing). At most
    :data:`READ_AHEAD_BYTES`, :data:`READ_AHEAD_FILES` files, :data:`READ_AHEAD_OPEN`
    open files read into and :data:`READ_AHEAD_OPEN_REGIONS` files only opened are held, so
    memory and descriptors stay bounded; the instance sent next starts without
    waiting for the disk, and a stop-and-wait association reads the next files while it
    waits for an answer.
    """

    def __init__(
        self,
        plan: list[tuple[int, DicomFileInfo]],
        *,
        head_size: int,
        open_only: frozenset[int] = frozenset(),
    ) -> None:
        """``head_size``: bytes read of a file that does not fit (the reader's chunk);
        ``open_only``: the indexes of files only opened, none of their bytes read (they go
        as file regions, :mod:`~aiodimse.services.store_regions`)."""
        self._plan = plan
        self._head = head_size
        self._open_only = open_only
        self._wanted = {index for index, _ in plan}
        self._ready: dict[int, Prefetched] = {}
        self._unused: list[Prefetched] = []  # read, then given up: to close
        self._held = 0
        self._open = 0  # files held open after their head (read into memory)
        self._open_regions = 0  # files only opened (``open_only``)
        self._space: anyio.Event | None = None  # the reader waits for room
        self._arrived: anyio.Event | None = None  # consumers wait for a trip
        self._done = False

    def _arrival(self) -> None:
        if self._arrived is not None:
            self._arrived.set()
            self._arrived = None

    def _roomy(self) -> bool:
        # The low-water mark: reading resumes only once half the room is free, so trips
        # stay large instead of one file per file taken.
        return not self._ready or (
            self._held <= READ_AHEAD_BYTES // 2
            and len(self._ready) <= READ_AHEAD_FILES // 2
            and self._open < READ_AHEAD_OPEN
            and self._open_regions <= READ_AHEAD_OPEN_REGIONS // 2
        )

    def _full(self) -> bool:
        # No room for a whole trip: wait (for the low-water mark) rather than read a few.
        return bool(self._ready) and (
            self._held + READ_AHEAD_TRIP > READ_AHEAD_BYTES
            or len(self._ready) + READ_AHEAD_TRIP_FILES > READ_AHEAD_FILES
            or self._open >= READ_AHEAD_OPEN
            # Past the low-water mark already: wait for it rather than open a few (a trip
            # while the consumers take files would otherwise top up by one or two).
            or self._open_regions > READ_AHEAD_OPEN_REGIONS // 2
        )

    def _count(self, pre: Prefetched, index: int, sign: int) -> None:
        """Count ``pre`` in (``sign`` 1) or out of (-1) what is held."""
        self._held += sign * len(pre.head)
        if pre.fp is not None:
            if index in self._open_only:
                self._open_regions += sign
            else:
                self._open += sign

    async def run(self) -> None:
        """The reading task (ends when every planned file was read or given up)."""
        limiter = file_io_limiter()
        plan, pos = self._plan, 0
        try:
            while pos < len(plan):
                if self._full():
                    while not self._roomy():
                        self._space = anyio.Event()
                        await self._space.wait()
                    self._space = None
                group: list[tuple[int, DicomFileInfo]] = []
                heads: list[int] = []
                size = 0
                opens = self._open
                opens_regions = self._open_regions
                while pos < len(plan) and len(group) < READ_AHEAD_TRIP_FILES:
                    index, info = plan[pos]
                    if index not in self._wanted:  # given up before it was read
                        pos += 1
                        continue
                    region = index in self._open_only
                    n = 0 if region else min(info.dataset_length, self._head)
                    stays_open = info.dataset_length > n
                    if group and (
                        size + n > READ_AHEAD_TRIP
                        or self._held + size + n > READ_AHEAD_BYTES
                        or (stays_open and not region and opens >= READ_AHEAD_OPEN)
                        or (stays_open and region and opens_regions >= READ_AHEAD_OPEN_REGIONS)
                    ):
                        break
                    group.append((index, info))
                    heads.append(n)
                    size += n
                    if region:
                        opens_regions += stays_open
                    else:
                        opens += stays_open
                    pos += 1
                if not group:
                    continue
                # Shielded: a trip's open files are never lost to a cancellation.
                with anyio.CancelScope(shield=True):
                    got = await anyio.to_thread.run_sync(
                        partial(prefetch_datasets, heads=heads),
                        [info for _, info in group],
                        limiter=limiter,
                    )
                for (index, _), pre in zip(group, got, strict=True):
                    if index in self._wanted:
                        self._ready[index] = pre
                        self._count(pre, index, 1)
                    else:
                        pre.head = b""
                        self._unused.append(pre)
                self._arrival()
        finally:
            self._done = True
            self._arrival()

    def _pop(self, index: int) -> Prefetched | None:
        self._wanted.discard(index)
        pre = self._ready.pop(index, None)
        if pre is not None:
            self._count(pre, index, -1)
            if self._space is not None and self._roomy():
                self._space.set()
        return pre

    async def take(self, index: int) -> Prefetched | None:
        """What was read ahead for ``index`` (waiting for its trip); ``None`` when it was
        not planned or the reading stopped. The caller owns the result."""
        if index not in self._wanted:
            return None
        while index not in self._ready:
            # Read in order: anything later already read means this one never will be.
            if self._done or (self._ready and min(self._ready) > index):
                self._wanted.discard(index)
                return None
            if self._arrived is None:
                self._arrived = anyio.Event()
            await self._arrived.wait()
        return self._pop(index)

    def give_up(self, index: int) -> None:
        """``index`` will not be sent: never read it, or close it with :meth:`aclose`."""
        pre = self._pop(index)
        if pre is not None:
            pre.head = b""
            self._unused.append(pre)

    async def aclose(self) -> None:
        """Close every file read and not taken (one worker-thread trip, shielded)."""
        left = [p for p in (*self._ready.values(), *self._unused) if p.fp is not None]
        self._ready.clear()
        self._unused.clear()
        self._wanted.clear()
        if left:
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(_close_all, left, limiter=file_io_limiter())


class _Batch:
    """One ``store_many`` call: its senders (one task per outstanding request), the stop rules."""

    def __init__(
        self,
        channel: Channel,
        ae: AE,
        resolved: list[_Resolved | DicomFileError],
        *,
        width: int,
        slots: anyio.Semaphore | None,
        continue_on_error: bool,
        progress: Progress | None,
        on_result: Callable[[StoreResult], None] | None,
        timeout: float | None,
        priority: int,
    ) -> None:
        self.channel = channel
        self.ae = ae
        self.resolved = resolved
        self.slots = slots
        self.continue_on_error = continue_on_error
        self.progress = progress
        self.on_result = on_result
        self.timeout = timeout
        self.priority = priority
        self.meter = _Meter(
            progress, sum(r.dataset_length for r in resolved if isinstance(r, DicomFileInfo))
        )
        self.results: list[StoreResult | None] = [None] * len(resolved)
        self.stop = _Stop()
        self.crash: list[Exception] = []
        self.width = width
        self._next = 0  # the next index to claim
        self._previous: _ItemMeter | None = None  # the meter of the last one claimed
        self._new_event = _event_factory()
        #: The context of each (SOP class, transfer syntax) that has one, chosen once.
        self.choices: dict[tuple[str, str], ContextChoice] = {}
        self.read_ahead: _ReadAhead | None = None
        # Pipelined, the deadline is the batch's (see store_many); one at a time it stays
        # per instance, exactly as a single store().
        self.watchdog = _Watchdog(timeout) if width > 1 and timeout is not None else None
        self.item_timeout = None if self.watchdog is not None else timeout
        self._tg: anyio.abc.TaskGroup | None = None
        #: Every instance goes whole from memory, as it is (set by :meth:`_plan`).
        self.in_memory = False

    async def _plan(self) -> None:
        """Choose each kind's context once; read ahead the files sent as they are."""
        plan: list[tuple[int, DicomFileInfo]] = []
        unfit: set[tuple[str, str]] = set()
        for index, r in enumerate(self.resolved):
            if isinstance(r, DicomFileError):
                continue
            key = (r.sop_class_uid, r.transfer_syntax_uid)
            choice = self.choices.get(key)
            if choice is None and key not in unfit:
                try:
                    choice = self.choices[key] = await choose_instance_context(self.channel, r)
                except DicomError:  # _store_one raises it again, for this item's result
                    unfit.add(key)
            if choice is not None and not choice.convert and isinstance(r, DicomFileInfo):
                plan.append((index, r))
        negotiated = self.channel.negotiated
        if plan and negotiated is not None:
            # The same chunks as the instance's own reader: they end where PDUs do.
            head = read_chunk_size(slice_size_for(self.channel, negotiated.peer_max_pdu))
            transport = _transport_of(self.channel)
            regions = frozenset(i for i, r in plan if regions_possible(transport, r, head))
            self.read_ahead = _ReadAhead(plan, head_size=head, open_only=regions)
            # Every instance read whole into memory and sent as it is: the pipeline's pump.
            limit = min(head, MIN_SLICE)
            planned = {i for i, _ in plan}
            self.in_memory = not regions and all(
                isinstance(r, DicomFileError)
                or (i in planned and isinstance(r, DicomFileInfo) and r.dataset_length <= limit)
                for i, r in enumerate(self.resolved)
            )

    async def run(self) -> list[StoreResult]:
        await self._plan()
        try:
            async with anyio.create_task_group() as outer:
                if self.watchdog is not None:
                    outer.start_soon(self.watchdog.run, self.channel)
                if self.read_ahead is not None:
                    outer.start_soon(self.read_ahead.run)
                async with anyio.create_task_group() as tg:
                    self._tg = tg
                    if self.width == 1:
                        # One at a time: no task of its own, no trip through the event loop.
                        await self._sender()
                    elif self.in_memory and pump_possible(self.channel):
                        await Pump(self).run()
                    else:
                        for _ in range(min(self.width, len(self.resolved))):
                            tg.start_soon(self._sender)
                outer.cancel_scope.cancel()
        finally:
            if self.read_ahead is not None:
                await self.read_ahead.aclose()
        if self.crash:
            raise self.crash[0]
        if self.progress is not None:
            self.meter.report()
        done: list[StoreResult] = []
        for result in self.results:
            assert result is not None  # every index gets exactly one result
            done.append(result)
        return done

    async def _sender(self) -> None:
        """One of up to ``width`` long-lived tasks: claims the next instance, sends it and
        waits for its answer, then claims the next. A sender whose answer came goes on
        with the next instance in the same step (no spawner to wake, no worker to hand it
        to: one task switch per instance)."""
        while (job := await self._claim()) is not None:
            await self._send_one(*job)

    async def _claim(self) -> tuple[int, _Resolved, _ItemMeter] | None:
        """The next instance to send, in input order, once it may start (``None``: none
        left): the results of the ones never sent are given on the way."""
        resolved = self.resolved
        while True:
            index = self._next
            if index >= len(resolved):
                return None
            self._next = index + 1
            r = resolved[index]
            if self.stop.reason is not None:
                self._not_sent(index, r)
                continue
            if isinstance(r, DicomFileError):
                self._emit(index, _failed(r, r.reason, retryable=False))
                if not self.continue_on_error:
                    self.stop.set(f"not sent: stopped after {r.path} failed", retryable=False)
                continue
            # Made before any wait: the sender claiming the next one waits for this one.
            previous = self._previous
            meter = self._previous = _ItemMeter(
                self.meter,
                r.dataset_length if isinstance(r, DicomFileInfo) else 0,
                on_progress=self.watchdog.rearm if self.watchdog is not None else None,
                new_event=self._new_event,
            )
            # PS3.7 D.3.3.3: at most the agreed number of requests outstanding (one per
            # sender; ``slots`` counts the association's other operations too). A free
            # slot is taken without a trip through the event loop.
            try:
                if self.slots is not None:
                    await _acquire(self.slots)
            except BaseException:
                meter.set_sent_all()
                raise
            # PS3.8 E.1: one whole message at a time, in input order; the next one starts
            # when the previous one's last byte went out (never queued behind it).
            if previous is not None and not previous.sent_all:
                try:
                    await previous.wait_sent_all()
                except BaseException:
                    meter.set_sent_all()
                    self._release()
                    raise
            if self.stop.reason is not None:
                meter.set_sent_all()
                self._release()
                self._not_sent(index, r)
                continue
            return index, r, meter

    def _release(self) -> None:
        if self.slots is not None:
            self.slots.release()

    def _fail_batch(self, exc: Exception) -> None:
        # A bug or the caller's callback raised: stop everything, re-raise it from run().
        self.crash.append(exc)
        self.stop.set(f"not sent: {type(exc).__name__}", retryable=False)
        if self._tg is not None:
            self._tg.cancel_scope.cancel()

    def _emit(self, index: int, result: StoreResult) -> None:
        self.results[index] = result
        if self.on_result is not None and not self.crash:
            try:
                self.on_result(result)
            except Exception as exc:
                self._fail_batch(exc)

    def _not_sent(self, index: int, r: _Resolved | DicomFileError) -> None:
        assert self.stop.reason is not None
        self._emit(index, _failed(r, self.stop.reason, retryable=self.stop.retryable))
        if isinstance(r, DicomFileInfo):
            self.meter.total -= r.dataset_length
        if self.read_ahead is not None:
            self.read_ahead.give_up(index)

    async def _send_one(
        self, index: int, r: _Resolved, item_meter: _ItemMeter, pre: Prefetched | None = None
    ) -> None:
        """Send one instance and wait for its answer; ``pre``: what the read-ahead gave for
        it already (else it is taken here)."""
        try:
            if pre is None and self.read_ahead is not None:
                pre = await self.read_ahead.take(index)
            result = await _store_one(
                self.channel,
                self.ae,
                r,
                meter=item_meter,
                timeout=self.item_timeout,
                priority=self.priority,
                choice=self.choices.get((r.sop_class_uid, r.transfer_syntax_uid)),
                prefetched=pre,
            )
        except DicomError as exc:
            self._instance_failed(index, r, item_meter, exc)
        except Exception as exc:  # a bug, or the progress callback raised
            self._fail_batch(exc)
        else:
            self._instance_answered(index, item_meter, result)
        finally:
            if pre is not None and pre.fp is not None:  # not taken over: close it here
                await _discard(pre)
            item_meter.set_sent_all()
            self._release()

    def _instance_failed(
        self, index: int, r: _Resolved, item_meter: _ItemMeter, exc: DicomError
    ) -> None:
        """An instance ended without an answer (or a local failure): its result, and the
        stop rule for the ones not yet started."""
        # The batch total no longer counts what of this one was not sent.
        self.meter.total -= item_meter.unsent()
        error: DicomError = exc
        if self.watchdog is not None and self.watchdog.fired:
            error = DicomTimeoutError(
                "progress of the pipelined C-STOREs (no byte sent or answer)",
                self.watchdog.limit,
            )
        self._emit(index, _failed(r, _error_text(error), retryable=error.retryable))
        if isinstance(error, AssociationError):
            self.stop.set(f"{NOT_SENT_ASSOCIATION_ENDED} ({error})", retryable=True)
        elif self.channel.is_closed:
            self.stop.set(NOT_SENT_ASSOCIATION_ENDED, retryable=True)
        elif not self.continue_on_error:
            self.stop.set("not sent: stopped after a failure", retryable=False)

    def _instance_answered(self, index: int, item_meter: _ItemMeter, result: StoreResult) -> None:
        """An instance's answer: its result, and the stop rule."""
        item_meter.sync_total()
        if self.watchdog is not None:
            self.watchdog.rearm()  # an answer is progress
        self._emit(index, result)
        if not result.ok and not self.continue_on_error:
            self.stop.set("not sent: stopped after a failure", retryable=False)
