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

The writer thread opens ``path`` exclusively (``xb``), writes ``prefix`` (the PS3.10
preamble and File Meta Information) then every buffer in order, and on the close marker
flushes and, when ``durable``, ``fsync``\\ s the file. A dataset smaller than the first
hand-over never starts a thread: :meth:`close` writes it in one worker-thread call.

Before the first byte goes to disk the sink may drop a prefix of the dataset: ``leading_skip``
is called once with the first ``hold`` bytes (or all of them, if fewer) and returns how many
to drop (the storage SCP drops group 0002 elements that have no place in a dataset).

``in_memory_max``: a dataset of at most this many bytes never touches the disk; it is in
:attr:`FileSink.data` after :meth:`close`.

Errors. A write error, a full disk or free space under ``min_free_space`` (checked on open
and every 64 MiB) is recorded in :attr:`FileSink.error`; the partial file is removed at once,
further data is ignored and the association goes on (the service answers 0xA700). The caller
then :meth:`commit`\\ s the file to its final path (atomic ``os.replace``, then an fsync of
the directory where the platform allows it) or :meth:`discard`\\ s it.
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
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO, Final

import anyio
import anyio.to_thread

log = logging.getLogger("aiodimse.filesink")

__all__ = ["FileSink", "InsufficientSpace", "SinkState", "fsync_directory"]

#: Free space is checked again after this many bytes written.
_SPACE_CHECK_INTERVAL: Final = 64 << 20


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


_STOP: Final = _Stop()


def fsync_directory(directory: Path) -> None:
    """fsync a directory so a rename in it survives a crash (POSIX); a no-op on Windows."""
    if os.name == "nt":  # directories cannot be opened for fsync on Windows
        return
    flags = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0)
    try:
        fd = os.open(directory, flags)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:  # some file systems refuse fsync on directories
        pass
    finally:
        os.close(fd)


