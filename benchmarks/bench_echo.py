"""C-ECHO benchmarks: aiodimse against pynetdicom, dcmtk (Nagle on and off) and Orthanc.

Two cases (see benchmarks/README.md for the matrix and how to read it):

``sequential``
    One client runs associate + C-ECHO + release back to back, ``--count`` times, and the
    rate in associations per second is reported. Three sections:
    *own pair* (each client against its own implementation's server),
    *common server* (every client against dcmtk storescp with TCP_NODELAY=1),
    *common client* (one client, aiodimse or the probe, against every server).
``concurrent``
    ``--concurrency`` associations opened at once on one event loop, each doing ``--echoes``
    C-ECHOs, against one server (aiodimse, Orthanc, pynetdicom in subprocesses): wall time,
    successes and failures, and the server's peak RSS.

Usage::

    .venv/bin/python benchmarks/bench_echo.py --quick
    .venv/bin/python benchmarks/bench_echo.py --case sequential --impl aiodimse,dcmtk --repeat 9
    .venv/bin/python benchmarks/bench_echo.py --case concurrent --probe-client
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import dataclasses
import json
import os
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import anyio

if __package__ in (None, ""):  # run as a script: make ``benchmarks`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import harness
from benchmarks._rawecho import echo_association
from benchmarks.harness import HOST, Column, ManagedProcess, Row, Unavailable

BENCH_DIR = Path(__file__).resolve().parent
CALLING_AET = "BENCH"

#: Server implementations -> (label, called AE title it answers to).
SERVERS: dict[str, tuple[str, str]] = {
    "aiodimse": ("aiodimse SCP", "ECHO_SCP"),
    "aiodimse-uvloop": ("aiodimse SCP on uvloop", "ECHO_SCP"),
    "pynetdicom": ("pynetdicom SCP", "PYNETDICOM_SCP"),
    "dcmtk": ("dcmtk storescp", "STORESCP"),
    "dcmtk-nodelay": ("dcmtk storescp TCP_NODELAY=1", "STORESCP"),
    "orthanc": ("Orthanc", "ORTHANC"),
    # Not DICOM: canned answers, the floor of this machine (see _raw_echo_server.py).
    "raw": ("raw asyncio server (canned PDUs)", "RAW_SCP"),
}

#: Client implementations (Orthanc is a server only).
CLIENTS: dict[str, str] = {
    "aiodimse": "aiodimse",
    "aiodimse-uvloop": "aiodimse on uvloop",
    "pynetdicom": "pynetdicom",
    "dcmtk": "dcmtk echoscu",
    "dcmtk-nodelay": "dcmtk echoscu TCP_NODELAY=1",
    "probe": "probe (raw asyncio)",
}


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Settings:
    """Parameters of one run (also written to the JSON result)."""

    repeat: int
    count: int
    concurrency: int
    echoes: int
    warmup: int
    time_limit: float
    per_association_timeout: float
    impls: tuple[str, ...]
    probe_client: bool


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class ClientResult:
    """What one timed client run returns."""

    elapsed: float
    ok: int
    failed: int
    echoes_ok: int
    errors: dict[str, int] = dataclasses.field(default_factory=dict)
    client_peak_rss: int | None = None  # in-process clients only


# --------------------------------------------------------------------------------------------
# Servers
# --------------------------------------------------------------------------------------------


def start_server(
    kind: str, *, max_associations: int
) -> contextlib.AbstractContextManager[tuple[ManagedProcess, int]]:
    """Context manager for a server of implementation ``kind``: yields (process, port)."""
    if kind in ("aiodimse", "aiodimse-uvloop"):
        harness.aiodimse_api()  # fail early with the clear message
        uvloop = ["--uvloop"] if kind == "aiodimse-uvloop" else []
        return harness.python_server(
            BENCH_DIR / "_aiodimse_echo_server.py",
            ["--max-associations", str(max_associations), "--aet", SERVERS[kind][1], *uvloop],
            name="aiodimse-scp",
        )
    if kind == "pynetdicom":
        return harness.python_server(
            BENCH_DIR / "_pynetdicom_echo_server.py",
            ["--max-associations", str(max_associations), "--aet", SERVERS[kind][1]],
            name="pynetdicom-scp",
        )
    if kind in ("dcmtk", "dcmtk-nodelay"):
        return harness.storescp_server(nodelay=kind == "dcmtk-nodelay", aet=SERVERS[kind][1])
    if kind == "orthanc":
        return harness.orthanc_server()
    if kind == "raw":
        return harness.python_server(
            BENCH_DIR / "_raw_echo_server.py", ["--aet", SERVERS[kind][1]], name="raw-scp"
        )
    raise ValueError(f"unknown server {kind!r}")


# --------------------------------------------------------------------------------------------
# Clients
# --------------------------------------------------------------------------------------------

AssociationFn = Callable[[], Awaitable[int]]


def _association_fn(kind: str, port: int, called: str, echoes: int) -> AssociationFn:
    """An async callable doing one association with ``echoes`` C-ECHOs; returns echoes ok."""
    if kind == "probe":

        async def probe() -> int:
            return await echo_association(port, echoes=echoes, calling=CALLING_AET, called=called)

        return probe
    if kind not in ("aiodimse", "aiodimse-uvloop"):
        raise ValueError(f"no in-process client {kind!r}")
    aiodimse = harness.aiodimse_api()
    ae = aiodimse.AE(CALLING_AET)

    async def one() -> int:
        ok = 0
        async with ae.associate(HOST, port, called_ae=called) as assoc:
            for _ in range(echoes):
                status = await assoc.echo()
                ok += status.code == 0
        return ok

    return one


async def _sequential(fn: AssociationFn, *, count: int, echoes: int, s: Settings) -> ClientResult:
    ok = failed = echoes_ok = 0
    errors: collections.Counter[str] = collections.Counter()
    start = time.perf_counter()
    with anyio.move_on_after(s.time_limit) as scope:
        for _ in range(count):
            try:
                with anyio.fail_after(s.per_association_timeout):
                    good = await fn()
            except Exception as exc:  # counted, the loop goes on
                failed += 1
                errors[type(exc).__name__] += 1
                continue
            echoes_ok += good
            if good == echoes:
                ok += 1
            else:
                failed += 1
    if scope.cancelled_caught:
        errors["stopped at time limit"] += 1
    return ClientResult(
        elapsed=time.perf_counter() - start,
        ok=ok,
        failed=failed,
        echoes_ok=echoes_ok,
        errors=dict(errors),
    )


async def _concurrent(fn: AssociationFn, *, count: int, echoes: int, s: Settings) -> ClientResult:
    counts: collections.Counter[str] = collections.Counter()
    errors: collections.Counter[str] = collections.Counter()

    async def task() -> None:
        try:
            with anyio.fail_after(s.per_association_timeout):
                good = await fn()
        except Exception as exc:  # counted; other associations go on
            counts["failed"] += 1
            errors[type(exc).__name__] += 1
            return
        counts["echoes_ok"] += good
        counts["ok" if good == echoes else "failed"] += 1

    start = time.perf_counter()
    with anyio.move_on_after(s.time_limit):
        async with anyio.create_task_group() as tg:
            for _ in range(count):
                tg.start_soon(task)
    elapsed = time.perf_counter() - start
    unfinished = count - counts["ok"] - counts["failed"]
    if unfinished:
        errors["unfinished at time limit"] += unfinished
    return ClientResult(
        elapsed=elapsed,
        ok=counts["ok"],
        failed=counts["failed"] + unfinished,
        echoes_ok=counts["echoes_ok"],
        errors=dict(errors),
    )


def run_in_process(
    kind: str, port: int, called: str, *, concurrent: bool, count: int, echoes: int, s: Settings
) -> ClientResult:
    """Run the aiodimse or probe client in this process (asyncio), after an untimed warm-up."""
    runner = _concurrent if concurrent else _sequential

    async def main() -> ClientResult:
        fn = _association_fn(kind, port, called, echoes)
        if s.warmup:  # warm-up associations send one C-ECHO each
            warm = _association_fn(kind, port, called, 1)
            await _sequential(warm, count=s.warmup, echoes=1, s=s)
        return await runner(fn, count=count, echoes=echoes, s=s)

    reset = harness.reset_own_peak_rss()
    # The optional uvloop event loop (aiodimse's ``speed`` extra) for the uvloop rows.
    options = {"use_uvloop": True} if kind == "aiodimse-uvloop" else {}
    result: ClientResult = anyio.run(main, backend="asyncio", backend_options=options)
    if result.ok == 0 and result.failed:
        raise RuntimeError(f"all associations failed: {result.errors}")
    peak = harness.own_peak_rss() if reset else None
    return dataclasses.replace(result, client_peak_rss=peak)


def run_pynetdicom_client(
    port: int, called: str, *, count: int, echoes: int, s: Settings
) -> ClientResult:
    """Run the pynetdicom SCU loop in a subprocess; it times itself (no start-up counted)."""
    argv = [
        sys.executable,
        str(BENCH_DIR / "_pynetdicom_echo_client.py"),
        "--port", str(port),
        "--called-aet", called,
        "--count", str(count),
        "--echoes", str(echoes),
        "--warmup", str(s.warmup),
        "--time-limit", str(s.time_limit),
    ]  # fmt: skip
    try:
        proc = subprocess.run(
            argv, capture_output=True, text=True, timeout=s.time_limit + 60, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise RuntimeError("pynetdicom client did not finish in time") from exc
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"pynetdicom client exit {proc.returncode}: {proc.stderr[-300:]}")
    data = json.loads(lines[-1])
    return ClientResult(
        elapsed=float(data["elapsed"]),
        ok=int(data["associations_ok"]),
        failed=int(data["associations_failed"]),
        echoes_ok=int(data["echoes_ok"]),
    )


def run_echoscu(
    port: int, called: str, *, nodelay: bool, count: int, echoes: int, s: Settings
) -> ClientResult:
    """Run dcmtk echoscu ``count`` times (one process per association), timed from here.

    ``--repeat`` makes echoscu send several C-ECHOs on its one association; a new association
    needs a new process, so this rate is also a process start rate.
    """
    exe = harness.require_executable("echoscu")
    base = [exe, "-q", "-aet", CALLING_AET, "-aec", called, "-to", "10"]
    target = [HOST, str(port)]
    argv = [*base, "--repeat", str(echoes), *target] if echoes > 1 else [*base, *target]
    env = {**os.environ, **(harness.NODELAY_ENV if nodelay else {})}

    def once(command: list[str]) -> bool:
        proc = subprocess.Popen(
            command,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:  # not subprocess.run(timeout=...): its exit polling would round the time up
            return harness.wait_exactly(proc, s.per_association_timeout) == 0
        except subprocess.TimeoutExpired:
            return False

    for _ in range(s.warmup):  # one C-ECHO each
        once([*base, *target])
    ok = failed = 0
    start = time.perf_counter()
    for _ in range(count):
        if time.perf_counter() - start > s.time_limit:
            break
        if once(argv):
            ok += 1
        else:
            failed += 1
    elapsed = time.perf_counter() - start
    if ok == 0 and failed:
        raise RuntimeError("every echoscu run failed")
    return ClientResult(elapsed=elapsed, ok=ok, failed=failed, echoes_ok=ok * echoes)


def run_client(
    kind: str, port: int, called: str, *, concurrent: bool, count: int, echoes: int, s: Settings
) -> ClientResult:
    if kind in ("aiodimse", "aiodimse-uvloop", "probe"):
        return run_in_process(
            kind, port, called, concurrent=concurrent, count=count, echoes=echoes, s=s
        )
    if concurrent:
        raise ValueError(f"client {kind!r} is only used sequentially")
    if kind == "pynetdicom":
        return run_pynetdicom_client(port, called, count=count, echoes=echoes, s=s)
    if kind in ("dcmtk", "dcmtk-nodelay"):
        return run_echoscu(
            port, called, nodelay=kind == "dcmtk-nodelay", count=count, echoes=echoes, s=s
        )
    raise ValueError(f"unknown client {kind!r}")


# --------------------------------------------------------------------------------------------
# Cases
# --------------------------------------------------------------------------------------------


def _record(row: Row, result: ClientResult, server: ManagedProcess) -> None:
    harness.append_detail(row, "ok", result.ok)
    harness.append_detail(row, "failed", result.failed)
    harness.append_detail(row, "elapsed_s", result.elapsed)
    harness.append_detail(row, "server_peak_rss", server.peak_rss())
    if result.client_peak_rss is not None:
        harness.append_detail(row, "client_peak_rss", result.client_peak_rss)
    if result.errors:
        harness.append_detail(row, "errors", result.errors)
    row.details["server_idle_rss"] = server.idle_rss


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Setup:
    """One row of a case's matrix: who talks to whom, how much, and how it is reported."""

    row: Row
    client: str
    server: str
    count: int  # associations per repetition
    echoes: int  # C-ECHOs per association
    concurrent: bool = False


