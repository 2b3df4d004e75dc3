"""FileSink.head: the first ``keep_head`` bytes as received (before the leading skip), on
every path (in memory, written whole, deferred, writer thread), without a second copy of a
dataset written in one piece."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aiodimse.net.filesink import FileSink, SyncBatch

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def _skip_abc(head: bytes) -> int:
    return 3 if head.startswith(b"ABC") else 0


async def _feed(sink: FileSink, data: bytes, chunk: int) -> None:
    for i in range(0, len(data), chunk):
        await sink.write(memoryview(data)[i : i + chunk])


@pytest.mark.parametrize("mode", ["memory", "whole", "deferred", "thread"])
@pytest.mark.parametrize("lead", [b"ABC", b""])
async def test_head_is_the_received_prefix(tmp_path: Path, mode: str, lead: bytes) -> None:
    size = {"memory": 500, "whole": 3000, "deferred": 3000, "thread": 20_000}[mode]
    data = lead + bytes(range(256)) * (size // 256 + 1)
    data = data[:size]
    sink = FileSink(
        tmp_path / "t.part",
        limiter=anyio.CapacityLimiter(2),
        durable=False,
        write_size=4096,
        hold=64,
        keep_head=1000,
        leading_skip=_skip_abc,
        in_memory_max=1000 if mode == "memory" else 0,
        defer_finish=mode == "deferred",
    )
    await _feed(sink, data, 700)
    assert sink.head == data[:1000]  # while receiving too
    await sink.close()
    assert sink.skipped == len(lead)
    if mode == "deferred":
        heads: list[bytes] = []

        def then(s: FileSink, _batch: SyncBatch) -> None:
            heads.append(s.head)  # what the storage SCP's check reads, in the worker thread

        await sink.finish(then)
        assert heads == [data[:1000]]
    assert sink.head == data[:1000]
    if mode == "memory":
        assert sink.data == data[len(lead) :]
    else:
        assert (tmp_path / "t.part").read_bytes() == data[len(lead) :]
        await sink.commit(tmp_path / "final")
        assert (tmp_path / "final").read_bytes() == data[len(lead) :]


async def test_no_second_copy_of_a_small_dataset(tmp_path: Path) -> None:
    """A dataset written whole keeps one buffer; its head is read from it."""
    sink = FileSink(
        tmp_path / "t.part", limiter=anyio.CapacityLimiter(2), durable=False, defer_finish=True
    )
    await sink.write(memoryview(b"x" * 50_000))
    await sink.close()
    assert sink._head is None  # no snapshot
    assert len(sink.head) == 50_000


@settings(max_examples=30, deadline=None)
@given(
    size=st.integers(0, 9000),
    keep=st.integers(0, 3000),
    chunk=st.integers(1, 2500),
    lead=st.sampled_from([b"", b"ABC"]),
)
def test_head_property(tmp_path_factory: pytest.TempPathFactory, size: int, keep: int,
                       chunk: int, lead: bytes) -> None:  # fmt: skip
    data = (lead + b"0123456789" * 1000)[:size]
    path = tmp_path_factory.mktemp("h") / "t.part"

    async def main() -> tuple[bytes, bytes]:
        sink = FileSink(
            path, limiter=anyio.CapacityLimiter(2), durable=False, write_size=4096,
            hold=16, keep_head=keep, leading_skip=_skip_abc,
        )  # fmt: skip
        await _feed(sink, data, chunk)
        await sink.close()
        return sink.head, path.read_bytes()

    head, written = anyio.run(main)
    skipped = 3 if data.startswith(b"ABC") else 0
    assert head == data[:keep]
    assert written == data[skipped:]
