"""Sending files to one destination: propose what they need, associate, send, report.

:func:`send_files` and :func:`associate_for_files` are the AE-level entry points
(``AE.send_files``, ``AE.associate_for_files``). They decide the presentation contexts to
propose (:func:`~aiodimse.services.storage_contexts.propose_contexts`) and hand the batch to
:func:`aiodimse.services.store_batch.store_many`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import LocalProtocolError
from ..net.filesource import prepare_files
from .contexts import Context
from .storage_contexts import propose_contexts
from .storage_scu import Progress, StoreResult
from .store_batch import _failed

if TYPE_CHECKING:
    from .ae import AE
    from .association import Association

__all__ = ["associate_for_files", "send_files"]


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
) -> AsyncIterator[Association]:
    """An association proposing what the given files need (:func:`propose_contexts`).

    Files are examined first (off the loop); non-DICOM ones are ignored here (they fail in
    ``store_many`` with their reason). ``extra_contexts`` (e.g. Verification) are appended.
    Raises :class:`LocalProtocolError` when no file is DICOM.
    """
    prepared = await prepare_files(paths, recurse=recurse)
    contexts = propose_contexts(prepared.files) + list(extra_contexts)
    if not contexts:
        raise LocalProtocolError("none of the given files is a DICOM file to send")
    async with ae.associate(host, port, called_ae=called_ae, contexts=contexts) as assoc:
        yield assoc


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
) -> list[StoreResult]:
    """Send files (and directories' files) over one association; one result per file.

    Results: first one per file that is not DICOM (with ``error``; not sent), then one per
    DICOM file in path order (directories sorted). Association failures (refused, rejected)
    raise as from :meth:`AE.associate`.
    """
    prepared = await prepare_files(paths, recurse=recurse)
    skipped = [_failed(s, s.reason, retryable=False) for s in prepared.skipped]
    for s in skipped:
        if on_result is not None:
            on_result(s)
    if not prepared.files:
        return skipped
    contexts = propose_contexts(prepared.files)
    async with ae.associate(host, port, called_ae=called_ae, contexts=contexts) as assoc:
        sent = await assoc.store_many(
            prepared.files,
            continue_on_error=continue_on_error,
            progress=progress,
            on_result=on_result,
            timeout=timeout,
        )
    return skipped + sent
