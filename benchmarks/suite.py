"""``make bench``: every issue-9 case in one run, side by side, with the targets judged.

aiodimse, pynetdicom, dcmtk (Nagle on, its default, and ``TCP_NODELAY=1``), Orthanc where
a case needs a server, and this machine's own limits (raw asyncio loopback receiver, disk
write + fsync), each row the median of several repetitions with min–max. Cases, in order:

1. limits: raw loopback (:mod:`benchmarks.rawlimit`) and sequential disk write + fsync;
2. associate + C-ECHO + release, sequential and 50-way concurrent (:mod:`.suite_echo`);
3. C-STORE over one association, 4 workloads × SCP fsync / no fsync / discard, and
   Nagle-enabled senders into aiodimse (:mod:`.suite_store`);
4. one huge instance (1 GiB): MB/s and peak RSS of both processes;
5. K simultaneous associations × 10 C-STOREs (:mod:`.suite_scale`);
6. asynchronous operations window 1 vs 16 at +20 ms RTT (:mod:`.suite_window`);
7. C-FIND returning 10,000 matches (:mod:`.suite_find`).

Writes ``results/latest.json`` (and a timestamped copy), ``results/latest.md`` (printed),
``results/latest.png``; prints a PASS/MISS line per target. ``--quick`` is the smoke run
(``make bench-quick``: one repetition, small counts).

    .venv/bin/python benchmarks/suite.py [--quick] [--only echo,store] [--repeat N]
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as _dt
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make ``benchmarks`` and ``tests`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import (
    chart,
    harness,
    rawlimit,
    suite_echo,
    suite_find,
    suite_scale,
    suite_store,
    suite_window,
    targets,
)
from benchmarks.harness import Column, Row

CASES = ("limits", "echo", "store", "huge", "scale", "window", "find")


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Plan:
    """Sizes and repetitions of one run (written to the JSON)."""

    quick: bool
    repeat: int
    loopback_bytes: int
    disk_bytes: int
    huge_size: int
    huge_repeat: int
    scale_ks: tuple[int, ...]
    scale_n: int
    scale_repeat: int
    window_count: int
    find_n: int
    slow_count: int
    impls: tuple[str, ...]
    cases: tuple[str, ...]


def make_plan(args: argparse.Namespace) -> Plan:
    q = args.quick
    return Plan(
        quick=q,
        repeat=args.repeat or (1 if q else 3),
        loopback_bytes=(512 << 20) if q else (2 << 30),
        disk_bytes=(256 << 20) if q else (1 << 30),
        huge_size=(100 << 20) if q else (1 << 30),
        huge_repeat=1,
        scale_ks=(50, 100) if q else (100, 500, 1000),
        scale_n=10,
        scale_repeat=1 if q else 2,
        window_count=40 if q else 200,
        find_n=500 if q else 10_000,
        slow_count=10 if q else 100,
        impls=tuple(args.impl.split(",")),
        cases=tuple(args.only.split(",")) if args.only else CASES,
    )


# --------------------------------------------------------------------------------------------
# Limits
# --------------------------------------------------------------------------------------------


def run_limits(plan: Plan, tmp: Path) -> list[Row]:
    loop = Row(section="this machine's limits", impl="limit",
               label="raw loopback: asyncio BufferedProtocol ← blocking sendall (4 MiB)",
               metric="MB/s", unit="MB/s", higher_is_better=True)  # fmt: skip
    loop.details["id"] = "limit.loopback"
    disk = Row(section="this machine's limits", impl="limit",
               label=f"disk: write {plan.disk_bytes >> 20} MiB in 4 MiB blocks + fsync",
               metric="MB/s", unit="MB/s", higher_is_better=True)  # fmt: skip
    disk.details["id"] = "limit.disk"
    print("  limits: raw loopback", file=sys.stderr, flush=True)
    try:
        script = harness.BENCH_DIR / "rawlimit.py"
        with harness.python_server(script, ["serve"], name="raw-receiver") as (proc, port):
            rawlimit.loopback_limit_mb_s(port, plan.loopback_bytes // 4)  # warm-up

            def one_loop(_: int) -> float:
                proc.reset_peak()
                value = rawlimit.loopback_limit_mb_s(port, plan.loopback_bytes)
                harness.append_detail(loop, "server_rss", proc.peak_rss())
                return value

            harness.run_row(loop, plan.repeat, one_loop, time_budget=120)
    except Exception as exc:  # reported in the row
        loop.error = f"{type(exc).__name__}: {exc}"
    print("  limits: disk", file=sys.stderr, flush=True)
    rawlimit.drop_cache_hint()

    def one_disk(_: int) -> float:
        return rawlimit.disk_write_mb_s(tmp / "disk", plan.disk_bytes)

    harness.run_row(disk, min(plan.repeat, 2), one_disk, time_budget=120)
    return [loop, disk]


# --------------------------------------------------------------------------------------------
# Running and reporting
# --------------------------------------------------------------------------------------------


def run_cases(plan: Plan, tmp: Path) -> tuple[list[Row], dict[str, float]]:
    """Every selected case in order; rows and seconds spent per case."""
    echo_counts = suite_echo.counts(plan.quick)
    echo_settings = suite_echo.settings(plan.repeat, plan.impls)
    steps: list[tuple[str, Callable[[], list[Row]]]] = [
        ("limits", lambda: run_limits(plan, tmp)),
        ("echo", lambda: suite_echo.run_sequential(echo_counts, echo_settings)
         + suite_echo.run_concurrent(echo_counts, echo_settings)),
        ("store", lambda: [
            row
            for work in suite_store.workloads(plan.quick)
            for row in suite_store.run_workload(
                work, tmp, repeat=plan.repeat, slow_count=plan.slow_count, impls=plan.impls
            )
        ]),
        ("huge", lambda: suite_store.run_huge(
            tmp, size=plan.huge_size, repeat=plan.huge_repeat, impls=plan.impls,
            pynetdicom_default=not plan.quick)),
        ("scale", lambda: suite_scale.run_scale(
            tmp, ks=plan.scale_ks, n=plan.scale_n, repeat=plan.scale_repeat,
            time_limit=300.0, impls=plan.impls)),
        ("window", lambda: suite_window.run_window(
            tmp, count=plan.window_count, repeat=plan.repeat, impls=plan.impls)),
        ("find", lambda: suite_find.run_find(n=plan.find_n, repeat=plan.repeat,
                                             impls=plan.impls)),
    ]  # fmt: skip
    rows: list[Row] = []
    spent: dict[str, float] = {}
    for name, step in steps:
        if name not in plan.cases:
            continue
        print(f"== {name}", file=sys.stderr, flush=True)
        t0 = time.perf_counter()
        try:
            rows += step()
        except KeyboardInterrupt:
            raise
        except Exception as exc:  # one broken case must not lose the others
            row = Row(section=name, impl="error", label=f"case {name}", metric="", unit="",
                      higher_is_better=True, error=f"{type(exc).__name__}: {exc}")  # fmt: skip
            rows.append(row)
        spent[name] = time.perf_counter() - t0
        print(f"   {name}: {spent[name]:.0f} s", file=sys.stderr, flush=True)
    return rows, spent


def _fmt_ok(value: Any) -> str:
    if isinstance(value, list) and value:
        return "/".join(str(v) for v in value)
    return "–"


COLUMNS = (
    Column(key="mb_s", header="MB/s"),
    Column(key="server_rss", header="SCP peak RSS MiB", fmt=harness.fmt_mib),
    Column(key="client_rss", header="SCU peak RSS MiB", fmt=harness.fmt_mib),
    Column(key="assoc_ok", header="assoc ok", fmt=_fmt_ok),
    Column(key="window", header="window", fmt=suite_window.fmt_window),
    Column(key="errors", header="errors", fmt=suite_scale.fmt_errors),
)


def report(
    rows: Sequence[Row],
    verdicts: Sequence[targets.Verdict],
    *,
    plan: Plan,
    machine: dict[str, Any],
    seconds: float,
) -> str:
    """The markdown written to ``latest.md``."""
    v = machine.get("versions", {})
    head = [
        f"# make bench{' (quick)' if plan.quick else ''}: "
        f"{_dt.datetime.now(_dt.timezone.utc):%Y-%m-%d %H:%M} UTC, {seconds / 60:.1f} min",
        "",
        f"{machine.get('cpu_count')} CPUs, {machine.get('platform')}, Python "
        f"{machine.get('python')}; aiodimse {machine.get('aiodimse_git')}, pynetdicom "
        f"{v.get('pynetdicom')}, {v.get('dcmtk')}, {v.get('orthanc')}. Load from other jobs "
        "makes absolute numbers noisy: compare rows of one section (same run). CPU "
        f"pinning: {machine.get('cpu_pinning')}.",
        f"Medians of {plan.repeat} repetitions (scale: {plan.scale_repeat}; huge: "
        f"{plan.huge_repeat}), min–max in brackets; ÷ aiodimse = row ÷ the section's "
        "aiodimse row.",
        "",
        "## Targets (issue 9)",
        "",
        targets.markdown(verdicts),
        "",
        "## All rows",
        "",
        harness.markdown_table(rows, COLUMNS),
        "",
    ]
    return "\n".join(head)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--quick", action="store_true", help="smoke run: 1 repetition, small counts")
    p.add_argument("--repeat", type=int, default=0, help="repetitions per row (3; quick 1)")
    p.add_argument("--only", default="", help=f"comma-separated subset of {','.join(CASES)}")
    p.add_argument("--impl", default=",".join(harness.IMPLEMENTATIONS),
                   help="comma-separated implementations (default: all)")  # fmt: skip
    p.add_argument("--results-dir", type=Path, default=harness.RESULTS_DIR)
    args = p.parse_args(argv)
    plan = make_plan(args)
    unknown = set(plan.cases) - set(CASES)
    if unknown:
        p.error(f"unknown case(s) {sorted(unknown)}")
    harness.install_signal_handlers()
    print(f"CPU pinning: {harness.pin_clients()}", flush=True)
    harness.raise_open_files_limit(8192)
    machine = harness.machine_info()
    start = time.perf_counter()
    tmp = Path(tempfile.mkdtemp(prefix="bench-suite-"))
    harness.fresh_block_groups(tmp)
    try:
        rows, spent = run_cases(plan, tmp)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    seconds = time.perf_counter() - start
    huge = f"{plan.huge_size / 2**30:g} GiB" if plan.huge_size >= 1 << 30 else (
        f"{plan.huge_size >> 20} MiB")  # fmt: skip
    verdicts = targets.evaluate(rows, scale_k=max(plan.scale_ks), huge=huge)
    text = report(rows, verdicts, plan=plan, machine=machine, seconds=seconds)
    out = args.results_dir
    out.mkdir(parents=True, exist_ok=True)
    (out / "latest.md").write_text(text, encoding="utf-8")
    json_path = harness.write_results(
        "suite-quick" if plan.quick else "suite",
        rows,
        parameters={**dataclasses.asdict(plan), "seconds": seconds, "case_seconds": spent,
                    "targets": targets.to_json(verdicts)},
        machine=machine,
        results_dir=out,
    )  # fmt: skip
    shutil.copyfile(json_path, out / "latest.json")
    try:
        chart.write_chart(rows, out / "latest.png", title=text.splitlines()[0].lstrip("# "))
    except Exception as exc:  # the table matters more than the picture
        print(f"chart not written: {exc}", file=sys.stderr)
    print(text)
    for verdict in verdicts:
        print(verdict.line())
    print(f"\nrun time {seconds / 60:.1f} min; wrote {out / 'latest.md'}, {json_path.name}, "
          f"latest.json, latest.png")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
