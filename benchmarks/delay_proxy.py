"""A loopback TCP proxy that delays each direction by a fixed time, preserving byte order.

Used by the asynchronous-operations-window case: client → proxy → server with ``delay``
seconds added each way, so a request/response round trip costs ``2 × delay`` more (20 ms
with the default 10 ms), like a link to another site.

Theory of operation: for each accepted connection the proxy opens one to the target and runs
two *pipes*. A pipe's reader stamps every chunk it reads with ``now + delay`` and queues it;
its writer takes chunks in order, sleeps until the chunk's stamp, writes it and drains. So a
byte leaves the proxy ``delay`` seconds (plus scheduling jitter) after it arrived, chunks are
never reordered, and bandwidth is not limited by the delay (many chunks are in flight). End
of file travels the same way (after the bytes before it); either side closing closes both.
The queue holds at most ``max_chunks`` chunks, so a fast sender is slowed by TCP flow
control rather than filling memory. Both sockets have Nagle off so that the proxy adds
nothing but the delay.

Run as a script it prints ``PORT <n>`` once listening on 127.0.0.1 and stops at end of
stdin (the benchmark harness's convention)::

    python benchmarks/delay_proxy.py --target-port 11112 --delay 0.010
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import socket
import sys

HOST = "127.0.0.1"
_EOF = b""


def _nodelay(writer: asyncio.StreamWriter) -> None:
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class DelayProxy:
    """Forward ``127.0.0.1:<port>`` to ``target_host:target_port`` with ``delay`` s each way.

    Use ``async with DelayProxy(...) as proxy:`` and connect to ``proxy.port``.
    ``bytes_forwarded`` counts bytes written in both directions.
    """

    def __init__(
        self,
        target_host: str,
        target_port: int,
        *,
        delay: float,
        chunk_size: int = 256 * 1024,
        max_chunks: int = 256,
    ) -> None:
        if delay < 0:
            raise ValueError("delay must be >= 0")
        self.target_host = target_host
        self.target_port = target_port
        self.delay = delay
        self.chunk_size = chunk_size
        self.max_chunks = max_chunks
        self.bytes_forwarded = 0
        self.connections = 0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def port(self) -> int:
        assert self._server is not None, "proxy not started"
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    async def start(self, host: str = HOST, port: int = 0) -> int:
        """Listen and return the port."""
        self._server = await asyncio.start_server(self._accept, host, port, backlog=1024)
        return self.port

    async def close(self) -> None:
        """Stop listening and cut every open connection."""
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(BaseException):
                await task
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2.0)

    async def __aenter__(self) -> DelayProxy:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # -- per connection ---------------------------------------------------------------------

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self.connections += 1
        _nodelay(writer)
        try:
            up_reader, up_writer = await asyncio.open_connection(self.target_host, self.target_port)
        except OSError:
            writer.close()
            self._tasks.discard(task)
            return
        _nodelay(up_writer)
        try:
            pipes = [
                asyncio.ensure_future(self._pipe(reader, up_writer)),
                asyncio.ensure_future(self._pipe(up_reader, writer)),
            ]
            try:
                await asyncio.gather(*pipes)
            finally:
                for pipe in pipes:
                    pipe.cancel()
                await asyncio.gather(*pipes, return_exceptions=True)
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            for w in (writer, up_writer):
                w.close()
            self._tasks.discard(task)

    async def _pipe(self, src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
        """Copy ``src`` to ``dst``, each chunk released ``delay`` s after it was read."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue(self.max_chunks)

        async def read() -> None:
            while True:
                try:
                    data = await src.read(self.chunk_size)
                except OSError:
                    data = _EOF
                await queue.put((loop.time() + self.delay, data))
                if not data:
                    return

        reader_task = asyncio.ensure_future(read())
        try:
            while True:
                due, data = await queue.get()
                wait = due - loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)
                if not data:
                    with contextlib.suppress(OSError):
                        if dst.can_write_eof():
                            dst.write_eof()
                    return
                dst.write(data)
                self.bytes_forwarded += len(data)
                await dst.drain()
        finally:
            reader_task.cancel()
            with contextlib.suppress(BaseException):
                await reader_task


async def _serve(args: argparse.Namespace) -> None:
    proxy = DelayProxy(args.target_host, args.target_port, delay=args.delay)
    await proxy.start(HOST, args.port)
    print(f"PORT {proxy.port}", flush=True)
    loop = asyncio.get_running_loop()
    try:
        await loop.run_in_executor(None, sys.stdin.read)  # until the harness closes stdin
    finally:
        await proxy.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--target-host", default=HOST)
    parser.add_argument("--target-port", type=int, required=True)
    parser.add_argument("--delay", type=float, default=0.010, help="seconds each way (0.010)")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    args = parser.parse_args(argv)
    asyncio.run(_serve(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
