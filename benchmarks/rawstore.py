"""The raw Python ceiling of "C-STORE 64 KB, one association, no fsync": no DICOM at all.

The cheapest asyncio pair that does the unavoidable work of that case, each end a process
of its own like a real SCU and SCP:

``send``
    Reads each file of a directory (sorted by name; the suite's generated instances, read
    from disk per message as a real client does) and sends it whole, framed by an 8-byte
    header (sequence number, length; little endian), over **one** TCP connection with up to
    ``--window`` messages unacknowledged (the issue's window 16). A plain
    ``asyncio.Protocol``: the next message goes out from ``data_received`` as acks arrive.
    Prints one JSON line like the aiodimse client: ``elapsed`` (connect to the last ack and
    the close; interpreter start-up excluded), ``cpu`` (``time.process_time`` over the same
    span), ``stored``, ``failed``, ``bytes``.
``serve``
    An ``asyncio.BufferedProtocol`` that receives into one reused buffer, cuts complete
    messages out of it, writes each to a **new** file (``open``/``write``/``close``, no
    fsync, named ``<sequence>.dcm``) and answers it with a 4-byte ack (the sequence
    number), one ``transport.write`` per received chunk. ``--thread`` moves the file writes
    to one worker thread (the message is copied out of the buffer; acks go back through
    ``call_soon_threadsafe``, one per batch the worker drained); the default writes in the
    loop, the faster of the two here (2026-11-24, 2 cores, ext4, 8 interleaved rounds:
    15,500 vs 9,800 inst/s; receiver CPU 61 vs 96 us per message, file creation
    included). Prints
    ``PORT <n>``, serves until its stdin reaches end of file (the harness convention).

What is left out on purpose is everything DICOM: PDU and PDV framing, the command set,
presentation contexts, SOP Instance UIDs as file names, the file meta header, the
association handshake. So a DICOM pair cannot beat this pair's instances/s on the same
machine; it is the reference row "raw Python ceiling" of the suite's 64 KiB no-fsync
section (:mod:`benchmarks.suite_store`).

    python benchmarks/rawstore.py serve -od OUT [--thread]
    python benchmarks/rawstore.py send 127.0.0.1 PORT SOURCE_DIR [--window 16]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import queue
import struct
import sys
import threading
import time
from pathlib import Path

HOST = "127.0.0.1"
HEADER = struct.Struct("<II")  # sequence number, payload length
ACK = struct.Struct("<I")  # sequence number
BUFFER = 4 << 20  # receive buffer; a message longer than this is refused
OPEN_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_BINARY", 0)


# --------------------------------------------------------------------------------------------
# Receiver
# --------------------------------------------------------------------------------------------


def write_file(path: str, data: memoryview | bytes) -> None:
    """``data`` into a new file at ``path``: open, write until done, close (no fsync)."""
    fd = os.open(path, OPEN_FLAGS, 0o644)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
    finally:
        os.close(fd)


class StoreProtocol(asyncio.BufferedProtocol):
    """Receives framed messages into one buffer, stores each in a new file, acks each."""

    def __init__(self, directory: Path, *, worker: Worker | None = None) -> None:
        self.prefix = str(directory) + os.sep
        self.buffer = bytearray(BUFFER)
        self.view = memoryview(self.buffer)
        self.start = 0  # first byte not yet consumed
        self.end = 0  # first free byte
        self.worker = worker
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def get_buffer(self, sizehint: int) -> memoryview:
        return self.view[self.end :]

    def buffer_updated(self, nbytes: int) -> None:
        self.end += nbytes
        start, end, view, acks = self.start, self.end, self.view, []
        while end - start >= HEADER.size:
            seq, length = HEADER.unpack_from(view, start)
            if length > BUFFER - HEADER.size:
                assert self.transport is not None
                self.transport.abort()  # no room for it: a broken or hostile sender
                return
            body = start + HEADER.size
            if end - body < length:
                break
            name = f"{self.prefix}{seq:06d}.dcm"
            if self.worker is None:
                write_file(name, view[body : body + length])
                acks.append(ACK.pack(seq))
            else:
                self.worker.put(name, bytes(view[body : body + length]), seq)
            start = body + length
        if start == end:
            start = end = 0
        elif BUFFER - end < BUFFER // 4:  # little room left: move the partial message down
            view[: end - start] = view[start:end]
            start, end = 0, end - start
        self.start, self.end = start, end
        if acks and self.transport is not None:
            self.transport.write(b"".join(acks))

    def eof_received(self) -> bool:
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None


class Worker:
    """One thread that writes files in order; acks go back to the loop once per batch."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.jobs: queue.SimpleQueue[tuple[str, bytes, int] | None] = queue.SimpleQueue()
        self.protocol: StoreProtocol | None = None
        self.thread = threading.Thread(target=self._run, name="rawstore-writer", daemon=True)
        self.thread.start()

    def put(self, name: str, data: bytes, seq: int) -> None:
        self.jobs.put((name, data, seq))

    def _run(self) -> None:
        while True:
            job = self.jobs.get()
            acks = []
            while job is not None:
                name, data, seq = job
                write_file(name, data)
                acks.append(ACK.pack(seq))
                try:
                    job = self.jobs.get_nowait()
                except queue.Empty:
                    break
            if acks:
                self.loop.call_soon_threadsafe(self._ack, b"".join(acks))
            if job is None:
                return

    def _ack(self, data: bytes) -> None:
        protocol = self.protocol
        if protocol is not None and protocol.transport is not None:
            protocol.transport.write(data)

    def close(self) -> None:
        self.jobs.put(None)


