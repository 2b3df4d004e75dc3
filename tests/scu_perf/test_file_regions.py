"""Stored datasets sent as file regions (``os.sendfile``), from the value to the wire.

``FileRegion`` slicing; the fragmenter cutting regions into PDV payloads (PDU bound, even
fragments, never joined); ``write_with_regions`` and ``SocketTransport.send`` writing them
over a socket pair (bytes identical, headers in order, a short file raises);
``RegionReader``; and ``store_many`` against an aiodimse SCP taking the region path (bytes
identical, fewer worker-thread trips than chunks) with and without a read-ahead head.
"""

from __future__ import annotations

import errno
import hashlib
import itertools
import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import anyio
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian

import aiodimse
from aiodimse.dimse.file_region import FileRegion
from aiodimse.dimse.fragmenter import Fragmenter
from aiodimse.errors import LocalProtocolError
from aiodimse.net import sendfile as sendfile_mod
from aiodimse.net.filesource import DicomFileInfo, FileChanged, prefetch_datasets, read_file_info
from aiodimse.net.sendfile import SENDFILE_SUPPORTED, FileEndedEarly, write_with_regions
from aiodimse.net.transport import SocketTransport
from aiodimse.pdu import PDataTF, pdata_tf_parts
from aiodimse.services import storage_scu, store_regions
from aiodimse.services.storage_contexts import propose_contexts
from aiodimse.services.store_regions import RegionReader, regions_possible
from tests.storage.storage_scu_support import RecordingSCP, contexts_for, store_many_to
from tests.support import datagen

pytestmark = pytest.mark.anyio
needs_sendfile = pytest.mark.skipif(not SENDFILE_SUPPORTED, reason="no os.sendfile + MSG_MORE")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def data_file(tmp_path: Path) -> Iterator[tuple[int, bytes]]:
    data = os.urandom(300_000)
    path = tmp_path / "data.bin"
    path.write_bytes(data)
    fd = os.open(path, os.O_RDONLY)
    yield fd, data
    os.close(fd)


def _bytes_of(part: object, data: bytes) -> bytes:
    if isinstance(part, FileRegion):
        return data[part.offset : part.offset + part.length]
    assert isinstance(part, bytes | memoryview)
    return bytes(part)


# ------------------------------------------------------------------ FileRegion


@given(start=st.integers(-20, 120), stop=st.integers(-20, 120))
@settings(max_examples=60)
def test_region_slices_like_a_memoryview(start: int, stop: int) -> None:
    region = FileRegion(3, 1000, 100)
    view = memoryview(bytes(range(100)))
    got = region[start:stop]
    expect = view[start:stop]
    assert len(got) == len(expect) and bool(got) == bool(expect)
    if len(expect):
        assert got.offset == 1000 + expect[0]
    with pytest.raises(TypeError):
        region[3]  # type: ignore[index]
    with pytest.raises(ValueError):
        region[::2]


def test_a_region_cannot_be_negative() -> None:
    with pytest.raises(ValueError):
        FileRegion(3, -1, 10)


# ------------------------------------------------------------------ fragmenter


@given(
    max_pdu=st.integers(20, 70_000),
    head=st.sampled_from([0, 2, 4096, 65536]),
    sizes=st.lists(st.integers(1, 60_000).map(lambda n: n * 2), min_size=1, max_size=5),
)
@settings(max_examples=80, deadline=None)
def test_fragmenter_cuts_regions_within_bounds_and_never_joins_them(
    max_pdu: int, head: int, sizes: list[int]
) -> None:
    data = os.urandom(head + sum(sizes))
    chunks: list[object] = [data[:head]] if head else []
    offset = head
    for n in sizes:
        chunks.append(FileRegion(7, offset, n))
        offset += n
    pdus = list(Fragmenter(max_pdu).pdus(1, b"\x00\x01", chunks))  # type: ignore[arg-type]
    assert all(isinstance(p, PDataTF) for p in pdus)
    command, payload = pdus[0], pdus[1:]
    assert command.pdvs[0].is_command
    out = b""
    for pdu in payload:
        assert sum(6 + len(v.data) for v in pdu.pdvs) <= max_pdu
        for v in pdu.pdvs:
            assert len(v.data) % 2 == 0
            out += _bytes_of(v.data, data)
    assert out == data
    assert payload[-1].pdvs[-1].is_last
    assert not any(v.is_last for p in payload[:-1] for v in p.pdvs)


def test_an_odd_region_is_refused() -> None:
    with pytest.raises(LocalProtocolError):
        list(Fragmenter(1000).pdus(1, b"\x00\x01", [FileRegion(7, 0, 11)]))  # type: ignore[list-item]


# ------------------------------------------------------------------ writing


async def _drain(sock: socket.socket, n: int) -> bytes:
    got = bytearray()
    while len(got) < n:
        await anyio.wait_readable(sock)
        got += sock.recv(1 << 20)
    return bytes(got)


