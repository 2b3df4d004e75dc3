"""A dataset sink that streams to a temporary file, off the event loop, with backpressure.

Theory of operation
-------------------
The channel's reader awaits :meth:`FileSink.write` for every dataset fragment. The sink
copies fragments into a buffer; when the buffer holds ``write_size`` bytes (1 MiB by
default) it is handed to a **writer thread** through a bounded ``queue.Queue``
(``queue_depth`` buffers). When the queue is full the reader awaits the hand-over in a worker
thread (bounded by the ``limiter``), so it stops reading the socket and TCP slows the peer
down: a slow disk costs time, never memory. Memory per sink is at most
``(queue_depth + 2) * write_size`` plus one fragment.

The writer thread takes a nameless file from ``anonymous`` (:mod:`.nameless`; linked at
its final name by :meth:`FileSink.commit`) or else creates ``path`` exclusively, writes
``prefix`` (the PS3.10 preamble and File Meta Information) then every buffer in order, and
on the close marker, when ``durable``, ``fsync``\\ s the file. A dataset smaller than the
first hand-over never starts a thread: :meth:`close` writes it in one worker-thread call.

Before the first byte goes to disk the sink may drop a prefix of the dataset: ``leading_skip``
is called once with the first ``hold`` bytes (or all of them, if fewer) and returns how many
to drop (the storage SCP drops group 0002 elements that have no place in a dataset). With
``skip_marker`` it is called only for a dataset starting with those bytes (no copy of the
head otherwise: almost every dataset).

:attr:`FileSink.head` (the first ``keep_head`` bytes as received) costs no second copy for a
dataset written in one piece: it is read from the buffer the sink holds anyway (kept until
the sink is committed or discarded) plus the dropped prefix. Only a dataset larger than one
hand-over snapshots its head, once. With many instances in flight (1,000 associations)
this halves the memory per instance.

``in_memory_max``: a dataset of at most this many bytes never touches the disk; it is in
:attr:`FileSink.data` after :meth:`close`.

Errors. A write error, a full disk or free space under ``min_free_space`` (checked on open
and every 64 MiB) is recorded in :attr:`FileSink.error`; the partial file is removed at once,
further data is ignored and the association goes on (the service answers 0xA700). The caller
then :meth:`commit`\\ s the file to its final path (atomic ``os.replace``, then an fsync of
the directory where the platform allows it) or :meth:`discard`\\ s it.

Deferred finishing (``defer_finish=True``, what the storage SCP uses). :meth:`close` then only
hands the last bytes over and returns at once, so the association's reader goes on reading
the next message while this one becomes durable; the service later calls :meth:`finish`, which
writes, fsyncs and runs the service's own check-and-rename step in **one** worker-thread trip.
A batcher (:mod:`.syncbatch`: :class:`ThreadBatcher` on asyncio, :class:`SyncBatcher`
elsewhere) groups the trips of every sink finishing at the same time (pipelined C-STOREs,
many associations): one trip writes all their files, then fsyncs them one after the other,
runs their steps, and fsyncs each directory once; every caller still gets its answer only
after its own data is durable. A small sink that need not be fsynced can instead be
finished in the calling thread (:meth:`finish_here`): a page-cache write of a few hundred
KiB costs less than the hop to a thread and back.
"""

from __future__ import annotations

import contextlib
import enum
import errno
import logging
import os
import queue
import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Final, TypeVar

import anyio
import anyio.to_thread

from .nameless import AnonymousFiles
from .syncbatch import (
    BUFFERS,
    WRITERS,
    Batcher,
    SinkFile,
    SyncBatch,
    SyncBatcher,
    ThreadBatcher,
    Writable,
    fsync_directory,
    make_parents,
    place_if_absent,
    run_one,
    write_all,
)

log = logging.getLogger("aiodimse.filesink")

__all__ = [
    "AnonymousFiles",
    "FileSink",
    "InsufficientSpace",
    "SinkState",
    "SyncBatch",
    "SyncBatcher",
    "ThreadBatcher",
    "fsync_directory",
]

