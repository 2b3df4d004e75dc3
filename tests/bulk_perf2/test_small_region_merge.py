"""A short file region (the last PDU of a dataset) goes out with its headers in one
``sendmsg`` when its bytes are in the page cache (aiodimse.net.sendfile): same bytes,
one system call instead of ``sendmsg`` + ``sendfile``; ``sendfile`` otherwise."""

from __future__ import annotations

import errno
import hashlib
import os
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import aiodimse
from aiodimse.dimse.file_region import FileRegion
from aiodimse.net import sendfile as sendfile_mod
from aiodimse.net.filesource import read_file_info
from aiodimse.net.sendfile import (
    SENDFILE_SUPPORTED,
    SMALL_REGION,
    FileEndedEarly,
    read_cached,
    write_with_regions,
)
from aiodimse.services.storage_contexts import propose_contexts
from tests.storage.storage_scu_support import RecordingSCP, contexts_for
from tests.support import datagen

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.skipif(not SENDFILE_SUPPORTED, reason="no os.sendfile + MSG_MORE"),
]
NOWAIT = hasattr(os, "RWF_NOWAIT") and hasattr(os, "preadv")
needs_nowait = pytest.mark.skipif(not NOWAIT, reason="no preadv2(RWF_NOWAIT)")
SIZE = 3 * SMALL_REGION + 1000


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def data_file(tmp_path: Path) -> Iterator[tuple[int, bytes]]:
    data = os.urandom(SIZE)
    path = tmp_path / "data.bin"
    path.write_bytes(data)  # just written: in the page cache
    fd = os.open(path, os.O_RDONLY)
    yield fd, data
    os.close(fd)


