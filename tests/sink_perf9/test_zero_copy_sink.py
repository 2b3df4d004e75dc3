"""Large datasets reach the disk without a copy on the event loop (issue 9, 4 MiB to disk).

A streaming :class:`~aiodimse.net.filesink.FileSink` hands the views it is given (views of
the PDU decoder's receive buffer) to its writer thread, and the decoder reuses a large
receive buffer only once no view of it is left. These tests check the bytes: every file is
exactly what was sent, whatever the PDU sizes, read sizes and fragment sizes, with the
writer thread lagging behind the decoder (views pending while the decoder goes on), with
several sinks at once, and after an abort no partial file is left.
"""

from __future__ import annotations

import itertools
import os
import random
import struct
import threading
import time
from pathlib import Path

import anyio
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aiodimse.config import Limits
from aiodimse.net import filesink, syncbatch
from aiodimse.net.filesink import FileSink, SinkState
from aiodimse.pdu import PDataTF, PDUDecoder
from aiodimse.pdu import decoder as decoder_module
from aiodimse.pdu.decoder import BUFFER_SIZE, SPARE_BYTES

pytestmark = pytest.mark.anyio

BIG = Limits(max_pdu_length=16 * 1024 * 1024)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def pdata_stream(data: bytes, pdu_size: int, cid: int = 1) -> bytes:
    """``data`` as dataset PDVs, one per P-DATA-TF of at most ``pdu_size`` data bytes
    (PS3.8 9.3.5: PDU header, PDV item length, context ID, message control header)."""
    out = bytearray()
    for at in range(0, len(data), pdu_size):
        part = data[at : at + pdu_size]
        last = at + pdu_size >= len(data)
        item = struct.pack(">IBB", len(part) + 2, cid, 0x02 if last else 0x00) + part
        out += struct.pack(">BBI", 0x04, 0, len(item)) + item
    return bytes(out)


def names(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


def slow_writes(monkeypatch: pytest.MonkeyPatch, delay: float) -> None:
    """The writer thread lags: views stay pending while the decoder reads on."""
    real = syncbatch.write_all

    def lagging(fp: syncbatch.Writable, *parts: bytes | bytearray | memoryview) -> None:
        if threading.current_thread() is not threading.main_thread():
            time.sleep(delay)
        real(fp, *parts)

    monkeypatch.setattr(filesink, "write_all", lagging)


async def decode_into(sink: FileSink, stream: bytes, reads: list[int]) -> PDUDecoder:
    """Read ``stream`` into a decoder's own buffer (reads cycled, as the transport does),
    every dataset PDV to ``sink`` (write_nowait first, as the channel does)."""
    decoder = PDUDecoder(BIG)
    pos = i = 0
    while pos < len(stream):
        want = reads[i % len(reads)]
        view = decoder.get_buffer(want)
        n = min(len(view), want, len(stream) - pos)
        view[:n] = stream[pos : pos + n]
        del view
        decoder.buffer_updated(n)
        pos += n
        i += 1
        while (pdu := decoder.next_pdu()) is not None:
            assert isinstance(pdu, PDataTF)
            for pdv in pdu.pdvs:
                data = pdv.data
                assert isinstance(data, memoryview)
                if not sink.write_nowait(data):
                    await sink.write(data)
    assert decoder.buffered_bytes == 0
    return decoder


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    size=st.integers(1 << 20, 5 << 20),
    pdu_size=st.sampled_from([16_383, 65_536, 300_001, 1 << 20, 4 << 20]),
    reads=st.lists(st.sampled_from([4097, 65_536, 1 << 20, 3 << 20]), min_size=1, max_size=3),
    write_size=st.sampled_from([64 * 1024, 1 << 20]),
    seed=st.integers(0, 1000),
)
def test_decoded_datasets_reach_the_file_byte_for_byte(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    size: int,
    pdu_size: int,
    reads: list[int],
    write_size: int,
    seed: int,
) -> None:
    """Odd sizes, PDUs across receive buffer boundaries, PDVs handed out in pieces, a
    lagging writer: the file is the prefix and then exactly the dataset."""
    slow_writes(monkeypatch, 0.002)
    data = random.Random(seed).randbytes(size)
    path = tmp_path / f"{seed}-{size}.part"

    async def run() -> None:
        sink = FileSink(
            path, prefix=b"META", limiter=anyio.CapacityLimiter(2), durable=False,
            write_size=write_size, queue_depth=2, hold=256 * 1024, keep_head=256 * 1024,
        )  # fmt: skip
        await decode_into(sink, pdata_stream(data, pdu_size), reads)
        assert sink.head_start(1000) == data[:1000]
        await sink.close()
        assert sink.error is None and sink.size == size

    anyio.run(run)
    assert path.read_bytes() == b"META" + data
    path.unlink()


