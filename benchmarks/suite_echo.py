"""Associate + C-ECHO + release cases of ``make bench``, built on :mod:`benchmarks.bench_echo`.

``sequential``: one client does associate + one C-ECHO + release back to back; rate in
associations/s. Own pairs (aiodimse, pynetdicom, dcmtk echoscu → storescp with Nagle on and
with ``TCP_NODELAY=1``), the aiodimse client against storescp and Orthanc, and the raw
asyncio probe (``_rawecho.py``) against the aiodimse SCP as the client-side floor, and the
probe against a raw asyncio server with canned answers (``_raw_echo_server.py``): the
machine's floor for any Python pair. Slow
clients do fewer associations per repetition (a rate needs no more); echoscu is one
process per association, so its rate includes process start-up.

``50-way concurrent``: 50 workers on one event loop, each doing associate + C-ECHO +
release back to back until ``total`` associations are done; rate in associations/s, against
each server (aiodimse SCP, Orthanc, pynetdicom SCP with a fifth of the total: it is slow,
dcmtk storescp, which serves one association at a time without ``--fork``).
"""

from __future__ import annotations

import dataclasses
import sys
import time

import anyio
from benchmarks import bench_echo, harness
from benchmarks.bench_echo import CLIENTS, SERVERS, Settings, Setup
from benchmarks.harness import Row, Unavailable


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class EchoCounts:
    fast: int  # aiodimse / probe associations per repetition
    slow: int  # pynetdicom, echoscu NODELAY
    slowest: int  # echoscu with Nagle on
    concurrent_total: int
    width: int = 50


def counts(quick: bool) -> EchoCounts:
    if quick:
        return EchoCounts(fast=100, slow=20, slowest=8, concurrent_total=200)
    return EchoCounts(fast=500, slow=60, slowest=20, concurrent_total=1000)


def settings(repeat: int, impls: tuple[str, ...]) -> Settings:
    return Settings(
        repeat=repeat,
        count=0,
        concurrency=0,
        echoes=1,
        warmup=2,
        time_limit=120.0,
        per_association_timeout=30.0,
        impls=impls,
        probe_client=False,
    )


def _row(section: str, impl: str, label: str, ident: str) -> Row:
    row = Row(
        section=section,
        impl=impl,
        label=label,
        metric="associations/s",
        unit="assoc/s",
        higher_is_better=True,
    )
    row.details["id"] = ident
    return row


def run_sequential(c: EchoCounts, s: Settings) -> list[Row]:
    section = "associate + C-ECHO + release, sequential"
    plan = [  # (id, impl for the ratio, client, server, count)
        ("echo.seq.aiodimse", "aiodimse", "aiodimse", "aiodimse", c.fast),
        # The optional uvloop event loop on both sides (measured; never required).
        (
            "echo.seq.aiodimse-uvloop",
            "aiodimse-uvloop",
            "aiodimse-uvloop",
            "aiodimse-uvloop",
            c.fast,
        ),
        ("echo.seq.pynetdicom", "pynetdicom", "pynetdicom", "pynetdicom", c.slow),
        ("echo.seq.dcmtk", "dcmtk", "dcmtk", "dcmtk", c.slowest),
        ("echo.seq.dcmtk-nodelay", "dcmtk-nodelay", "dcmtk-nodelay", "dcmtk-nodelay", c.slow),
        ("echo.seq.aiodimse>dcmtk-nodelay", "cross", "aiodimse", "dcmtk-nodelay", c.fast),
        ("echo.seq.aiodimse>orthanc", "cross", "aiodimse", "orthanc", c.fast),
        ("echo.seq.probe>aiodimse", "probe", "probe", "aiodimse", c.fast),
        # The floor: no DICOM work on either side (what any Python pair here can approach),
        # and each of our ends alone against a peer doing no DICOM work.
        ("echo.seq.probe>raw", "probe", "probe", "raw", c.fast),
        ("echo.seq.aiodimse>raw", "cross", "aiodimse", "raw", c.fast),
    ]
    rows = []
    for ident, impl, client, server, count in plan:
        label = f"{CLIENTS[client]} → {SERVERS[server][0]} ({count}/rep)"
        row = _row(section, impl, label, ident)
        if not _selected(s, client, server):
            row.error = "not selected"
            rows.append(row)
            continue
        print(f"  {section}: {label}", file=sys.stderr, flush=True)
        setup = Setup(row=row, client=client, server=server, count=count, echoes=1)
        bench_echo.measure_row(setup, s, max_associations=64)
        row.details["server_rss"] = row.details.get("server_peak_rss")  # the suite's column
        rows.append(row)
    return rows