class Calls:
    """Counts ``os.sendfile`` calls and records their file offsets (and lets them through)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.sendfile = 0
        self.offsets: list[int] = []
        real: Callable[..., int] = os.sendfile

        def counting(out_fd: int, in_fd: int, offset: int, count: int) -> int:
            self.sendfile += 1
            self.offsets.append(offset)
            return real(out_fd, in_fd, offset, count)

        monkeypatch.setattr(os, "sendfile", counting)


async def _send_and_receive(parts: list[Any]) -> bytes:
    """Write ``parts`` into a connected pair (small send buffer) and return what arrives."""
    a, b = socket.socketpair()
    a.setblocking(False)
    b.setblocking(False)
    a.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 16384)
    expect = sum(len(p) for p in parts)
    got = bytearray()
    with a, b:

        async def drain() -> None:
            while len(got) < expect:
                await anyio.wait_readable(b)
                got.extend(b.recv(1 << 20))

        async with anyio.create_task_group() as tg:
            tg.start_soon(drain)
            await write_with_regions(a, parts, lambda: anyio.wait_writable(a))
    return bytes(got)


@needs_nowait
async def test_a_short_cached_region_goes_with_its_headers_without_sendfile(
    data_file: tuple[int, bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    fd, data = data_file
    calls = Calls(monkeypatch)
    got = await _send_and_receive([b"HEAD", b"PDV!", FileRegion(fd, 100, 412)])
    assert got == b"HEADPDV!" + data[100:512]
    assert calls.sendfile == 0


async def test_an_uncached_short_region_falls_back_to_sendfile(
    data_file: tuple[int, bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    fd, data = data_file

    def not_cached(*args: Any) -> int:
        raise BlockingIOError(errno.EAGAIN, "not in the page cache")

    monkeypatch.setattr(os, "preadv", not_cached)
    calls = Calls(monkeypatch)
    got = await _send_and_receive([b"HEAD", FileRegion(fd, 7, 412), b"TAIL"])
    assert got == b"HEAD" + data[7:419] + b"TAIL"
    assert calls.sendfile == 1


async def test_a_long_region_still_goes_by_sendfile(
    data_file: tuple[int, bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    fd, data = data_file
    calls = Calls(monkeypatch)
    got = await _send_and_receive([b"H", FileRegion(fd, 0, SMALL_REGION + 2)])
    assert got == b"H" + data[: SMALL_REGION + 2]
    assert calls.sendfile >= 1


async def test_a_short_region_past_the_end_of_its_file_still_raises(
    data_file: tuple[int, bytes],
) -> None:
    fd, data = data_file
    region = FileRegion(fd, len(data) - 10, 20)
    assert read_cached(region) is None  # a short read is never taken for the region
    a, b = socket.socketpair()
    a.setblocking(False)
    with a, b, pytest.raises(FileEndedEarly, match="became shorter"):
        await write_with_regions(a, [b"H", region], lambda: anyio.wait_writable(a))


async def test_a_short_region_of_a_closed_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "f.bin"
    path.write_bytes(b"\x00" * 100)
    fp = path.open("rb")
    region = FileRegion(fp.fileno(), 0, 10, fp)
    fp.close()
    a, b = socket.socketpair()
    a.setblocking(False)
    with a, b, pytest.raises(OSError) as caught:
        await write_with_regions(a, [b"H", region], lambda: anyio.wait_writable(a))
    assert caught.value.errno == errno.EBADF


@needs_nowait
async def test_short_regions_read_ahead_of_a_write_stay_bounded(
    data_file: tuple[int, bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    fd, data = data_file
    held: list[int] = []
    real = sendfile_mod._write_views

    async def recording(sock: socket.socket, views: list[memoryview], *args: Any) -> None:
        held.append(sum(len(v) for v in views))
        await real(sock, views, *args)

    monkeypatch.setattr(sendfile_mod, "_write_views", recording)
    step = SMALL_REGION - 2
    parts: list[Any] = []
    for n in range(3):
        parts += [b"hdr", FileRegion(fd, n * step, step)]
    got = await _send_and_receive(parts)
    assert got == b"".join(b"hdr" + data[n * step : (n + 1) * step] for n in range(3))
    assert all(h <= sendfile_mod.SMALL_HELD + 3 * len(b"hdr") for h in held)


@given(
    pieces=st.lists(
        st.one_of(
            st.binary(min_size=0, max_size=40),
            st.tuples(st.integers(0, SIZE), st.integers(0, SMALL_REGION + 5000)),
        ),
        min_size=1,
        max_size=8,
    ),
    uncached=st.sets(st.integers(0, 7), max_size=4),
)
@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
async def test_any_mix_of_buffers_and_regions_arrives_whole_and_in_order(
    data_file: tuple[int, bytes],
    monkeypatch: pytest.MonkeyPatch,
    pieces: list[bytes | tuple[int, int]],
    uncached: set[int],
) -> None:
    fd, data = data_file
    parts: list[Any] = []
    expect = b""
    uncached_offsets: set[int] = set()
    for i, piece in enumerate(pieces):
        if isinstance(piece, bytes):
            parts.append(piece)
            expect += piece
        else:
            offset, length = piece
            length = min(length, SIZE - offset)
            parts.append(FileRegion(fd, offset, length))
            expect += data[offset : offset + length]
            if i in uncached:
                uncached_offsets.add(offset)
    real_preadv = os.preadv

    def preadv(fd_: int, buffers: Any, offset: int, *flags: int) -> int:
        if offset in uncached_offsets:
            raise BlockingIOError(errno.EAGAIN, "not in the page cache")
        return real_preadv(fd_, buffers, offset, *flags)

    with monkeypatch.context() as patch:
        patch.setattr(os, "preadv", preadv)
        got = await _send_and_receive(parts)
    assert got == expect


@pytest.mark.fd_callbacks  # file regions go by sendfile on the native transport
@needs_nowait
async def test_a_stored_dataset_sends_its_short_last_pdu_without_sendfile(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    max_pdu = 256 << 10
    gen = datagen.write_streamed(tmp_path, (3 << 20) // 2 + 206, seed=11)
    info = read_file_info(gen.path)
    payload = max_pdu - 6  # PS3.8 9.3.5.1: a PDV item is 4 + 2 bytes of header
    full, rest = divmod(info.dataset_length, payload)
    assert 0 < rest <= SMALL_REGION
    calls = Calls(monkeypatch)
    scp = RecordingSCP(
        contexts=contexts_for([info.sop_class_uid], (info.transfer_syntax_uid,)), max_pdu=max_pdu
    )
    async with scp.ae.serve("127.0.0.1", 0) as server:
        async with aiodimse.AE("SCU").associate(
            "127.0.0.1", server.port, contexts=propose_contexts([info])
        ) as assoc:
            results = await assoc.store_many([info])
    assert all(r.ok for r in results), [r.describe() for r in results]
    data = info.path.read_bytes()[info.dataset_offset :]
    assert [a.sha256 for a in scp.arrived] == [hashlib.sha256(data).hexdigest()]
    # Every full PDU by sendfile (one call each, or more when the socket fills); the short
    # last one went with its headers: no sendfile call reached its bytes.
    last = info.dataset_offset + full * payload
    assert calls.sendfile >= full
    assert max(calls.offsets) < last
