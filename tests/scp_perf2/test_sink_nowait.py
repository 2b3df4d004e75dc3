"""``FileSink.write_nowait`` and the ``str`` fast path of ``FileSink.commit_sync``.

Contract: ``write_nowait`` takes a fragment only when no waiting is needed (the dataset is
still held in memory below the first hand-over to the writer thread) and otherwise takes
nothing, so the caller's ``write`` goes on from exactly that byte; mixing the two never
loses, doubles or reorders a byte. ``commit_sync(first=<str>)`` links a nameless file at
that name and, when durable, has its directory fsynced (by the batch) before it returns.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import anyio
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aiodimse.net.filesink import AnonymousFiles, FileSink, SinkState, SyncBatch

pytestmark = pytest.mark.anyio

linux_only = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="O_TMPFILE and /proc/self/fd are Linux's"
)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def _names(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


def _sink(root: Path, **kw: object) -> FileSink:
    return FileSink(
        root / ".t.part",
        limiter=anyio.CapacityLimiter(2),
        defer_finish=True,
        **kw,  # type: ignore[arg-type]
    )


async def _feed(sink: FileSink, chunks: list[bytes]) -> list[bool]:
    """Each chunk to write_nowait first, to write when it is refused (the channel's way)."""
    taken = []
    for chunk in chunks:
        ok = sink.write_nowait(memoryview(chunk))
        taken.append(ok)
        if not ok:
            await sink.write(memoryview(chunk))
    return taken


async def _finish(sink: FileSink, target: Path) -> bool:
    await sink.close()
    return await sink.finish(lambda s, b: s.commit_sync(target, batch=b))


async def test_small_fragments_are_taken_at_once_and_written_whole(tmp_path: Path) -> None:
    sink = _sink(tmp_path, prefix=b"META", write_size=64 * 1024)
    taken = await _feed(sink, [b"ab", b"cd", b"e" * 1000])
    assert taken == [True, True, True]
    assert sink.size == 1004 and sink.whole
    assert await _finish(sink, tmp_path / "x.dcm")
    assert (tmp_path / "x.dcm").read_bytes() == b"METAabcd" + b"e" * 1000
    assert sink.state is SinkState.COMMITTED


async def test_a_fragment_reaching_the_first_hand_over_is_refused_and_written(
    tmp_path: Path,
) -> None:
    size = 64 * 1024
    sink = _sink(tmp_path, write_size=size, queue_depth=1)
    first, second, third = b"a" * (size - 10), b"b" * 10, b"c" * 5
    taken = await _feed(sink, [first, second, third])
    # The second fragment fills the first hand-over: refused (write starts the writer);
    # afterwards the sink streams: refused too.
    assert taken == [True, False, False]
    assert not sink.whole and sink.size == size + 5
    assert await _finish(sink, tmp_path / "y.dcm")
    assert (tmp_path / "y.dcm").read_bytes() == first + second + third


async def test_closed_or_discarded_sinks_take_and_ignore(tmp_path: Path) -> None:
    sink = _sink(tmp_path)
    await sink.discard()
    assert sink.write_nowait(memoryview(b"late")) is True
    assert sink.size == 0 and _names(tmp_path) == []


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    sizes=st.lists(st.integers(min_value=1, max_value=40_000), min_size=1, max_size=8),
    in_memory=st.booleans(),
)
def test_any_mix_of_nowait_and_write_keeps_every_byte_in_order(
    tmp_path: Path, sizes: list[int], in_memory: bool
) -> None:
    chunks = [bytes([i % 251]) * n for i, n in enumerate(sizes)]
    data = b"".join(chunks)
    target = tmp_path / f"{len(data)}-{in_memory}.dcm"

    async def run() -> None:
        sink = _sink(
            tmp_path,
            prefix=b"P",
            write_size=64 * 1024,
            queue_depth=1,
            in_memory_max=30_000 if in_memory else 0,
        )
        await _feed(sink, chunks)
        assert sink.size == len(data)
        await sink.close()
        if sink.data is not None:  # kept in memory
            assert in_memory and sink.data == data
            await sink.discard()
            return
        assert await sink.finish(lambda s, b: s.commit_sync(target, batch=b))
        assert target.read_bytes() == b"P" + data
        target.unlink()

    anyio.run(run)
    assert [p for p in tmp_path.iterdir() if p.is_file()] == []


@linux_only
@pytest.mark.parametrize("durable", [False, True])
async def test_commit_sync_links_a_str_first_name_and_syncs_its_directory(
    tmp_path: Path, durable: bool
) -> None:
    pool = AnonymousFiles(tmp_path)
    try:
        sink = _sink(tmp_path, anonymous=pool, durable=durable, prefix=b"M")
        await sink.write(memoryview(b"data"))
        await sink.close()
        first = os.path.join(tmp_path, "") + "1.2.3.dcm"
        batches: list[SyncBatch] = []

        def keep(s: FileSink, batch: SyncBatch) -> bool:
            batches.append(batch)
            return s.commit_sync(tmp_path / "unused.dcm", batch=batch, first=first)

        assert await sink.finish(keep)
        assert _names(tmp_path) == ["1.2.3.dcm"]
        assert (tmp_path / "1.2.3.dcm").read_bytes() == b"Mdata"
        assert sink.state is SinkState.COMMITTED
        assert list(batches[0].directories) == ([tmp_path] if durable else [])
    finally:
        pool.close()


@linux_only
async def test_commit_sync_str_first_name_taken_falls_back_to_check(tmp_path: Path) -> None:
    """A name that exists is never replaced by the quick link: ``check`` decides."""
    pool = AnonymousFiles(tmp_path)
    try:
        (tmp_path / "1.2.3.dcm").write_bytes(b"old")
        sink = _sink(tmp_path, anonymous=pool, prefix=b"M")
        await sink.write(memoryview(b"new"))
        await sink.close()
        first = os.path.join(tmp_path, "") + "1.2.3.dcm"
        checked: list[bool] = []

        def check() -> Path:
            checked.append(True)
            return tmp_path / "1.2.3.dcm"

        assert await sink.finish(
            lambda s, b: s.commit_sync(first, batch=b, first=first, check=check)
        )
        assert checked == [True]
        assert (tmp_path / "1.2.3.dcm").read_bytes() == b"Mnew"  # REPLACE, atomically
        assert _names(tmp_path) == ["1.2.3.dcm"]
    finally:
        pool.close()


@pytest.mark.parametrize(("durable", "workers"), [(True, 2), (False, 1)])
def test_finishing_threads_overlap_fsyncs_only_when_durable(
    tmp_path: Path, durable: bool, workers: int
) -> None:
    """Two finishing threads overlap one trip's writes with another's fsync waits; without
    fsync one thread takes every instance completed meanwhile in one trip."""
    from aiodimse.services.storage_scp import StorageOptions, StorageSCP

    scp = StorageSCP(StorageOptions(output_directory=tmp_path, durable=durable))
    assert scp.batcher()._workers == workers
    assert (
        StorageSCP(StorageOptions(output_directory=tmp_path, durable=durable, io_threads=1))
        .batcher()
        ._workers
        == 1
    )
