"""A dataset sent as file regions comes as one region per slice (one per PDU), whatever the
read chunk size (aiodimse.services.storage_scu): nothing to merge in the pacing, same bytes."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

import aiodimse
from aiodimse.dimse.file_region import FileRegion
from aiodimse.net.filesource import DEFAULT_CHUNK_SIZE, DicomFileInfo, read_file_info
from aiodimse.net.sendfile import SENDFILE_SUPPORTED
from aiodimse.services import storage_scu, store_regions
from aiodimse.services.storage_contexts import propose_contexts
from tests.storage.storage_scu_support import RecordingSCP, contexts_for
from tests.support import datagen

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.skipif(not SENDFILE_SUPPORTED, reason="no os.sendfile + MSG_MORE"),
]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.mark.fd_callbacks  # file regions go by sendfile on the native transport
@pytest.mark.parametrize("max_pdu", [4 << 20, 256 << 10])
async def test_regions_come_one_per_slice(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, max_pdu: int
) -> None:
    info: DicomFileInfo = read_file_info(
        datagen.write_streamed(tmp_path, (5 << 20) // 2, seed=3).path
    )
    assert info.dataset_length > 2 * DEFAULT_CHUNK_SIZE
    regions: list[int] = []
    real = store_regions.RegionReader

    class Spy(real):  # type: ignore[misc, valid-type]
        # The sender takes the chunks without awaiting (RegionReader is a plain iterator
        # too; its async iteration goes through the same __next__).
        def __next__(self) -> bytes | FileRegion:
            piece: bytes | FileRegion = super().__next__()
            if isinstance(piece, FileRegion):
                regions.append(len(piece))
            return piece

    monkeypatch.setattr(storage_scu, "RegionReader", Spy)
    scp = RecordingSCP(
        contexts=contexts_for([info.sop_class_uid], (info.transfer_syntax_uid,)), max_pdu=max_pdu
    )
    async with scp.ae.serve("127.0.0.1", 0) as server:
        async with aiodimse.AE("SCU").associate(
            "127.0.0.1", server.port, contexts=propose_contexts([info])
        ) as assoc:
            results = await assoc.store_many([info])
    assert all(r.ok for r in results), [r.describe() for r in results]
    assert sum(regions) == info.dataset_length
    slice_size = max(regions)
    # Whole slices but the last: one region per slice (per PDU when a slice is one PDU).
    assert all(n == slice_size for n in regions[:-1])
    assert len(regions) == -(-info.dataset_length // slice_size)
    if max_pdu == 4 << 20:
        assert len(regions) == 1  # the whole 2.5 MiB dataset: one region, one PDU
    data = info.path.read_bytes()[info.dataset_offset :]
    assert [a.sha256 for a in scp.arrived] == [hashlib.sha256(data).hexdigest()]