class FileSink:
    """Streams one dataset to ``path`` (a temporary name in the destination file system).

    Implements :class:`aiodimse.net.sinks.DatasetSink`. Not reusable: one sink per message.
    """

    def __init__(
        self,
        path: Path,
        *,
        prefix: bytes = b"",
        limiter: anyio.CapacityLimiter,
        durable: bool = True,
        write_size: int = 1 << 20,
        queue_depth: int = 4,
        hold: int = 0,
        leading_skip: Callable[[bytes], int] | None = None,
        keep_head: int = 64 * 1024,
        in_memory_max: int = 0,
        min_free_space: int = 0,
    ) -> None:
        if write_size < 1 or queue_depth < 1:
            raise ValueError("write_size and queue_depth must be positive")
        self.path = path
        self.prefix = prefix
        self.durable = durable
        self.write_size = write_size
        self.in_memory_max = in_memory_max
        self.min_free_space = min_free_space
        self._limiter = limiter
        self._hold = hold
        self._leading_skip = leading_skip
        self._keep_head = keep_head
        # The first hand-over waits until the skip is decided and the in-memory bound passed.
        self._first_at = max(write_size, hold, in_memory_max + 1 if in_memory_max else 0)
        self._buf = bytearray()
        self._head = bytearray()
        self._queue: queue.Queue[bytearray | _Stop] = queue.Queue(maxsize=queue_depth)
        self._thread: threading.Thread | None = None
        self._done = threading.Event()
        self._abort = False
        self._stop_sent = False
        self._skip_decided = leading_skip is None
        #: Dataset bytes received (before any skip).
        self.size = 0
        #: Bytes dropped from the start of the dataset by ``leading_skip``.
        self.skipped = 0
        #: The first write error (the file is then removed and data ignored).
        self.error: OSError | None = None
        #: The dataset bytes when it stayed in memory (``in_memory_max``), else None.
        self.data: bytes | None = None
        self.state = SinkState.OPEN

    # -- what the service looks at -------------------------------------------------------------

    @property
    def head(self) -> bytes:
        """The first ``keep_head`` bytes of the dataset as received (before any skip)."""
        return bytes(self._head)

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
        room = self._keep_head - len(self._head)
        if room > 0:
            self._head += data[:room]
        self._buf += data
        if self._thread is None:
            if len(self._buf) >= self._first_at:
                self._decide_skip()
                self._start_writer()
                await self._hand(self._take())
        elif len(self._buf) >= self.write_size:
            await self._hand(self._take())

    async def close(self) -> None:
        """Message complete: everything is on disk (fsynced when durable) or in memory."""
        if self.state is not SinkState.OPEN:
            return
        self.state = SinkState.CLOSED
        if self._thread is not None:
            # Always send the close marker: the writer thread waits for it even after an error.
            if self._buf and self.error is None:
                await self._hand(self._take())
            await self._hand(_STOP)
            await anyio.to_thread.run_sync(self._done.wait, limiter=self._limiter)
            return
        if self.error is None:
            self._decide_skip()
            if self.in_memory_max and len(self._buf) <= self.in_memory_max:
                self.data = bytes(self._take())
                return
            body = self._take()
            await anyio.to_thread.run_sync(self._write_whole, body, limiter=self._limiter)

    async def discard(self) -> None:
        """Drop the dataset: stop the writer and remove the temporary file (idempotent)."""
        if self.state in (SinkState.DISCARDED, SinkState.COMMITTED):
            return
        self.state = SinkState.DISCARDED
        self._abort = True
        self._buf = bytearray()
        self.data = None
        with anyio.CancelScope(shield=True):
            if self._thread is not None and not self._stop_sent:
                await self._hand(_STOP)
            if self._thread is not None:
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
        if self.state is not SinkState.CLOSED or not self.on_disk:
            raise RuntimeError(f"cannot commit a sink in state {self.state.value}")

        def move() -> bool:
            target = check() if check is not None else destination
            try:
                created = _make_parents(target.parent)
                if replace:
                    os.replace(self.path, target)  # atomic on POSIX and Windows (same volume)
                    placed = True
                else:
                    placed = _place_if_absent(self.path, target)
                if self.durable:
                    fsync_directory(target.parent)
                    for directory in created:
                        fsync_directory(directory.parent)
                return placed
            except BaseException:
                self._unlink()
                raise

        placed = await anyio.to_thread.run_sync(move, limiter=self._limiter)
        self.state = SinkState.COMMITTED
        return placed

    # -- internals -----------------------------------------------------------------------------

    def _decide_skip(self) -> None:
        if self._skip_decided:
            return
        self._skip_decided = True
        assert self._leading_skip is not None
        n = self._leading_skip(bytes(self._head[: self._hold] if self._hold else self._head))
        n = max(0, min(n, len(self._buf)))
        if n:
            del self._buf[:n]
            self.skipped = n

    def _take(self) -> bytearray:
        buf, self._buf = self._buf, bytearray()
        return buf

    async def _hand(self, item: bytearray | _Stop) -> None:
        try:
            self._queue.put_nowait(item)
        except queue.Full:
            # Backpressure: the reader waits (in a worker thread) for the disk.
            await anyio.to_thread.run_sync(self._queue.put, item, limiter=self._limiter)
        if item is _STOP:
            self._stop_sent = True

    def _start_writer(self) -> None:
        self._thread = threading.Thread(
            target=self._writer, name=f"aiodimse-writer-{self.path.name}", daemon=True
        )
        self._thread.start()

    def _open(self) -> BinaryIO:
        self._check_space()
        fp = self.path.open("xb")
        try:
            fp.write(self.prefix)
        except BaseException:
            fp.close()
            raise
        return fp

    def _check_space(self) -> None:
        if self.min_free_space <= 0:
            return
        free = shutil.disk_usage(self.path.parent).free
        if free < self.min_free_space:
            raise InsufficientSpace(self.path.parent, free, self.min_free_space)

    def _finish(self, fp: BinaryIO) -> None:
        fp.flush()
        if self.durable:
            os.fsync(fp.fileno())

    def _writer(self) -> None:
        """The writer thread: drains the queue until the close marker, always."""
        fp: BinaryIO | None = None
        try:
            try:
                fp = self._open()
            except OSError as exc:
                self._record(exc)
            since_check = 0
            while not isinstance(item := self._queue.get(), _Stop):
                if fp is None or self.error is not None or self._abort:
                    continue  # keep draining so the reader never blocks forever
                try:
                    fp.write(item)
                    since_check += len(item)
                    if since_check >= _SPACE_CHECK_INTERVAL:
                        since_check = 0
                        self._check_space()
                except OSError as exc:
                    self._record(exc)
            if fp is not None and self.error is None and not self._abort:
                try:
                    self._finish(fp)
                except OSError as exc:
                    self._record(exc)
        finally:
            if fp is not None:
                with contextlib.suppress(OSError):
                    fp.close()
            if self.error is not None or self._abort:
                self._unlink()
            self._done.set()

    def _write_whole(self, body: bytearray) -> None:
        """A dataset smaller than one hand-over: open, write, fsync, close in one go."""
        try:
            with self._open() as fp:
                fp.write(body)
                self._finish(fp)
        except OSError as exc:
            self._record(exc)
            self._unlink()

    def _record(self, exc: OSError) -> None:
        if self.error is None:
            self.error = exc
            log.error("writing %s failed: %s", self.path, exc)

    def _unlink(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()


def _make_parents(directory: Path) -> list[Path]:
    """mkdir -p; returns the directories created (their parents need an fsync)."""
    missing: list[Path] = []
    d = directory
    while not d.exists():
        missing.append(d)
        if d.parent == d:
            break
        d = d.parent
    for m in reversed(missing):
        with contextlib.suppress(FileExistsError):
            m.mkdir()
    return missing


def _place_if_absent(source: Path, target: Path) -> bool:
    """Move ``source`` to ``target`` unless ``target`` exists (atomic where links exist)."""
    try:
        os.link(source, target)  # fails atomically when target exists
    except FileExistsError:
        source.unlink()
        return False
    except OSError:  # no hard links here (FAT, some network shares): check, then replace
        if target.exists():
            source.unlink()
            return False
        os.replace(source, target)
        return True
    source.unlink()
    return True
