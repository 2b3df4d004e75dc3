"""Sending files to one destination: propose what they need, associate, send, report.

:func:`send_files` and :func:`associate_for_files` are the AE-level entry points
(``AE.send_files``, ``AE.associate_for_files``). They decide the presentation contexts to
propose (:func:`~aiodimse.services.storage_contexts.propose_contexts` under a
:class:`~aiodimse.services.ts_strategies.Strategy`) and hand each batch to
:func:`aiodimse.services.store_batch.store_many`.

Theory of operation of :func:`send_files`
-----------------------------------------
1. The files are examined (off the loop) and cut into batches whose proposals fit one
   association (128 presentation contexts, PS3.8 9.3.2.2; :func:`split_batches`): all files
   of a SOP class travel together.
2. Each batch gets an association proposing what the strategy says. Before sending, each
   file is checked against what the peer accepted (:func:`choose_context`); the files that
   have a usable context are sent (own syntax bit for bit, or converted), the others wait
   (unless the peer rejected their SOP class itself: they fail at once, explained).
3. **Fallback**: when the association is rejected or aborted during negotiation (some old
   PACS refuse an A-ASSOCIATE-RQ with many contexts or syntaxes they do not know), or when
   files found no usable context, those files are sent again over a new association with the
   next more conservative strategy (:func:`fallback_chain`; ``universal`` last). At the last
   strategy a file without a context fails with the full explanation
   (:class:`NoPresentationContext`).
4. Rejections that a smaller proposal cannot cure are not retried: AE titles not
   recognized, application context or protocol version not supported, and transient
   rejections (PS3.8 9.3.4, Table 9-21); neither are connection failures.

Each :class:`StoreResult` carries the ``strategy`` of the association that carried it and
the ``transfer_syntax`` finally used.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from ..constants import PresentationContextResult
from ..errors import (
    AssociationAborted,
    AssociationRejected,
    DicomError,
    DicomTimeoutError,
    LocalProtocolError,
    NetworkError,
)
from ..net.filesource import DicomFileInfo, prepare_files
from .contexts import Context
from .storage_contexts import (
    NoPresentationContext,
    choose_context,
    propose_contexts,
    split_batches,
)
from .storage_scu import Progress, StoreResult
from .store_batch import _failed
from .ts_strategies import Capabilities, Strategy, fallback_chain

if TYPE_CHECKING:
    from .ae import AE
    from .association import Association

__all__ = ["associate_for_files", "send_files", "send_prepared", "worth_falling_back"]

log = logging.getLogger("aiodimse.sending")


@asynccontextmanager
async def associate_for_files(
    ae: AE,
    host: str,
    port: int,
    paths: Iterable[Path | str],
    *,
    called_ae: str = "ANY-SCP",
    recurse: bool = False,
    extra_contexts: Sequence[Context] = (),
    strategy: Strategy = Strategy.AUTO,
) -> AsyncIterator[Association]:
    """An association proposing what the given files need (:func:`propose_contexts` under
    ``strategy``; no fallback: this is one association).

    Files are examined first (off the loop); non-DICOM ones are ignored here (they fail in
    ``store_many`` with their reason). ``extra_contexts`` (e.g. Verification) are appended.
    Raises :class:`LocalProtocolError` when no file is DICOM.
    """
    prepared = await prepare_files(paths, recurse=recurse)
    contexts = propose_contexts(prepared.files, strategy=strategy) + list(extra_contexts)
    if not contexts:
        raise LocalProtocolError("none of the given files is a DICOM file to send")
    async with ae.associate(host, port, called_ae=called_ae, contexts=contexts) as assoc:
        yield assoc


def worth_falling_back(exc: BaseException) -> bool:
    """Whether a failure to establish an association may be cured by proposing less.

    PS3.8 9.3.4 Table 9-21: a rejection for an AE title (source 1, reasons 3 and 7), the
    application context (1, 2) or the protocol version (2, 2) is not about the contexts,
    and a transient one (result 2) asks to come back later; a refused or unreachable
    connection never saw our proposal. Anything else during negotiation (rejection
    "no reason given", A-ABORT, the connection closed, no A-ASSOCIATE answer) is.
    """
    if isinstance(exc, AssociationRejected):
        if exc.result == 2:
            return False
        return (exc.source, exc.reason) not in {(1, 2), (1, 3), (1, 7), (2, 2)}
    if isinstance(exc, DicomTimeoutError):
        return exc.timer == "A-ASSOCIATE response"
    if isinstance(exc, NetworkError):
        return not str(exc).startswith(("connection refused", "cannot connect"))
    return isinstance(exc, AssociationAborted)


@dataclass(frozen=True, slots=True)
class _Pending:
    index: int
    info: DicomFileInfo

    @property
    def sop_class_uid(self) -> str:
        return self.info.sop_class_uid

    @property
    def transfer_syntax_uid(self) -> str:
        return self.info.transfer_syntax_uid


def _send_now(assoc: Association, info: DicomFileInfo, caps: Capabilities) -> bool:
    """Whether to send ``info`` over ``assoc``: it has a usable context, or proposing less
    cannot help (the peer does not support its SOP class at all, PS3.8 Table 9-18)."""
    n = assoc.negotiated
    try:
        choose_context(
            n.accepted,
            info.sop_class_uid,
            info.transfer_syntax_uid,
            rejected=n.rejected,
            capabilities=caps,
        )
    except NoPresentationContext as exc:
        return bool(exc.rejected) and all(
            r == PresentationContextResult.ABSTRACT_SYNTAX_NOT_SUPPORTED for r in exc.rejected
        )
    return True


async def send_files(
    ae: AE,
    host: str,
    port: int,
    paths: Iterable[Path | str],
    *,
    called_ae: str = "ANY-SCP",
    recurse: bool = False,
    continue_on_error: bool = True,
    progress: Progress | None = None,
    on_result: Callable[[StoreResult], None] | None = None,
    timeout: float | None = -1.0,
    strategy: Strategy = Strategy.AUTO,
    fallback: bool = True,
) -> list[StoreResult]:
    """Send files (and directories' files); one result per file (see the module docstring).

    ``strategy`` is the first proposal strategy; with ``fallback`` (default) the more
    conservative ones follow as needed. Results: first one per file that is not DICOM (with
    ``error``; not sent), then one per DICOM file in path order (directories sorted).
    ``progress`` counts each association's batch on its own. When the first association
    cannot be established (and falling back cannot help or is exhausted) the error is
    raised as from :meth:`AE.associate`; a later one fails its batch's files instead
    (``retryable`` as the error).
    """
    prepared = await prepare_files(paths, recurse=recurse)
    skipped = [_failed(s, s.reason, retryable=False) for s in prepared.skipped]
    for s in skipped:
        if on_result is not None:
            on_result(s)
    sent = await send_prepared(
        ae,
        host,
        port,
        prepared.files,
        called_ae=called_ae,
        continue_on_error=continue_on_error,
        progress=progress,
        on_result=on_result,
        timeout=timeout,
        strategy=strategy,
        fallback=fallback,
    )
    return skipped + sent


async def send_prepared(
    ae: AE,
    host: str,
    port: int,
    files: Sequence[DicomFileInfo],
    *,
    called_ae: str = "ANY-SCP",
    continue_on_error: bool = True,
    progress: Progress | None = None,
    on_result: Callable[[StoreResult], None] | None = None,
    timeout: float | None = -1.0,
    strategy: Strategy = Strategy.AUTO,
    fallback: bool = True,
) -> list[StoreResult]:
    """:func:`send_files` for files already examined: one result per file, in order."""
    if not files:
        return []
    caps = await Capabilities.detect_async()
    chain = fallback_chain(strategy) if fallback else (strategy,)
    pending = [_Pending(n, info) for n, info in enumerate(files)]
    final: dict[int, StoreResult] = {}
    stopped: str | None = None

    def give(result: StoreResult) -> None:
        if on_result is not None:
            on_result(result)

    for step, strat in enumerate(chain):
        last = step == len(chain) - 1
        retry: list[_Pending] = []
        for batch in split_batches(pending, strategy=strat, capabilities=caps):
            if stopped is not None:
                retry.extend(batch)
                continue
            contexts = propose_contexts(batch, strategy=strat, capabilities=caps)
            entered = False
            try:
                async with ae.associate(
                    host, port, called_ae=called_ae, contexts=contexts
                ) as assoc:
                    entered = True
                    usable = [last or _send_now(assoc, p.info, caps) for p in batch]
                    ready = [p for p, ok in zip(batch, usable, strict=True) if ok]
                    later = [p for p, ok in zip(batch, usable, strict=True) if not ok]
                    if later:
                        log.info(
                            "%d file(s) without a usable context under strategy %r: retrying "
                            "with a more conservative one",
                            len(later),
                            strat.value,
                        )
                    retry.extend(later)

                    def stamped(result: StoreResult, strat: Strategy = strat) -> None:
                        give(replace(result, strategy=strat))

                    results = await assoc.store_many(
                        [p.info for p in ready],
                        continue_on_error=continue_on_error,
                        progress=progress,
                        on_result=stamped,
                        timeout=timeout,
                    )
            except DicomError as exc:
                if entered:
                    raise
                if not last and worth_falling_back(exc):
                    log.warning(
                        "association with strategy %r failed (%s); falling back", strat.value, exc
                    )
                    retry.extend(batch)
                    continue
                if not final:
                    raise
                for p in batch:
                    result = replace(
                        _failed(p.info, f"not sent: {exc}", retryable=exc.retryable),
                        strategy=strat,
                    )
                    final[p.index] = result
                    give(result)
                continue
            for p, result in zip(ready, results, strict=True):
                final[p.index] = replace(result, strategy=strat)
            if not continue_on_error and any(not r.ok for r in results):
                stopped = "not sent: stopped after a failure"
        pending = retry
        if not pending:
            break
    for p in pending:  # only left over after a stop
        result = _failed(p.info, stopped or "not sent", retryable=False)
        final[p.index] = result
        give(result)
    return [final[n] for n in sorted(final)]
