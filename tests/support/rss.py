"""Peak RSS and open-file-descriptor probe for a (sub)process, for benchmarks and soak tests.

Usage::

    proc = subprocess.Popen([...])
    with ResourceProbe(proc) as probe:
        ...  # drive the process
    print(probe.result.peak_rss, probe.result.peak_fds)

A background thread samples the process every ``interval`` seconds. On Linux each sample
also reads ``VmHWM`` from ``/proc/<pid>/status`` (the kernel's high-water mark of resident
memory, so the peak is exact up to the last sample taken while the process was alive, even
if the peak lay between samples); on Windows ``peak_wset`` plays that role. Elsewhere the
peak is the maximum sampled RSS (``peak_rss_exact`` is then False). File descriptors are
``psutil.Process.num_fds()`` (POSIX) or ``num_handles()`` (Windows), sampled: their peak is
the maximum seen.

A process that exits is sampled no more; the result keeps what was seen until then. To
measure a process that is about to exit, keep it alive until the ``with`` block ends.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import psutil

__all__ = ["ProbeResult", "ResourceProbe", "probe_self", "read_vm_hwm"]


@dataclass(frozen=True, slots=True, kw_only=True)
class ProbeResult:
    """What a :class:`ResourceProbe` saw. Sizes in bytes."""

    pid: int
    peak_rss: int
    peak_rss_exact: bool
    last_rss: int
    peak_fds: int
    last_fds: int
    samples: int
    duration: float

    @property
    def peak_rss_mib(self) -> float:
        """``peak_rss`` in MiB."""
        return self.peak_rss / (1 << 20)


def read_vm_hwm(pid: int) -> int | None:
    """Linux: ``VmHWM`` (peak resident set size) of ``pid`` in bytes, else None."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith("VmHWM:"):
            parts = line.split()
            return int(parts[1]) * 1024  # reported in kB
    return None


def _fds(proc: psutil.Process) -> int:
    if sys.platform == "win32":
        return int(proc.num_handles())
    return int(proc.num_fds())


class ResourceProbe:
    """Context manager sampling RSS and fds of ``target`` (a PID or a ``Popen``).

    ``result`` is available after the block; :meth:`snapshot` gives the values so far.
    """

    def __init__(
        self,
        target: int | subprocess.Popen[bytes] | subprocess.Popen[str],
        *,
        interval: float = 0.01,
    ) -> None:
        self.pid = target if isinstance(target, int) else target.pid
        self.interval = interval
        self._proc = psutil.Process(self.pid)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._peak_rss = 0
        self._exact = False
        self._last_rss = 0
        self._peak_fds = 0
        self._last_fds = 0
        self._samples = 0
        self._started = 0.0
        self._ended: float | None = None
        self._result: ProbeResult | None = None

    def sample(self) -> bool:
        """Take one sample now; False if the process is gone."""
        try:
            mem = self._proc.memory_info()
            fds = _fds(self._proc)
        except (psutil.NoSuchProcess, psutil.ZombieProcess, psutil.AccessDenied):
            return False
        peak: int | None = None
        if sys.platform.startswith("linux"):
            peak = read_vm_hwm(self.pid)
        elif sys.platform == "win32":
            peak = int(getattr(mem, "peak_wset", 0)) or None
        with self._lock:
            rss = int(mem.rss)
            self._last_rss = rss
            self._peak_rss = max(self._peak_rss, rss)
            if peak is not None:
                self._peak_rss = max(self._peak_rss, peak)
                self._exact = True
            self._last_fds = fds
            self._peak_fds = max(self._peak_fds, fds)
            self._samples += 1
        return True

    def reset_peak(self) -> None:
        """Forget the peak so far (Linux: also resets VmHWM via ``clear_refs``, best effort)."""
        if sys.platform.startswith("linux"):
            try:
                Path(f"/proc/{self.pid}/clear_refs").write_text("5")
            except OSError:
                pass
        with self._lock:
            self._peak_rss = self._last_rss
            self._peak_fds = self._last_fds

    def _run(self) -> None:
        while not self._stop.is_set():
            if not self.sample():
                return
            self._stop.wait(self.interval)

    def snapshot(self) -> ProbeResult:
        """The values seen so far."""
        with self._lock:
            end = self._ended if self._ended is not None else time.monotonic()
            return ProbeResult(
                pid=self.pid,
                peak_rss=self._peak_rss,
                peak_rss_exact=self._exact,
                last_rss=self._last_rss,
                peak_fds=self._peak_fds,
                last_fds=self._last_fds,
                samples=self._samples,
                duration=end - self._started,
            )

    @property
    def result(self) -> ProbeResult:
        """The final values (only after the ``with`` block)."""
        if self._result is None:
            raise RuntimeError("the probe is still running; use snapshot()")
        return self._result

    def __enter__(self) -> ResourceProbe:
        self._started = time.monotonic()
        self.sample()
        self._thread = threading.Thread(target=self._run, name=f"rss-probe-{self.pid}", daemon=True)
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.sample()  # a last exact VmHWM read if the process is still alive
        self._ended = time.monotonic()
        self._result = self.snapshot()


def probe_self(interval: float = 0.01) -> ResourceProbe:
    """A probe on the current process (e.g. an in-process server under test)."""
    return ResourceProbe(os.getpid(), interval=interval)
