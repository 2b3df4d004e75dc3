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
from pathlib import Path
from typing import TYPE_CHECKING

import anyio
from pydicom.dataset import Dataset

from ..dimse.messages import Priority
from ..errors import AssociationError, DicomError, LocalProtocolError
from ..net.channel import Channel
from ..net.filesource import DicomFileError, DicomFileInfo, probe_files
from .storage_contexts import NoPresentationContext
from .storage_scu import (
    DatasetInstance,
    Progress,
    StoreItem,
    StoreResult,
    _Meter,
    _Resolved,
    _store_one,
    _store_timeout,
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

    __slots__ = ("_batch", "_reported_total", "sent_all")

    def __init__(self, batch: _Meter, total: int) -> None:
        super().__init__(None, total)
        self._batch = batch
        self._reported_total = total
        self.sent_all = anyio.Event()

    def add(self, n: int) -> None:
        self.sent += n
        self.sync_total()
        self._batch.add(n)
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

    ``progress(bytes_sent, total)`` covers the whole batch (totals of all files, adjusted
    when one is re-encoded); ``on_result`` is called with each result as it is known, which
    under a window may differ from the order of ``items`` (the returned list never does).
    """
    limit_s = _store_timeout(ae, timeout)
    width = operations_window(channel, window)
    originals = list(items)
    paths = [Path(i) for i in originals if isinstance(i, str | Path)]
    probed = iter(await probe_files(paths))
    resolved: list[_Resolved | DicomFileError] = []
    for i in originals:
        if isinstance(i, str | Path):
            resolved.append(next(probed))
        elif isinstance(i, Dataset):
            try:
                resolved.append(DatasetInstance.from_dataset(i))
            except LocalProtocolError as exc:
                resolved.append(DicomFileError("<dataset>", str(exc)))
        else:
            resolved.append(i)
    meter = _Meter(
        progress, sum(r.dataset_length for r in resolved if isinstance(r, DicomFileInfo))
    )
    results: list[StoreResult | None] = [None] * len(resolved)
    stop = _Stop()
    crash: list[BaseException] = []
    in_flight = anyio.Semaphore(width)

    def fail_batch(exc: Exception) -> None:
        # A bug or the caller's callback raised: stop everything, re-raise it below.
        crash.append(exc)
        stop.set(f"not sent: {type(exc).__name__}", retryable=False)
        tg.cancel_scope.cancel()

    def emit(index: int, result: StoreResult) -> None:
        results[index] = result
        if on_result is not None and not crash:
            try:
                on_result(result)
            except Exception as exc:
                fail_batch(exc)

    def not_sent(index: int, r: _Resolved | DicomFileError) -> None:
        assert stop.reason is not None
        emit(index, _failed(r, stop.reason, retryable=stop.retryable))
        if isinstance(r, DicomFileInfo):
            meter.total -= r.dataset_length

    async def send_one(index: int, r: _Resolved, item_meter: _ItemMeter) -> None:
        try:
            result = await _store_one(
                channel, ae, r, meter=item_meter, timeout=limit_s, priority=priority
            )
        except DicomError as exc:
            # The batch total no longer counts what of this one was not sent.
            meter.total -= item_meter.unsent()
            emit(index, _failed(r, _error_text(exc), retryable=exc.retryable))
            if isinstance(exc, AssociationError):
                stop.set(f"{NOT_SENT_ASSOCIATION_ENDED} ({exc})", retryable=True)
            elif channel.is_closed:
                stop.set(NOT_SENT_ASSOCIATION_ENDED, retryable=True)
            elif not continue_on_error:
                stop.set("not sent: stopped after a failure", retryable=False)
        except Exception as exc:  # a bug, or the progress callback raised
            fail_batch(exc)
        else:
            item_meter.sync_total()
            emit(index, result)
            if not result.ok and not continue_on_error:
                stop.set("not sent: stopped after a failure", retryable=False)
        finally:
            item_meter.sent_all.set()
            in_flight.release()
            if slots is not None:
                slots.release()

    async with anyio.create_task_group() as tg:
        previous: _ItemMeter | None = None
        for index, r in enumerate(resolved):
            if stop.reason is not None:
                not_sent(index, r)
                continue
            if isinstance(r, DicomFileError):
                emit(index, _failed(r, r.reason, retryable=False))
                if not continue_on_error:
                    stop.set(f"not sent: stopped after {r.path} failed", retryable=False)
                continue
            # PS3.7 D.3.3.3: at most the agreed number of requests outstanding.
            await in_flight.acquire()
            if slots is not None:
                try:
                    await slots.acquire()
                except BaseException:
                    in_flight.release()
                    raise
            # PS3.8 E.1: one whole message at a time, in order; the next one is started when
            # the previous one's last byte went out, so its deadline never runs while queued.
            if previous is not None:
                await previous.sent_all.wait()
            if stop.reason is not None:
                in_flight.release()
                if slots is not None:
                    slots.release()
                not_sent(index, r)
                continue
            total = r.dataset_length if isinstance(r, DicomFileInfo) else 0
            previous = _ItemMeter(meter, total)
            tg.start_soon(send_one, index, r, previous)
    if crash:
        raise crash[0]
    if progress is not None:
        meter.report()
    done: list[StoreResult] = []
    for result in results:
        assert result is not None  # every index gets exactly one result above
        done.append(result)
    return done
