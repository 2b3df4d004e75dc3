"""The batch read-ahead of files sent as regions (``os.sendfile``): opened in few trips.

Files whose datasets go as file regions are only opened ahead of their turn (nothing read):
many per worker-thread trip, at most ``READ_AHEAD_OPEN_REGIONS`` held open ahead, every one
closed at the end (also when the batch stops early); what arrives is byte-identical to the
files' datasets.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import BinaryIO

import pytest
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian

import aiodimse
from aiodimse.net import filesource
from aiodimse.net.filesource import DicomFileInfo, Prefetched, read_file_info
from aiodimse.net.sendfile import SENDFILE_SUPPORTED
from aiodimse.services import store_batch
from aiodimse.services.storage_contexts import propose_contexts
from tests.storage.storage_scu_support import RecordingSCP, contexts_for, store_many_to
from tests.support import datagen

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.fd_callbacks,  # file regions go by sendfile on the native transport
    pytest.mark.skipif(not SENDFILE_SUPPORTED, reason="no os.sendfile + MSG_MORE"),
]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
def region_files(tmp_path_factory: pytest.TempPathFactory) -> list[DicomFileInfo]:
    directory = tmp_path_factory.mktemp("h1regions")
    return [
        read_file_info(datagen.write_streamed(directory, 3 << 19, seed=s, filename=f"{s}.dcm").path)
        for s in range(12)
    ]


def _dataset(info: DicomFileInfo) -> bytes:
    return info.path.read_bytes()[info.dataset_offset :]


class _Trips:
    """Wraps ``prefetch_datasets``: the heads asked per trip, the files opened, and the most
    held open at once (counted when a trip returns)."""

    def __init__(self) -> None:
        self.heads: list[list[int]] = []
        self.files: list[BinaryIO] = []
        self.most_open = 0

    def __call__(self, infos: Sequence[DicomFileInfo], *, heads: Sequence[int]) -> list[Prefetched]:
        got = filesource.prefetch_datasets(infos, heads=heads)
        self.heads.append(list(heads))
        self.files.extend(p.fp for p in got if p.fp is not None)
        self.most_open = max(self.most_open, sum(not fp.closed for fp in self.files))
        return got


def _scp(infos: list[DicomFileInfo], **kw: object) -> RecordingSCP:
    ts = (ExplicitVRLittleEndian, ImplicitVRLittleEndian)
    sops = [i.sop_class_uid for i in infos]
    return RecordingSCP(contexts=contexts_for(sops, ts), **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize("window", [1, 8])
async def test_region_files_are_opened_many_per_trip_and_bounded(
    region_files: list[DicomFileInfo], window: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    trips = _Trips()
    monkeypatch.setattr(store_batch, "prefetch_datasets", trips)
    files = region_files * 3  # 36 instances
    scp = _scp(files)
    results = await store_many_to(scp, files, window=window)
    assert all(r.ok for r in results), [r.describe() for r in results]
    # Only opened (every head 0), each file once, in trips of at least half the cap (the
    # last one may be shorter): 36 files, cap 16 -> at most 1 + 36 // 8 trips.
    assert all(n == 0 for heads in trips.heads for n in heads)
    assert sum(len(h) for h in trips.heads) == len(files)
    cap = store_batch.READ_AHEAD_OPEN_REGIONS
    assert len(trips.heads) <= 1 + len(files) // (cap // 2)
    assert trips.most_open <= cap + window  # held ahead, and one per outstanding request
    assert all(fp.closed for fp in trips.files)
    expect = sorted(hashlib.sha256(_dataset(i)).hexdigest() for i in files)
    assert sorted(a.sha256 for a in scp.arrived) == expect


async def test_a_stopped_batch_closes_every_region_file_opened_ahead(
    region_files: list[DicomFileInfo], monkeypatch: pytest.MonkeyPatch
) -> None:
    trips = _Trips()
    monkeypatch.setattr(store_batch, "prefetch_datasets", trips)

    async def refuse(rq: object) -> tuple[int, str | None]:
        return 0xA700, "full"

    files = region_files * 2
    scp = _scp(files, status_for=refuse)
    scu = aiodimse.AE("SCU", max_operations_invoked=4)
    async with scp.ae.serve("127.0.0.1", 0) as server:
        async with scu.associate(
            "127.0.0.1", server.port, contexts=propose_contexts(files)
        ) as assoc:
            results = await assoc.store_many(files, continue_on_error=False)
    assert results[0].status == 0xA700
    assert any(not r.sent for r in results)
    assert len(trips.files) > 1, "files should have been opened ahead"
    assert all(fp.closed for fp in trips.files)