T = TypeVar("T")

#: Free space is checked again after this many bytes written.
_SPACE_CHECK_INTERVAL: Final = 64 << 20
#: A new file reuses a free-space reading of its directory this recent (seconds): one
#: ``statvfs`` per directory and interval instead of one per instance.
_SPACE_READING_TTL: Final = 0.25
_space_readings: dict[Path, tuple[float, int]] = {}

_O_CLOEXEC: Final = getattr(os, "O_CLOEXEC", 0)
#: A named temporary file: created exclusively, never truncating someone else's file.
_NAMED: Final = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0) | _O_CLOEXEC
#: posix_fadvise starts writeback of a file's dirty pages (Linux, most BSDs; not Windows).
_FADVISE: Final = hasattr(os, "posix_fadvise") and hasattr(os, "POSIX_FADV_DONTNEED")


class InsufficientSpace(OSError):
    """Free disk space fell under the configured minimum (answered as 0xA700)."""

    def __init__(self, directory: Path, free: int, minimum: int) -> None:
        super().__init__(
            errno.ENOSPC, f"{free} bytes free in {directory}, below the minimum {minimum}"
        )


class SinkState(enum.Enum):
    OPEN = "open"
    CLOSED = "closed"
    COMMITTED = "committed"
    DISCARDED = "discarded"


class _Stop:
    """The close marker on the writer queue."""


#: A hand-over to the writer loop: (buffer, bytes of it to write, a ``BUFFERS`` block).
_Block = tuple[bytearray, int, bool]


_STOP: Final = _Stop()


