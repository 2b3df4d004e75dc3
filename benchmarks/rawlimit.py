"""Reference limits of this machine, measured in the same run as the DICOM cases.

``loopback``
    The raw loopback limit for a Python receiver: a minimal asyncio ``BufferedProtocol``
    that discards everything into one reused buffer (in a subprocess, like a real SCP),
    fed by a blocking-socket sender in another process that ``sendall``\\ s ``chunk``-sized
    blocks. Timed by the sender from connect until the receiver closes after end of file,
    so every byte was received: memory to memory, the sender resending one buffer.
``files`` (:func:`send_files`)
    The same receiver fed the bytes of a workload's own files by a blocking socket
    (``os.sendfile``, or each file read and ``sendall``'d). This is the ceiling for "4 MB
    instances, SCP discarding": the receiver then copies bytes that come from the page
    cache (or from a sender's fresh copy of it), as an SCP receiving those instances does,
    not one cache-hot buffer again and again (which measures about twice as fast here).
``file_write_cost_us``
    CPU per new 64 KiB file written by one thread: which of its two states the page cache
    of this VM is in while a section runs (see the function).
``disk``
    The disk's own sequential write speed: ``size`` bytes written in 4 MiB blocks to a new
    file and ``fsync``\\ ed, timed to the end of the fsync (so the page cache does not
    flatter it). This is what "4 MB instances written to disk" can at best approach.

Script use (the harness convention: prints ``PORT <n>``, exits at end of stdin)::

    python benchmarks/rawlimit.py serve
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import sys
import time
from collections.abc import Sequence
from pathlib import Path

HOST = "127.0.0.1"
MB = 1_000_000


class DiscardProtocol(asyncio.BufferedProtocol):
    """Receives into one reused buffer and counts; closes its side at end of file."""

    def __init__(self, buffer_size: int = 1 << 20) -> None:
        self.buffer = bytearray(buffer_size)
        self.view = memoryview(self.buffer)
        self.received = 0
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def get_buffer(self, sizehint: int) -> memoryview:
        return self.view

    def buffer_updated(self, nbytes: int) -> None:
        self.received += nbytes

    def eof_received(self) -> bool:
        return False  # the transport closes itself: the sender sees the close

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None


async def _serve_discard() -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(DiscardProtocol, HOST, 0)
    port = server.sockets[0].getsockname()[1]
    print(f"PORT {port}", flush=True)
    try:
        await loop.run_in_executor(None, sys.stdin.read)
    finally:
        server.close()


def send_blocking(port: int, total: int, *, chunk: int = 4 << 20, timeout: float = 120.0) -> float:
    """Send ``total`` bytes to ``127.0.0.1:port`` with a blocking socket; return seconds.

    The clock stops when the receiver closes its side after our end of file.
    """
    block = memoryview(os.urandom(min(chunk, total)))
    t0 = time.perf_counter()
    with socket.create_connection((HOST, port), timeout=timeout) as sock:
        left = total
        while left > 0:
            n = min(left, len(block))
            sock.sendall(block[:n])
            left -= n
        sock.shutdown(socket.SHUT_WR)
        while sock.recv(65536):
            pass
    return time.perf_counter() - t0


def send_files(
    port: int, paths: Sequence[Path], *, use_sendfile: bool, timeout: float = 120.0
) -> tuple[float, int]:
    """Send the bytes of each file in ``paths`` to ``127.0.0.1:port`` over one blocking
    socket; return (seconds, bytes). The same bytes a C-STORE workload sends, from the page
    cache: ``socket.sendfile`` with ``use_sendfile`` (``os.sendfile`` where the platform has
    it: nothing copied on the sending side, as aiodimse's SCU sends), else each file read and
    ``sendall``'d (the sender copies twice, the receiver reads what was just written).
    The clock stops when the receiver closes its side after our end of file."""
    total = 0
    t0 = time.perf_counter()
    with socket.create_connection((HOST, port), timeout=timeout) as sock:
        for path in paths:
            with path.open("rb") as fp:
                if use_sendfile:  # the standard library's: send() where there is no sendfile
                    total += sock.sendfile(fp)
                else:
                    data = fp.read()
                    sock.sendall(data)
                    total += len(data)
        sock.shutdown(socket.SHUT_WR)
        while sock.recv(65536):
            pass
    return time.perf_counter() - t0, total


def loopback_limit_mb_s(port: int, total: int, *, chunk: int = 4 << 20) -> float:
    """One measurement of the loopback limit in MB/s (10^6 bytes) against a discard server."""
    return total / MB / send_blocking(port, total, chunk=chunk)


def disk_write_mb_s(directory: Path, size: int, *, block: int = 4 << 20) -> float:
    """Write ``size`` bytes to a new file in ``directory``, fsync, remove; MB/s (10^6)."""
    directory.mkdir(parents=True, exist_ok=True)
    data = memoryview(os.urandom(block))
    path = directory / f".disk-write-{os.getpid()}.bin"
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_BINARY", 0)
    t0 = time.perf_counter()
    fd = os.open(path, flags, 0o600)
    try:
        left = size
        while left > 0:
            n = min(left, block)
            written = os.write(fd, data[:n])
            left -= written
        os.fsync(fd)
    finally:
        os.close(fd)
    elapsed = time.perf_counter() - t0
    path.unlink(missing_ok=True)
    return size / MB / elapsed


def file_write_cost_us(directory: Path, *, count: int = 300, size: int = 64 << 10) -> float:
    """CPU (this thread's, kernel included) per new file of ``size`` bytes, in µs: ``count``
    files created, written and closed in ``directory`` (kept: deleting them right away
    would slow the next files' creation on ext4). A probe of the state the page cache is
    in, not of any DICOM code: on this project's VM it is ~20-30 µs per 64 KiB file in
    one state and ~130-170 in the other (first writes to memory the hypervisor took
    back), and the state flips within minutes."""
    directory.mkdir(parents=True, exist_ok=True)
    data = os.urandom(size)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    start = len(list(directory.iterdir()))
    t0 = time.thread_time()
    for n in range(start, start + count):
        fd = os.open(directory / f"probe-{n:06d}.bin", flags, 0o600)
        try:
            os.write(fd, data)
        finally:
            os.close(fd)
    return (time.thread_time() - t0) / count * 1e6


def drop_cache_hint() -> None:
    """Ask the kernel to write back dirty pages first (``sync``), so runs start alike."""
    if hasattr(os, "sync"):  # POSIX only; Windows has no equivalent without privileges
        os.sync()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    sub = parser.add_subparsers(dest="mode", required=True)
    sub.add_parser("serve", help="discard server (prints PORT <n>, exits at end of stdin)")
    disk = sub.add_parser("disk", help="sequential write + fsync speed")
    disk.add_argument("directory", type=Path)
    disk.add_argument("--size", type=int, default=1 << 30)
    args = parser.parse_args(argv)
    if args.mode == "serve":
        asyncio.run(_serve_discard())
    else:
        print(f"{disk_write_mb_s(args.directory, args.size):.0f} MB/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