def measure_row(setup: Setup, s: Settings, *, max_associations: int) -> Row:
    """Start the setup's server once, then measure its client against it ``s.repeat`` times.

    The sample is wall time (concurrent), C-ECHOs/s (unit ``echo/s``) or associations/s.
    """
    row, client, server = setup.row, setup.client, setup.server
    row.details.update(client=client, server=server, count=setup.count, echoes=setup.echoes)
    try:
        if client.startswith("aiodimse") or server.startswith("aiodimse"):
            harness.aiodimse_api()
        with start_server(server, max_associations=max_associations) as (proc, port):
            called = SERVERS[server][1]

            def measure(_: int) -> float:
                proc.reset_peak()
                result = run_client(
                    client,
                    port,
                    called,
                    concurrent=setup.concurrent,
                    count=setup.count,
                    echoes=setup.echoes,
                    s=s,
                )
                _record(row, result, proc)
                if not proc.alive():
                    raise RuntimeError(f"server exited: {proc.stderr_tail()!r}")
                if setup.concurrent:
                    return result.elapsed
                if client in ("dcmtk", "dcmtk-nodelay") and row.unit == "assoc/s":
                    runs = result.ok + result.failed
                    harness.append_detail(row, "processes_per_s", runs / result.elapsed)
                if row.unit == "echo/s":
                    return result.echoes_ok / result.elapsed
                return result.ok / result.elapsed

            budget = s.repeat * (s.time_limit + 60)
            harness.run_row(row, s.repeat, measure, time_budget=budget)
    except Unavailable as exc:
        row.error = str(exc)
    except Exception as exc:  # a peer that fails to start must not end the run
        row.error = f"{type(exc).__name__}: {exc}"
    return row


