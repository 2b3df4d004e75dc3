"""Benchmark harness: run one case against several DICOM implementations side by side.

Theory of operation
-------------------
A *case* (for example "sequential associate + C-ECHO + release") is a list of *rows*. Each row
is one setup of the matrix (a client implementation against a server implementation) and is
measured ``repeat`` times; the harness keeps every sample and reports the median with the
minimum and maximum. Rows of one *section* are compared with the section's aiodimse row: the
ratio column is ``row median / aiodimse median`` (so for a rate, above 1 means faster than
aiodimse; for a wall time, above 1 means slower).

A row that cannot run (implementation not installed, aiodimse API not written yet, a peer that
crashed) becomes an *error row* with the reason instead of stopping the run.

Peers run as subprocesses (:class:`ManagedProcess`): started with their own temporary
directory, on free loopback ports, watched for peak resident memory (``VmHWM`` from
``/proc/<pid>/status`` where available, else polled with psutil), and always stopped
(close stdin, then terminate, then kill). All traffic stays on 127.0.0.1. Every wait in this
module has a deadline; every loop is bounded in count and time.

Results go to ``benchmarks/results/<case>-<UTC timestamp>.json`` together with machine
information and the version of each implementation, and a markdown table is printed.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as _dt
import importlib
import importlib.metadata
import json
import os
import platform
import queue
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import psutil  # type: ignore[import-untyped]

HOST = "127.0.0.1"
BENCH_DIR = Path(__file__).resolve().parent
RESULTS_DIR = BENCH_DIR / "results"

#: Implementation keys understood by ``--impl``.
IMPLEMENTATIONS = ("aiodimse", "pynetdicom", "dcmtk", "dcmtk-nodelay", "orthanc")

#: Environment that makes dcmtk switch Nagle's algorithm off (dcmtk leaves it on by default).
NODELAY_ENV = {"TCP_NODELAY": "1"}

#: CPU pinning, opt-in (``AIODIMSE_BENCH_PIN=1``; Linux, at least 2 CPUs): clients run on
#: the first half of the CPUs this process may use, servers on the second half, Orthanc (a
#: thread pool) on all. It steadies rows that the scheduler otherwise makes bimodal on 2
#: cores (both ends on one core in some repetitions), but it is not neutral: a server that
#: does its disk work in threads (aiodimse's SCP) gets one core for loop and threads while
#: single-threaded storescp gets a core to itself. So the default is off: what users run.
#: Set by :func:`pin_clients`; ``None`` when not pinning.
_ALL_CPUS: frozenset[int] | None = (
    frozenset(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
)
_PINS: tuple[frozenset[int], frozenset[int]] | None = None


def pin_clients() -> str:
    """Pin this process (and the clients it starts) to the client CPUs; servers started
    by :class:`ManagedProcess` from now on go to the server CPUs. Returns a description."""
    global _PINS
    if os.environ.get("AIODIMSE_BENCH_PIN", "0") != "1":
        return "off (AIODIMSE_BENCH_PIN=1 turns it on)"
    if _ALL_CPUS is None or not hasattr(os, "sched_setaffinity") or len(_ALL_CPUS) < 2:
        return "off (needs sched_setaffinity and 2 CPUs)"
    cpus = sorted(_ALL_CPUS)
    half = len(cpus) // 2
    _PINS = frozenset(cpus[:half]), frozenset(cpus[half:])
    os.sched_setaffinity(0, _PINS[0])
    return pinning()


def pinning() -> str:
    """The pinning in force, for the results."""
    if _PINS is None:
        return "off"
    return f"clients on CPU {sorted(_PINS[0])}, servers on CPU {sorted(_PINS[1])}, Orthanc on all"


def _pin_server(pid: int, *, every_cpu: bool) -> None:
    if _PINS is None or _ALL_CPUS is None:
        return
    try:
        os.sched_setaffinity(pid, _ALL_CPUS if every_cpu else _PINS[1])
    except OSError:  # the process already exited: its row reports that
        pass


class Unavailable(Exception):
    """An implementation or peer needed by a row cannot be used; the row becomes an error."""


# --------------------------------------------------------------------------------------------
# Implementations and machine information
# --------------------------------------------------------------------------------------------


def aiodimse_api() -> ModuleType:
    """Return the ``aiodimse`` module if its high-level API (``aiodimse.AE``) exists.

    Raises :class:`Unavailable` with ``"aiodimse API not available: <error>"`` otherwise.
    """
    try:
        module = importlib.import_module("aiodimse")
        module.AE  # noqa: B018 - attribute probe
    except Exception as exc:  # any import-time failure is reported, not raised
        raise Unavailable(f"aiodimse API not available: {exc!r}") from exc
    return module


def require_executable(name: str) -> str:
    """Return the full path of ``name`` or raise :class:`Unavailable`."""
    path = shutil.which(name)
    if path is None:
        raise Unavailable(f"{name} not found on PATH")
    return path


def _first_line(argv: Sequence[str]) -> str | None:
    try:
        proc = subprocess.run(list(argv), capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    for line in (proc.stdout + proc.stderr).splitlines():
        if line.strip():
            return line.strip()
    return None


def _dist_version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def implementation_versions() -> dict[str, str | None]:
    """Versions of every implementation the harness knows, ``None`` where not installed."""
    versions: dict[str, str | None] = {
        "aiodimse": _dist_version("aiodimse"),
        "pynetdicom": _dist_version("pynetdicom"),
        "pydicom": _dist_version("pydicom"),
        "anyio": _dist_version("anyio"),
        "dcmtk": None,
        "orthanc": None,
    }
    if shutil.which("echoscu"):
        versions["dcmtk"] = _first_line(["echoscu", "--version"])
    if shutil.which("Orthanc"):
        versions["orthanc"] = _first_line(["Orthanc", "--version"])
    return versions


def git_revision() -> str | None:
    """``git describe --always --dirty`` of the checkout the benchmarks run from, if any."""
    if shutil.which("git") is None:
        return None
    return _first_line(["git", "-C", str(BENCH_DIR), "describe", "--always", "--dirty"])


def reset_own_peak_rss() -> bool:
    """Reset this process's ``VmHWM`` (Linux ``/proc/self/clear_refs``); ``False`` elsewhere."""
    try:
        Path("/proc/self/clear_refs").write_text("5", encoding="ascii")
    except OSError:
        return False
    return True