@needs_sendfile
async def test_write_with_regions_sends_headers_and_file_bytes_in_order(
    data_file: tuple[int, bytes],
) -> None:
    fd, data = data_file
    a, b = socket.socketpair()
    a.setblocking(False)
    b.setblocking(False)
    # A small send buffer: the writer must wait for writability several times.
    a.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 8192)
    parts: list[Any] = [
        b"HDR1",
        FileRegion(fd, 10, 200_000),
        b"",
        b"HDR2",
        FileRegion(fd, 250_000, 50_000),
    ]
    expect = b"HDR1" + data[10:200_010] + b"HDR2" + data[250_000:300_000]
    with a, b:
        async with anyio.create_task_group() as tg:
            tg.start_soon(write_with_regions, a, parts, lambda: anyio.wait_writable(a))
            got = await _drain(b, len(expect))
    assert got == expect


@needs_sendfile
async def test_a_region_past_the_end_of_its_file_raises(data_file: tuple[int, bytes]) -> None:
    fd, data = data_file
    a, b = socket.socketpair()
    a.setblocking(False)
    with a, b, pytest.raises(FileEndedEarly, match="became shorter"):
        await write_with_regions(
            a, [b"H", FileRegion(fd, len(data) - 10, 20)], lambda: anyio.wait_writable(a)
        )


@needs_sendfile
async def test_transport_send_and_write_nowait_keep_regions_in_order(
    data_file: tuple[int, bytes],
) -> None:
    fd, data = data_file
    a, b = socket.socketpair()
    transport = SocketTransport(a)
    region = FileRegion(fd, 0, 100_000)
    # write_nowait never writes a region itself: it keeps it (and what follows) for send().
    assert transport.write_nowait([b"AB", region]) is False  # type: ignore[list-item]
    assert transport.has_backlog()
    assert transport.write_nowait([b"CD"]) is False
    with b:
        async with anyio.create_task_group() as tg:
            more: list[Any] = [b"EF", FileRegion(fd, 100_000, 4)]
            tg.start_soon(transport.send, more)
            got = await _drain(b, 2 + 100_000 + 2 + 2 + 4)
        await transport.aclose()
    assert got == b"AB" + data[:100_000] + b"CD" + b"EF" + data[100_000:100_004]
    assert not transport.has_backlog()
    assert transport.sends_file_regions


def test_pdata_parts_pass_regions_through() -> None:
    region = FileRegion(5, 0, 10)
    pdu = Fragmenter(100).pdus(1, b"\x00\x01", [region])  # type: ignore[list-item]
    data = list(pdu)[1]
    parts = pdata_tf_parts(data.pdvs)
    assert parts[-1] is cast(object, region) and parts[0] == b"\x04\x00" + (16).to_bytes(4, "big")


# ------------------------------------------------------------------ RegionReader


