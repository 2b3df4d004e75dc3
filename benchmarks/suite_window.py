"""Asynchronous operations window case of ``make bench`` (PS3.7 D.3.3.3).

aiodimse → :mod:`benchmarks.delay_proxy` (10 ms each way: 20 ms added round trip) → aiodimse
SCP discarding, accepting a window of up to 16. The client sends the same instances over
one association proposing window 1 (one C-STORE at a time: at least one round trip each)
and window 16 (``store_many`` keeps up to the negotiated number outstanding). Reported:
instances/s, and the window the association negotiated (invoked, performed).

Until aiodimse has an AE option to propose the window, the window-16 row is an error row
saying so (see ``_window.py``).
"""

from __future__ import annotations

import dataclasses
import shutil
import sys
from pathlib import Path

from benchmarks import bench_store, harness
from benchmarks.harness import Row, Unavailable

BENCH_DIR = Path(__file__).resolve().parent
WINDOWS = (1, 16)


def run_window(
    tmp: Path, *, count: int, repeat: int, delay: float = 0.010, impls: tuple[str, ...]
) -> list[Row]:
    """Rows ``window.1`` and ``window.16``: ``count`` × 64 KiB through the delaying proxy."""
    source = tmp / "src-window"
    total = bench_store.write_workload(
        source, bench_store.Workload(name="window", count=count, pixel_bytes=64 << 10)
    )
    rtt_ms = 2 * delay * 1000
    rows: list[Row] = []
    try:
        for window in WINDOWS:
            row = Row(
                section=f"{count} × C-STORE 64 KiB at +{rtt_ms:.0f} ms RTT (proxy), SCP discard",
                impl="aiodimse" if window == 1 else f"aiodimse-w{window}",
                label=f"aiodimse → aiodimse SCP, window {window}",
                metric="instances/s",
                unit="inst/s",
                higher_is_better=True,
            )
            row.details["id"] = f"window.{window}"
            rows.append(row)
            print(f"  {row.section}: {row.label}", file=sys.stderr, flush=True)
            if "aiodimse" not in impls:
                row.error = "not selected"
                continue
            _measure(row, tmp, source, window, count, total, repeat, delay)
    finally:
        shutil.rmtree(source, ignore_errors=True)
    return rows


def _measure(
    row: Row,
    tmp: Path,
    source: Path,
    window: int,
    count: int,
    total: int,
    repeat: int,
    delay: float,
) -> None:
    out = tmp / "out-window"
    try:
        with bench_store.start_server(
            "aiodimse", out, durable=False, ignore=True, window=max(WINDOWS)
        ) as server:
            proxy_args = ["--target-port", str(server.port), "--delay", str(delay)]
            with harness.python_server(
                BENCH_DIR / "delay_proxy.py", proxy_args, name="delay-proxy"
            ) as (_proxy, proxy_port):
                via = dataclasses.replace(server, port=proxy_port)
                argv = [*bench_store.client_argv("aiodimse", via, source), "--window", str(window)]

                def one(_: int) -> float:
                    run = bench_store.run_client(argv, env=None, timeout=300)
                    if run.report.get("stored") != count:
                        raise RuntimeError(f"stored {run.report.get('stored')} of {count}")
                    harness.append_detail(row, "window", tuple(run.report.get("window") or ()))
                    harness.append_detail(row, "mb_s", total / 1e6 / run.elapsed)
                    return count / run.elapsed

                harness.run_row(row, repeat, one, time_budget=600)
    except Unavailable as exc:
        row.error = str(exc)
    except Exception as exc:  # reported in the row, the suite goes on
        row.error = f"{type(exc).__name__}: {exc}"
    finally:
        shutil.rmtree(out, ignore_errors=True)
    windows = row.details.get("window", [])
    if window > 1 and windows and all(tuple(w)[:1] == (1,) for w in windows) and not row.error:
        row.error = f"negotiated window {windows[0]}: the SCP or the AE option did not agree"


def fmt_window(value: object) -> str:
    if isinstance(value, list) and value:
        return "/".join(str(v) for v in value[0]) if value[0] else "–"
    return "–"
