"""Scale case of ``make bench``: K simultaneous associations × N C-STOREs to one SCP.

The client is aiodimse (``_aiodimse_scale_client.py``, a subprocess: K associations on one
event loop, each storing N × 64 KiB instances). Servers, each fresh per row:

* aiodimse SCP, durable (fsync before each success), ``max_associations`` 2 × K;
* Orthanc with its defaults (it fsyncs its storage area: ``SyncStorageArea`` defaults to
  true since 1.7.4; ``DicomThreadsCount`` 4 threads run DIMSE operations, which "is not
  limiting the number of concurrent connections"), HTTP off;
* dcmtk ``storescp --fork`` with ``TCP_NODELAY=1`` (one process per association, no fsync).

Reported: wall time (first connect to last release, from inside the client), associations
and instances that succeeded, and the server's peak RSS: ``VmHWM`` of the server process,
or for ``storescp --fork`` the peak of the summed RSS of the process and its children
(polled every 100 ms). Every process raises its open-files limit (RLIMIT_NOFILE).
"""

from __future__ import annotations

import collections
import contextlib
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil  # type: ignore[import-untyped]
from benchmarks import bench_store, harness
from benchmarks.harness import HOST, ManagedProcess, Row, Unavailable

BENCH_DIR = Path(__file__).resolve().parent
SERVERS = {
    "aiodimse": "aiodimse SCP (fsync)",
    "orthanc": "Orthanc (SyncStorageArea)",
    "dcmtk-nodelay": "storescp --fork TCP_NODELAY=1 (no fsync)",
}


class TreePeak:
    """Polls the summed RSS of a process and its children; ``peak`` is the largest sum."""

    def __init__(self, pid: int, interval: float = 0.1) -> None:
        self.pid = pid
        self.interval = interval
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="tree-peak", daemon=True)

    def __enter__(self) -> TreePeak:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        try:
            root = psutil.Process(self.pid)
        except psutil.Error:
            return
        while not self._stop.wait(self.interval):
            total = 0
            try:
                procs = [root, *root.children(recursive=True)]
            except psutil.Error:
                return
            for p in procs:
                with contextlib.suppress(psutil.Error):
                    total += p.memory_info().rss
            self.peak = max(self.peak, total)


@contextlib.contextmanager
def start(kind: str, tmp: Path, k: int) -> Iterator[tuple[ManagedProcess, int, str]]:
    """Yield (process, port, called AE title) for one scale server."""
    out = tmp / f"scale-{kind}"
    out.mkdir(parents=True, exist_ok=True)
    if kind == "aiodimse":
        with bench_store.start_server(
            "aiodimse", out, durable=True, max_associations=2 * k
        ) as server:
            yield server.proc, server.port, server.aet
    elif kind == "orthanc":
        with harness.orthanc_server() as (proc, port):
            yield proc, port, "ORTHANC"
    elif kind == "dcmtk-nodelay":
        exe = harness.require_executable("storescp")
        port = harness.free_port()
        argv = [exe, "-aet", "STORESCP", "-od", str(out), "+B", "--fork", str(port)]
        proc = ManagedProcess(argv, name="storescp-fork", env=harness.NODELAY_ENV, cwd=out)
        try:
            with proc:
                harness.wait_for_port(port, timeout=15, proc=proc.proc)
                yield proc, port, "STORESCP"
        finally:
            proc.cleanup_logs()
    else:
        raise Unavailable(f"unknown scale server {kind}")


def measure(
    kind: str, tmp: Path, *, k: int, n: int, repeat: int, time_limit: float, impls: tuple[str, ...]
) -> Row:
    row = Row(
        section=f"K={k} simultaneous associations × {n} C-STORE 64 KiB, client aiodimse",
        impl=kind,
        label=f"{k} × {n} → {SERVERS[kind]}",
        metric="wall time",
        unit="s",
        higher_is_better=False,
    )
    row.details["id"] = f"scale.{k}.{kind}"
    print(f"  {row.section}: {row.label}", file=sys.stderr, flush=True)
    if kind not in impls or "aiodimse" not in impls:
        row.error = "not selected"
        return row
    try:
        with start(kind, tmp, k) as (proc, port, aet):
            argv = [
                sys.executable, str(BENCH_DIR / "_aiodimse_scale_client.py"), HOST, str(port),
                "-aec", aet, "-k", str(k), "-n", str(n), "--time-limit", str(time_limit),
            ]  # fmt: skip

            def one(_: int) -> float:
                proc.reset_peak()
                with TreePeak(proc.pid) as tree:
                    run = bench_store.run_client(argv, env=None, timeout=time_limit + 120)
                _record(row, run.report, proc, tree, run.max_rss)
                return float(run.report["elapsed"])

            harness.run_row(row, repeat, one, time_budget=repeat * (time_limit + 60))
    except Unavailable as exc:
        row.error = str(exc)
    except Exception as exc:  # a server that fails must not end the run
        row.error = f"{type(exc).__name__}: {exc}"
    return row


def _record(
    row: Row, report: dict[str, Any], proc: ManagedProcess, tree: TreePeak, client_rss: int | None
) -> None:
    harness.append_detail(row, "assoc_ok", report.get("assoc_ok", 0))
    harness.append_detail(row, "assoc_failed", report.get("assoc_failed", 0))
    harness.append_detail(row, "stored", report.get("stored", 0))
    harness.append_detail(row, "server_rss", max(proc.peak_rss() or 0, tree.peak) or None)
    harness.append_detail(row, "client_rss", client_rss)
    if report.get("errors"):
        harness.append_detail(row, "errors", report["errors"])
        if row.error is None and report.get("first_error"):
            row.error = f"first failure: {report['first_error']}"


def run_scale(
    tmp: Path,
    *,
    ks: tuple[int, ...],
    n: int,
    repeat: int,
    time_limit: float,
    impls: tuple[str, ...],
) -> list[Row]:
    harness.raise_open_files_limit(4 * max(ks) + 1024)  # inherited by the servers we start
    rows = []
    for k in ks:
        # The time budget: only the largest K is repeated; storescp --fork (a process per
        # association, ~7 GB summed RSS at 1,000) only below the largest K.
        reps = repeat if k == max(ks) else 1
        for kind in SERVERS:
            if kind == "dcmtk-nodelay" and k == max(ks) and len(ks) > 1:
                continue
            rows.append(
                measure(kind, tmp, k=k, n=n, repeat=reps, time_limit=time_limit, impls=impls)
            )
    return rows


def all_succeeded(row: Row, k: int) -> bool:
    """Every repetition had ``k`` associations succeed and none fail."""
    oks = row.details.get("assoc_ok", [])
    fails = row.details.get("assoc_failed", [])
    return bool(row.samples) and all(o == k for o in oks) and not any(fails)


def fmt_errors(value: Any) -> str:
    if not isinstance(value, list):
        return "–"
    total: collections.Counter[str] = collections.Counter()
    for item in value:
        total.update(item)
    return ", ".join(f"{k}×{v}" for k, v in total.most_common(2)) or "–"