async def serve(directory: Path, *, thread: bool, port: int = 0) -> None:
    """Serve on ``127.0.0.1:port`` until stdin ends; prints ``PORT <n>`` once listening."""
    loop = asyncio.get_running_loop()
    workers: list[Worker] = []

    def factory() -> StoreProtocol:
        worker = Worker(loop) if thread else None
        protocol = StoreProtocol(directory, worker=worker)
        if worker is not None:
            worker.protocol = protocol
            workers.append(worker)
        return protocol

    server = await loop.create_server(factory, HOST, port)
    print(f"PORT {server.sockets[0].getsockname()[1]}", flush=True)
    try:
        await loop.run_in_executor(None, sys.stdin.read)
    finally:
        server.close()
        for worker in workers:
            worker.close()


# --------------------------------------------------------------------------------------------
# Sender
# --------------------------------------------------------------------------------------------


class SendProtocol(asyncio.Protocol):
    """Keeps up to ``window`` messages unacknowledged; ``done`` when every one is acked."""

    def __init__(self, paths: list[Path], window: int, done: asyncio.Future[None]) -> None:
        self.paths = paths
        self.window = window
        self.done = done
        self.next = 0  # index of the next file to send
        self.acked = 0
        self.sent_bytes = 0
        self.pending = b""  # a partial ack
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        for _ in range(min(self.window, len(self.paths))):
            self._send_next()
        if not self.paths:
            self.done.set_result(None)

    def _send_next(self) -> None:
        assert self.transport is not None
        seq = self.next
        data = self.paths[seq].read_bytes()
        self.next += 1
        self.sent_bytes += len(data)
        self.transport.writelines((HEADER.pack(seq, len(data)), data))

    def data_received(self, data: bytes) -> None:
        if self.pending:
            data, self.pending = self.pending + data, b""
        whole = len(data) - len(data) % ACK.size
        self.pending = data[whole:]
        for _ in range(whole // ACK.size):
            self.acked += 1
            if self.next < len(self.paths):
                self._send_next()
        if self.acked == len(self.paths) and not self.done.done():
            self.done.set_result(None)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self.done.set_exception(exc or ConnectionError("receiver closed early"))


async def send(host: str, port: int, paths: list[Path], *, window: int) -> dict[str, object]:
    """Send every file; a report like the aiodimse benchmark client's."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[None] = loop.create_future()
    t0 = time.perf_counter()
    c0 = time.process_time()
    transport, protocol = await loop.create_connection(
        lambda: SendProtocol(paths, window, done), host, port
    )
    try:
        await done
    finally:
        transport.close()
    elapsed = time.perf_counter() - t0
    cpu = time.process_time() - c0
    return {
        "elapsed": elapsed,
        "cpu": cpu,
        "stored": protocol.acked,
        "failed": len(paths) - protocol.acked,
        "bytes": protocol.sent_bytes,
        "window": window,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="mode", required=True)
    srv = sub.add_parser("serve", help="the receiver (prints PORT <n>, exits at end of stdin)")
    srv.add_argument("-od", "--output-directory", type=Path, required=True)
    srv.add_argument("--thread", action="store_true", help="write files in one worker thread")
    srv.add_argument("--port", type=int, default=0)
    snd = sub.add_parser("send", help="the sender (prints one JSON line)")
    snd.add_argument("host")
    snd.add_argument("port", type=int)
    snd.add_argument("source", type=Path, help="directory: every file in it, sorted by name")
    snd.add_argument("--window", type=int, default=16, help="messages unacknowledged at most")
    args = parser.parse_args(argv)
    if args.mode == "serve":
        args.output_directory.mkdir(parents=True, exist_ok=True)
        asyncio.run(serve(args.output_directory, thread=args.thread, port=args.port))
        return 0
    paths = sorted(p for p in args.source.iterdir() if p.is_file())
    report = asyncio.run(send(args.host, args.port, paths, window=args.window))
    print(json.dumps(report), flush=True)
    return 0 if report["failed"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
