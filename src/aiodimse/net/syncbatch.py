"""Grouped finishing of deferred file sinks: write, fsync, keep, directory fsync, one trip.

Theory of operation
-------------------
A deferred :class:`~aiodimse.net.filesink.FileSink` (``defer_finish=True``) still has its last
bytes to write and, when durable, its ``fsync`` to do when the message is complete; the
service then wants a step of its own run in the same thread (the check against the command,
the rename or link to the final name). A *batcher* runs these for many sinks at once: every
job queued when a trip starts is written, then fsynced one after the other (the file system
merges their journal commits), then each job's step runs, then each directory a step named
is fsynced **once**. Every caller gets its result only after its own trip ended, so an
answer sent after :meth:`run` returns still means written, fsynced, named and the
directory fsynced.

Two batchers share that trip (:func:`run_trip`):

* :class:`SyncBatcher` runs each trip in an ``anyio`` worker thread; it works on every
  backend anyio supports.
* :class:`ThreadBatcher` owns one dedicated thread fed by a plain queue; results go back to
  the event loop with one ``loop.call_soon_threadsafe`` per trip. On asyncio a trip costs
  about a third of an anyio worker-thread round trip (measured 36 against 96 microseconds of
  CPU on the benchmark machine), which matters at a thousand small instances per second.
  Off asyncio (trio) it hands the job to a :class:`SyncBatcher`. The thread stops after
  ``idle_timeout`` seconds without work and starts again with the next job.

Both shield the wait from cancellation: the disk work is bounded, and a half-finished job
must not be left behind (the caller would discard a sink the thread is still writing).

The module also keeps what every sink shares: ``BUFFERS`` (:class:`BufferPool`, the blocks a
large dataset streams through, kept resident between instances), ``WRITERS``
(:class:`WriterThreads`, writer threads that wait for the next large instance instead of
ending) and the file primitives (:class:`SinkFile`, :func:`write_all`).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
import logging
import os
import queue
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Generic, Protocol, TypeVar

import anyio
import anyio.to_thread

if TYPE_CHECKING:
    from .filesink import FileSink

log = logging.getLogger("aiodimse.filesink")

__all__ = [
    "BUFFERS",
    "WRITERS",
    "Batcher",
    "BufferPool",
    "SinkFile",
    "SyncBatch",
    "SyncBatcher",
    "ThreadBatcher",
    "Writable",
    "WriterThreads",
    "disfavor_wakeup",
    "fsync_directory",
    "make_parents",
    "place_if_absent",
    "run_one",
    "run_trip",
    "write_all",
]

T = TypeVar("T")

#: Jobs one trip takes at most (the rest wait for the next trip).
DEFAULT_MAX_BATCH: Final = 64


class SyncBatch:
    """What the steps of one trip share: directories to fsync once, after every step."""

    __slots__ = ("directories",)

    def __init__(self) -> None:
        self.directories: dict[Path, None] = {}

    def sync_directory(self, directory: Path) -> None:
        """fsync ``directory`` at the end of the trip, after every step (once)."""
        self.directories[directory] = None


class _Job(Generic[T]):
    __slots__ = ("error", "finished", "future", "lead", "result", "settled", "sink", "then", "wake")

    def __init__(self, sink: FileSink, then: Callable[[FileSink, SyncBatch], T]) -> None:
        self.sink = sink
        self.then = then
        # SyncBatcher: created only when the job has to wait (a lone job leads its trip).
        self.wake: anyio.Event | None = None
        # ThreadBatcher: the caller's future, settled on its loop.
        self.future: asyncio.Future[None] | None = None
        self.settled = False  # ThreadBatcher: its trip ended and its caller was woken
        self.lead = False
        self.finished = False
        self.result: T | None = None
        self.error: BaseException | None = None


class Batcher(Protocol):
    """Runs ``then(sink, batch)`` after writing and syncing ``sink``, in a shared trip."""

    async def run(self, sink: FileSink, then: Callable[[FileSink, SyncBatch], T]) -> T: ...


#: Linux's scheduling policy for threads whose wake-up must not preempt a running thread.
_SCHED_BATCH: Final = getattr(os, "SCHED_BATCH", None)

#: This process's id, kept current in a forked child by an at-fork hook (POSIX): the
#: fork checks below compare with it instead of calling ``getpid`` (a system call) for
#: every job. Where there is no fork (Windows) it never changes.
_PID: list[int] = [os.getpid()]


def _after_fork_in_child() -> None:
    _PID[0] = os.getpid()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def current_pid() -> int:
    """This process's id (see ``_PID``), without a system call."""
    return _PID[0]


