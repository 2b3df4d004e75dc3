"""The benchmark suite's own machinery: the delaying proxy and the raw loopback receiver.

Fast, loopback only, no DICOM peers.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time

from benchmarks import rawlimit
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


def test_raw_receiver_counts_everything_the_blocking_sender_writes() -> None:
    ready = threading.Event()
    state: dict[str, object] = {}

    def serve() -> None:
        async def main() -> None:
            loop = asyncio.get_running_loop()
            protocols: list[rawlimit.DiscardProtocol] = []

            def factory() -> rawlimit.DiscardProtocol:
                protocols.append(rawlimit.DiscardProtocol(buffer_size=4096))
                return protocols[-1]

            server = await loop.create_server(factory, "127.0.0.1", 0)
            state["port"] = server.sockets[0].getsockname()[1]
            state["protocols"] = protocols
            stop = asyncio.Event()
            state["stop"] = (loop, stop)
            ready.set()
            await stop.wait()
            server.close()

        asyncio.run(main())

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    assert ready.wait(5)
    total = 5 * 1024 * 1024 + 3
    seconds = rawlimit.send_blocking(int(state["port"]), total, chunk=1 << 20, timeout=10)
    protocols = state["protocols"]
    assert isinstance(protocols, list)
    assert protocols[0].received == total  # the sender's clock stopped after the last byte
    assert seconds > 0
    loop, stop = state["stop"]  # type: ignore[misc]
    loop.call_soon_threadsafe(stop.set)
    thread.join(5)


def test_disk_write_figure_is_positive_and_leaves_no_file(tmp_path: object) -> None:
    from pathlib import Path

    directory = Path(str(tmp_path))
    assert rawlimit.disk_write_mb_s(directory, 3 * 1024 * 1024 + 5, block=1 << 20) > 0
    assert list(directory.iterdir()) == []
