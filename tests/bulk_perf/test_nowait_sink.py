"""Data PDVs for a sink that takes data without waiting (``write_nowait``) are consumed in the
transport's read callback (aiodimse.net.channel, asyncio): the reader task sees the command
and the end of the message, not every read. The dataset still arrives whole and in order,
also when the sink refuses some fragments (those go through the reader's ``write``).
"""

from __future__ import annotations

import random
from collections.abc import Iterator

import anyio
import anyio.lowlevel
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian

import aiodimse
from aiodimse.dimse.assembler import DataFragment
from aiodimse.dimse.command_codec import encode_command
from aiodimse.dimse.messages import CStoreRQ
from aiodimse.net.channel import Channel
from aiodimse.pdu import PDV, PDataTF, encode_pdu
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


@pytest.mark.fd_callbacks  # the read callback exists where the loop has add_reader
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


# ------------------------------------------------------------------ any split of the bytes


def _store_pdus(cid: int, data: bytes, pdv_sizes: list[int]) -> bytes:
    """A C-STORE-RQ as raw P-DATA-TF bytes: the command, then ``data`` in PDVs of the given
    (even, cycled) sizes, one PDV per PDU."""
    rq = CStoreRQ(message_id=7, affected_sop_class_uid=CT, affected_sop_instance_uid="1.2.3.9")
    out = [encode_pdu(PDataTF(pdvs=(PDV(context_id=cid, is_command=True, is_last=True,
                                         data=encode_command(rq)),)))]  # fmt: skip
    pos = i = 0
    while pos < len(data):
        n = min(pdv_sizes[i % len(pdv_sizes)], len(data) - pos)
        last = pos + n == len(data)
        pdv = PDV(context_id=cid, is_command=False, is_last=last, data=data[pos : pos + n])
        out.append(encode_pdu(PDataTF(pdvs=(pdv,))))
        pos += n
        i += 1
    return b"".join(out)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    size=st.integers(1, 700_000).map(lambda n: n * 2),
    pdv_sizes=st.lists(st.integers(1, 200_000).map(lambda n: n * 2), min_size=1, max_size=4),
    # Tiny writes (a header cut anywhere) mixed with bulk ones; one bulk write at least.
    writes=st.tuples(
        st.lists(st.one_of(st.integers(1, 64), st.integers(4096, 400_000)), max_size=5),
        st.integers(4096, 400_000),
    ).map(lambda t: [*t[0], t[1]]),
    seed=st.integers(0, 2**16),
)
def test_any_split_of_the_bytes_reaches_the_sink_whole_and_in_order(
    size: int, pdv_sizes: list[int], writes: list[int], seed: int
) -> None:
    """The sender's bytes cut into writes of any size, with a trip through the event loop
    between writes: reads of the SCP see different splits (fast path and reader in turn);
    the sink sees the dataset exactly once, in order."""
    data = random.Random(seed).randbytes(size)
    got: list[bytes] = []

    async def main() -> None:
        done = anyio.Event()

        def take(data_: memoryview) -> None:
            got.append(bytes(data_))
            if sum(map(len, got)) >= size:
                done.set()

        class Sink(storage_scp._NullSink):
            def write_nowait(self, data_: memoryview) -> bool:
                take(data_)
                return True

            async def write(self, data_: memoryview) -> None:
                take(data_)

        mp = pytest.MonkeyPatch()
        mp.setattr(storage_scp, "_NullSink", Sink)
        try:
            scp = aiodimse.AE("STORE_SCP")
            enable_storage(scp, StorageOptions(ignore=True))
            async with scp.serve("127.0.0.1", 0) as server:
                async with aiodimse.AE("SCU").associate(
                    "127.0.0.1", server.port, contexts=contexts_for([CT], ExplicitVRLittleEndian)
                ) as assoc:
                    cid = assoc.context_for(CT)
                    sock = assoc._channel.transport.raw_socket
                    assert sock is not None
                    raw = memoryview(_store_pdus(cid, data, pdv_sizes))
                    pos = i = 0
                    while pos < len(raw):
                        n = writes[i % len(writes)]
                        await anyio.wait_writable(sock)
                        pos += sock.send(raw[pos : pos + n])
                        i += 1
                        await anyio.lowlevel.checkpoint()
                    with anyio.fail_after(10):
                        await done.wait()
        finally:
            mp.undo()

    anyio.run(main)
    assert b"".join(got) == data
