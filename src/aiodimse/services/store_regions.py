"""A stored dataset sent as file regions (``os.sendfile``) instead of chunks read into memory.

Theory of operation
-------------------
When a C-STORE sends a file's dataset unchanged (:mod:`aiodimse.services.storage_scu`) and
the association runs over a plain TCP socket on a platform with ``os.sendfile``
(:data:`~aiodimse.net.sendfile.SENDFILE_SUPPORTED`), :class:`RegionReader` stands in for
:class:`~aiodimse.net.filesource.DatasetReader`: it opens the file (off the loop, with the
same "unchanged since examined" check) and yields
:class:`~aiodimse.dimse.file_region.FileRegion` chunks: no worker-thread trip and no copy per
chunk, nothing of the dataset in memory. The fragmenter slices them into PDV payloads and the
transport writes them with ``sendfile`` (:mod:`aiodimse.net.sendfile`). A head read ahead by
the batch (:class:`~aiodimse.net.filesource.Prefetched`) goes first, as bytes.

Only datasets larger than one read chunk are sent this way (smaller ones are read whole,
many per worker-thread trip, by the batch's read-ahead) and only of even length (PS3.8
E.1: every fragment even; a well-formed dataset always is, PS3.5 7.1.1).

A file cut while being sent is noticed by ``sendfile`` (fewer bytes than asked): the
transport raises, the message cannot be finished and the association is aborted, as with
the reader.
"""

from __future__ import annotations

import os
from types import TracebackType
from typing import BinaryIO, Final

import anyio

from ..dimse.file_region import FileRegion
from ..net.filesource import (
    DicomFileError,
    DicomFileInfo,
    Prefetched,
    _open_dataset,
    file_io_limiter,
)

__all__ = ["RegionReader", "regions_possible"]

_FADVISE: Final = hasattr(os, "posix_fadvise") and hasattr(os, "POSIX_FADV_WILLNEED")
#: Bytes the kernel is asked to read ahead at once (a 4 MiB instance: one request).
ADVISE_WINDOW: Final = 8 << 20
_NOWAIT: Final = getattr(os, "RWF_NOWAIT", 0) if hasattr(os, "preadv") else 0
_PROBE = bytearray(1)


