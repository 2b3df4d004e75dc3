"""Files without a name, made ahead of need, that get their name only when complete.

Creating a file (allocating an inode) was the costliest step of storing a small instance on
the benchmark machine: 0.1-0.7 ms of kernel time each on ext4, more than writing 64 KiB.
:class:`AnonymousFiles` keeps a few such files open, made by a background thread while the
event loop and the worker threads do the rest (Linux ``O_TMPFILE``), and names one with
``linkat`` once its content is complete (and fsynced, for a durable store): the name appears
with the whole file behind it, atomically. Until then nothing is visible, so nothing partial
can be left behind (ROBUSTNESS 36, 47): closing the descriptor, or the process dying, frees
the file.
"""

from __future__ import annotations

import collections
import contextlib
import errno
import logging
import os
import threading
import time
from pathlib import Path
from typing import Final

from .syncbatch import disfavor_wakeup

log = logging.getLogger("aiodimse.filesink")

__all__ = ["AnonymousFiles"]

_O_CLOEXEC: Final = getattr(os, "O_CLOEXEC", 0)
_O_TMPFILE: Final = getattr(os, "O_TMPFILE", 0)  # Linux >= 3.11; 0 elsewhere
#: Files the background thread makes between two hand-overs (one lock round each).
_HAND_OVER: Final = 4
#: errno values meaning "this file system or kernel has no O_TMPFILE".
_UNSUPPORTED: Final = frozenset({errno.EOPNOTSUPP, errno.EISDIR, errno.EINVAL})


def _close(fd: int) -> None:
    with contextlib.suppress(OSError):
        os.close(fd)


def _close_all(fds: collections.deque[int] | list[int]) -> None:
    """Close every descriptor, popping each first: a take() popping from the same deque at
    the same moment gets a descriptor that is not closed here."""
    while True:
        try:
            fd = fds.pop()
        except IndexError:
            return
        _close(fd)


