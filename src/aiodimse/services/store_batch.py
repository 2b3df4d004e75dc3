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
from typing import TYPE_CHECKING

import anyio
import anyio.abc

from ..dimse.messages import Priority
from ..errors import AssociationError, DicomError, DicomTimeoutError, LocalProtocolError
from ..net.channel import Channel
from ..net.filesource import DicomFileError, DicomFileInfo
from .storage_contexts import NoPresentationContext
from .storage_scu import (
    Progress,
    StoreItem,
    StoreResult,
    _Meter,
    _Resolved,
    _store_one,
    _store_timeout,
    resolve_items,
)

if TYPE_CHECKING:
    from .ae import AE

__all__ = ["NOT_SENT_ASSOCIATION_ENDED", "operations_window", "store_many"]

log = logging.getLogger("aiodimse.storescu")

#: How the error of an instance never started because the association ended begins (it can
#: be sent again on another association without risk of a duplicate).
NOT_SENT_ASSOCIATION_ENDED = "not sent: the association ended"


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


class _ItemMeter(_Meter):
    """One instance's byte count: forwards progress and total changes to the batch meter
    and sets ``sent_all`` once every byte of the dataset has gone to the transport (the
    moment the next request of a pipeline may start)."""

    __slots__ = ("_batch", "_on_progress", "_reported_total", "sent_all")

    def __init__(
        self, batch: _Meter, total: int, *, on_progress: Callable[[], None] | None = None
    ) -> None:
        super().__init__(None, total)
        self._batch = batch
        self._reported_total = total
        self._on_progress = on_progress
        self.sent_all = anyio.Event()

    def add(self, n: int) -> None:
        self.sent += n
        self.sync_total()
        self._batch.add(n)
        if self._on_progress is not None:
            self._on_progress()
        if self.sent >= self.total:
            self.sent_all.set()

    def sync_total(self) -> None:
        """Carry a change of this instance's total (re-encoded, encoded) to the batch."""
        if self.total != self._reported_total:
            self._batch.total += self.total - self._reported_total
            self._reported_total = self.total

    def unsent(self) -> int:
        self.sync_total()
        return max(0, self.total - self.sent)


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


class _Watchdog:
    """The no-progress deadline of a pipelined batch: re-armed by every slice sent and every
    response; when it runs out, the association is aborted (the outstanding requests then
    fail, PS3.8 E.1 leaves nothing else to do with them)."""

    __slots__ = ("deadline", "fired", "limit", "scope")

    def __init__(self, limit: float) -> None:
        self.limit = limit
        self.deadline = anyio.current_time() + limit
        self.scope: anyio.CancelScope | None = None
        self.fired = False

    def rearm(self) -> None:
        self.deadline = anyio.current_time() + self.limit
        if self.scope is not None:
            self.scope.deadline = self.deadline

    async def run(self, channel: Channel) -> None:
        while True:
            with anyio.CancelScope(deadline=self.deadline) as scope:
                self.scope = scope
                await anyio.sleep_forever()
            self.scope = None
            if anyio.current_time() >= self.deadline:
                log.warning(
                    "%s: no C-STORE progress for %s s (nothing sent, no answer), aborting",
                    channel.peer,
                    self.limit,
                )
                self.fired = True
                await channel.abort()
                return


class _Batch:
    """One ``store_many`` call: the spawner loop, the per-instance tasks, the stop rules."""

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
        self.in_flight = anyio.Semaphore(width)
        # Pipelined, the deadline is the batch's (see store_many); one at a time it stays
        # per instance, exactly as a single store().
        self.watchdog = _Watchdog(timeout) if width > 1 and timeout is not None else None
        self.item_timeout = None if self.watchdog is not None else timeout
        self._tg: anyio.abc.TaskGroup | None = None

    async def run(self) -> list[StoreResult]:
        async with anyio.create_task_group() as outer:
            if self.watchdog is not None:
                outer.start_soon(self.watchdog.run, self.channel)
            async with anyio.create_task_group() as tg:
                self._tg = tg
                await self._spawn_all(tg)
            outer.cancel_scope.cancel()
        if self.crash:
            raise self.crash[0]
        if self.progress is not None:
            self.meter.report()
        done: list[StoreResult] = []
        for result in self.results:
            assert result is not None  # every index gets exactly one result
            done.append(result)
        return done

    async def _spawn_all(self, tg: anyio.abc.TaskGroup) -> None:
        previous: _ItemMeter | None = None
        for index, r in enumerate(self.resolved):
            if self.stop.reason is not None:
                self._not_sent(index, r)
                continue
            if isinstance(r, DicomFileError):
                self._emit(index, _failed(r, r.reason, retryable=False))
                if not self.continue_on_error:
                    self.stop.set(f"not sent: stopped after {r.path} failed", retryable=False)
                continue
            # PS3.7 D.3.3.3: at most the agreed number of requests outstanding.
            await self.in_flight.acquire()
            if self.slots is not None:
                try:
                    await self.slots.acquire()
                except BaseException:
                    self.in_flight.release()
                    raise
            # PS3.8 E.1: one whole message at a time, in input order; the next one starts
            # when the previous one's last byte went out (never queued behind it).
            if previous is not None:
                await previous.sent_all.wait()
            if self.stop.reason is not None:
                self._release()
                self._not_sent(index, r)
                continue
            total = r.dataset_length if isinstance(r, DicomFileInfo) else 0
            previous = _ItemMeter(
                self.meter,
                total,
                on_progress=self.watchdog.rearm if self.watchdog is not None else None,
            )
            tg.start_soon(self._send_one, index, r, previous)

    def _release(self) -> None:
        self.in_flight.release()
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

    async def _send_one(self, index: int, r: _Resolved, item_meter: _ItemMeter) -> None:
        try:
            result = await _store_one(
                self.channel,
                self.ae,
                r,
                meter=item_meter,
                timeout=self.item_timeout,
                priority=self.priority,
            )
        except DicomError as exc:
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
        except Exception as exc:  # a bug, or the progress callback raised
            self._fail_batch(exc)
        else:
            item_meter.sync_total()
            if self.watchdog is not None:
                self.watchdog.rearm()  # an answer is progress
            self._emit(index, result)
            if not result.ok and not self.continue_on_error:
                self.stop.set("not sent: stopped after a failure", retryable=False)
        finally:
            item_meter.sent_all.set()
            self._release()
