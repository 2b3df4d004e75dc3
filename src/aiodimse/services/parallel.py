"""Many instances to one destination over several associations at once.

:func:`send_files_parallel` (``AE.send_files(..., associations=N, window=W)``) and
:func:`store_parallel` split a batch over up to ``associations`` associations from an
:class:`~aiodimse.services.pool.AssociationPool`; on each, ``store_many`` pipelines up to
``window`` requests (the Asynchronous Operations Window, PS3.7 D.3.3.3, when the peer grants
one). There is one result per instance, in input order, and one progress total.

Work is handed out in chunks from one queue, so a slow association takes fewer. When an
association is lost, the instances it had not started yet go back to the queue (once) and
another association (a new one if need be) sends them; instances that were outstanding when
it was lost are reported (``retryable=True``), never sent twice behind the caller's back.
"""

from __future__ import annotations

import logging
import math
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import anyio

from ..dimse.messages import Priority
from ..errors import DicomError, LocalProtocolError
from ..net.filesource import DicomFileError, DicomFileInfo, prepare_files
from .contexts import Context
from .pool import AssociationPool
from .storage_contexts import propose_contexts
from .storage_scu import (
    PROGRESS_INTERVAL,
    DatasetInstance,
    Progress,
    StoreItem,
    StoreResult,
    resolve_items,
)
from .store_batch import NOT_SENT_ASSOCIATION_ENDED, _failed

if TYPE_CHECKING:
    from .ae import AE

__all__ = ["send_files_parallel", "store_parallel"]

log = logging.getLogger("aiodimse.storescu")

_Item = DicomFileInfo | DatasetInstance


class _Progress:
    """One total over all chunks: each chunk's store_many reports (sent, total) of its own."""

    def __init__(self, callback: Progress | None, total: int) -> None:
        self._callback = callback
        self.base = total
        self._chunks: dict[int, tuple[int, int, int]] = {}  # id -> (sent, total, planned)
        self._last = -math.inf

    def chunk(self, key: int, planned: int) -> Progress:
        self._chunks[key] = (0, planned, planned)

        def report(sent: int, total: int) -> None:
            self._chunks[key] = (sent, total, planned)
            now = anyio.current_time()
            if now - self._last >= PROGRESS_INTERVAL:
                self._last = now
                self.report()

        return report

    def totals(self) -> tuple[int, int]:
        sent = sum(s for s, _, _ in self._chunks.values())
        total = self.base + sum(t - p for _, t, p in self._chunks.values())
        return sent, total

    def report(self) -> None:
        if self._callback is not None:
            self._callback(*self.totals())


@dataclass(slots=True)
class _State:
    stop: str | None = None  # why items not yet handed out are not sent
    opened: int = 0  # associations borrowed successfully
    error: DicomError | None = None  # the first failure to get one
    crash: Exception | None = None  # re-raised once every worker stopped


def _length(item: _Item) -> int:
    return item.dataset_length if isinstance(item, DicomFileInfo) else 0