class AnonymousFiles:
    """Files without a name in ``directory``, created ahead of need (Linux ``O_TMPFILE``).

    Creating a file is the costliest step of storing a small instance: allocating an inode
    took 0.1-0.7 ms of kernel time per file on ext4 here, more than writing 64 KiB. A
    background thread keeps up to ``size`` files open, created while the association's
    reader and the other trips do their work; :meth:`take` hands one over at once (or
    creates one in the calling thread when none is ready). Such a file has no name until
    :meth:`link` gives it its final one (``linkat``, atomic: the name appears with the whole,
    fsynced file behind it), so nothing partial is ever visible and nothing is left behind:
    a discarded instance, a crash or a killed process frees it with its descriptor
    (ROBUSTNESS 36, 47). The thread stops and closes its files after ``idle_timeout``
    seconds without a :meth:`take`; the next one starts it again.

    Where there is no ``O_TMPFILE`` (Windows, macOS), where the file system refuses it or
    where ``/proc/self/fd`` is missing (no ``linkat`` of a descriptor), :attr:`supported`
    becomes False and :meth:`take` returns None: the sink then writes a named temporary
    file and renames it. Thread-safe.
    """

    def __init__(self, directory: Path, *, size: int = 32, idle_timeout: float = 5.0) -> None:
        if size < 1:
            raise ValueError("size must be positive")
        self.directory = directory
        self.size = size
        self.idle_timeout = idle_timeout
        self.supported = bool(_O_TMPFILE) and os.path.isdir("/proc/self/fd")
        self._probed = False
        # Appended by the thread, popped by take() without the lock (deque operations are
        # atomic); ``_cond`` guards starting, waking and stopping the thread.
        self._ready: collections.deque[int] = collections.deque()
        self._filling = False  # the thread is making files (a wake-up would be wasted)
        self._cond = threading.Condition(threading.Lock())
        self._probe_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._proc: tuple[int, int] | None = None  # (pid, fd of /proc/self/fd)
        self._pid = os.getpid()
        self._last_take = 0.0
        self._closed = False
        #: Files handed over ready / created in the caller's thread (tests, benchmarks).
        self.ready_taken = 0
        self.created_on_demand = 0

    def take(self) -> int | None:
        """A write-only descriptor of a new, empty, nameless file; None when unsupported."""
        if not self.supported or self._closed:
            return None
        if self._pid != os.getpid():  # a forked child: the parent's files are not ours
            with self._cond:
                if self._pid != os.getpid():
                    self._forget_parent()
        try:
            fd: int | None = self._ready.pop()
        except IndexError:
            fd = None
        self._last_take = time.monotonic()
        if self._thread is None or (not self._filling and len(self._ready) <= self.size // 2):
            with self._cond:
                if self._thread is None:
                    self._thread = threading.Thread(
                        target=self._fill, name="aiodimse-anonymous-files", daemon=True
                    )
                    self._thread.start()
                elif not self._filling:
                    self._filling = True  # once: later takes leave it be until it sleeps
                    self._cond.notify()
        if fd is not None:
            self.ready_taken += 1
            return fd
        self.created_on_demand += 1
        return self._create()

    def link(self, fd: int, target: Path | str) -> None:
        """Give the file of ``fd`` the name ``target`` (same file system); raises
        ``FileExistsError`` when ``target`` exists (nothing is replaced)."""
        # linkat(AT_SYMLINK_FOLLOW) of /proc/self/fd/N: the one way to name an O_TMPFILE
        # file without CAP_DAC_READ_SEARCH. A src_dir_fd forces linkat (link() would not
        # follow the /proc symbolic link and fail with EXDEV).
        os.link(str(fd), target, src_dir_fd=self._fd_directory(), follow_symlinks=True)

    def close(self) -> None:
        """Stop the thread and free the files not taken (idempotent)."""
        with self._cond:
            self._closed = True
            ready, self._ready = self._ready, collections.deque()
            self._cond.notify()
            proc, self._proc = self._proc, None
        _close_all(ready)
        if proc is not None:
            _close(proc[1])

    def _forget_parent(self) -> None:
        """In a forked child (lock held): the ready descriptors share their files with the
        parent's, which may use them: close our copies; the thread did not survive."""
        _close_all(self._ready)
        self._thread, self._filling, self._pid = None, False, os.getpid()

    def _fd_directory(self) -> int:
        """This process's ``/proc/self/fd``, opened once (again after a fork)."""
        proc, pid = self._proc, os.getpid()
        if proc is None or proc[0] != pid:
            fd = os.open("/proc/self/fd", os.O_RDONLY | _O_CLOEXEC)
            with self._cond:
                if self._proc is None or self._proc[0] != pid:
                    proc, self._proc = (pid, fd), (pid, fd)
                else:
                    proc = self._proc
                    os.close(fd)
        return proc[1]

    def _create(self) -> int | None:
        if not self._probed:
            self._probe()
            if not self.supported:
                return None
        try:
            return os.open(self.directory, _O_TMPFILE | os.O_WRONLY | _O_CLOEXEC, 0o666)
        except OSError as exc:
            if exc.errno in _UNSUPPORTED:
                self.supported = False
            return None  # a named file is tried: its own error (EACCES, ENOSPC) is reported

    def _probe(self) -> None:
        """Once: can this file system create *and* name an anonymous file?"""
        with self._probe_lock:
            if self._probed:
                return
            try:
                fd = os.open(self.directory, _O_TMPFILE | os.O_WRONLY | _O_CLOEXEC, 0o666)
            except OSError as exc:
                if exc.errno in _UNSUPPORTED:
                    self.supported = False
                    self._probed = True
                return  # e.g. EACCES: ask again next time
            probe = self.directory / f".aiodimse-probe-{os.getpid()}-{threading.get_ident()}"
            try:
                self.link(fd, probe)
                probe.unlink()
            except OSError as exc:
                log.info(
                    "no linkat of anonymous files in %s (%s): named files", self.directory, exc
                )
                self.supported = False
            finally:
                os.close(fd)
            self._probed = True

    def _fill(self) -> None:
        """The background thread: keeps ``size`` files ready; ends when idle or closed."""
        disfavor_wakeup()  # waking it (a take) must not preempt the event loop
        ready: collections.deque[int] | list[int] = []
        while True:
            with self._cond:
                while not self._closed and len(self._ready) >= self.size:
                    left = self._last_take + self.idle_timeout - time.monotonic()
                    if left <= 0:
                        break
                    self._filling = False
                    self._cond.wait(left)
                self._filling = True
                if self._closed or not self.supported or len(self._ready) >= self.size:
                    # Idle: give the files back.
                    ready, self._ready = self._ready, collections.deque()
                    self._thread, self._filling = None, False
                    break
                need = min(self.size - len(self._ready), _HAND_OVER)
            # Made outside the lock, then handed over a few at a time: a take() meanwhile
            # never waits for the lock while this thread waits for the interpreter.
            made: list[int] = []
            failed = False
            while len(made) < need:
                fd = self._create()
                if fd is None:
                    failed = True
                    break
                made.append(fd)
            with self._cond:
                if not self._closed:
                    self._ready.extend(made)
                    made = []
                    if not failed:
                        continue
                # Closed, or creating fails (e.g. EACCES): stop; the next take tries again.
                self._thread, self._filling = None, False
                ready = made
                break
        _close_all(ready)