def own_peak_rss() -> int | None:
    """This process's peak RSS in bytes (``VmHWM``; psutil's current RSS as a fallback)."""
    return read_vmhwm(os.getpid()) or current_rss(os.getpid())


def machine_info() -> dict[str, Any]:
    """CPU count, memory, OS, Python and implementation versions, for the JSON result."""
    return {
        "cpu_count": os.cpu_count(),
        "cpu_count_physical": psutil.cpu_count(logical=False),
        "memory_total_bytes": psutil.virtual_memory().total,
        "platform": platform.platform(),
        "machine": platform.machine(),
        "python": sys.version.split()[0],
        "python_implementation": platform.python_implementation(),
        "versions": implementation_versions(),
        "aiodimse_git": git_revision(),
        "cpu_pinning": pinning(),
    }


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def install_signal_handlers() -> None:
    """Make SIGINT and SIGTERM raise :class:`KeyboardInterrupt` in the main thread.

    So that every ``finally`` runs and every peer is stopped. A handler of our own also keeps
    ``asyncio.Runner`` from installing its SIGINT handler, which only cancels the main task,
    a cancellation anyio's cancel scopes can absorb (Ctrl-C would then be ignored).
    """
    for name in ("SIGINT", "SIGTERM"):
        signum = getattr(signal, name, None)
        if signum is not None:
            with contextlib.suppress(ValueError, OSError):
                signal.signal(signum, _interrupt)


def raise_open_files_limit(wanted: int) -> int | None:
    """Raise the soft RLIMIT_NOFILE towards ``wanted`` (capped by the hard limit).

    Returns the soft limit now in force, or ``None`` where the platform has no such limit
    (Windows: the ``resource`` module does not exist there).
    """
    try:
        import resource
    except ImportError:
        return None
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


