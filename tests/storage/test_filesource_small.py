"""A dataset no larger than one chunk is opened, read and closed in one worker-thread trip
on entry (issue 9: one thread trip per small instance instead of three)."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import BinaryIO

import anyio.to_thread
import pytest

from aiodimse.net.filesource import DatasetReader, DicomFileError, read_file_info
from tests.support import datagen

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def test_small_dataset_is_one_chunk_in_one_trip(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    gen = datagen.write_file(datagen.Spec(seed=3), tmp_path)
    info = read_file_info(gen.path)
    trips: list[object] = []
    real = anyio.to_thread.run_sync

    async def counting(func: object, *args: object, **kw: object) -> object:
        trips.append(func)
        return await real(func, *args, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(anyio.to_thread, "run_sync", counting)
    closed: list[int] = []

    class Reader(DatasetReader):
        def _open(self) -> BinaryIO:
            fp = super()._open()

            class Wrapped:
                def read(self, n: int) -> bytes:
                    closed.append(-threading.get_ident())
                    return fp.read(n)

                def close(self) -> None:
                    closed.append(threading.get_ident())
                    fp.close()

            return Wrapped()  # type: ignore[return-value]

    async with Reader(info) as reader:
        assert len(trips) == 1 and closed  # opened, read and closed on entry
        chunks = [c async for c in reader]
    assert len(trips) == 1  # nothing more on exit
    assert chunks == [gen.path.read_bytes()[info.dataset_offset :]]
    assert reader.bytes_read == info.dataset_length
    assert threading.get_ident() not in {abs(t) for t in closed}  # never on the loop


async def test_small_dataset_read_error_is_raised_by_the_iteration(tmp_path: Path) -> None:
    gen = datagen.write_file(datagen.Spec(seed=4), tmp_path)
    info = read_file_info(gen.path)

    class Failing(DatasetReader):
        def _open(self) -> BinaryIO:
            fp = super()._open()

            class Wrapped:
                def read(self, n: int) -> bytes:
                    raise OSError(5, "Input/output error")

                def close(self) -> None:
                    fp.close()

            return Wrapped()  # type: ignore[return-value]

    async with Failing(info) as reader:  # entering does not raise
        with pytest.raises(DicomFileError, match="read failed"):
            await reader.__anext__()