async def store_parallel(
    pool: AssociationPool,
    items: Sequence[StoreItem],
    *,
    associations: int | None = None,
    window: int | None = None,
    contexts: Sequence[Context] = (),
    continue_on_error: bool = True,
    progress: Progress | None = None,
    on_result: Callable[[StoreResult], None] | None = None,
    timeout: float | None = -1.0,
    priority: int = Priority.MEDIUM,
    chunk_size: int | None = None,
) -> list[StoreResult]:
    """C-STORE ``items`` over up to ``associations`` (default ``pool.max_size``) associations
    of ``pool`` at once: one :class:`StoreResult` per item, in input order.

    ``window`` caps the requests outstanding on each association (see
    :meth:`Association.store_many`); ``contexts`` are asked of the pool for these items.
    ``progress(bytes_sent, total)`` covers the whole batch; ``on_result`` is called as each
    result is known. Stop rules as in ``store_many``: with ``continue_on_error=False`` the
    items not yet handed to an association after a failure are "not sent". Raises the
    association error when not a single association could be opened.
    """
    width = associations if associations is not None else pool.max_size
    if width < 1:
        raise LocalProtocolError("associations must be at least 1")
    results: list[StoreResult | None] = [None] * len(items)
    queue: deque[tuple[int, _Item]] = deque()
    for index, r in enumerate(await resolve_items(items)):
        if isinstance(r, DicomFileError):
            failed = _failed(r, r.reason, retryable=False)
            results[index] = failed
            if on_result is not None:
                on_result(failed)
        else:
            queue.append((index, r))
    meter = _Progress(progress, sum(_length(r) for _, r in queue))
    requeued: set[int] = set()
    state = _State()
    chunk_ids = iter(range(1 << 62))

    def record(index: int, result: StoreResult) -> None:
        results[index] = result
        if on_result is not None and state.crash is None:
            on_result(result)

    def take(assoc_window: int) -> list[tuple[int, _Item]]:
        fair = math.ceil(len(queue) / width)
        size = chunk_size or max(1, min(max(16, 4 * assoc_window), fair))
        return [queue.popleft() for _ in range(min(size, len(queue)))]

    async def worker() -> None:
        while queue and state.stop is None:
            try:
                async with pool.acquire(contexts) as assoc:
                    state.opened += 1
                    while queue and state.stop is None and not assoc.is_closed:
                        chunk = take(assoc.operations_window)
                        key = next(chunk_ids)
                        sent = await assoc.store_many(
                            [r for _, r in chunk],
                            continue_on_error=continue_on_error,
                            progress=meter.chunk(key, sum(_length(r) for _, r in chunk)),
                            timeout=timeout,
                            priority=priority,
                            window=window,
                        )
                        again: list[tuple[int, _Item]] = []
                        for (index, r), result in zip(chunk, sent, strict=True):
                            if (
                                result.error is not None
                                and result.error.startswith(NOT_SENT_ASSOCIATION_ENDED)
                                and index not in requeued
                            ):
                                # Never started on the lost association: another sends it.
                                requeued.add(index)
                                again.append((index, r))
                                meter.base += _length(r)
                                continue
                            record(index, result)
                            if not result.ok and not continue_on_error:
                                state.stop = "not sent: stopped after a failure"
                        queue.extendleft(reversed(again))  # first in line, in their order
            except DicomError as exc:
                if state.error is None:
                    state.error = exc
                log.info("%s:%d: an association for sending failed: %s", pool.host, pool.port, exc)
                return
            except Exception as exc:  # a bug, or the caller's callback raised
                if state.crash is None:
                    state.crash = exc
                state.stop = f"not sent: {type(exc).__name__}"
                tg.cancel_scope.cancel()
                return

    async with anyio.create_task_group() as tg:
        for _ in range(min(width, max(1, len(queue)))):
            tg.start_soon(worker)
    if state.crash is not None:
        raise state.crash
    if queue and not state.opened and state.error is not None:
        raise state.error
    reason = state.stop or f"not sent: no association ({state.error})"
    while queue:
        index, r = queue.popleft()
        record(index, _failed(r, reason, retryable=state.stop is None))
    meter.report()
    done: list[StoreResult] = []
    for result in results:
        assert result is not None  # every index got exactly one result above
        done.append(result)
    return done


async def send_files_parallel(
    ae: AE,
    host: str,
    port: int,
    paths: Iterable[Path | str],
    *,
    called_ae: str = "ANY-SCP",
    associations: int = 4,
    window: int | None = None,
    recurse: bool = False,
    continue_on_error: bool = True,
    progress: Progress | None = None,
    on_result: Callable[[StoreResult], None] | None = None,
    timeout: float | None = -1.0,
    pool: AssociationPool | None = None,
) -> list[StoreResult]:
    """Send files (and directories' files) over up to ``associations`` associations at once,
    each pipelining up to ``window`` requests; one result per file, one progress total.

    ``window`` is proposed as the Asynchronous Operations Window (PS3.7 D.3.3.3) unless the
    AE already proposes one; the peer may grant less (dcmtk and Orthanc grant 1). Pass a
    ``pool`` of your own to keep the associations open between calls. Results: first one per
    file that is not DICOM, then one per DICOM file in path order, as ``AE.send_files``.
    Raises as :meth:`AE.associate` when no association could be opened at all.
    """
    prepared = await prepare_files(paths, recurse=recurse)
    skipped = [_failed(s, s.reason, retryable=False) for s in prepared.skipped]
    for s in skipped:
        if on_result is not None:
            on_result(s)
    if not prepared.files:
        return skipped
    contexts = propose_contexts(prepared.files)
    async with AsyncExitStack() as stack:
        if pool is None:
            invoked = None
            if window is not None and window > 1 and ae.max_operations_invoked == 1:
                invoked = window
            pool = await stack.enter_async_context(
                AssociationPool(
                    ae,
                    host,
                    port,
                    called_ae=called_ae,
                    contexts=contexts,
                    max_size=associations,
                    check_after=None,
                    max_operations_invoked=invoked,
                )
            )
        sent = await store_parallel(
            pool,
            list(prepared.files),
            associations=associations,
            window=window,
            contexts=contexts,
            continue_on_error=continue_on_error,
            progress=progress,
            on_result=on_result,
            timeout=timeout,
        )
    return skipped + sent
