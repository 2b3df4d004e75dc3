"""The benchmark suite's own machinery: the delaying proxy and the raw loopback receiver.

Fast, loopback only, no DICOM peers.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from benchmarks import harness, rawlimit
from benchmarks.delay_proxy import DelayProxy


async def _echo_server() -> asyncio.Server:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
        writer.write_eof()
        await writer.drain()
        writer.close()

    return await asyncio.start_server(handle, "127.0.0.1", 0)


def test_proxy_adds_the_delay_each_way() -> None:
    delay = 0.05

    async def main() -> float:
        server = await _echo_server()
        port = server.sockets[0].getsockname()[1]
        async with DelayProxy("127.0.0.1", port, delay=delay) as proxy:
            reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
            t0 = time.perf_counter()
            writer.write(b"ping")
            await writer.drain()
            assert await reader.readexactly(4) == b"ping"
            rtt = time.perf_counter() - t0
            writer.close()
        server.close()
        return rtt

    rtt = asyncio.run(main())
    assert rtt >= 2 * delay * 0.95  # through the proxy twice: there and back
    assert rtt < 2 * delay + 1.0  # and not stuck


def test_proxy_preserves_every_byte_in_order_and_the_end_of_file() -> None:
    payload = os.urandom(3 * 1024 * 1024 + 17)

    async def main() -> tuple[bytes, int]:
        server = await _echo_server()
        port = server.sockets[0].getsockname()[1]
        async with DelayProxy("127.0.0.1", port, delay=0.005, chunk_size=4096) as proxy:
            reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)

            async def send() -> None:
                view = memoryview(payload)
                for start in range(0, len(view), 10_000):  # many odd-sized writes
                    writer.write(view[start : start + 10_000])
                    await writer.drain()
                writer.write_eof()

            sender = asyncio.ensure_future(send())
            received = await reader.read()  # until the end of file comes back through
            await sender
            writer.close()
            forwarded = proxy.bytes_forwarded
        server.close()
        return received, forwarded

    received, forwarded = asyncio.run(main())
    assert received == payload
    assert forwarded == 2 * len(payload)


def test_proxy_refuses_a_negative_delay() -> None:
    try:
        DelayProxy("127.0.0.1", 1, delay=-0.1)
    except ValueError:
        return
    raise AssertionError("negative delay accepted")


class _Receiver:
    """rawlimit's discarding receiver on a loop in a thread; ``received`` per connection."""

    def __init__(self) -> None:
        self.protocols: list[rawlimit.DiscardProtocol] = []
        self.port = 0
        self._ready = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._main()), daemon=True)

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()

        def factory() -> rawlimit.DiscardProtocol:
            self.protocols.append(rawlimit.DiscardProtocol(buffer_size=4096))
            return self.protocols[-1]

        server = await self._loop.create_server(factory, "127.0.0.1", 0)
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        await self._stop.wait()
        server.close()

    def __enter__(self) -> _Receiver:
        self._thread.start()
        assert self._ready.wait(5)
        return self

    def __exit__(self, *exc: object) -> None:
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(5)


@pytest.mark.parametrize("use_sendfile", [True, False])
def test_the_file_limit_sender_delivers_every_byte_of_every_file(
    tmp_path: Path, use_sendfile: bool
) -> None:
    sizes = [12 * 1024 * 1024 + 1, 0, 65537]  # more than the socket buffers hold
    paths = []
    for n, size in enumerate(sizes):
        path = tmp_path / f"{n}.dcm"
        path.write_bytes(os.urandom(size))
        paths.append(path)
    with _Receiver() as receiver:
        seconds, sent = rawlimit.send_files(receiver.port, paths, use_sendfile=use_sendfile)
    assert sent == sum(sizes)
    assert [p.received for p in receiver.protocols] == [sum(sizes)]  # one connection, all bytes
    assert seconds > 0


def test_raw_receiver_counts_everything_the_blocking_sender_writes() -> None:
    total = 5 * 1024 * 1024 + 3
    with _Receiver() as receiver:
        seconds = rawlimit.send_blocking(receiver.port, total, chunk=1 << 20, timeout=10)
    assert [p.received for p in receiver.protocols] == [total]  # the clock stopped after it
    assert seconds > 0


def test_disk_write_figure_is_positive_and_leaves_no_file(tmp_path: Path) -> None:
    directory = tmp_path
    assert rawlimit.disk_write_mb_s(directory, 3 * 1024 * 1024 + 5, block=1 << 20) > 0
    assert list(directory.iterdir()) == []


def _python(code: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", code])


def test_a_timed_process_is_waited_for_without_polling(monkeypatch: pytest.MonkeyPatch) -> None:
    # The standard library's wait(timeout=...) polls with sleeps of up to 50 ms, which
    # rounds a client's wall time up; wait_exactly must block in waitpid instead.
    proc = _python("import time; time.sleep(0.2)")

    def polled(seconds: float) -> None:
        raise AssertionError(f"polled for the exit (sleep {seconds})")

    monkeypatch.setattr(subprocess.time, "sleep", polled)  # type: ignore[attr-defined]
    assert harness.wait_exactly(proc, 30) == 0


def test_wait_exactly_returns_the_exit_code_and_kills_on_timeout() -> None:
    assert harness.wait_exactly(_python("raise SystemExit(3)"), 30) == 3
    slow = _python("import time; time.sleep(60)")
    with pytest.raises(subprocess.TimeoutExpired):
        harness.wait_exactly(slow, 0.3)
    assert slow.poll() is not None  # killed, and reaped


def test_the_page_cache_probe_writes_new_files_and_reports_cpu_per_file(tmp_path: Path) -> None:
    first = rawlimit.file_write_cost_us(tmp_path / "probe", count=20, size=4096)
    second = rawlimit.file_write_cost_us(tmp_path / "probe", count=5, size=4096)
    files = sorted((tmp_path / "probe").iterdir())
    assert len(files) == 25 and all(f.stat().st_size == 4096 for f in files)  # none reused
    assert first >= 0 and second >= 0