def disfavor_wakeup() -> None:
    """Called by a helper thread of ours (finishing trips, writer loops, nameless files)
    once, at its start: its wake-ups no longer preempt the thread running on that CPU.

    Waking such a thread (a job handed over) made the kernel switch to it at once, off the
    event loop's thread, which then waited for a CPU again while the woken thread could do
    nothing but wait for the interpreter lock the loop held: on the 2-core benchmark
    machine the loop lost 30-60 us per hand-over, 10-25 us with this. ``SCHED_BATCH``
    keeps the thread's share of the CPU (same nice level); only the wake-up preemption
    goes. Linux only; elsewhere, or when refused, nothing changes."""
    if _SCHED_BATCH is None or not hasattr(os, "sched_setscheduler"):
        return
    with contextlib.suppress(OSError):
        os.sched_setscheduler(0, _SCHED_BATCH, os.sched_param(0))  # 0: the calling thread


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


def run_trip(batch: list[_Job[Any]]) -> None:
    """One trip in a worker thread (see the module docstring); never raises."""
    shared = SyncBatch()
    for j in batch:
        try:
            j.sink._prepare()
        except BaseException as exc:  # pragma: no cover - the phases record OSErrors
            j.error = exc
    if len(batch) > 1:
        # Every file's pages go to the device at once: the fsyncs below then wait for
        # writes already under way and share their journal commits.
        for j in batch:
            j.sink._start_writeback()
    for j in batch:
        try:
            j.sink._sync()
        except BaseException as exc:  # pragma: no cover - the phases record OSErrors
            j.error = exc
    for j in batch:
        if j.error is None:
            try:
                j.result = j.then(j.sink, shared)
            except BaseException as exc:
                j.error = exc
        j.finished = True
    for directory in shared.directories:
        fsync_directory(directory)


def run_one(sink: FileSink, then: Callable[[FileSink, SyncBatch], T]) -> T:
    """A trip of one job in the calling thread: its result, or its exception raised."""
    job: _Job[T] = _Job(sink, then)
    run_trip([job])
    return _outcome(job)


def _outcome(job: _Job[T]) -> T:
    if job.error is not None:
        raise job.error
    return job.result  # type: ignore[return-value]  # set by the trip when no error


class SyncBatcher:
    """Groups the finishing of deferred sinks into shared ``anyio`` worker-thread trips.

    The first caller runs a trip for every job queued at that moment (up to ``max_batch``);
    jobs queued meanwhile wait; when a trip ends, the oldest waiting job's caller runs the
    next one. Nothing runs without a caller, so there is no background task to own.
    """

    def __init__(self, limiter: anyio.CapacityLimiter, *, max_batch: int = DEFAULT_MAX_BATCH):
        if max_batch < 1:
            raise ValueError("max_batch must be positive")
        self._limiter = limiter
        self._max_batch = max_batch
        self._queue: list[_Job[Any]] = []
        self._busy = False
        #: Trips run and jobs finished (for tests and benchmarks).
        self.trips = 0
        self.jobs = 0

    async def run(self, sink: FileSink, then: Callable[[FileSink, SyncBatch], T]) -> T:
        job: _Job[T] = _Job(sink, then)
        self._queue.append(job)
        if not self._busy:
            self._busy = True
            job.lead = True
        with anyio.CancelScope(shield=True):
            while not job.finished:
                if job.lead:
                    await self._trip()
                else:
                    job.wake = wake = anyio.Event()
                    await wake.wait()
        return _outcome(job)

    async def _trip(self) -> None:
        batch, self._queue = self._queue[: self._max_batch], self._queue[self._max_batch :]
        try:
            await anyio.to_thread.run_sync(run_trip, batch, limiter=self._limiter)
        except BaseException as exc:  # pragma: no cover - run_trip catches per job
            for j in batch:
                if not j.finished:
                    j.error, j.finished = exc, True
        self.trips += 1
        self.jobs += len(batch)
        for j in batch:
            j.lead = False
            if j.wake is not None:
                j.wake.set()
        if self._queue:
            nxt = self._queue[0]
            nxt.lead = True
            if nxt.wake is not None:
                nxt.wake.set()
        else:
            self._busy = False


