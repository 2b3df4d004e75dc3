"""Does re-arming TCP_QUICKACK on our side remove the delayed-ACK stall? (issue 4)

Peers that leave Nagle's algorithm on (dcmtk without ``TCP_NODELAY=1``, pynetdicom) send
some PDUs in two writes; the second waits for our ACK, which Linux delays by up to ~40 ms.
This runs ``aiodimse storescp`` with and without ``--no-tcp-quickack`` and measures C-ECHOs
per second on one association from dcmtk ``echoscu --repeat`` (Nagle on and off) and from
pynetdicom. Loopback only.

    .venv/bin/python benchmarks/bench_quickack.py [--repeat N] [--echoes N]
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from functools import partial

PYNETDICOM_CLIENT = r"""
import sys, time
from pynetdicom import AE
ae = AE(); ae.add_requested_context("1.2.840.10008.1.1")
a = ae.associate("127.0.0.1", int(sys.argv[1]), ae_title="BENCH")
assert a.is_established
n = int(sys.argv[2]); t = time.perf_counter()
for _ in range(n):
    a.send_c_echo()
dt = time.perf_counter() - t
a.release()
print(n / dt)
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"port {port} did not open")


def dcmtk_rate(port: int, n: int, nodelay: bool) -> float:
    env = dict(os.environ)
    env.pop("TCP_NODELAY", None)
    if nodelay:
        env["TCP_NODELAY"] = "1"
    t = time.perf_counter()
    subprocess.run(
        ["echoscu", "--repeat", str(n), "-aec", "BENCH", "127.0.0.1", str(port)],
        check=True,
        env=env,
        timeout=600,
    )
    return n / (time.perf_counter() - t)


def pynetdicom_rate(port: int, n: int) -> float:
    out = subprocess.run(
        [sys.executable, "-c", PYNETDICOM_CLIENT, str(port), str(n)],
        check=True,
        capture_output=True,
        text=True,
        timeout=600,
    )
    return float(out.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs per cell (3)")
    parser.add_argument("--echoes", type=int, default=100, help="C-ECHOs per run (100)")
    args = parser.parse_args()
    have_dcmtk = shutil.which("echoscu") is not None
    rows: list[tuple[str, str, float, float, float]] = []
    for quickack in (False, True):
        port = free_port()
        cmd = [
            sys.executable,
            "-m",
            "aiodimse",
            "storescp",
            str(port),
            "-aet",
            "BENCH",
            "--bind",
            "127.0.0.1",
            "-q",
        ]
        if not quickack:
            cmd.append("--no-tcp-quickack")
        server = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_port(port)
            clients: list[tuple[str, Callable[[], float]]] = [
                ("pynetdicom", partial(pynetdicom_rate, port, args.echoes)),
            ]
            if have_dcmtk:
                clients.insert(
                    0, ("dcmtk echoscu (Nagle on)", partial(dcmtk_rate, port, args.echoes, False))
                )
                clients.insert(
                    1, ("dcmtk echoscu TCP_NODELAY=1", partial(dcmtk_rate, port, args.echoes, True))
                )
            for name, fn in clients:
                rates = [fn() for _ in range(args.repeat)]
                rows.append(
                    (
                        name,
                        "on" if quickack else "off",
                        statistics.median(rates),
                        min(rates),
                        max(rates),
                    )
                )
        finally:
            server.terminate()
            server.wait(timeout=10)
    print("| client | our TCP_QUICKACK | C-ECHO/s median | min–max |")
    print("|---|---|---|---|")
    for name, qa, med, lo, hi in rows:
        print(f"| {name} | {qa} | {med:.0f} | {lo:.0f}–{hi:.0f} |")
    by = {(r[0], r[1]): r[2] for r in rows}
    for name in dict.fromkeys(r[0] for r in rows):
        if (name, "off") in by and (name, "on") in by:
            print(f"{name}: quickack on/off = {by[(name, 'on')] / by[(name, 'off')]:.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