@pytest.fixture(scope="module")
def big_file(tmp_path_factory: pytest.TempPathFactory) -> DicomFileInfo:
    gen = datagen.write_streamed(tmp_path_factory.mktemp("regions"), (5 << 20) // 2, seed=7)
    return read_file_info(gen.path)


def _dataset(info: DicomFileInfo) -> bytes:
    return info.path.read_bytes()[info.dataset_offset :]


@pytest.mark.parametrize("with_head", [False, True])
async def test_region_reader_covers_the_dataset(big_file: DicomFileInfo, with_head: bool) -> None:
    chunk = 1 << 20
    pre = prefetch_datasets([big_file], head_size=chunk)[0] if with_head else None
    expect = _dataset(big_file)
    got = b""
    async with RegionReader(big_file, chunk_size=chunk, prefetched=pre) as reader:
        async for piece in reader:
            if isinstance(piece, FileRegion):
                assert len(piece) <= chunk
                got += os.pread(piece.fd, piece.length, piece.offset)
            else:
                assert with_head and piece == expect[:chunk]
                got += piece
        assert reader.bytes_read == big_file.dataset_length == reader.total
    assert got == expect
    assert pre is None or pre.fp is None


async def test_region_reader_refuses_a_changed_file(tmp_path: Path) -> None:
    gen = datagen.write_streamed(tmp_path, 3 << 19, seed=8)
    info = read_file_info(gen.path)
    with gen.path.open("ab") as fp:
        fp.write(b"\x00\x00")
    with pytest.raises(FileChanged):
        async with RegionReader(info, chunk_size=1 << 20):
            pass


def test_regions_only_for_large_even_datasets_over_a_willing_transport(
    big_file: DicomFileInfo,
) -> None:
    class Willing:
        sends_file_regions = True

    assert regions_possible(Willing(), big_file, 1 << 20)
    assert not regions_possible(object(), big_file, 1 << 20)
    assert not regions_possible(Willing(), big_file, big_file.dataset_length)


# ------------------------------------------------------------------ store_many


@pytest.mark.fd_callbacks  # file regions go by sendfile on the native transport
@needs_sendfile
@pytest.mark.parametrize("window", [1, 3])
async def test_store_many_sends_regions_byte_identical(
    big_file: DicomFileInfo, tmp_path: Path, window: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    small = read_file_info(datagen.write_file(datagen.Spec(seed=1), tmp_path).path)
    files = [big_file, small, big_file, big_file]
    used: list[RegionReader] = []
    real = store_regions.RegionReader

    def spy(*args: object, **kw: object) -> RegionReader:
        reader = real(*args, **kw)  # type: ignore[arg-type]
        used.append(reader)
        return reader

    monkeypatch.setattr(storage_scu, "RegionReader", spy)
    writes: list[int] = []
    real_write = sendfile_mod.write_with_regions

    async def counting(sock: socket.socket, parts: list[object], wait: object) -> None:
        writes.append(len(parts))
        await real_write(sock, parts, wait)  # type: ignore[arg-type]

    monkeypatch.setattr("aiodimse.net.transport.write_with_regions", counting)
    ts = (ExplicitVRLittleEndian, ImplicitVRLittleEndian)
    scp = RecordingSCP(contexts=contexts_for([f.sop_class_uid for f in files], ts), max_pdu=65536)
    results = await store_many_to(scp, files, window=window)
    assert all(r.ok for r in results), [r.describe() for r in results]
    assert len(used) == 3 and all(r.bytes_read == big_file.dataset_length for r in used)
    # One write per PDU (PDU header, PDV header, region; nothing joined).
    assert writes and all(n >= 3 for n in writes)
    expect = sorted(hashlib.sha256(_dataset(info)).hexdigest() for info in files)
    assert sorted(got.sha256 for got in scp.arrived) == expect


async def test_without_sendfile_the_reader_path_sends_the_same_bytes(
    big_file: DicomFileInfo, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Windows/macOS (no ``os.sendfile`` with ``MSG_MORE``): no regions, chunks read instead."""
    monkeypatch.setattr("aiodimse.net.transport.SENDFILE_SUPPORTED", False)
    used: list[object] = []
    monkeypatch.setattr(storage_scu, "RegionReader", lambda *a, **k: used.append(a))
    ts = (ExplicitVRLittleEndian,)
    scp = RecordingSCP(contexts=contexts_for([big_file.sop_class_uid], ts))
    async with scp.ae.serve("127.0.0.1", 0) as server:
        async with aiodimse.AE("SCU").associate(
            "127.0.0.1", server.port, contexts=propose_contexts([big_file])
        ) as assoc:
            results = await assoc.store_many([big_file, big_file])
    assert all(r.ok for r in results) and not used
    digest = hashlib.sha256(_dataset(big_file)).hexdigest()
    assert [a.sha256 for a in scp.arrived] == [digest, digest]


@needs_sendfile
async def test_a_region_whose_file_was_closed_is_never_written(tmp_path: Path) -> None:
    path = tmp_path / "f.bin"
    path.write_bytes(b"x" * 100)
    fp = path.open("rb")
    region = FileRegion(fp.fileno(), 0, 100, fp)[10:20]
    assert region.owner is fp
    fp.close()
    a, b = socket.socketpair()
    a.setblocking(False)
    with a, b, pytest.raises(OSError, match="closed before it was sent"):
        await write_with_regions(a, [b"H", region], lambda: anyio.wait_writable(a))


@needs_sendfile
async def test_a_file_without_sendfile_support_is_copied_instead(
    data_file: tuple[int, bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    fd, data = data_file
    calls: list[int] = []

    def refuse(*args: object) -> int:
        calls.append(1)
        raise OSError(errno.EINVAL, "Invalid argument")

    monkeypatch.setattr(os, "sendfile", refuse)
    a, b = socket.socketpair()
    a.setblocking(False)
    b.setblocking(False)
    parts: list[Any] = [b"H", FileRegion(fd, 5, 290_000), b"T"]
    with a, b:
        async with anyio.create_task_group() as tg:
            tg.start_soon(write_with_regions, a, parts, lambda: anyio.wait_writable(a))
            got = await _drain(b, 290_002)
    assert calls and got == b"H" + data[5:290_005] + b"T"


@pytest.mark.skipif(not hasattr(os, "posix_fadvise"), reason="no posix_fadvise")
async def test_read_ahead_advice_is_one_call_per_window(
    big_file: DicomFileInfo, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[tuple[int, int]] = []
    monkeypatch.setattr(os, "posix_fadvise", lambda fd, off, n, how: calls.append((off, n)))
    monkeypatch.setattr(store_regions, "ADVISE_WINDOW", 1 << 20)
    monkeypatch.setattr(store_regions, "_cached", lambda fd, start, n: False)  # a cold file
    async with RegionReader(big_file, chunk_size=1 << 19) as reader:
        pieces = [p async for p in reader]
    assert len(pieces) == -(-big_file.dataset_length // (1 << 19))
    # Contiguous windows covering the dataset, one call per MiB, not one per chunk.
    assert calls[0][0] == big_file.dataset_offset
    assert all(a + n == b for (a, n), (b, _) in itertools.pairwise(calls))
    assert calls[-1][0] + calls[-1][1] == big_file.file_size
    assert len(calls) == -(-big_file.dataset_length // (1 << 20))
