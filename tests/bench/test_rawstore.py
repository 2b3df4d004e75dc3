"""The raw Python ceiling of the 64 KiB no-fsync case (``benchmarks/rawstore.py``).

Small counts, loopback only, no DICOM peers: every message must arrive whole, in a file of
its own, acknowledged; the suite's row and the targets' context line must use it.
"""

from __future__ import annotations

import asyncio
import functools
import os
import subprocess
import sys
from pathlib import Path

import pytest
from benchmarks import bench_store, harness, rawstore, suite_store, targets
from benchmarks.harness import Row

SIZES = (0, 1, 7, 8, 65_536 + 3, 300_000, 4_096)


def make_source(directory: Path, sizes: tuple[int, ...] = SIZES) -> list[bytes]:
    directory.mkdir()
    blobs = [os.urandom(n) for n in sizes]
    for i, blob in enumerate(blobs):
        (directory / f"{i:04d}.dcm").write_bytes(blob)
    return blobs


def stored(out: Path) -> list[bytes]:
    return [p.read_bytes() for p in sorted(out.iterdir())]


class FakeTransport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.written = bytearray()
        self.aborted = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.written += data

    def abort(self) -> None:
        self.aborted = True


@pytest.mark.parametrize("chunk", [1, 5, 8, 4_099, 1 << 20])
def test_receiver_cuts_messages_at_any_chunking(tmp_path: Path, chunk: int) -> None:
    blobs = [os.urandom(n) for n in SIZES]
    stream = b"".join(rawstore.HEADER.pack(i, len(b)) + b for i, b in enumerate(blobs))
    protocol = rawstore.StoreProtocol(tmp_path)
    transport = FakeTransport()
    protocol.connection_made(transport)
    at = 0
    while at < len(stream):
        buf = protocol.get_buffer(-1)
        n = min(chunk, len(buf), len(stream) - at)
        buf[:n] = stream[at : at + n]
        protocol.buffer_updated(n)
        at += n
    assert stored(tmp_path) == blobs
    assert [p.name for p in sorted(tmp_path.iterdir())] == [f"{i:06d}.dcm" for i in range(7)]
    acks = [rawstore.ACK.unpack_from(transport.written, 4 * i)[0] for i in range(len(blobs))]
    assert acks == list(range(len(blobs))) and len(transport.written) == 4 * len(blobs)
    assert (protocol.start, protocol.end) == (0, 0)


def test_receiver_refuses_a_message_longer_than_its_buffer(tmp_path: Path) -> None:
    protocol = rawstore.StoreProtocol(tmp_path)
    transport = FakeTransport()
    protocol.connection_made(transport)
    buf = protocol.get_buffer(-1)
    buf[:8] = rawstore.HEADER.pack(0, rawstore.BUFFER)
    protocol.buffer_updated(8)
    assert transport.aborted and not list(tmp_path.iterdir())


@pytest.mark.parametrize("thread", [False, True], ids=["in-loop", "worker-thread"])
def test_pair_stores_every_message_intact(tmp_path: Path, thread: bool) -> None:
    blobs = make_source(tmp_path / "src")
    out = tmp_path / "out"
    script = harness.BENCH_DIR / "rawstore.py"
    args = ["serve", "-od", str(out)] + (["--thread"] if thread else [])
    with harness.python_server(script, args, name="raw-store-test") as (_, port):
        argv = [sys.executable, str(script), "send", harness.HOST, str(port),
                str(tmp_path / "src"), "--window", "3"]  # fmt: skip
        run = bench_store.run_client(argv, env=None, timeout=60)
    assert run.report["stored"] == len(blobs) and run.report["failed"] == 0
    assert run.report["bytes"] == sum(map(len, blobs))
    assert stored(out) == blobs


def test_sender_fails_when_the_receiver_is_gone(tmp_path: Path) -> None:
    make_source(tmp_path / "src", (10,))
    script = harness.BENCH_DIR / "rawstore.py"
    port = harness.free_port()
    argv = [sys.executable, str(script), "send", harness.HOST, str(port), str(tmp_path / "src")]
    done = subprocess.run(argv, capture_output=True, timeout=60, check=False)
    assert done.returncode != 0


def test_suite_row_measures_the_ceiling(tmp_path: Path) -> None:
    sizes = (65_536,) * 20
    blobs = make_source(tmp_path / "src", sizes)
    row = Row(section="s", impl="raw Python ceiling", label="raw", metric="instances/s",
              unit="inst/s", higher_is_better=True)  # fmt: skip
    check = suite_store._check(row, len(blobs), sum(sizes), ignore=False)
    opener = functools.partial(suite_store.raw_server, row, source=tmp_path / "src",
                               check=check, window=16)  # fmt: skip
    suite_store.run_interleaved([(row, opener)], tmp_path, repeat=2, time_budget=120)
    assert row.error is None and len(row.samples) == 2 and all(v > 0 for v in row.samples)
    assert len(row.details["mb_s"]) == 2
    ids = {s.id for s in suite_store.setups(suite_store.workloads(quick=False)[0])}
    assert suite_store.RAW_ID in ids


def _row(ident: str, value: float) -> Row:
    r = Row(section="s", impl="x", label=ident, metric="m", unit="u", higher_is_better=True,
            samples=[value])  # fmt: skip
    r.details["id"] = ident
    return r


def test_target_shows_the_ceiling_and_judges_as_before() -> None:
    rows = [_row("store.64k.nofsync.aiodimse>aiodimse", 2000.0),
            _row("store.64k.nofsync.dcmtk-nodelay>dcmtk-nodelay", 2000.0)]  # fmt: skip
    text = "C-STORE 64 KB, fsync off ≥ 1.5× dcmtk TCP_NODELAY=1"
    before = {v.target: v for v in targets.evaluate(rows)}[text]
    after = {v.target: v for v in targets.evaluate([*rows, _row(suite_store.RAW_ID, 9000.0)])}
    assert before.status is after[text].status is targets.Status.MISS
    assert "ceiling" not in before.measured
    assert after[text].measured.endswith("raw Python ceiling, no DICOM: 9,000 inst/s = 4.50× dcmtk")