async def test_several_sinks_at_once_each_get_their_own_bytes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Many associations: one decoder and one deferred sink each, streaming concurrently
    through the shared spare buffers and writer threads."""
    slow_writes(monkeypatch, 0.001)
    sizes = [(1 << 20) + 1, 3 * (1 << 20) - 7, 2 * (1 << 20) + 12_345, 4 << 20, 777_777, 5_000]
    datas = [random.Random(n).randbytes(s) for n, s in enumerate(sizes)]

    async def one(i: int, data: bytes) -> None:
        sink = FileSink(
            tmp_path / f".{i}.part", limiter=anyio.CapacityLimiter(8), durable=False,
            queue_depth=2, hold=256 * 1024, keep_head=256 * 1024, defer_finish=True,
        )  # fmt: skip
        stream = pdata_stream(data, [16_384, 131_072, 1 << 20][i % 3] + i)
        reads = [65_536 + i, 1 << 20]
        # Interleave the associations: a checkpoint between PDU batches.
        decoder = PDUDecoder(BIG)
        pos = 0
        while pos < len(stream):
            view = decoder.get_buffer(reads[pos % 2])
            n = min(len(view), len(stream) - pos, reads[pos % 2])
            view[:n] = stream[pos : pos + n]
            del view
            decoder.buffer_updated(n)
            pos += n
            while (pdu := decoder.next_pdu()) is not None:
                assert isinstance(pdu, PDataTF)
                for pdv in pdu.pdvs:
                    assert isinstance(pdv.data, memoryview)
                    if not sink.write_nowait(pdv.data):
                        await sink.write(pdv.data)
            await anyio.lowlevel.checkpoint()
        if not sink.close_nowait():
            await sink.close()
        assert await sink.finish(lambda s, b: s.commit_sync(tmp_path / f"{i}.dcm", batch=b))

    async with anyio.create_task_group() as tg:
        for i, data in enumerate(datas):
            tg.start_soon(one, i, data)
    for i, data in enumerate(datas):
        assert (tmp_path / f"{i}.dcm").read_bytes() == data
    assert names(tmp_path) == sorted(f"{i}.dcm" for i in range(6))


@pytest.mark.parametrize("read", [1 << 20, 128 * 1024])
def test_a_viewed_buffer_is_never_overwritten_and_is_reused_once_free(read: int) -> None:
    """The decoder moves on to another buffer while views of the old one remain, and
    writes into a (large or mid-sized) buffer again only once all its views are gone."""
    decoder_module._SPARE.clear()
    data = random.Random(7).randbytes(12 << 20)
    stream = pdata_stream(data, 12 << 20)  # one P-DATA-TF, handed out in pieces
    decoder = PDUDecoder(BIG)
    kept: list[tuple[memoryview, bytes]] = []
    pos = 0
    got = 0
    allocations_after: list[int] = []
    while pos < len(stream):
        view = decoder.get_buffer(read)
        n = min(len(view), read, len(stream) - pos)
        view[:n] = stream[pos : pos + n]
        del view
        decoder.buffer_updated(n)
        pos += n
        while (pdu := decoder.next_pdu()) is not None:
            assert isinstance(pdu, PDataTF)
            for pdv in pdu.pdvs:
                assert isinstance(pdv.data, memoryview)
                expected = data[got : got + len(pdv.data)]
                got += len(pdv.data)
                if got <= 6 << 20:
                    kept.append((pdv.data, expected))  # the first half: views kept
        if got > 6 << 20 and kept:
            # Every kept view still shows the bytes it was handed out with.
            assert all(bytes(v) == e for v, e in kept)
            kept.clear()  # the views are gone: their buffers may be reused
        allocations_after.append(decoder.buffers_allocated)
    assert got == len(data)
    # While views were kept, new buffers were allocated; once they were released, the
    # decoder went on with reused ones (a few at most are new).
    half = len(allocations_after) // 2
    assert allocations_after[half] >= 3
    assert allocations_after[-1] - allocations_after[half + 2] <= 2


def test_spare_buffers_stay_within_their_bound() -> None:
    decoder_module._SPARE.clear()
    for _ in range(40):
        decoder_module._spare(bytearray(2 * BUFFER_SIZE))
        assert sum(len(b) for b in decoder_module._SPARE) <= SPARE_BYTES
    assert decoder_module._SPARE
    decoder_module._SPARE.clear()


async def test_discarding_with_views_pending_leaves_no_file_and_frees_the_views(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An aborted association (ROBUSTNESS 47): the sink is discarded while groups of views
    wait for the (lagging) writer; no file stays and no view of the receive buffer is kept."""
    slow_writes(monkeypatch, 0.01)
    buffer = bytearray(os.urandom(3 << 20))
    path = tmp_path / ".t.part"
    sink = FileSink(path, limiter=anyio.CapacityLimiter(2), write_size=64 * 1024, queue_depth=2)
    with memoryview(buffer) as whole:
        for at in range(0, len(buffer) - 100_000, 100_000):
            await sink.write(whole[at : at + 100_000])
    await sink.discard()
    assert sink.state is SinkState.DISCARDED
    assert not path.exists() and names(tmp_path) == []
    buffer.pop()  # raises BufferError if a view of it were still held anywhere


