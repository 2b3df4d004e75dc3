"""ROBUSTNESS 41: a C-FIND producing a million matches while the peer aborts halfway."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

import anyio
import psutil
import pytest
from pydicom.dataset import Dataset

import aiodimse
from aiodimse import QueryLevel, QueryModel
from aiodimse.services.qr_models import find_contexts

pytestmark = pytest.mark.anyio

MILLION = 1_000_000


class Million:
    def __init__(self) -> None:
        self.produced = 0
        self.closed = anyio.Event()

    async def find(
        self, identifier: Dataset, model: QueryModel, level: QueryLevel | None
    ) -> AsyncIterator[Dataset]:
        try:
            for i in range(MILLION):
                ds = Dataset()
                ds.PatientID = f"P{i:07d}"
                ds.PatientName = "Müller^Jürgen"
                ds.ImageComments = "x" * 10_000  # LT: 10 KB a response fills buffers soon
                self.produced += 1
                yield ds
        finally:
            self.closed.set()


async def test_peer_abort_stops_the_producer_and_memory_stays_flat() -> None:
    backend = Million()
    ae = aiodimse.AE("FIND_SCP")
    scp = aiodimse.enable_find(ae, backend)
    rss = psutil.Process(os.getpid()).memory_info
    async with ae.serve("127.0.0.1", 0) as server:
        async with aiodimse.AE("SCU").associate(
            "127.0.0.1", server.port, contexts=find_contexts()
        ) as assoc:
            base = rss().rss
            async with assoc.find({"PatientID": ""}) as results:
                async for _ in results:
                    if results.count == 200:
                        break  # stop reading; the SCP runs into backpressure
                # Stall (no C-CANCEL yet) until the SCP is blocked on a full TCP window.
                stalled_at = -1
                with anyio.fail_after(10):
                    while backend.produced != stalled_at:
                        stalled_at = backend.produced
                        await anyio.sleep(0.25)
                # Backpressure: the producer stopped while nobody read, far from a million
                # (our queue of 64 responses plus ~10 MB of socket buffers).
                assert stalled_at < 200 + 3_000
                await assoc.abort()  # the peer (us) aborts halfway
                with anyio.fail_after(2):
                    await backend.closed.wait()  # the producer stopped promptly
        grown = rss().rss - base
    assert backend.produced == stalled_at
    assert grown < 64 * 1024 * 1024, f"RSS grew {grown / 2**20:.1f} MiB"
    assert scp.operations == 1


def test_deep_nesting_is_a_typed_error() -> None:
    """ROBUSTNESS 28: an identifier nested 100,000 deep decodes to IdentifierError."""
    from aiodimse.services.qr_models import IdentifierError, decode_identifier

    # (0008,1115) ReferencedSeriesSequence, undefined length, implicit VR LE, nested items.
    open_seq = b"\x08\x00\x15\x11\xff\xff\xff\xff" + b"\xfe\xff\x00\xe0\xff\xff\xff\xff"
    data = open_seq * 100_000
    with pytest.raises(IdentifierError) as info:
        decode_identifier(data, "1.2.840.10008.1.2")
    assert info.value.status == 0xC000


def _nest(depth: int, explicit: bool) -> bytes:
    """(0008,1115) sequences of defined length, each holding one item, ``depth`` deep.

    Built from the inside out with computed lengths (no quadratic concatenation).
    """
    import struct

    header = 12 if explicit else 8  # tag, [VR, reserved,] length (PS3.5 7.1.2, 7.1.3)
    item_len = 0
    parts = []
    for _ in range(depth):
        sq_len = 8 + item_len
        vr = b"SQ\x00\x00" if explicit else b""
        parts.append(
            b"\x08\x00\x15\x11" + vr + struct.pack("<I", sq_len)
            + b"\xfe\xff\x00\xe0" + struct.pack("<I", item_len)
        )  # fmt: skip
        item_len = header + sq_len
    return b"".join(reversed(parts))


@pytest.mark.parametrize("explicit", [True, False])
@pytest.mark.parametrize("depth", [64, 65, 1000, 100_000])
def test_defined_length_nesting_limit(depth: int, explicit: bool) -> None:
    from aiodimse.services.qr_models import IdentifierError, decode_identifier

    ts = "1.2.840.10008.1.2.1" if explicit else "1.2.840.10008.1.2"
    data = _nest(depth, explicit)
    if depth <= 64:
        ds = decode_identifier(data, ts)
        for _ in range(depth):
            ds = ds.ReferencedSeriesSequence[0]
        assert len(ds) == 0
    else:
        with pytest.raises(IdentifierError, match="nested deeper than 64"):
            decode_identifier(data, ts)


async def test_peer_that_stops_reading_is_aborted_after_timeouts_find() -> None:
    from aiodimse.config import Timeouts

    backend = Million()
    ae = aiodimse.AE("FIND_SCP", timeouts=Timeouts(find=0.5, abort=0.5))
    aiodimse.enable_find(ae, backend)
    async with ae.serve("127.0.0.1", 0) as server:
        async with aiodimse.AE("SCU").associate(
            "127.0.0.1", server.port, contexts=find_contexts()
        ) as assoc:
            with anyio.fail_after(10):
                async with assoc.find({"PatientID": ""}) as results:
                    async for _ in results:
                        await backend.closed.wait()  # we stop reading; the SCP gives up
                        break
            assert results.status is None  # no final response: the SCP aborted
            assert not assoc.is_established
        assert backend.produced < 3_000
