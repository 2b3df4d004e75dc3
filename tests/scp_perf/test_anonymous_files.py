"""Nameless files made ahead of need (``AnonymousFiles``) and the sinks that use them.

The contract under test: a file is invisible until it is complete (and fsynced when
durable) and linked at its final name; discarding it or failing leaves nothing behind;
duplicates follow the policy (REPLACE atomically, KEEP the first); where the platform has
no ``O_TMPFILE`` the sink falls back to a named temporary file and a rename.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import anyio
import pytest

from aiodimse.net import nameless
from aiodimse.net.filesink import AnonymousFiles, FileSink, SinkState, SyncBatch

pytestmark = pytest.mark.anyio

linux_only = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="O_TMPFILE and /proc/self/fd are Linux's"
)


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def _names(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


def _sink(root: Path, pool: AnonymousFiles | None, **kw: object) -> FileSink:
    return FileSink(
        root / "t.part",
        limiter=anyio.CapacityLimiter(2),
        defer_finish=True,
        anonymous=pool,
        **kw,  # type: ignore[arg-type]
    )


async def _store(
    sink: FileSink, data: bytes, target: Path, *, replace: bool = True
) -> tuple[bool, list[str]]:
    """Write ``data``, finish, commit to ``target``; also returns the directory listing
    seen just before the commit (in the worker thread, after write and fsync)."""
    await sink.write(memoryview(data))
    await sink.close()
    seen: list[str] = []

    def keep(s: FileSink, batch: SyncBatch) -> bool:
        seen.extend(_names(s.path.parent))
        return s.commit_sync(target, replace=replace, batch=batch)

    return await sink.finish(keep), seen


@linux_only
async def test_the_file_has_no_name_until_it_is_complete_and_linked(tmp_path: Path) -> None:
    pool = AnonymousFiles(tmp_path)
    sink = _sink(tmp_path, pool, prefix=b"META")
    placed, before = await _store(sink, b"dataset", tmp_path / "1.2.3.dcm")
    assert placed and before == []  # written and synced, yet nothing visible
    assert (tmp_path / "1.2.3.dcm").read_bytes() == b"METAdataset"
    assert _names(tmp_path) == ["1.2.3.dcm"]
    assert sink.state is SinkState.COMMITTED and sink._fp is None
    assert pool.ready_taken + pool.created_on_demand == 1
    pool.close()


@linux_only
async def test_durable_fsyncs_the_file_before_it_gets_its_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    events: list[str] = []
    real_fsync, real_link = os.fsync, os.link

    def fsync(fd: int) -> None:
        events.append("fsync")
        real_fsync(fd)

    def link(src: object, dst: object, **kw: object) -> None:
        if not Path(str(dst)).name.startswith(".aiodimse-probe"):  # the pool's first check
            events.append("link")
        real_link(src, dst, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "link", link)
    pool = AnonymousFiles(tmp_path)
    placed, _ = await _store(_sink(tmp_path, pool, durable=True), b"x", tmp_path / "a.dcm")
    # the file's fsync, its name, then the directory's fsync (the name is durable)
    assert placed and events == ["fsync", "link", "fsync"]
    pool.close()


@linux_only
@pytest.mark.parametrize("replace", [True, False])
async def test_duplicates_replace_atomically_or_keep_the_first(
    tmp_path: Path, replace: bool
) -> None:
    pool = AnonymousFiles(tmp_path)
    target = tmp_path / "1.2.dcm"
    target.write_bytes(b"first")
    placed, _ = await _store(_sink(tmp_path, pool), b"second", target, replace=replace)
    assert placed is replace
    assert target.read_bytes() == (b"second" if replace else b"first")
    assert _names(tmp_path) == ["1.2.dcm"]  # no temporary name left
    pool.close()


@pytest.mark.parametrize("anonymous", [True, False])
async def test_missing_directories_are_made_on_the_first_file(
    tmp_path: Path, anonymous: bool
) -> None:
    pool = AnonymousFiles(tmp_path) if anonymous else None
    target = tmp_path / "patient" / "study" / "series" / "1.2.dcm"
    placed, _ = await _store(_sink(tmp_path, pool, durable=True), b"abc", target)
    assert placed and target.read_bytes() == b"abc"
    assert _names(tmp_path) == ["patient"]
    if pool is not None:
        pool.close()


@linux_only
async def test_discarding_leaves_nothing_and_closes_the_file(tmp_path: Path) -> None:
    pool = AnonymousFiles(tmp_path)
    sink = _sink(tmp_path, pool, write_size=64 * 1024)
    await sink.write(memoryview(b"y" * 200_000))  # past one hand-over: the writer thread
    await sink.close()
    await sink.finish(lambda s, _b: None)  # complete on disk, never committed
    fp = sink._fp
    assert fp is not None and sink._anonymous
    await sink.discard()
    assert sink.state is SinkState.DISCARDED and sink._fp is None
    assert fp.closed  # the nameless file is gone with its descriptor
    assert _names(tmp_path) == []
    pool.close()


async def test_without_o_tmpfile_the_sink_writes_a_named_file_and_renames_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(nameless, "_O_TMPFILE", 0)
    pool = AnonymousFiles(tmp_path)
    assert not pool.supported and pool.take() is None
    sink = _sink(tmp_path, pool)
    placed, before = await _store(sink, b"data", tmp_path / "9.dcm")
    assert placed and before == ["t.part"]  # the named temporary file, then the rename
    assert _names(tmp_path) == ["9.dcm"]


@linux_only
def test_a_file_system_that_refuses_o_tmpfile_turns_the_pool_off(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_open = os.open

    def refusing(path: object, flags: int, *args: object, **kw: object) -> int:
        if flags & nameless._O_TMPFILE == nameless._O_TMPFILE:
            raise OSError(95, "Operation not supported")  # EOPNOTSUPP (e.g. some FUSE)
        return real_open(path, flags, *args, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "open", refusing)
    pool = AnonymousFiles(tmp_path)
    assert pool.take() is None and not pool.supported
    pool.close()


@linux_only
def test_the_pool_fills_ahead_stops_when_idle_and_frees_its_files(tmp_path: Path) -> None:
    pool = AnonymousFiles(tmp_path, size=4, idle_timeout=0.05)
    first = pool.take()
    assert first is not None
    thread = pool._thread
    assert thread is not None
    thread.join(5)  # fills to 4, then ends 50 ms after the last take
    assert not thread.is_alive() and pool._thread is None and not pool._ready
    os.close(first)
    again = pool.take()  # starts again on demand
    assert again is not None
    pool.close()
    assert pool.take() is None and not pool._ready
    os.close(again)
    assert _names(tmp_path) == []


@linux_only
def test_ready_files_are_handed_over_without_creating_one(tmp_path: Path) -> None:
    pool = AnonymousFiles(tmp_path, size=4, idle_timeout=5)
    fds = [pool.take()]
    with pool._cond:  # wait (no sleep) until the thread made its four
        while len(pool._ready) < 4 and pool._thread is not None:
            pool._cond.wait(0.05)
    fds += [pool.take() for _ in range(3)]
    assert pool.ready_taken >= 3 and all(fd is not None for fd in fds)
    for fd in fds:
        assert fd is not None
        os.close(fd)
    pool.close()


@linux_only
def test_a_forked_child_does_not_use_the_parents_ready_files(tmp_path: Path) -> None:
    pool = AnonymousFiles(tmp_path, size=2, idle_timeout=5)
    first = pool.take()
    with pool._cond:  # wait (no sleep) until the thread made its two
        while len(pool._ready) < 2 and pool._thread is not None:
            pool._cond.wait(0.05)
    # The parent's files, kept alive by duplicates (the parent still uses them).
    parents = [os.dup(fd) for fd in pool._ready]
    inodes = {os.fstat(fd).st_ino for fd in parents}
    assert inodes
    pool._pid = -1  # what a fork looks like from the child: another process id
    mine = pool.take()
    assert mine is not None and os.fstat(mine).st_ino not in inodes
    assert pool._pid == os.getpid()
    with pool._cond:
        assert not {os.fstat(fd).st_ino for fd in pool._ready} & inodes
    for fd in (first, mine, *parents):
        assert fd is not None
        os.close(fd)
    pool.close()


@linux_only
def test_takes_from_several_threads_get_distinct_open_files(tmp_path: Path) -> None:
    """take() pops without the lock while the background thread refills: every descriptor
    goes to one caller only, and close() frees the rest without touching taken ones."""
    import threading

    pool = AnonymousFiles(tmp_path, size=8)
    taken: list[list[int]] = [[] for _ in range(4)]

    def worker(mine: list[int]) -> None:
        for _ in range(100):
            fd = pool.take()
            assert fd is not None
            mine.append(fd)

    threads = [threading.Thread(target=worker, args=(t,)) for t in taken]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    fds = [fd for mine in taken for fd in mine]
    assert len(fds) == 400 and len(set(fds)) == 400
    pool.close()
    for fd in fds:  # still open: written, then closed by their owner
        assert os.write(fd, b"x") == 1
        os.close(fd)
    assert not pool._ready
