"""Batches of C-STORE: many instances over one association, one result per instance.

:func:`store_many` is ``Association.store_many`` (the AE-level helpers are in
:mod:`aiodimse.services.sending`). One instance is sent by ``storage_scu._store_one``; this
module owns the order, the stop rules and the batch's progress total.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING

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

__all__ = ["store_many"]

log = logging.getLogger("aiodimse.storescu")


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
) -> list[StoreResult]:
    """C-STORE each item in order over this association: one :class:`StoreResult` per item.

    Never raises for one instance's trouble: a file that cannot be read, a missing context
    or a failure status becomes that item's result; after a failure, the remaining items
    are sent only with ``continue_on_error``, otherwise they get a "not sent" result. When
    the association is lost, the rest are "not sent" with ``retryable=True``.

    ``progress(bytes_sent, total)`` covers the whole batch (totals of all files, adjusted
    when one is re-encoded); ``on_result`` is called with each result as it is known.
    """
    limit_s = _store_timeout(ae, timeout)
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
    results: list[StoreResult] = []
    stop: str | None = None
    stop_retryable = False

    def emit(result: StoreResult) -> None:
        results.append(result)
        if on_result is not None:
            on_result(result)

    for r in resolved:
        length = r.dataset_length if isinstance(r, DicomFileInfo) else 0
        if stop is not None:
            emit(_failed(r, stop, retryable=stop_retryable))
            meter.total -= length
            continue
        if isinstance(r, DicomFileError):
            emit(_failed(r, r.reason, retryable=False))
            if not continue_on_error:
                stop, stop_retryable = f"not sent: stopped after {r.path} failed", False
            continue
        sent_before, total_before = meter.sent, meter.total
        try:
            result = await _store_one(
                channel, ae, r, meter=meter, timeout=limit_s, priority=priority
            )
        except DicomError as exc:
            # The batch total no longer counts what of this one was not sent.
            planned = length + (meter.total - total_before)
            meter.total -= planned - (meter.sent - sent_before)
            emit(_failed(r, _error_text(exc), retryable=exc.retryable))
            if isinstance(exc, AssociationError):
                stop, stop_retryable = f"not sent: the association ended ({exc})", True
                continue
            if channel.is_closed:
                stop, stop_retryable = "not sent: the association ended", True
            elif not continue_on_error:
                stop, stop_retryable = "not sent: stopped after a failure", False
            continue
        emit(result)
        if not result.ok and not continue_on_error:
            stop, stop_retryable = "not sent: stopped after a failure", False
    if progress is not None:
        meter.report()
    return results