def _selected(s: Settings, client: str, server: str) -> bool:
    # The uvloop rows go with aiodimse (and need uvloop installed: aiodimse[speed]).
    return all(
        x in ("probe", "raw") or x in s.impls or (x == "aiodimse-uvloop" and "aiodimse" in s.impls)
        for x in (client, server)
    )


async def _workers(fn: bench_echo.AssociationFn, total: int, width: int) -> tuple[int, int]:
    """``width`` workers run ``fn`` back to back until ``total`` were started; (ok, failed)."""
    done = {"ok": 0, "failed": 0, "next": 0}

    async def worker() -> None:
        while done["next"] < total:
            done["next"] += 1
            try:
                with anyio.fail_after(30):
                    good = await fn()
            except Exception:  # counted; the worker goes on
                done["failed"] += 1
                continue
            done["ok" if good == 1 else "failed"] += 1

    async with anyio.create_task_group() as tg:
        for _ in range(width):
            tg.start_soon(worker)
    return done["ok"], done["failed"]


def run_concurrent(c: EchoCounts, s: Settings) -> list[Row]:
    section = f"associate + C-ECHO + release, {c.width}-way concurrent (client aiodimse)"
    rows = []
    plan = [("aiodimse", "aiodimse"), ("orthanc", "orthanc"), ("pynetdicom", "pynetdicom"),
            ("dcmtk-nodelay", "dcmtk-nodelay"), ("probe", "aiodimse")]  # fmt: skip
    for impl, server in plan:
        client = "probe" if impl == "probe" else "aiodimse"
        total = c.concurrent_total // 5 if server == "pynetdicom" else c.concurrent_total
        label = f"{c.width} × {CLIENTS[client]} → {SERVERS[server][0]} ({total}/rep)"
        row = _row(section, impl, label, f"echo.conc.{client}>{server}")
        rows.append(row)
        if not _selected(s, client, server):
            row.error = "not selected"
            continue
        print(f"  {section}: {label}", file=sys.stderr, flush=True)
        _measure_concurrent(row, client, server, dataclasses.replace(c, concurrent_total=total), s)
    return rows


def _measure_concurrent(row: Row, client: str, server: str, c: EchoCounts, s: Settings) -> None:
    try:
        with bench_echo.start_server(server, max_associations=4 * c.width) as (proc, port):
            called = SERVERS[server][1]

            async def main() -> tuple[float, int, int]:
                fn = bench_echo._association_fn(client, port, called, 1)
                await _workers(fn, c.width, c.width)  # warm-up: one round
                t0 = time.perf_counter()
                ok, failed = await _workers(fn, c.concurrent_total, c.width)
                return time.perf_counter() - t0, ok, failed

            def one(_: int) -> float:
                proc.reset_peak()
                elapsed, ok, failed = anyio.run(main, backend="asyncio")
                harness.append_detail(row, "ok", ok)
                harness.append_detail(row, "failed", failed)
                harness.append_detail(row, "server_rss", proc.peak_rss())
                if ok == 0:
                    raise RuntimeError(f"all {failed} associations failed")
                return ok / elapsed

            harness.run_row(row, s.repeat, one, time_budget=s.repeat * 150)
    except Unavailable as exc:
        row.error = str(exc)
    except Exception as exc:  # a server that fails must not end the run
        row.error = f"{type(exc).__name__}: {exc}"