SEQ_CLIENTS = ("aiodimse", "pynetdicom", "dcmtk", "dcmtk-nodelay")


def sequential_setups(s: Settings) -> Iterator[Setup]:
    """The sequential matrix in table order (see README: own pair, common server/client)."""

    def row(section: str, impl: str, label: str, *, echoes: bool = False) -> Row:
        return Row(
            section=section,
            impl=impl,
            label=label,
            metric="C-ECHOs/s on one association" if echoes else "associations/s",
            unit="echo/s" if echoes else "assoc/s",
            higher_is_better=True,
        )

    for impl in SEQ_CLIENTS:
        if impl in s.impls:
            label = f"{CLIENTS[impl]} → {SERVERS[impl][0]}"
            yield Setup(row=row("own pair", impl, label), client=impl, server=impl, count=s.count,
                        echoes=1)  # fmt: skip
    for impl in SEQ_CLIENTS:
        if impl in s.impls:
            label = f"{CLIENTS[impl]} → {SERVERS['dcmtk-nodelay'][0]}"
            yield Setup(row=row("common server", impl, label), client=impl,
                        server="dcmtk-nodelay", count=s.count, echoes=1)  # fmt: skip
    common = "probe" if s.probe_client else "aiodimse"
    for impl in SERVERS:
        if impl in s.impls and (common in s.impls or common == "probe"):
            label = f"{CLIENTS[common]} → {SERVERS[impl][0]}"
            yield Setup(row=row(f"common client: {common}", impl, label), client=common,
                        server=impl, count=s.count, echoes=1)  # fmt: skip
    section = f"one association, {s.count} C-ECHOs"
    for impl in SEQ_CLIENTS:
        if impl in s.impls:
            label = f"{CLIENTS[impl]} → {SERVERS[impl][0]}"
            yield Setup(row=row(section, impl, label, echoes=True), client=impl, server=impl,
                        count=1, echoes=s.count)  # fmt: skip