class ThreadBatcher:
    """Groups the finishing of deferred sinks into trips of dedicated threads (asyncio).

    :meth:`run` adds the job to its loop's pending list; after the loop iteration (one
    ``call_soon``) the whole list goes on a :class:`queue.SimpleQueue` as one item (one
    wake-up of a waiting thread for every job that iteration completed, no lock held while
    it wakes), and a thread is started when none waits and fewer than ``workers`` run. A
    thread takes every item queued at that moment (``max_batch`` jobs or a little more) for
    its trip, so jobs queued while the threads are busy share the next trip. A second
    thread overlaps one trip's writes with another's ``fsync`` waits. Each trip's results
    go back to each caller's loop in one ``call_soon_threadsafe``. The caller waits without
    a cancel scope; when cancelled it still waits (shielded) for its job's trip to end.
    Off asyncio the job goes to ``fallback`` (a :class:`SyncBatcher`). Thread-safe;
    :meth:`close` stops the threads once the jobs queued before it are done (idempotent).
    """

    def __init__(
        self,
        fallback: SyncBatcher,
        *,
        workers: int = 1,
        max_batch: int = DEFAULT_MAX_BATCH,
        idle_timeout: float = 5.0,
    ) -> None:
        if max_batch < 1 or workers < 1:
            raise ValueError("max_batch and workers must be positive")
        self._fallback = fallback
        self._workers = workers
        self._max_batch = max_batch
        self._idle_timeout = idle_timeout
        self._queue: queue.SimpleQueue[tuple[list[_Job[Any]], asyncio.AbstractEventLoop] | None] = (
            queue.SimpleQueue()
        )
        #: Per loop, the jobs added since its last hand-over (touched by that loop only).
        self._pending: dict[asyncio.AbstractEventLoop, list[_Job[Any]]] = {}
        self._lock = threading.Lock()  # the bookkeeping below
        self._threads: set[threading.Thread] = set()
        self._waiting = 0  # threads waiting for a job (or about to)
        self._closed = False
        self._trips = 0
        self._jobs = 0
        self._pid = os.getpid()

    def _forget_parent(self) -> None:
        """In a forked child: no thread survived the fork, and the jobs queued were the
        parent's (their loops are not running here)."""
        self._queue = queue.SimpleQueue()
        self._pending = {}
        self._lock = threading.Lock()
        self._threads, self._waiting, self._pid = set(), 0, current_pid()

    @property
    def trips(self) -> int:
        """Trips run (the fallback's included), for tests and benchmarks."""
        return self._trips + self._fallback.trips

    @property
    def jobs(self) -> int:
        """Jobs finished (the fallback's included)."""
        return self._jobs + self._fallback.jobs

    @property
    def fallback(self) -> SyncBatcher:
        """The batcher used off asyncio."""
        return self._fallback

    @property
    def threads(self) -> list[threading.Thread]:
        """The threads running now (they stop after ``idle_timeout`` without work)."""
        with self._lock:
            return list(self._threads)

    async def run(self, sink: FileSink, then: Callable[[FileSink, SyncBatch], T]) -> T:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # not asyncio (trio): anyio worker threads
            return await self._fallback.run(sink, then)
        if self._closed:
            return await self._fallback.run(sink, then)
        job: _Job[T] = _Job(sink, then)
        job.future = future = loop.create_future()
        self._queue_job(loop, job)
        try:
            await future  # no cancel scope on the way: most waits end without a cancel
        except asyncio.CancelledError:
            # Cancelled while the job runs: it still ends (shielded wait), then we go.
            if not job.settled:
                job.future = loop.create_future()
                with anyio.CancelScope(shield=True):
                    await job.future
            raise
        return _outcome(job)

    def _hand_over(self, loop: asyncio.AbstractEventLoop) -> None:
        """On ``loop``: queue the jobs its callers added since the last hand-over."""
        jobs = self._pending.pop(loop)
        if self._pid != _PID[0]:  # a forked child: the parent's threads are not here
            self._forget_parent()
        if self._closed:  # the threads are stopping: one more, for these jobs only
            threading.Thread(
                target=self._trip, args=(jobs, loop), name="aiodimse-sync-batcher", daemon=True
            ).start()
            return
        self._queue.put((jobs, loop))  # before the check below: see _work's idle exit
        # Nothing to start when a thread waits (it takes the item: one leaving on its idle
        # timeout re-checks the queue under the lock first) or when all run (each gets the
        # queue again after its trip): read without the lock, which only a start needs.
        if self._waiting or len(self._threads) >= self._workers:
            return
        with self._lock:
            if not self._waiting and len(self._threads) < self._workers:
                thread = threading.Thread(
                    target=self._work, name="aiodimse-sync-batcher", daemon=True
                )
                try:
                    thread.start()  # it cannot count itself: this lock is held
                except RuntimeError as exc:  # "can't start new thread"
                    if not self._threads:  # nobody would take the jobs: fail them
                        self._fail_queued(exc)
                    return
                self._threads.add(thread)
                self._waiting += 1  # it will wait first: later jobs need no other thread

    def submit(
        self,
        sink: FileSink,
        then: Callable[[FileSink, SyncBatch], T],
        done: Callable[[Callable[[], T]], None],
    ) -> bool:
        """:meth:`run` for a caller that is not a task (a loop callback): the job goes to the
        threads the same way, and ``done(outcome)`` is called on the loop once its trip has
        ended (``outcome()`` returns ``then``'s result or raises its exception). False,
        nothing done, where only :meth:`run` can do it (not on asyncio, closed)."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return False
        if self._closed:
            return False
        job: _Job[T] = _Job(sink, then)
        job.future = future = loop.create_future()
        future.add_done_callback(lambda _: done(functools.partial(_outcome, job)))
        self._queue_job(loop, job)
        return True

    def _queue_job(self, loop: asyncio.AbstractEventLoop, job: _Job[Any]) -> None:
        # The jobs of one loop iteration go to the threads together, after it: one queue
        # item and at most one thread woken for all of them.
        pending = self._pending.get(loop)
        if pending is None:
            self._pending[loop] = [job]
            loop.call_soon(self._hand_over, loop)
        else:
            pending.append(job)

    def _fail_queued(self, exc: BaseException) -> None:
        """No thread runs and none can be started: every queued job fails with ``exc``."""
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return
            if item is None:
                continue
            jobs, loop = item
            for j in jobs:
                j.error, j.finished = exc, True
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(_settle, jobs)

    def close(self) -> None:
        """Stop the threads once the jobs queued before are done (they still finish)."""
        with self._lock:
            self._closed = True
            for _ in self._threads:
                self._queue.put(None)

    def _work(self) -> None:
        """A thread: trips until idle for ``idle_timeout`` seconds, or closed."""
        disfavor_wakeup()
        jobs_queue, lock, me = self._queue, self._lock, threading.current_thread()
        waiting = True  # counted in ``_waiting`` by whoever started this thread
        while True:
            if not waiting:
                with lock:
                    self._waiting += 1
            try:
                item = jobs_queue.get(timeout=self._idle_timeout)
            except queue.Empty:
                item = None
            with lock:
                self._waiting -= 1
                waiting = False
                # Stop when idle or closed, unless a job came meanwhile (nobody else may
                # have been started for it: this thread counted as waiting).
                if item is None and (self._closed or jobs_queue.empty()):
                    self._threads.discard(me)
                    return
            if item is None:
                continue
            taken = [item]
            count = len(item[0])
            while count < self._max_batch:
                try:
                    more = jobs_queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:  # closing: finish this trip, then stop
                    jobs_queue.put(None)
                    break
                taken.append(more)
                count += len(more[0])
            if len(taken) == 1:
                self._trip(*item)
            else:
                self._trip_many(taken)

    def _trip(self, jobs: list[_Job[Any]], loop: asyncio.AbstractEventLoop) -> None:
        """A thread: one trip of jobs from one loop, then their callers woken."""
        self._run(jobs)
        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
            loop.call_soon_threadsafe(_settle, jobs)

    def _trip_many(self, taken: list[tuple[list[_Job[Any]], asyncio.AbstractEventLoop]]) -> None:
        """A thread: one trip of several hand-overs; each loop woken once."""
        self._run([j for jobs, _loop in taken for j in jobs])
        by_loop: dict[asyncio.AbstractEventLoop, list[_Job[Any]]] = {}
        for jobs, loop in taken:
            by_loop.setdefault(loop, []).extend(jobs)
        for loop, settled in by_loop.items():
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(_settle, settled)

    def _run(self, jobs: list[_Job[Any]]) -> None:
        try:
            run_trip(jobs)
        except BaseException as exc:  # pragma: no cover - run_trip catches per job
            for j in jobs:
                if not j.finished:
                    j.error, j.finished = exc, True
        with self._lock:
            self._trips += 1
            self._jobs += len(jobs)


def _settle(jobs: list[_Job[Any]]) -> None:
    """On the loop: wake the callers of one trip."""
    for j in jobs:
        j.settled = True
        future = j.future
        if future is not None and not future.done():
            future.set_result(None)


# -- writer threads and buffers shared by the file sinks -------------------------------------------


class BufferPool:
    """Fixed-size ``bytearray`` blocks kept for reuse by the sinks' writer threads.

    A new block costs more than its copy: its pages are mapped and zeroed on first touch
    (a 4 MiB instance in fresh 1 MiB blocks: ~1,000 page faults) and unmapped when freed.
    A block given back is handed out again with its pages resident. At most ``max_bytes``
    are kept idle per block size; more are simply freed. Thread-safe (deque operations)."""

    def __init__(self, max_bytes: int = 16 << 20) -> None:
        self.max_bytes = max_bytes
        self._free: dict[int, collections.deque[bytearray]] = {}
        #: Blocks handed out that were made new (for tests and benchmarks).
        self.made = 0

    def take(self, size: int) -> bytearray:
        """A block of exactly ``size`` bytes (contents unspecified)."""
        free = self._free.get(size)
        if free is not None:
            try:
                return free.pop()
            except IndexError:
                pass
        self.made += 1
        return bytearray(size)

    def give(self, block: bytearray) -> None:
        """Keep ``block`` for a later :meth:`take` (dropped when the pool is full)."""
        size = len(block)
        free = self._free.get(size)
        if free is None:
            free = self._free.setdefault(size, collections.deque())
        if (len(free) + 1) * size <= self.max_bytes:
            free.append(block)


class WriterThreads:
    """Long-lived threads that run the sinks' writer loops, one loop per thread at a time.

    Starting a thread per instance (a stack, a malloc arena, the interpreter's thread state)
    cost ~0.1-0.2 ms per large instance; a thread that finished a sink's loop waits
    ``idle_timeout`` seconds for the next one instead. :meth:`submit` never waits: it hands
    the loop to an idle thread or starts one, so every submitted loop runs at once (a loop
    blocks on its sink's queue; loops must never wait for each other). When no thread can be
    started, :meth:`submit` raises ``RuntimeError`` and nothing was queued. Thread-safe;
    fork-aware."""

    def __init__(self, *, idle_timeout: float = 5.0) -> None:
        self.idle_timeout = idle_timeout
        self._lock = threading.Lock()
        #: Each idle thread's own hand-over slot, most recently idle last.
        self._idle: list[queue.SimpleQueue[Callable[[], None]]] = []
        self._pid = os.getpid()
        #: Threads started (for tests and benchmarks).
        self.started = 0

    def submit(self, job: Callable[[], None]) -> None:
        """Run ``job`` in a thread of the pool, now (``job`` must not raise)."""
        with self._lock:
            if self._pid != _PID[0]:  # a forked child: no thread of ours survived
                self._idle, self._pid = [], _PID[0]
            if self._idle:
                self._idle.pop().put(job)
                return
            slot: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
            thread = threading.Thread(
                target=self._work, args=(job, slot), name="aiodimse-writer", daemon=True
            )
            thread.start()
            self.started += 1

    @property
    def idle(self) -> int:
        """Threads waiting for a loop now."""
        with self._lock:
            return len(self._idle)

    def _work(self, job: Callable[[], None], slot: queue.SimpleQueue[Callable[[], None]]) -> None:
        disfavor_wakeup()
        while True:
            try:
                job()
            except BaseException:  # pragma: no cover - the sinks' loops catch everything
                log.exception("a sink writer loop raised")
            del job
            with self._lock:
                self._idle.append(slot)
            try:
                job = slot.get(timeout=self.idle_timeout)
            except queue.Empty:
                with self._lock:
                    if slot in self._idle:  # nobody handed this thread a loop: leave
                        self._idle.remove(slot)
                        return
                job = slot.get()  # handed one just as the wait ended


#: The blocks and the writer threads of every :class:`~aiodimse.net.filesink.FileSink`.
BUFFERS: Final = BufferPool()
WRITERS: Final = WriterThreads()


# -- file primitives of the sinks ----------------------------------------------------------------

_WRITEV: Callable[[int, list[memoryview]], int] | None = getattr(os, "writev", None)  # POSIX


class SinkFile:
    """An open file descriptor, written unbuffered: what a sink needs of a file object,
    without the ``fstat`` (one more system call, one more GIL hand-off in a worker thread)
    and the object that ``io.FileIO`` costs per instance. ``close`` is idempotent."""

    __slots__ = ("closed", "fd")

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.closed = False

    def fileno(self) -> int:
        return self.fd

    def write(self, data: memoryview) -> int:
        return os.write(self.fd, data)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            os.close(self.fd)


class Writable(Protocol):
    """What a sink writes to: a :class:`SinkFile` (or, in tests, any unbuffered file)."""

    def write(self, data: memoryview, /) -> int | None: ...
    def fileno(self) -> int: ...
    def close(self) -> None: ...


def write_all(fp: Writable, *parts: bytes | bytearray | memoryview) -> None:
    """Write every byte of ``parts`` in order (one ``writev`` for a :class:`SinkFile` where the
    platform has it: the File Meta Information and the dataset in one system call)."""
    views = [memoryview(p) for p in parts if len(p)]
    writev = _WRITEV if type(fp) is SinkFile else None
    while views:
        # An unbuffered write may take fewer bytes than asked: go on from there.
        n = (writev(fp.fileno(), views) if writev is not None else fp.write(views[0])) or 0
        while n:
            if n >= len(views[0]):
                n -= len(views.pop(0))
            else:
                views[0], n = views[0][n:], 0


def make_parents(directory: Path) -> list[Path]:
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


def place_if_absent(source: Path, target: Path) -> bool:
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