class FileSink:
    """Streams one dataset to ``path`` (a temporary name in the destination file system).

    Implements :class:`aiodimse.net.sinks.DatasetSink`. Not reusable: one sink per message.
    """

    _queue: queue.Queue[_Block | _Stop]  # set with the writer loop
    _done: threading.Event  # set with the writer loop

    def __init__(
        self,
        path: Path | Callable[[], Path],
        *,
        directory: Path | None = None,
        prefix: bytes = b"",
        limiter: anyio.CapacityLimiter,
        durable: bool = True,
        write_size: int = 1 << 20,
        queue_depth: int = 4,
        hold: int = 0,
        leading_skip: Callable[[bytes], int] | None = None,
        skip_marker: bytes = b"",
        keep_head: int = 64 * 1024,
        in_memory_max: int = 0,
        min_free_space: int = 0,
        defer_finish: bool = False,
        anonymous: AnonymousFiles | None = None,
    ) -> None:
        if write_size < 1 or queue_depth < 1:
            raise ValueError("write_size and queue_depth must be positive")
        # ``path`` may be a function making the temporary name on first use (a nameless
        # file never needs one); ``directory`` is then the directory it will be in.
        self._path: Path | None = None
        self._make_path: Callable[[], Path] | None = None
        if isinstance(path, Path):
            self._path = path
            self.directory = directory if directory is not None else path.parent
        elif directory is None:
            raise ValueError("a FileSink whose path is made later needs its directory")
        else:
            self._make_path, self.directory = path, directory
        self.prefix = prefix
        self.durable = durable
        self.write_size = write_size
        self.in_memory_max = in_memory_max
        self.min_free_space = min_free_space
        self._limiter = limiter
        self._hold = hold
        self._leading_skip = leading_skip
        self._skip_marker = skip_marker
        self._keep_head = keep_head
        # The first hand-over waits until the skip is decided and the in-memory bound passed.
        self._first_at = max(write_size, hold, in_memory_max + 1 if in_memory_max else 0)
        self._buf = bytearray()
        # The head: a snapshot only for a dataset handed to the writer thread; otherwise
        # read from ``_kept`` (the whole dataset, held anyway) after ``_lead`` (the skip).
        self._head: bytes | None = None
        self._lead = b""
        self._kept: bytearray | None = None
        self._queue_depth = queue_depth
        # The writer loop (in a thread of ``WRITERS``), its queue and its end event exist
        # only for a dataset larger than one hand-over (most are written whole, in one trip).
        self._streaming = False
        # Streaming: the pooled block being filled (``BUFFERS``) and how far.
        self._block: bytearray | None = None
        self._fill = 0
        self._abort = False
        self._stop_sent = False
        self._skip_decided = leading_skip is None
        self.defer_finish = defer_finish
        self._body: bytearray | None = None  # deferred: the whole dataset, not yet written
        self._anonymous_files = anonymous
        # The open file: a named one until it is written and synced; an anonymous one
        # (from ``anonymous``) until it is linked at its destination or discarded.
        self._fp: Writable | None = None
        self._anonymous = False
        self._finished = not defer_finish
        #: Dataset bytes received (before any skip).
        self.size = 0
        #: Bytes dropped from the start of the dataset by ``leading_skip``.
        self.skipped = 0
        #: The first write error (the file is then removed and data ignored).
        self.error: OSError | None = None
        #: The dataset bytes when it stayed in memory (``in_memory_max``), else None.
        self.data: bytes | None = None
        self.state = SinkState.OPEN

    def __del__(self) -> None:
        fp = self.__dict__.get("_fp")
        if fp is not None:  # neither committed nor discarded: at least free the file
            with contextlib.suppress(OSError):
                fp.close()

    # -- what the service looks at -------------------------------------------------------------

    @property
    def path(self) -> Path:
        """The temporary file's path in :attr:`directory` (made on first use)."""
        path = self._path
        if path is None:
            assert self._make_path is not None
            path = self._path = self._make_path()
        return path

    @property
    def head(self) -> bytes:
        """The first ``keep_head`` bytes of the dataset as received (before any skip).

        Valid until :meth:`commit` or :meth:`discard` (empty afterwards for a dataset that
        was written whole). Builds a new ``bytes`` per call."""
        return self.head_start(self._keep_head)

    def head_start(self, limit: int) -> bytes:
        """The first ``limit`` bytes of :attr:`head` (no more is copied)."""
        limit = min(limit, self._keep_head)
        if self._head is not None:
            return self._head[:limit]
        lead = self._lead
        room = limit - len(lead)
        if room <= 0:
            return lead[:limit]
        if self.data is not None:
            return lead + self.data[:room]
        kept = self._kept if self._kept is not None else self._buf
        return lead + bytes(memoryview(kept)[:room])

    @property
    def on_disk(self) -> bool:
        """True when the dataset went to the file (not kept in memory, no error)."""
        return self.data is None and self.error is None

    # -- DatasetSink ---------------------------------------------------------------------------

    async def write(self, data: memoryview) -> None:
        if self.state is not SinkState.OPEN:
            return
        self.size += len(data)
        if self.error is not None:
            return
        if self._streaming:
            await self._stream(data)
            return
        self._buf += data
        if len(self._buf) >= self._first_at:
            self._decide_skip()
            self._snapshot_head()
            self._start_writer()
            buf = self._take()
            await self._hand((buf, len(buf), False))

    def write_nowait(self, data: memoryview) -> bool:
        """:meth:`write` when it needs no waiting: ``data`` is copied into the buffer held in
        memory (True), or nothing is taken (False: the caller awaits :meth:`write`) when it
        would reach the first hand-over to the writer thread or the sink streams already.
        Lets the channel consume a small dataset's fragments in the transport's read
        callback, with no trip through the association's reader task per read."""
        if self.state is not SinkState.OPEN:
            return True  # as write(): ignored
        if self._streaming or len(self._buf) + len(data) >= self._first_at:
            return False
        self.size += len(data)
        if self.error is None:
            self._buf += data
        return True

    async def _stream(self, data: memoryview) -> None:
        """After the first hand-over: copy into fixed-size pooled blocks (pages resident,
        no growth), each handed over when full."""
        size = self.write_size
        while data:
            block = self._block
            if block is None:
                block = self._block = BUFFERS.take(size)
                self._fill = 0
            at = self._fill
            n = min(size - at, len(data))
            block[at : at + n] = data[:n]  # same length: a copy, never a resize
            self._fill = at + n
            if n < len(data):
                data = data[n:]
            else:
                data = data[:0]
            if self._fill == size:
                self._block = None
                await self._hand((block, size, True))

    def close_nowait(self) -> bool:
        """:meth:`close` when it needs no waiting: with ``defer_finish``, a dataset held in
        memory (smaller than one hand-over) is closed at once (True); otherwise nothing is
        done (False: await :meth:`close`)."""
        if self.state is not SinkState.OPEN:
            return True
        if self._streaming or not self.defer_finish:
            return False
        self.state = SinkState.CLOSED
        if self.error is None:
            self._body = self._close_held()  # written by finish()
        return True

    def _close_held(self) -> bytearray | None:
        """Close a dataset held in memory (not streamed): kept in ``data`` when small
        enough (``None``), else its body to be written is returned."""
        self._decide_skip()
        if self.in_memory_max and len(self._buf) <= self.in_memory_max:
            self.data = bytes(self._take())
            return None
        body = self._take()
        self._kept = body  # the head is read from it (see ``head``)
        return body

    async def close(self) -> None:
        """Message complete: everything is on disk (fsynced when durable) or in memory.

        With ``defer_finish`` the bytes are only handed over (no worker-thread trip for a
        dataset smaller than one hand-over): call :meth:`finish` before using the file.
        """
        if self.close_nowait():
            return
        self.state = SinkState.CLOSED
        if self._streaming:
            # Always send the close marker: the writer loop waits for it even after an error.
            block, self._block = self._block, None
            if block is not None:
                if self._fill and self.error is None:
                    await self._hand((block, self._fill, True))
                else:
                    BUFFERS.give(block)
            await self._hand(_STOP)
            if not self.defer_finish:
                await anyio.to_thread.run_sync(self._done.wait, limiter=self._limiter)
            return
        if self.error is None:  # not deferred (close_nowait() did that): written now
            body = self._close_held()
            if body is not None:
                await anyio.to_thread.run_sync(self._write_whole, body, limiter=self._limiter)

    async def finish(
        self,
        then: Callable[[FileSink, SyncBatch], T],
        *,
        batcher: Batcher | None = None,
    ) -> T:
        """A deferred sink after :meth:`close`: write and fsync the file (when durable), then
        run ``then(self, batch)``, all in one worker-thread trip shared with the other sinks
        ``batcher`` is finishing (see the module docstring). ``then`` runs in that thread
        even after a write error (see :attr:`error`); its result is returned, its exception
        raised. Called once."""
        if self.state is not SinkState.CLOSED or self._finished:
            raise RuntimeError(f"cannot finish a sink in state {self.state.value}")
        self._finished = True
        if batcher is None:
            batcher = SyncBatcher(self._limiter)
        return await batcher.run(self, then)

    def finish_soon(
        self,
        then: Callable[[FileSink, SyncBatch], T],
        done: Callable[[Callable[[], T]], None],
        *,
        batcher: ThreadBatcher,
    ) -> bool:
        """:meth:`finish` from a loop callback (no task to wait in): ``done(outcome)`` is
        called on the loop afterwards, ``outcome()`` returning ``then``'s result or raising
        its exception. False, nothing done, where only :meth:`finish` can (see
        :meth:`ThreadBatcher.submit`)."""
        if self.state is not SinkState.CLOSED or self._finished:
            raise RuntimeError(f"cannot finish a sink in state {self.state.value}")
        if not batcher.submit(self, then, done):
            return False
        self._finished = True
        return True

    @property
    def whole(self) -> bool:
        """True when the dataset is held whole (never handed to a writer thread): what
        :meth:`finish_here` needs."""
        return not self._streaming

    def finish_here(self, then: Callable[[FileSink, SyncBatch], T]) -> T:
        """:meth:`finish` in the calling thread, for a deferred sink held :attr:`whole`: the
        caller judged the disk work cheap (a small file written to the page cache, no
        ``fsync``). Called once, instead of :meth:`finish`."""
        if self.state is not SinkState.CLOSED or self._finished or self._streaming:
            raise RuntimeError(f"cannot finish a sink in state {self.state.value} here")
        self._finished = True
        return run_one(self, then)

    async def discard(self) -> None:
        """Drop the dataset: stop the writer and remove the temporary file (idempotent)."""
        if self.state in (SinkState.DISCARDED, SinkState.COMMITTED):
            return
        self.state = SinkState.DISCARDED
        self._abort = True
        self._buf = bytearray()
        block, self._block = self._block, None
        if block is not None:
            BUFFERS.give(block)
        self._body = None
        self._kept = None
        self.data = None
        with anyio.CancelScope(shield=True):
            if self._streaming and not self._stop_sent:
                await self._hand(_STOP)
            if self._streaming:
                await anyio.to_thread.run_sync(self._done.wait, limiter=self._limiter)
            await anyio.to_thread.run_sync(self._unlink, limiter=self._limiter)

    # -- the service's decision ----------------------------------------------------------------

    async def commit(
        self, destination: Path, *, replace: bool = True, check: Callable[[], Path] | None = None
    ) -> bool:
        """Move the closed file to ``destination`` atomically; returns True when it was placed.

        ``replace=False`` keeps an existing file (the new one is removed, False returned).
        ``check`` (run in the worker thread first) returns the destination after verifying
        it, e.g. that it resolves inside the storage root; it may raise to refuse.
        Raises ``OSError`` when the move fails (the temporary file is then removed).
        """
        if self.state is not SinkState.CLOSED or not self.on_disk or not self._finished:
            raise RuntimeError(f"cannot commit a sink in state {self.state.value}")
        return await anyio.to_thread.run_sync(
            self.commit_sync, destination, replace, check, None, limiter=self._limiter
        )

    def commit_sync(
        self,
        destination: Path | str,
        replace: bool = True,
        check: Callable[[], Path] | None = None,
        batch: SyncBatch | None = None,
        first: Path | str | None = None,
    ) -> bool:
        """:meth:`commit` in the calling (worker) thread, e.g. from :meth:`finish`'s ``then``.
        With ``batch`` the directory fsync is left to the batch (once per directory).

        ``first``: for a nameless file, a destination that is safe *when nothing exists
        there* (a plain name directly in the resolved root): the file is linked there at
        once, without ``check`` (a link never follows or replaces an existing name). Only
        when that name exists (a duplicate, a planted symbolic link) or cannot be made does
        ``check`` decide, as without ``first``. It may be a ``str`` (no ``Path`` to build
        per instance on the common path)."""
        if self.state is not SinkState.CLOSED or not self.on_disk:
            raise RuntimeError(f"cannot commit a sink in state {self.state.value}")
        if first is not None and self._anonymous and self._link_new(first):
            self.state = SinkState.COMMITTED
            self._kept = None
            if self.durable:  # the new name is durable once its directory is
                self._sync_directories(Path(os.path.dirname(first)), [], batch)
            return True
        target = check() if check is not None else Path(destination)
        try:
            try:
                created: list[Path] = []
                placed = self._place(target, replace)
            except FileNotFoundError:
                created = make_parents(target.parent)  # the first file of a directory
                if not created:
                    raise
                placed = self._place(target, replace)
            if self.durable:
                self._sync_directories(target.parent, created, batch)
        except BaseException:
            self._unlink()
            raise
        self.state = SinkState.COMMITTED
        self._kept = None
        return placed

    @staticmethod
    def _sync_directories(parent: Path, created: list[Path], batch: SyncBatch | None) -> None:
        """The rename is durable once its directory is (and a new directory's entry in its
        parent): fsynced before the service answers (by ``batch``, once per directory)."""
        for directory in (parent, *(d.parent for d in created)):
            if batch is None:
                fsync_directory(directory)
            else:
                batch.sync_directory(directory)

    def _place(self, target: Path, replace: bool) -> bool:
        if self._anonymous:
            return self._link(target, replace)
        if replace:
            os.replace(self.path, target)  # atomic on POSIX and Windows (same volume)
            return True
        return place_if_absent(self.path, target)

    def _link_new(self, target: Path | str) -> bool:
        """Name an anonymous file ``target`` if that name is free (closed once placed);
        False, with nothing changed, when the name exists or its directory is missing."""
        fp, files = self._fp, self._anonymous_files
        assert fp is not None and files is not None
        try:
            files.link(fp.fileno(), target)
        except (FileExistsError, FileNotFoundError):
            return False
        except OSError:
            self._unlink()
            raise
        self._fp = None
        fp.close()
        return True

    def _link(self, target: Path, replace: bool) -> bool:
        """An anonymous file (fsynced when durable) gets its name; closed once placed."""
        fp, files = self._fp, self._anonymous_files
        assert fp is not None and files is not None
        try:
            files.link(fp.fileno(), target)
        except FileExistsError:
            if not replace:
                self._unlink()  # DuplicatePolicy.KEEP: the first copy stays
                return False
            # Replacing: a temporary name first, then the atomic rename over the old file.
            files.link(fp.fileno(), self.path)
            self._anonymous = False  # named now: a failure below removes self.path
            os.replace(self.path, target)
        self._fp = None
        fp.close()
        return True

    # -- internals -----------------------------------------------------------------------------

    def _decide_skip(self) -> None:
        if self._skip_decided:
            return
        self._skip_decided = True
        assert self._leading_skip is not None
        buf = self._buf
        if not buf.startswith(self._skip_marker):
            return  # nothing to drop: no copy of the head for ``leading_skip``
        with memoryview(buf) as view, view[: self._hold or len(buf)] as head:
            n = self._leading_skip(bytes(head))  # one copy (views released before del)
        n = max(0, min(n, len(buf)))
        if n:
            self._lead = bytes(buf[:n])
            del buf[:n]
            self.skipped = n

    def _snapshot_head(self) -> None:
        """Before the first hand-over to the writer thread: the head, copied once."""
        room = max(self._keep_head - len(self._lead), 0)
        with memoryview(self._buf) as view, view[:room] as head:  # one copy, no temporary
            self._head = (self._lead + bytes(head))[: self._keep_head]

    def _take(self) -> bytearray:
        buf, self._buf = self._buf, bytearray()
        return buf

    async def _hand(self, item: _Block | _Stop) -> None:
        try:
            self._queue.put_nowait(item)
        except queue.Full:
            # Backpressure: the reader waits (in a worker thread) for the disk.
            await anyio.to_thread.run_sync(self._queue.put, item, limiter=self._limiter)
        if item is _STOP:
            self._stop_sent = True

    def _start_writer(self) -> None:
        self._queue = queue.Queue(maxsize=self._queue_depth)
        self._done = threading.Event()
        WRITERS.submit(self._writer)  # raises, with nothing queued, if no thread can start
        self._streaming = True

    def _open(self) -> Writable:
        """A new, unbuffered file for the dataset: anonymous when ``anonymous`` has one,
        else ``path`` created exclusively. Kept in ``_fp`` until it is closed."""
        self._check_space()
        fd = self._anonymous_files.take() if self._anonymous_files is not None else None
        if fd is None:
            fd = os.open(self.path, _NAMED, 0o666)
        else:
            self._anonymous = True
        fp: Writable = SinkFile(fd)
        self._fp = fp
        return fp

    def _check_space(self) -> None:
        """Raise :class:`InsufficientSpace` under ``min_free_space``, from a reading of the
        directory's free space at most ``_SPACE_READING_TTL`` seconds old."""
        if self.min_free_space <= 0:
            return
        directory = self.directory
        now = time.monotonic()
        reading = _space_readings.get(directory)
        if reading is None or now - reading[0] > _SPACE_READING_TTL:
            reading = (now, shutil.disk_usage(directory).free)
            if len(_space_readings) >= 256:  # bounded: roots are few
                _space_readings.clear()
            _space_readings[directory] = reading
        if reading[1] < self.min_free_space:
            raise InsufficientSpace(directory, reading[1], self.min_free_space)

    def _done_writing(self, fp: Writable) -> None:
        """The dataset is complete in ``fp``: fsync it when durable; close a named file (an
        anonymous one stays open until it is linked or discarded)."""
        if self.durable:
            os.fsync(fp.fileno())
        if not self._anonymous:
            self._fp = None
            fp.close()

    def _writer(self) -> None:
        """The writer thread: drains the queue until the close marker, always."""
        fp: Writable | None = None
        try:
            try:
                fp = self._open()
            except OSError as exc:
                self._record(exc)
            prefix = self.prefix  # written with the first buffer (one writev)
            since_check = 0
            while not isinstance(item := self._queue.get(), _Stop):
                buf, length, pooled = item
                del item
                if fp is None or self.error is not None or self._abort:
                    if pooled:
                        BUFFERS.give(buf)
                    continue  # keep draining so the reader never blocks forever
                try:
                    try:
                        with memoryview(buf) as whole, whole[:length] as part:
                            write_all(fp, prefix, part)
                    finally:
                        if pooled:
                            BUFFERS.give(buf)  # written or not: back to the pool
                        del buf
                    prefix = b""
                    since_check += length
                    if since_check >= _SPACE_CHECK_INTERVAL:
                        since_check = 0
                        _space_readings.pop(self.directory, None)  # a fresh reading
                        self._check_space()
                except OSError as exc:
                    self._record(exc)
                except Exception as exc:  # a bug must not stop the draining: the reader waits
                    self._record(OSError(errno.EIO, f"internal error: {exc!r}"))
            if fp is not None and self.error is None and not self._abort:
                try:
                    write_all(fp, prefix)
                    self._done_writing(fp)
                except OSError as exc:
                    self._record(exc)
        finally:
            if self.error is not None or self._abort:
                self._unlink()
            self._done.set()

    def _prepare(self) -> None:
        """Worker thread, deferred sink: write what :meth:`close` kept (no fsync yet), or
        wait for the writer thread (which fsyncs itself)."""
        if self._streaming:
            self._done.wait()
            return
        body, self._body = self._body, None
        if body is None or self.error is not None or self.state is SinkState.DISCARDED:
            return
        try:
            write_all(self._open(), self.prefix, body)
        except OSError as exc:
            self._record(exc)
            self._unlink()

    def _start_writeback(self) -> None:
        """Worker thread, deferred durable sink written by :meth:`_prepare`: start writing
        its dirty pages to the device without waiting (Linux: ``POSIX_FADV_DONTNEED`` starts
        writeback; pages under writeback stay cached). Advisory: the fsync still decides."""
        fp = self._fp
        if _FADVISE and fp is not None and self.durable and not self._streaming:
            with contextlib.suppress(OSError):
                os.posix_fadvise(fp.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)

    def _sync(self) -> None:
        """Worker thread, deferred sink: fsync (when durable) what :meth:`_prepare` wrote;
        close it when it is named."""
        fp = self._fp
        if fp is None or self._streaming:
            return
        try:
            self._done_writing(fp)
        except OSError as exc:
            self._record(exc)
            self._unlink()

    def _write_whole(self, body: bytearray) -> None:
        """A dataset smaller than one hand-over: open, write, fsync (, close) in one go."""
        try:
            fp = self._open()
            write_all(fp, self.prefix, body)
            self._done_writing(fp)
        except OSError as exc:
            self._record(exc)
            self._unlink()

    def _record(self, exc: OSError) -> None:
        if self.error is None:
            self.error = exc
            log.error("writing %s failed: %s", self.path, exc)

    def _unlink(self) -> None:
        """Drop the file: close it (an anonymous file then vanishes) and remove its name."""
        fp, self._fp = self._fp, None
        if fp is not None:
            with contextlib.suppress(OSError):
                fp.close()
        if not self._anonymous and self._path is not None:  # an unmade name names nothing
            with contextlib.suppress(FileNotFoundError):
                self._path.unlink()
