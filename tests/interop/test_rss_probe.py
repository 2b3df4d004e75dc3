"""The RSS/fd probe measures what a subprocess really uses."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from tests.support.rss import ProbeResult, ResourceProbe, probe_self, read_vm_hwm

MIB = 1 << 20

# Allocates N MiB and touches every page (b"\x01" * n writes them), opens K fds, says
# "ready", then waits for a line on stdin before exiting.
CHILD = """
import os, sys
n, k = int(sys.argv[1]), int(sys.argv[2])
block = b"\\x01" * (n << 20)
fds = [os.open(os.devnull, os.O_RDONLY) for _ in range(k)]
print("ready", flush=True)
sys.stdin.readline()
"""


@contextmanager
def _child(mib: int, fds: int) -> Iterator[subprocess.Popen[str]]:
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(mib), str(fds)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdin is not None and proc.stdout is not None
    try:
        yield proc
    finally:
        proc.stdin.close()
        proc.wait(timeout=30)
        proc.stdout.close()


def _run(mib: int, fds: int) -> ProbeResult:
    with _child(mib, fds) as proc, ResourceProbe(proc, interval=0.005) as probe:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready"
        probe.sample()
    res = probe.result
    assert res.pid == proc.pid and res.samples >= 2 and res.duration > 0
    assert res.peak_fds >= res.last_fds and res.peak_rss >= res.last_rss
    return res


def test_peak_rss_at_least_allocation() -> None:
    big = _run(200, 0)
    peak_big = big.peak_rss
    assert peak_big >= 200 * MIB
    assert peak_big < 400 * MIB  # it measures the child, not something bigger
    peak_small = _run(10, 0).peak_rss
    assert peak_small < 200 * MIB
    assert peak_big - peak_small >= 180 * MIB
    if sys.platform.startswith("linux"):
        assert big.peak_rss_exact


def test_fd_count_follows_open_files() -> None:
    # Compare the steady state ("ready"): start-up may briefly hold a few extra fds.
    few = _run(1, 0)
    many = _run(1, 64)
    assert many.last_fds - few.last_fds >= 64
    assert many.peak_fds >= few.last_fds + 64


def test_peak_between_samples_is_exact_on_linux() -> None:
    """VmHWM keeps a peak that was freed before the probe looked (Linux)."""
    if not sys.platform.startswith("linux"):
        return
    code = (
        "import sys\nblock = b'\\x01' * (150 << 20)\ndel block\n"
        "print('ready', flush=True)\nsys.stdin.readline()\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert proc.stdin is not None and proc.stdout is not None
    try:
        assert proc.stdout.readline().strip() == "ready"
        with ResourceProbe(proc) as probe:
            pass
    finally:
        proc.stdin.close()
        proc.wait(timeout=30)
        proc.stdout.close()
    assert probe.result.last_rss < 100 * MIB
    assert probe.result.peak_rss >= 150 * MIB


def test_probe_self_and_snapshot() -> None:
    with probe_self() as probe:
        snap = probe.snapshot()
        assert snap.peak_rss > 0 and snap.peak_fds > 0
    assert probe.result.peak_rss >= snap.peak_rss
    if sys.platform.startswith("linux"):
        hwm = read_vm_hwm(probe.pid)
        assert hwm is not None and hwm >= probe.result.last_rss
