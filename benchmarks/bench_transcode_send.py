"""Issue 8 benchmark: one huge Explicit VR LE instance sent to a peer that accepts Implicit
VR Little Endian only, so the sender must convert it on the fly.

The peer is dcmtk ``storescp +xi --ignore`` (Implicit VR LE only; receives and discards).
The senders are the ``aiodimse storescu`` CLI (streaming transcoder, PS3.5 7.1.2 → 7.1.3)
and dcmtk ``storescu`` with ``TCP_NODELAY=1`` (which converts with dcmdata). For each:
MB/s of the dataset and the sender's peak RSS (GNU time's ``%M`` on Linux). The target
(issue 8): the aiodimse sender's peak RSS under 100 MB for a 1 GiB instance.

    .venv/bin/python benchmarks/bench_transcode_send.py [--size-mb 1024] [--repeat 3]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))
sys.path.insert(0, str(BENCH_DIR.parent))

import bench_store  # noqa: E402
import harness  # noqa: E402
from harness import HOST, ManagedProcess, Row  # noqa: E402

MB = 1 << 20


def _senders(port: int, path: Path) -> list[tuple[str, list[str], dict[str, str] | None]]:
    aio = [sys.executable, "-m", "aiodimse", "storescu", HOST, str(port), str(path)]
    out: list[tuple[str, list[str], dict[str, str] | None]] = [("aiodimse storescu", aio, None)]
    try:
        exe = harness.require_executable("storescu")
    except harness.Unavailable as exc:
        print(f"dcmtk storescu: {exc}", file=sys.stderr)
    else:
        out.append(("dcmtk storescu TCP_NODELAY=1", [exe, HOST, str(port), str(path)],
                    dict(harness.NODELAY_ENV)))  # fmt: skip
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mb", type=int, default=1024, help="instance size (1024)")
    parser.add_argument("--repeat", type=int, default=3, help="repetitions per sender (3)")
    args = parser.parse_args(argv)
    print(f"CPU pinning: {harness.pin_clients()}", flush=True)
    rows: list[Row] = []
    with harness.temp_dir("bench-transcode-send-") as tmp:
        path, length, _ = bench_store.write_huge(tmp / "src", args.size_mb * MB)
        exe = harness.require_executable("storescp")
        port = harness.free_port()
        scp = [exe, "+xi", "--ignore", "-od", str(tmp / "out"), str(port)]
        (tmp / "out").mkdir()
        with ManagedProcess(scp, name="storescp+xi", env=dict(harness.NODELAY_ENV), cwd=tmp):
            harness.wait_for_port(port, timeout=15)
            for label, cmd, env in _senders(port, path):
                row = Row(
                    section=f"{length / MB:,.0f} MiB Explicit VR LE → storescp +xi (Implicit only)",
                    impl=label.split()[0],
                    label=label,
                    metric="MB/s",
                    unit="MB/s",
                    higher_is_better=True,
                )
                rows.append(row)

                def measure(i: int, cmd: list[str] = cmd, env: dict[str, str] | None = env,
                            row: Row = row) -> float:  # fmt: skip
                    run = bench_store.run_client(cmd, env=env, timeout=900)
                    harness.append_detail(row, "client_rss", run.max_rss)
                    return length / 1e6 / run.wall

                harness.run_row(row, args.repeat, measure, time_budget=1800)
    columns = [harness.Column(key="client_rss", header="sender peak RSS MiB", fmt=harness.fmt_mib)]
    print(harness.markdown_table(rows, columns))
    aio = next((r for r in rows if r.impl == "aiodimse"), None)
    peaks = [v for v in (aio.details.get("client_rss", []) if aio else []) if v]
    if aio is None or not aio.samples or not peaks:
        print(f"NO DATA  aiodimse sender: {aio.error if aio else 'not run'}")
    else:
        peak = max(peaks) / MB
        status = "PASS" if peak < 100 else "MISS"
        print(f"{status}  aiodimse sender peak RSS {peak:.0f} MiB for {length / MB:,.0f} MiB "
              f"(need < 100 MB); {aio.median():,.0f} MB/s")  # fmt: skip
    out = harness.write_results("transcode-send", rows, parameters=vars(args),
                                machine=harness.machine_info())  # fmt: skip
    print(f"results: {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
