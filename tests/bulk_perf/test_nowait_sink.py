"""Data PDVs for a sink that takes data without waiting (``write_nowait``) are consumed in the
transport's read callback (aiodimse.net.channel, asyncio): the reader task sees the command
and the end of the message, not every read. The dataset still arrives whole and in order,
also when the sink refuses some fragments (those go through the reader's ``write``).
"""

from __future__ import annotations

import random
from collections.abc import Iterator

import pytest
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian

import aiodimse
from aiodimse.dimse.assembler import DataFragment
from aiodimse.net.channel import Channel
from aiodimse.services import storage_scp
from aiodimse.services.storage_scp import StorageOptions, enable_storage
from tests.storage.scu_helper import contexts_for, store_bytes

pytestmark = pytest.mark.anyio

CT = str(CTImageStorage)
#: Several reads of the transport, several pieces of the streamed P-DATA-TF.
SIZE = 3 * 1024 * 1024 + 1234


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # the read callback exists on asyncio only


@pytest.fixture
def reader_fragments(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """Sizes of the data fragments that went through the reader task."""
    seen: list[int] = []
    original = Channel._handle_assembled

    async def spy(self: Channel, ev: object) -> None:
        if isinstance(ev, DataFragment):
            seen.append(len(ev.data))
        await original(self, ev)

    monkeypatch.setattr(Channel, "_handle_assembled", spy)
    yield seen


async def _store(data: bytes) -> storage_scp.StorageStats:
    scp = aiodimse.AE("STORE_SCP")
    storage = enable_storage(scp, StorageOptions(ignore=True))
    async with scp.serve("127.0.0.1", 0) as server:
        async with aiodimse.AE("SCU").associate(
            "127.0.0.1", server.port, contexts=contexts_for([CT], ExplicitVRLittleEndian)
        ) as assoc:
            for uid in ("1.2.3.1", "1.2.3.2"):
                rsp = await store_bytes(assoc, data, sop_class_uid=CT, sop_instance_uid=uid)
                assert rsp.status == 0
    return storage.stats


async def test_discarding_scp_consumes_data_without_the_reader(
    reader_fragments: list[int],
) -> None:
    data = random.Random(1).randbytes(SIZE)
    stats = await _store(data)
    assert stats.stored == 2 and stats.bytes_received == 2 * SIZE
    assert reader_fragments == []  # every fragment was taken in the read callback


async def test_refused_fragments_go_through_the_reader_in_order(
    reader_fragments: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A sink that takes every other fragment at once: the rest are awaited by the reader,
    and the sink sees the dataset in order."""
    got: list[bytes] = []
    calls = [0]

    def write_nowait(self: storage_scp._NullSink, data: memoryview) -> bool:
        calls[0] += 1
        if calls[0] % 2:
            return False
        got.append(bytes(data))
        self.size += len(data)
        return True

    async def write(self: storage_scp._NullSink, data: memoryview) -> None:
        got.append(bytes(data))
        self.size += len(data)

    monkeypatch.setattr(storage_scp._NullSink, "write_nowait", write_nowait)
    monkeypatch.setattr(storage_scp._NullSink, "write", write)
    data = random.Random(2).randbytes(SIZE)
    stats = await _store(data)
    assert stats.bytes_received == 2 * SIZE
    assert b"".join(got) == data + data
    assert reader_fragments  # the refused ones (and any after them) went to the reader
    assert sum(reader_fragments) < 2 * SIZE  # ... and not all of them


async def test_a_sink_without_write_nowait_gets_every_fragment_from_the_reader(
    reader_fragments: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delattr(storage_scp._NullSink, "write_nowait")
    data = random.Random(3).randbytes(SIZE)
    stats = await _store(data)
    assert stats.bytes_received == 2 * SIZE
    assert sum(reader_fragments) == 2 * SIZE