# --------------------------------------------------------------------------------------------
# Ports and processes
# --------------------------------------------------------------------------------------------


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (bind to port 0, then release)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for_port(
    port: int, *, timeout: float, proc: subprocess.Popen[bytes] | None = None
) -> None:
    """Poll until something accepts TCP connections on ``127.0.0.1:port``.

    Bounded by ``timeout`` seconds; fails early if ``proc`` exits meanwhile.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise Unavailable(f"process exited with code {proc.returncode} before listening")
        try:
            with socket.create_connection((HOST, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise Unavailable(f"nothing listening on {HOST}:{port} after {timeout:.0f} s")


def wait_exactly(proc: subprocess.Popen[Any], timeout: float) -> int:
    """Wait for ``proc`` to exit and return its exit code, killing it after ``timeout``
    seconds (then raising :class:`subprocess.TimeoutExpired`).

    Use this, not ``proc.wait(timeout=...)`` or ``subprocess.run(timeout=...)``, around a
    timed process: with a timeout the standard library polls for the exit with sleeps that
    double up to 50 ms, so a process that ran 115 ms is seen to end at 163.5 ms (dcmtk's
    storescu and echoscu rows, timed by their wall clock, came out up to 30 % slow). Here
    the wait blocks in ``waitpid`` and returns as the process ends; a timer does the kill.
    """
    killed = threading.Event()

    def kill() -> None:
        killed.set()
        with contextlib.suppress(OSError):
            proc.kill()

    timer = threading.Timer(timeout, kill)
    timer.daemon = True
    timer.start()
    try:
        code = proc.wait()
    finally:
        timer.cancel()
    if killed.is_set():
        raise subprocess.TimeoutExpired(proc.args, timeout)
    return code


def read_vmhwm(pid: int) -> int | None:
    """Peak resident set size of ``pid`` in bytes from ``/proc/<pid>/status`` (Linux only)."""
    try:
        text = Path(f"/proc/{pid}/status").read_text(encoding="ascii", errors="replace")
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith("VmHWM:"):
            parts = line.split()
            if len(parts) >= 2 and parts[1].isdigit():
                return int(parts[1]) * 1024
    return None


def current_rss(pid: int) -> int | None:
    """Resident set size of ``pid`` in bytes now (psutil; ``None`` if the process is gone)."""
    try:
        return int(psutil.Process(pid).memory_info().rss)
    except (psutil.Error, OSError):
        return None


class ManagedProcess:
    """A subprocess that is always stopped and whose peak RSS is tracked.

    Use as a context manager. ``stdout`` lines are collected by a reader thread so that
    :meth:`wait_for_line` can wait with a deadline; ``stderr`` goes to a log file in the
    process's temporary directory (kept small by the peers' quiet options).
    """

    POLL_INTERVAL = 0.05

    def __init__(
        self,
        argv: Sequence[str],
        *,
        name: str,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        stop_by_stdin: bool = False,
        every_cpu: bool = False,
    ) -> None:
        self.argv = list(argv)
        self.every_cpu = every_cpu  # not pinned to the server CPUs (see pin_clients)
        self.stop_by_stdin = stop_by_stdin
        self.name = name
        self.env = {**os.environ, **(env or {})}
        self.cwd = cwd
        self.proc: subprocess.Popen[bytes] | None = None
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._stop = threading.Event()
        self._peak_polled = 0
        self._threads: list[threading.Thread] = []
        self._stderr_dir = Path(tempfile.mkdtemp(prefix=f"bench-{name}-log-"))
        self.stderr_path = self._stderr_dir / "stderr.log"
        self._stderr_file: Any = None
        self.idle_rss: int | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    def __enter__(self) -> ManagedProcess:
        self._stderr_file = self.stderr_path.open("wb")
        try:
            self.proc = subprocess.Popen(
                self.argv,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=self._stderr_file,
                env=self.env,
                cwd=self.cwd,
            )
        except OSError as exc:
            self._stderr_file.close()
            shutil.rmtree(self._stderr_dir, ignore_errors=True)
            raise Unavailable(f"cannot start {self.name}: {exc}") from exc
        _pin_server(self.proc.pid, every_cpu=self.every_cpu)
        for target in (self._read_stdout, self._poll_rss):
            thread = threading.Thread(target=target, name=f"{self.name}-{target.__name__}")
            thread.daemon = True
            thread.start()
            self._threads.append(thread)
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def stop(self, *, grace: float = 5.0) -> int | None:
        """Stop the process: close stdin, then terminate, then kill.

        With ``stop_by_stdin`` (our helper scripts exit at end of stdin) the process gets a
        short grace period after stdin is closed; other peers are terminated right away.

        Returns the exit code. Idempotent.
        """
        proc = self.proc
        if proc is None:
            return None
        try:
            if proc.poll() is None:
                self._peak_polled = max(self._peak_polled, read_vmhwm(proc.pid) or 0)
                if proc.stdin is not None:
                    with contextlib.suppress(OSError):
                        proc.stdin.close()
                try:
                    proc.wait(timeout=min(grace, 2.0) if self.stop_by_stdin else 0.01)
                except subprocess.TimeoutExpired:
                    proc.terminate()
                    try:
                        proc.wait(timeout=grace)
                    except subprocess.TimeoutExpired:
                        proc.kill()
                        proc.wait(timeout=grace)
        finally:
            self._stop.set()
            for thread in self._threads:
                thread.join(timeout=2.0)
            if proc.stdout is not None:
                proc.stdout.close()
            if proc.stdin is not None:
                with contextlib.suppress(OSError):
                    proc.stdin.close()
            if self._stderr_file is not None:
                self._stderr_file.close()
        return proc.returncode

    def cleanup_logs(self) -> None:
        """Remove the stderr log directory (call after :meth:`stop`)."""
        shutil.rmtree(self._stderr_dir, ignore_errors=True)

    # -- observation -------------------------------------------------------------------------

    @property
    def pid(self) -> int:
        assert self.proc is not None, "process not started"
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def peak_rss(self) -> int | None:
        """Peak RSS in bytes so far: max of ``VmHWM`` (if readable) and the polled RSS."""
        if self.proc is None:
            return None
        hwm = read_vmhwm(self.proc.pid) if self.alive() else None
        peak = max(hwm or 0, self._peak_polled)
        return peak or None

    def reset_peak(self) -> bool:
        """Start a new peak-RSS window (per repetition).

        On Linux writes ``5`` to ``/proc/<pid>/clear_refs``, which resets ``VmHWM``; returns
        ``False`` where that is not possible (the peak then covers all earlier repetitions).
        """
        self._peak_polled = 0
        if self.proc is None or not self.alive():
            return False
        try:
            Path(f"/proc/{self.proc.pid}/clear_refs").write_text("5", encoding="ascii")
        except OSError:
            return False
        return True

    def mark_idle(self) -> None:
        """Record the current RSS as the process's idle (after start-up) footprint."""
        if self.proc is not None:
            self.idle_rss = current_rss(self.proc.pid)

    def stderr_tail(self, limit: int = 400) -> str:
        try:
            data = self.stderr_path.read_bytes()
        except OSError:
            return ""
        return data[-limit:].decode("utf-8", "replace").strip()

    def wait_for_line(self, prefix: str, *, timeout: float) -> str:
        """Return the first stdout line starting with ``prefix`` (bounded by ``timeout``)."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                line = self._lines.get(timeout=min(remaining, 0.5))
            except queue.Empty:
                if not self.alive():
                    break
                continue
            if line is None:
                break
            if line.startswith(prefix):
                return line
        code = self.proc.poll() if self.proc is not None else None
        raise Unavailable(
            f"{self.name}: no '{prefix}' line within {timeout:.0f} s (exit code {code}); "
            f"stderr: {self.stderr_tail()!r}"
        )

    def _read_stdout(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        for raw in self.proc.stdout:  # ends at EOF, i.e. when the process exits
            self._lines.put(raw.decode("utf-8", "replace").strip())
        self._lines.put(None)

    def _poll_rss(self) -> None:
        assert self.proc is not None
        pid = self.proc.pid
        while not self._stop.wait(self.POLL_INTERVAL):
            rss = current_rss(pid)
            if rss is None:
                return
            self._peak_polled = max(self._peak_polled, rss)


def fresh_block_groups(directory: Path) -> bool:
    """Ask ext4 to place ``directory``'s subdirectories in block groups of their own
    (``chattr +T``, the Orlov allocator's top-of-hierarchy flag): creating a file in a
    block group where many files were deleted in the last minutes costs 0.1-0.7 ms of
    kernel time (the allocator skips recently deleted inodes), whoever deleted them (on a
    shared machine, other jobs). The storage rows then measure the servers, dcmtk's and
    ours alike, not that scan. False where it does not apply (no chattr, not ext4)."""
    chattr = shutil.which("chattr")
    if chattr is None:
        return False
    done = subprocess.run([chattr, "+T", str(directory)], capture_output=True, check=False)
    return done.returncode == 0


@contextlib.contextmanager
def temp_dir(prefix: str) -> Iterator[Path]:
    """A temporary directory removed afterwards (errors on removal ignored)."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


# --------------------------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------------------------


@dataclasses.dataclass(kw_only=True)
class Row:
    """One setup of a case's matrix, measured ``len(samples)`` times.

    ``impl`` is the implementation this row stands for in its section (the one compared);
    ``details`` holds per-row extras (peak RSS, failures, processes/s, ...), each a list with
    one value per repetition or a single value.
    """

    section: str
    impl: str
    label: str
    metric: str
    unit: str
    higher_is_better: bool
    samples: list[float] = dataclasses.field(default_factory=list)
    details: dict[str, Any] = dataclasses.field(default_factory=dict)
    error: str | None = None

    def median(self) -> float | None:
        return statistics.median(self.samples) if self.samples else None

    def to_json(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        if self.samples:
            data["median"] = statistics.median(self.samples)
            data["min"] = min(self.samples)
            data["max"] = max(self.samples)
        return data


def summarize(values: Sequence[float]) -> tuple[float, float, float] | None:
    """``(median, min, max)`` of ``values`` or ``None`` if empty."""
    if not values:
        return None
    return statistics.median(values), min(values), max(values)


def fmt_number(value: float) -> str:
    if value >= 100:
        return f"{value:,.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def fmt_summary(values: Sequence[float]) -> str:
    summary = summarize(values)
    if summary is None:
        return "–"
    med, lo, hi = summary
    return f"{fmt_number(med)} ({fmt_number(lo)}–{fmt_number(hi)})"


def fmt_mib(value: Any) -> str:
    if isinstance(value, list):
        numbers = [v for v in value if isinstance(v, (int, float))]
        return fmt_summary([v / 2**20 for v in numbers]) if numbers else "–"
    if isinstance(value, (int, float)):
        return fmt_number(value / 2**20)
    return "–"


def fmt_detail(value: Any) -> str:
    if isinstance(value, list):
        numbers = [v for v in value if isinstance(v, (int, float))]
        return fmt_summary(numbers) if numbers else "–"
    if isinstance(value, float):
        return fmt_number(value)
    if value is None:
        return "–"
    return str(value)


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Column:
    """An extra table column taken from ``Row.details[key]``."""

    key: str
    header: str
    fmt: Callable[[Any], str] = fmt_detail


def markdown_table(rows: Sequence[Row], columns: Sequence[Column] = ()) -> str:
    """A markdown table: one line per row, ratio to the aiodimse row of the same section
    (n/a for a row measured in another unit, such as a section's page-cache probe)."""
    baselines: dict[str, tuple[float, str]] = {}
    for row in rows:
        med = row.median()
        if row.impl == "aiodimse" and row.error is None and med:
            baselines.setdefault(row.section, (med, row.unit))
    header = ["section", "setup", "metric: median (min–max)", "÷ aiodimse"]
    header += [c.header for c in columns]
    header.append("note")
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        med = row.median()
        base, unit = baselines.get(row.section, (None, row.unit))
        if unit != row.unit:
            base = None
        if row.error is not None and not row.samples:
            value, ratio = "–", "–"
        else:
            value = f"{fmt_summary(row.samples)} {row.unit}"
            ratio = f"{med / base:.2f}" if med is not None and base else "n/a"
        cells = [row.section, row.label, value, ratio]
        cells += [c.fmt(row.details.get(c.key)) for c in columns]
        cells.append((row.error or "").replace("|", "/").replace("\n", " ")[:160])
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_results(
    case: str,
    rows: Sequence[Row],
    *,
    parameters: Mapping[str, Any],
    machine: Mapping[str, Any],
    results_dir: Path = RESULTS_DIR,
) -> Path:
    """Write ``<results_dir>/<case>-<UTC timestamp>.json`` and return its path."""
    now = _dt.datetime.now(_dt.timezone.utc)
    results_dir.mkdir(parents=True, exist_ok=True)
    path = results_dir / f"{case}-{now.strftime('%Y%m%dT%H%M%SZ')}.json"
    payload = {
        "case": case,
        "timestamp_utc": now.isoformat(),
        "parameters": dict(parameters),
        "machine": dict(machine),
        "rows": [row.to_json() for row in rows],
    }
    path.write_text(json.dumps(payload, indent=2, default=str) + "\n", encoding="utf-8")
    return path


def run_row(
    row: Row,
    repeat: int,
    measure: Callable[[int], float],
    *,
    time_budget: float,
) -> Row:
    """Call ``measure(i)`` for ``i`` in ``range(repeat)`` and store the samples in ``row``.

    ``measure`` returns one sample and may add details to ``row.details``. Any exception
    ends the row: it becomes an error row (keeping the samples taken so far). Stops early,
    with a note, once ``time_budget`` seconds have been spent on the row. Before each
    repetition (untimed) the page cache's dirty data is written out (``os.sync`` where the
    system has it), so no repetition pays for the writeback of an earlier one.
    """
    start = time.monotonic()
    for i in range(repeat):
        if time.monotonic() - start > time_budget:
            row.error = f"time budget {time_budget:.0f} s spent after {i} repetitions"
            break
        if hasattr(os, "sync"):
            os.sync()
        try:
            row.samples.append(measure(i))
        except Unavailable as exc:
            row.error = str(exc)
            break
        except Exception as exc:  # a broken peer must not stop the whole run
            row.error = f"{type(exc).__name__}: {exc}"
            break
    return row


def append_detail(row: Row, key: str, value: Any) -> None:
    """Append ``value`` to the per-repetition list ``row.details[key]``."""
    row.details.setdefault(key, []).append(value)


# --------------------------------------------------------------------------------------------
# Peers (servers) started for a case
# --------------------------------------------------------------------------------------------


@contextlib.contextmanager
def _managed(proc: ManagedProcess) -> Iterator[ManagedProcess]:
    try:
        with proc:
            yield proc
    finally:
        proc.cleanup_logs()


@contextlib.contextmanager
def storescp_server(
    *, nodelay: bool, aet: str = "STORESCP", startup_timeout: float = 15.0
) -> Iterator[tuple[ManagedProcess, int]]:
    """dcmtk ``storescp`` on a free loopback port (it also answers C-ECHO).

    ``nodelay`` puts ``TCP_NODELAY=1`` in its environment (Nagle off). It serves one
    association at a time (no ``--fork``), which suits sequential clients only.
    """
    exe = require_executable("storescp")
    with temp_dir("bench-storescp-") as tmp:
        port = free_port()
        argv = [exe, "-aet", aet, "-od", str(tmp), "--ignore", str(port)]
        env = NODELAY_ENV if nodelay else None
        name = "storescp-nodelay" if nodelay else "storescp"
        with _managed(ManagedProcess(argv, name=name, env=env, cwd=tmp)) as proc:
            wait_for_port(port, timeout=startup_timeout, proc=proc.proc)
            proc.mark_idle()
            yield proc, port


def orthanc_config(tmp: Path, *, dicom_port: int, aet: str = "ORTHANC") -> dict[str, Any]:
    """An Orthanc configuration for benchmarks: DICOM only, on loopback, data under ``tmp``.

    The HTTP server is disabled so that its worker threads do not count in Orthanc's RSS;
    everything else (DICOM threads, timeouts) stays at Orthanc's defaults.
    """
    return {
        "Name": "bench",
        "StorageDirectory": str(tmp / "storage"),
        "IndexDirectory": str(tmp / "index"),
        "HttpServerEnabled": False,
        "RemoteAccessAllowed": False,
        "AuthenticationEnabled": False,
        "DicomServerEnabled": True,
        "DicomAet": aet,
        "DicomPort": dicom_port,
        "DicomCheckCalledAet": False,
        "DicomAlwaysAllowEcho": True,
        "DicomAlwaysAllowStore": True,
        "UnknownSopClassAccepted": True,
        "Plugins": [],
        "DicomModalities": {},
    }


@contextlib.contextmanager
def orthanc_server(
    *, startup_timeout: float = 60.0, extra_config: Mapping[str, Any] | None = None
) -> Iterator[tuple[ManagedProcess, int]]:
    """Orthanc with its own JSON configuration and temporary storage, DICOM on a free port."""
    exe = require_executable("Orthanc")
    with temp_dir("bench-orthanc-") as tmp:
        port = free_port()
        config = {**orthanc_config(tmp, dicom_port=port), **(extra_config or {})}
        config_path = tmp / "orthanc.json"
        config_path.write_text(json.dumps(config, indent=2), encoding="utf-8")
        orthanc = ManagedProcess([exe, str(config_path)], name="orthanc", cwd=tmp, every_cpu=True)
        with _managed(orthanc) as proc:
            wait_for_port(port, timeout=startup_timeout, proc=proc.proc)
            proc.mark_idle()
            yield proc, port


@contextlib.contextmanager
def python_server(
    script: Path,
    args: Sequence[str],
    *,
    name: str,
    startup_timeout: float = 30.0,
    env: Mapping[str, str] | None = None,
) -> Iterator[tuple[ManagedProcess, int]]:
    """Run one of our helper server scripts with this interpreter.

    The script prints ``PORT <n>`` on stdout once it listens, and exits at end of stdin.
    """
    argv = [sys.executable, str(script), *args]
    with _managed(ManagedProcess(argv, name=name, env=env, stop_by_stdin=True)) as proc:
        line = proc.wait_for_line("PORT ", timeout=startup_timeout)
        port = int(line.split()[1])
        proc.mark_idle()
        yield proc, port