CONCURRENT_SERVERS = ("aiodimse", "orthanc", "pynetdicom")


def concurrent_setups(s: Settings) -> Iterator[Setup]:
    """``s.concurrency`` simultaneous associations from one client against each server."""
    client = "probe" if s.probe_client else "aiodimse"
    if client not in s.impls and client != "probe":
        print("  (no rows: the concurrent case's client is aiodimse; add it to --impl or use "
              "--probe-client)", file=sys.stderr)  # fmt: skip
        return
    for impl in CONCURRENT_SERVERS:
        if impl in s.impls:
            row = Row(
                section=f"client: {client}",
                impl=impl,
                label=f"{s.concurrency} × {CLIENTS[client]} → {SERVERS[impl][0]}",
                metric="wall time",
                unit="s",
                higher_is_better=False,
            )
            yield Setup(row=row, client=client, server=impl, count=s.concurrency,
                        echoes=s.echoes, concurrent=True)  # fmt: skip


def _sum_detail(value: Any) -> str:
    if isinstance(value, list) and value:
        return f"{sum(v for v in value if isinstance(v, int)):,}"
    return "–"


def _errors_detail(value: Any) -> str:
    if not isinstance(value, list):
        return "–"
    total: collections.Counter[str] = collections.Counter()
    for item in value:
        total.update(item)
    return ", ".join(f"{k}×{v}" for k, v in total.most_common(3)) or "–"


