"""``close_nowait``: a sink closed from the transport's read callback when that needs no
waiting, so the channel delivers a complete message without its reader task.

Contract: True means closed exactly as ``close()`` would have (same bytes kept, same state);
False means nothing changed and the caller awaits ``close()``.
"""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from aiodimse.net.filesink import FileSink, SinkState
from aiodimse.net.sinks import MemorySink

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def _sink(root: Path, *, defer_finish: bool = True, write_size: int = 64 * 1024) -> FileSink:
    return FileSink(
        root / ".t.part",
        limiter=anyio.CapacityLimiter(2),
        defer_finish=defer_finish,
        write_size=write_size,
        prefix=b"META",
    )


async def test_a_deferred_dataset_held_in_memory_closes_at_once(tmp_path: Path) -> None:
    sink = _sink(tmp_path)
    assert sink.write_nowait(memoryview(b"abcd"))
    assert sink.close_nowait()
    assert sink.state is SinkState.CLOSED
    assert sink.close_nowait()  # again: already closed
    await sink.close()  # and close() after it does nothing more
    assert await sink.finish(lambda s, b: s.commit_sync(tmp_path / "x.dcm", batch=b))
    assert (tmp_path / "x.dcm").read_bytes() == b"METAabcd"


async def test_close_nowait_then_finish_equals_close_then_finish(tmp_path: Path) -> None:
    data = bytes(range(256)) * 40
    results = []
    for name, nowait in (("a.dcm", True), ("b.dcm", False)):
        sink = _sink(tmp_path)
        assert sink.write_nowait(memoryview(data))
        if nowait:
            assert sink.close_nowait()
        else:
            await sink.close()
        assert await sink.finish(lambda s, b, n=name: s.commit_sync(tmp_path / n, batch=b))
        results.append((tmp_path / name).read_bytes())
    assert results[0] == results[1] == b"META" + data


async def test_a_streaming_sink_is_left_to_close(tmp_path: Path) -> None:
    size = 64 * 1024
    sink = _sink(tmp_path, write_size=size)
    await sink.write(memoryview(b"x" * (3 * size)))  # past the first hand-over: streaming
    assert not sink.close_nowait()
    assert sink.state is SinkState.OPEN  # nothing changed
    await sink.close()
    assert sink.state is SinkState.CLOSED
    await sink.discard()


async def test_a_sink_writing_at_close_is_left_to_close(tmp_path: Path) -> None:
    sink = _sink(tmp_path, defer_finish=False)
    assert sink.write_nowait(memoryview(b"abcd"))
    assert not sink.close_nowait()  # close() writes the file in a worker thread
    assert sink.state is SinkState.OPEN
    await sink.close()
    assert sink.state is SinkState.CLOSED
    await sink.discard()


def test_memory_sink_closes_at_once() -> None:
    assert MemorySink(10).close_nowait()
