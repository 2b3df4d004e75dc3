"""``storescp --workers 2``: two processes on one port, every instance stored once.

Run as a user would (a subprocess). The workers print their PID on their "listening" and
final "received" lines; with SO_REUSEPORT the kernel spreads 16 associations over both
(by a hash of the addresses: all 16 on one worker has odds of 2 in 65,536).
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import threading
from pathlib import Path

import anyio
import pytest

import aiodimse
from aiodimse.net.workers import SharingMode, default_mode
from tests.scale.scale_support import storage_contexts, write_instances

pytestmark = pytest.mark.anyio

ASSOCIATIONS = 16


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class StoreSCP:
    """``python -m aiodimse storescp`` with its stdout collected by a thread."""

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "aiodimse", "storescp", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: list[str] = []
        self.listening = threading.Event()
        self._count = 0
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))
            self._count += line.count(" listening on ")
            if self._count >= 2:
                self.listening.set()

    def port(self) -> int:
        match = re.search(r"on port (\d+)", self.lines[0])
        assert match, self.lines
        return int(match.group(1))

    def stop(self) -> tuple[int, str]:
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=60)
        self._thread.join(10)
        assert self.proc.stderr is not None and self.proc.stdout is not None
        err = self.proc.stderr.read()
        self.proc.stderr.close()
        self.proc.stdout.close()
        return code, err


async def _serve_and_send(tmp_path: Path, mode: SharingMode) -> tuple[dict[str, int], Path]:
    out = tmp_path / "out"
    scp = StoreSCP("0", "--workers", "2", "--share-port", mode.value, "-od", str(out), "--no-fsync")
    try:
        ready = await anyio.to_thread.run_sync(scp.listening.wait, 60.0)
        assert ready, (scp.lines, scp.proc.poll())
        port = scp.port()
        paths = write_instances(tmp_path / "in", 2 * ASSOCIATIONS)
        ae = aiodimse.AE("WORKERSCU")
        with anyio.fail_after(60):
            for i in range(ASSOCIATIONS):  # one TCP connection (source port) each
                async with ae.associate(
                    "127.0.0.1", port, called_ae="STORESCP", contexts=storage_contexts()
                ) as assoc:
                    results = await assoc.store_many(paths[2 * i : 2 * i + 2])
                    assert all(r.ok for r in results), [r.describe() for r in results]
    finally:
        code, err = await anyio.to_thread.run_sync(scp.stop)
    assert code == 0, err
    received: dict[str, int] = {}
    for m in re.finditer(r"worker \d pid (\d+): received (\d+) instance", "\n".join(scp.lines)):
        received[m.group(1)] = int(m.group(2))
    assert len(received) == 2, scp.lines
    assert sum(received.values()) == 2 * ASSOCIATIONS
    assert len(list(out.glob("*.dcm"))) == 2 * ASSOCIATIONS
    return received, out


@pytest.mark.skipif(default_mode() is not SharingMode.REUSE_PORT, reason="Linux SO_REUSEPORT")
async def test_two_workers_with_reuse_port_both_serve(tmp_path: Path) -> None:
    received, _ = await _serve_and_send(tmp_path, SharingMode.REUSE_PORT)
    assert all(n > 0 for n in received.values()), received


async def test_two_workers_sharing_one_socket_store_everything(tmp_path: Path) -> None:
    await _serve_and_send(tmp_path, SharingMode.SHARED)


def test_max_ops_flag_sets_the_window_we_grant(tmp_path: Path) -> None:
    import argparse

    from aiodimse.apps import storescp

    parser = argparse.ArgumentParser()
    storescp.add_parser(parser.add_subparsers())
    args = parser.parse_args(["storescp", "0", "-od", str(tmp_path), "--max-ops", "4"])
    ae, _ = storescp.build(args)
    assert ae.max_operations_performed == 4
    assert ae.acceptor_window() == (4, 1)  # AC field order: requestor may invoke 4
    args = parser.parse_args(["storescp", "0", "-od", str(tmp_path)])
    assert storescp.build(args)[0].max_operations_performed == 16
    assert args.workers == 1 and args.share_port == "auto"


def test_listening_sockets_share_one_port() -> None:
    from aiodimse.net.workers import listening_sockets

    for mode in SharingMode:
        if mode is SharingMode.REUSE_PORT and default_mode() is not SharingMode.REUSE_PORT:
            continue
        per_worker = listening_sockets("127.0.0.1", 0, 3, mode)
        try:
            ports = {socks[0].getsockname()[1] for socks in per_worker}
            distinct = {id(socks[0]) for socks in per_worker}
            assert len(ports) == 1
            assert len(distinct) == (3 if mode is SharingMode.REUSE_PORT else 1)
        finally:
            for socks in per_worker:
                for s in socks:
                    s.close()