def _cached(fd: int, start: int, n: int) -> bool:
    """Whether the window's first, middle and last bytes are in the page cache: each a
    one-byte ``preadv(RWF_NOWAIT)``, which fails rather than wait for the disk (Linux
    ``preadv2(2)``). About 1 us each, where advising a cached 4 MiB window costs ~60 us (the
    kernel walks every page): a file just written or sent before needs no advice. False
    when the probe is not available or refused (then we advise, as before)."""
    if not _NOWAIT:
        return False
    try:
        for offset in (start, start + n // 2, start + n - 1):
            if os.preadv(fd, [_PROBE], offset, _NOWAIT) != 1:
                return False
    except OSError:  # BlockingIOError: not cached; EOPNOTSUPP: no probe on this file system
        return False
    return True


def regions_possible(transport: object, info: DicomFileInfo, chunk_size: int) -> bool:
    """Whether ``info``'s dataset may go as regions over ``transport`` (module docstring)."""
    length = info.dataset_length
    return (
        bool(getattr(transport, "sends_file_regions", False))
        and length > chunk_size
        and length % 2 == 0
    )


class RegionReader:
    """The dataset of a probed file as an (async) iterable of :class:`FileRegion` chunks of
    ``chunk_size`` bytes (the last one shorter), after the ``prefetched`` head (bytes) if
    one is given (this reader then owns its file). Use as ``async with``; the file is
    opened on entry, off the loop (raising :class:`DicomFileError`/``FileChanged`` as
    :class:`~aiodimse.net.filesource.DatasetReader` does), and closed on exit. The regions
    are valid until then."""

    def __init__(
        self,
        info: DicomFileInfo,
        *,
        chunk_size: int,
        prefetched: Prefetched | None = None,
        limiter: anyio.CapacityLimiter | None = None,
    ) -> None:
        if chunk_size < 2 or chunk_size % 2:
            raise ValueError("chunk_size must be even and positive")
        if prefetched is not None and prefetched.info is not info:
            raise ValueError("prefetched belongs to another file")
        self.info = info
        self.chunk_size = chunk_size
        self._prefetched = prefetched
        self._limiter = limiter
        self._fp: BinaryIO | None = None
        self._head: bytes | DicomFileError | None = None
        self._offset = info.dataset_offset  # the next byte to hand out as a region
        self._end = info.file_size
        self._advised = 0  # the kernel was asked to read ahead up to here
        #: Bytes handed out so far.
        self.bytes_read = 0

    @property
    def total(self) -> int:
        return self.info.dataset_length

    def _limit(self) -> anyio.CapacityLimiter:
        if self._limiter is None:
            self._limiter = file_io_limiter()
        return self._limiter

    async def __aenter__(self) -> RegionReader:
        pre, self._prefetched = self._prefetched, None
        if pre is not None:
            self._fp, pre.fp = pre.fp, None  # ours to close from here on
            if pre.error is not None:
                self._head = pre.error
                self._offset = self._end
            else:
                self._head = pre.head
                self._offset += len(pre.head)
                if self._fp is None:  # the whole dataset was read ahead
                    self._offset = self._end
        else:
            self._fp = await anyio.to_thread.run_sync(
                _open_dataset, self.info, limiter=self._limit()
            )
        if self._fp is not None and (self._offset - self.info.dataset_offset) % 2:
            await self.aclose()
            raise ValueError("the prefetched head must have an even length")
        self._advise()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the file. On the loop, unlike opening: a descriptor opened read-only has
        nothing to write back, so closing it does not wait for the disk, and a worker-thread
        trip per instance measured ~3 % of the sender's time."""
        fp, self._fp = self._fp, None
        if fp is not None:
            fp.close()

    def _advise(self) -> None:
        """Once the next chunk reaches past what was advised: ask the kernel to read the
        next :data:`ADVISE_WINDOW` ahead (no waiting), so that ``sendfile`` on the loop
        rarely waits for the disk; not when that window is already cached (:func:`_cached`)."""
        offset = self._offset
        if not _FADVISE or self._fp is None or offset >= self._end:
            return
        if offset + self.chunk_size <= self._advised:
            return
        start = max(offset, self._advised)
        if start >= self._end:  # all advised (and a length of 0 would mean "to the end")
            return
        n = min(max(ADVISE_WINDOW, self.chunk_size), self._end - start)
        self._advised = start + n
        fd = self._fp.fileno()
        if _cached(fd, start, n):
            return
        try:
            os.posix_fadvise(fd, start, n, os.POSIX_FADV_WILLNEED)
        except OSError:  # pragma: no cover - advice only
            pass

    def __aiter__(self) -> RegionReader:
        return self

    async def __anext__(self) -> bytes | FileRegion:
        try:
            return self.__next__()
        except StopIteration:
            raise StopAsyncIteration from None

    def __iter__(self) -> RegionReader:
        """The chunks without awaiting: handing out a region reads nothing, so the reader is
        a plain iterator too (the sender then writes a message's PDUs in gathered writes)."""
        return self

    def __next__(self) -> bytes | FileRegion:
        head, self._head = self._head, None
        if isinstance(head, DicomFileError):
            raise head
        if head:
            self.bytes_read += len(head)
            return head
        if self._offset >= self._end:
            raise StopIteration
        fp = self._fp
        if fp is None:
            raise DicomFileError(self.info.path, "reader is not open (use 'async with')")
        n = min(self.chunk_size, self._end - self._offset)
        region = FileRegion(fp.fileno(), self._offset, n, fp)
        self._offset += n
        self.bytes_read += n
        self._advise()
        return region