COLUMNS = (
    Column(key="ok", header="assoc ok (all reps)", fmt=_sum_detail),
    Column(key="failed", header="failed", fmt=_sum_detail),
    Column(key="processes_per_s", header="client processes/s"),
    Column(key="server_peak_rss", header="server peak RSS MiB", fmt=harness.fmt_mib),
    Column(key="server_idle_rss", header="server idle RSS MiB", fmt=harness.fmt_mib),
    Column(key="client_peak_rss", header="client peak RSS MiB", fmt=harness.fmt_mib),
    Column(key="errors", header="errors", fmt=_errors_detail),
)


def run_case(case: str, s: Settings, args: argparse.Namespace, machine: dict[str, Any]) -> None:
    if case == "sequential":
        name, setups, max_assoc = "echo-sequential", sequential_setups(s), 10
        title = f"sequential associate + C-ECHO + release, {s.count} per repetition"
    else:
        name, setups = "echo-concurrent", concurrent_setups(s)
        max_assoc = max(2 * s.concurrency, 10)
        title = f"{s.concurrency} simultaneous associations × {s.echoes} C-ECHOs"
    print(f"\n## {name}: {title}, {s.repeat} repetitions\n", flush=True)
    rows: list[Row] = []
    for setup in setups:
        print(f"  running: {setup.row.section}: {setup.row.label} ...", file=sys.stderr, flush=True)
        rows.append(measure_row(setup, s, max_associations=max_assoc))
    print(harness.markdown_table(rows, COLUMNS), flush=True)
    if not args.no_json:
        parameters = {**dataclasses.asdict(s), "case": case}
        path = harness.write_results(
            name, rows, parameters=parameters, machine=machine, results_dir=args.results_dir
        )
        print(f"\nresults: {path}", flush=True)


def parse_impls(text: str) -> tuple[str, ...]:
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    unknown = [n for n in names if n not in harness.IMPLEMENTATIONS]
    if unknown:
        raise argparse.ArgumentTypeError(
            f"unknown implementation(s) {unknown}; choose from {', '.join(harness.IMPLEMENTATIONS)}"
        )
    return names


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--case", choices=("sequential", "concurrent", "all"), default="all")
    parser.add_argument(
        "--impl",
        type=parse_impls,
        default=harness.IMPLEMENTATIONS,
        help=f"comma-separated subset of {','.join(harness.IMPLEMENTATIONS)} (default: all)",
    )
    parser.add_argument("--quick", action="store_true", help="short smoke run (small counts)")
    parser.add_argument("--repeat", type=int, default=5, help="repetitions per row (default 5)")
    parser.add_argument(
        "--count", type=int, help="sequential associations per repetition (default 200, quick 20)"
    )
    parser.add_argument(
        "--concurrency", type=int, help="simultaneous associations (default 1000, quick 100)"
    )
    parser.add_argument("--echoes", type=int, default=10, help="C-ECHOs per concurrent assoc.")
    parser.add_argument("--warmup", type=int, default=2, help="untimed associations first")
    parser.add_argument(
        "--time-limit", type=float, default=120.0, help="seconds allowed per repetition"
    )
    parser.add_argument("--per-association-timeout", type=float, default=60.0)
    parser.add_argument(
        "--probe-client",
        action="store_true",
        help="drive servers with the raw-asyncio probe instead of the aiodimse client",
    )
    parser.add_argument("--results-dir", type=Path, default=harness.RESULTS_DIR)
    parser.add_argument("--no-json", action="store_true", help="do not write a JSON result")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.repeat < 1:
        raise SystemExit("--repeat must be at least 1")
    settings = Settings(
        repeat=args.repeat,
        count=args.count or (20 if args.quick else 200),
        concurrency=args.concurrency or (100 if args.quick else 1000),
        echoes=args.echoes,
        warmup=args.warmup,
        time_limit=args.time_limit,
        per_association_timeout=args.per_association_timeout,
        impls=tuple(args.impl),
        probe_client=args.probe_client,
    )
    harness.install_signal_handlers()
    print(f"CPU pinning: {harness.pin_clients()}", flush=True)
    limit = harness.raise_open_files_limit(4 * settings.concurrency + 1024)
    machine = harness.machine_info()
    machine["open_files_limit"] = limit
    print(
        f"# bench_echo on {machine['platform']}, {machine['cpu_count']} CPUs, "
        f"Python {machine['python']}"
    )
    for impl, version in machine["versions"].items():
        print(f"- {impl}: {version or 'not installed'}")
    cases = ("sequential", "concurrent") if args.case == "all" else (args.case,)
    try:
        for case in cases:
            run_case(case, settings, args, machine)
    except KeyboardInterrupt:  # peers were stopped on the way out
        print("interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
