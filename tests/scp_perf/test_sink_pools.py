"""The writer threads and blocks the file sinks share (issue 9, 4 MiB instances): a large
instance reuses resident blocks and a waiting thread instead of making new ones."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import anyio
import anyio.lowlevel
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aiodimse.net import filesink, syncbatch
from aiodimse.net.filesink import FileSink, SinkState
from aiodimse.net.syncbatch import BufferPool, WriterThreads

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def test_pool_hands_back_the_same_block_and_bounds_what_it_keeps() -> None:
    pool = BufferPool(max_bytes=3 * 1024)
    a = pool.take(1024)
    assert len(a) == 1024 and pool.made == 1
    pool.give(a)
    assert pool.take(1024) is a  # reused, not made again
    assert pool.made == 1
    blocks = [pool.take(1024) for _ in range(5)]
    for b in blocks:
        pool.give(b)
    kept = [pool.take(1024) for _ in range(5)]
    # Only three fit in max_bytes: the rest were dropped, so two are new now.
    assert sum(1 for b in kept if any(b is x for x in blocks)) == 3
    assert pool.take(2048) is not None and len(pool.take(2048)) == 2048  # sizes kept apart


def test_writer_threads_are_reused_and_run_loops_concurrently() -> None:
    writers = WriterThreads(idle_timeout=30)
    names: list[int] = []
    done = threading.Event()

    def note() -> None:
        names.append(threading.get_ident())
        done.set()

    writers.submit(note)
    assert done.wait(5)
    deadline = time.monotonic() + 5
    while writers.idle != 1 and time.monotonic() < deadline:
        time.sleep(0.001)
    assert writers.idle == 1
    done.clear()
    writers.submit(note)
    assert done.wait(5)
    assert writers.started == 1 and names[0] == names[1]  # the same thread, twice

    # Loops that block on each other each get a thread: none waits for a free one.
    gate = threading.Barrier(3, timeout=5)
    finished = threading.Event()
    count = [0]
    lock = threading.Lock()

    def loop() -> None:
        gate.wait()
        with lock:
            count[0] += 1
            if count[0] == 3:
                finished.set()

    for _ in range(3):
        writers.submit(loop)
    assert finished.wait(5)
    assert writers.started == 3  # the idle one plus two new


def test_an_idle_writer_thread_ends_after_its_timeout() -> None:
    writers = WriterThreads(idle_timeout=0.05)
    ran: list[threading.Thread] = []
    writers.submit(lambda: ran.append(threading.current_thread()))
    deadline = time.monotonic() + 5
    while not ran and time.monotonic() < deadline:
        time.sleep(0.001)
    ran[0].join(5)  # it waits 0.05 s for another loop, then ends
    assert not ran[0].is_alive() and writers.idle == 0
    writers.submit(lambda: ran.append(threading.current_thread()))  # a new thread for it
    ran[0].join(0)
    deadline = time.monotonic() + 5
    while len(ran) < 2 and time.monotonic() < deadline:
        time.sleep(0.001)
    assert writers.started == 2 and ran[1] is not ran[0]


async def _stream(sink: FileSink, data: bytes, chunk: int) -> None:
    for at in range(0, len(data), chunk):
        await sink.write(memoryview(data)[at : at + chunk])


@settings(max_examples=25, deadline=None)
@given(
    size=st.integers(4096, 40_000),
    chunk=st.integers(1, 9000),
    write_size=st.sampled_from([4096, 5000]),
)
def test_streamed_blocks_write_every_byte_in_order(
    tmp_path_factory: pytest.TempPathFactory, size: int, chunk: int, write_size: int
) -> None:
    """Fragments of any size across block boundaries: the file is prefix + dataset."""
    data = os.urandom(size)
    path = tmp_path_factory.mktemp("s") / "t.part"

    async def main() -> bytes:
        sink = FileSink(
            path, prefix=b"PRE", limiter=anyio.CapacityLimiter(2), durable=False,
            write_size=write_size, queue_depth=2,
        )  # fmt: skip
        await _stream(sink, data, chunk)
        await sink.close()
        assert sink.error is None
        return path.read_bytes()

    assert anyio.run(main) == b"PRE" + data


async def test_a_large_instance_takes_resident_blocks(tmp_path: Path) -> None:
    limiter = anyio.CapacityLimiter(2)
    data = os.urandom(10 * 4096 + 123)
    # At most queue_depth queued + one being written + one being filled are in use at once.
    for block in [bytearray(4096) for _ in range(2 + 2)]:
        syncbatch.BUFFERS.give(block)
    before = syncbatch.BUFFERS.made
    for n in range(2):
        sink = FileSink(
            tmp_path / f"{n}.part", limiter=limiter, durable=False, write_size=4096,
            queue_depth=2,
        )  # fmt: skip
        await _stream(sink, data, 1000)
        await sink.close()
        assert (tmp_path / f"{n}.part").read_bytes() == data
    assert syncbatch.BUFFERS.made == before  # no block was made new


async def test_discard_mid_stream_gives_the_block_back(tmp_path: Path) -> None:
    path = tmp_path / "t.part"
    sink = FileSink(path, limiter=anyio.CapacityLimiter(2), write_size=4096)
    await _stream(sink, os.urandom(4096 * 3 + 500), 700)
    assert sink._block is not None  # a partly filled block
    await sink.discard()
    assert sink._block is None and sink.state is SinkState.DISCARDED
    assert not path.exists()


async def test_a_write_error_mid_stream_drains_and_gives_the_blocks_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ROBUSTNESS: the error is recorded, the rest is drained (the reader never blocks), the
    partial file is removed, and every pooled block returns to the pool."""
    calls = [0]
    real = syncbatch.write_all

    def failing(fp: syncbatch.Writable, *parts: bytes | bytearray | memoryview) -> None:
        calls[0] += 1
        if calls[0] == 2:
            raise OSError(28, "No space left on device")
        real(fp, *parts)

    monkeypatch.setattr(filesink, "write_all", failing)
    pool = syncbatch.BUFFERS
    for block in [bytearray(4096) for _ in range(2 + 2)]:
        pool.give(block)
    before = pool.made
    idle_before = len(pool._free[4096])
    path = tmp_path / "t.part"
    sink = FileSink(path, limiter=anyio.CapacityLimiter(2), write_size=4096, queue_depth=2)
    await _stream(sink, os.urandom(4096 * 12 + 7), 1500)
    await sink.close()
    assert isinstance(sink.error, OSError) and sink.error.errno == 28
    assert not path.exists()
    assert pool.made == before  # no block made new, and every one came back
    assert len(pool._free[4096]) == idle_before


async def test_concurrent_streams_share_the_pool_without_mixing_bytes(tmp_path: Path) -> None:
    """Several sinks stream at once through the shared blocks and writer threads (many
    associations): every file holds exactly its own bytes."""
    limiter = anyio.CapacityLimiter(4)
    datas = [os.urandom(4096 * n + 17 * n) for n in range(3, 11)]

    async def one(i: int, data: bytes) -> None:
        sink = FileSink(
            tmp_path / f"{i}.part", limiter=limiter, durable=False, write_size=4096,
            queue_depth=1, defer_finish=True,
        )  # fmt: skip
        for at in range(0, len(data), 777 + i):
            await sink.write(memoryview(data)[at : at + 777 + i])
            await anyio.lowlevel.checkpoint()  # interleave the streams
        await sink.close()
        placed = await sink.finish(lambda s, b: s.commit_sync(tmp_path / f"{i}.dcm", batch=b))
        assert placed

    async with anyio.create_task_group() as tg:
        for i, data in enumerate(datas):
            tg.start_soon(one, i, data)
    for i, data in enumerate(datas):
        assert (tmp_path / f"{i}.dcm").read_bytes() == data