async def test_a_held_dataset_keeps_long_fragments_as_views_and_writes_them_whole(
    tmp_path: Path,
) -> None:
    """Below the first hand-over a dataset is held whole: its head copied, later long
    fragments as views, short ones copied; written in one go at finish."""
    data = os.urandom(900_001)
    buffer = bytearray(data)
    sink = FileSink(
        tmp_path / ".h.part", limiter=anyio.CapacityLimiter(2), prefix=b"P",
        write_size=1 << 20, hold=256 * 1024, keep_head=256 * 1024, defer_finish=True,
    )  # fmt: skip
    cuts = [0, 100, 300_000, 300_010, 500_000, 500_007, 700_000, 900_001]
    with memoryview(buffer) as whole:
        for a, b in itertools.pairwise(cuts):
            assert sink.write_nowait(whole[a:b])
    assert sink.whole and sink.head_start(300_000) == data[: 256 * 1024]
    assert sink.close_nowait()
    target = tmp_path / "h.dcm"
    assert await sink.finish(lambda s, b: s.commit_sync(target, batch=b))
    assert target.read_bytes() == b"P" + data
    buffer.pop()  # no view kept after the file was written


def test_write_all_takes_more_buffers_than_one_writev_allows(tmp_path: Path) -> None:
    parts = [os.urandom(n % 7 + 1) for n in range(3000)]
    path = tmp_path / "many"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | getattr(os, "O_BINARY", 0), 0o600)
    fp = syncbatch.SinkFile(fd)
    try:
        syncbatch.write_all(fp, *parts)
    finally:
        fp.close()
    assert path.read_bytes() == b"".join(parts)


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_backpressure_waits_for_the_writer_and_keeps_every_byte(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, backend: str
) -> None:
    """A full queue in front of a lagging writer: the reader waits for room (on asyncio
    woken by the writer thread itself, no worker-thread trip; on trio in a worker thread)
    and every byte arrives in order."""
    slow_writes(monkeypatch, 0.003)
    trips = [0]
    real_run_sync = anyio.to_thread.run_sync

    async def counting(*args: object, **kwargs: object) -> object:
        trips[0] += 1
        return await real_run_sync(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(filesink.anyio.to_thread, "run_sync", counting)
    data = random.Random(3).randbytes(40 * 20_000 + 3)
    path = tmp_path / f"{backend}.part"

    async def run() -> None:
        sink = FileSink(
            path, limiter=anyio.CapacityLimiter(2), durable=False, write_size=20_000,
            queue_depth=1,
        )  # fmt: skip
        with memoryview(data) as whole:
            for at in range(0, len(data), 20_000):
                await sink.write(whole[at : at + 20_000])
        await sink.close()
        assert sink.error is None

    anyio.run(run, backend=backend)
    assert path.read_bytes() == data
    if backend == "asyncio":
        assert trips[0] == 1  # close() waiting for the writer: the only thread trip
    else:
        assert trips[0] > 10  # the queue was full most of the time
