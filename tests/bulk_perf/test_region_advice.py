"""Read-ahead advice for file regions only where the page cache lacks the window.

Advising (``posix_fadvise(WILLNEED)``) a cached 4 MiB window costs the sender ~60 us per
instance (the kernel walks every page); three one-byte ``preadv(RWF_NOWAIT)`` probes cost
~3 us and say whether the window is already there.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from aiodimse.net.filesource import DicomFileInfo, read_file_info
from aiodimse.services import store_regions
from aiodimse.services.store_regions import RegionReader
from tests.support import datagen

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.skipif(
        not (hasattr(os, "posix_fadvise") and hasattr(os, "RWF_NOWAIT")),
        reason="needs posix_fadvise and preadv(RWF_NOWAIT) (Linux)",
    ),
]


@pytest.fixture(scope="module")
def warm_file(tmp_path_factory: pytest.TempPathFactory) -> DicomFileInfo:
    gen = datagen.write_streamed(tmp_path_factory.mktemp("advice"), 3 << 20, seed=11)
    info = read_file_info(gen.path)
    info.path.read_bytes()  # in the page cache now
    return info


def _fadvise_calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int]]:
    calls: list[tuple[int, int]] = []
    monkeypatch.setattr(os, "posix_fadvise", lambda fd, off, n, how: calls.append((off, n)))
    return calls


async def test_a_cached_file_is_sent_without_advice(
    warm_file: DicomFileInfo, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = _fadvise_calls(monkeypatch)
    async with RegionReader(warm_file, chunk_size=1 << 20) as reader:
        total = sum([len(p) async for p in reader])
    assert total == warm_file.dataset_length
    assert calls == []


async def test_a_window_not_in_the_cache_is_advised(
    warm_file: DicomFileInfo, monkeypatch: pytest.MonkeyPatch
) -> None:
    probed: list[int] = []

    def cold(fd: int, buffers: list[bytearray], offset: int, flags: int) -> int:
        assert flags & os.RWF_NOWAIT
        probed.append(offset)
        raise BlockingIOError(errno.EAGAIN, "not cached")

    monkeypatch.setattr(os, "preadv", cold)
    calls = _fadvise_calls(monkeypatch)
    async with RegionReader(warm_file, chunk_size=1 << 20) as reader:
        total = sum([len(p) async for p in reader])
    assert total == warm_file.dataset_length
    assert calls == [(warm_file.dataset_offset, warm_file.dataset_length)]
    assert probed == [warm_file.dataset_offset]  # the first probe already said no


@pytest.mark.parametrize("code", [errno.EOPNOTSUPP, errno.EINVAL])
def test_a_refused_probe_means_advise(
    warm_file: DicomFileInfo, monkeypatch: pytest.MonkeyPatch, code: int
) -> None:
    def refuse(fd: int, buffers: list[bytearray], offset: int, flags: int) -> int:
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(os, "preadv", refuse)
    with warm_file.path.open("rb") as fp:
        assert not store_regions._cached(fp.fileno(), 0, 4096)


def test_probe_positions_cover_the_window(tmp_path: Path) -> None:
    path = tmp_path / "f.bin"
    path.write_bytes(bytes(10_000))
    with path.open("rb") as fp:
        path.read_bytes()
        assert store_regions._cached(fp.fileno(), 0, 10_000)
        # A window beyond the end reads nothing (0 bytes): not "cached".
        assert not store_regions._cached(fp.fileno(), 20_000, 100)
