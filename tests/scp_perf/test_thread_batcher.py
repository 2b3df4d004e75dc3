"""Where the storage SCP finishes small instances (issue 9): a dedicated thread for durable
ones (:class:`ThreadBatcher`), the event loop itself for small non-durable ones."""

from __future__ import annotations

import os
import struct
import threading
from pathlib import Path

import anyio
import pytest
from pydicom.uid import ExplicitVRLittleEndian

import aiodimse
from aiodimse.net import syncbatch
from aiodimse.net.filesink import FileSink, SinkState, SyncBatch, SyncBatcher, ThreadBatcher
from aiodimse.services.storage_scp import StorageOptions, enable_storage
from tests.storage.scu_helper import contexts_for, store_bytes
from tests.storage.test_storage_scp import CT, ct_bytes

pytestmark = pytest.mark.anyio


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def _deferred(path: Path, limiter: anyio.CapacityLimiter, *, durable: bool = True) -> FileSink:
    return FileSink(path, limiter=limiter, defer_finish=True, durable=durable)


async def _closed(path: Path, limiter: anyio.CapacityLimiter, data: bytes) -> FileSink:
    sink = _deferred(path, limiter)
    await sink.write(memoryview(data))
    await sink.close()
    return sink


async def test_jobs_run_in_the_own_thread_grouped_on_asyncio(
    tmp_path: Path, anyio_backend: str
) -> None:
    limiter = anyio.CapacityLimiter(2)
    fallback = SyncBatcher(limiter)
    batcher = ThreadBatcher(fallback, idle_timeout=30)
    count = 10
    sinks = [await _closed(tmp_path / f"{i}.part", limiter, b"d" * (10 + i)) for i in range(count)]
    threads: dict[int, str] = {}

    def keep(i: int) -> object:
        def step(s: FileSink, batch: SyncBatch) -> int:
            threads[i] = threading.current_thread().name
            s.commit_sync(tmp_path / f"{i}.dcm", batch=batch)
            return i * 2

        return step

    results: dict[int, int] = {}

    async def finish(i: int) -> None:
        results[i] = await sinks[i].finish(keep(i), batcher=batcher)  # type: ignore[arg-type]

    async with anyio.create_task_group() as tg:
        for i in range(count):
            tg.start_soon(finish, i)
    batcher.close()
    assert results == {i: i * 2 for i in range(count)}
    for i in range(count):
        assert (tmp_path / f"{i}.dcm").read_bytes() == b"d" * (10 + i)
        assert sinks[i].state is SinkState.COMMITTED
    assert batcher.jobs == count
    assert batcher.trips < count  # queued while a trip ran: they share the next one
    if anyio_backend == "asyncio":
        assert set(threads.values()) == {"aiodimse-sync-batcher"}
        assert fallback.jobs == 0
    else:  # trio: anyio worker threads, through the fallback
        assert fallback.jobs == count
        assert "aiodimse-sync-batcher" not in threads.values()


async def test_an_exception_of_a_step_reaches_its_caller_only(tmp_path: Path) -> None:
    limiter = anyio.CapacityLimiter(2)
    batcher = ThreadBatcher(SyncBatcher(limiter), idle_timeout=30)
    bad = await _closed(tmp_path / "bad.part", limiter, b"bad")
    good = await _closed(tmp_path / "good.part", limiter, b"good")

    def boom(_s: FileSink, _b: SyncBatch) -> None:
        raise ValueError("refused")

    outcome: dict[str, object] = {}

    async def run_bad() -> None:
        with pytest.raises(ValueError, match="refused"):
            await bad.finish(boom, batcher=batcher)
        outcome["bad"] = "raised"

    async def run_good() -> None:
        outcome["good"] = await good.finish(
            lambda s, b: s.commit_sync(tmp_path / "good.dcm", batch=b), batcher=batcher
        )

    async with anyio.create_task_group() as tg:
        tg.start_soon(run_bad)
        tg.start_soon(run_good)
    batcher.close()
    assert outcome == {"bad": "raised", "good": True}
    assert (tmp_path / "good.dcm").read_bytes() == b"good"
    await bad.discard()
    assert not bad.path.exists()


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_the_thread_stops_when_idle_and_starts_again(tmp_path: Path) -> None:
    limiter = anyio.CapacityLimiter(2)
    batcher = ThreadBatcher(SyncBatcher(limiter), idle_timeout=0.01)
    for n in range(2):
        sink = await _closed(tmp_path / f"{n}.part", limiter, b"x")
        target = tmp_path / f"{n}.dcm"

        def keep(s: FileSink, b: SyncBatch, t: Path = target) -> bool:
            return s.commit_sync(t, batch=b)

        await sink.finish(keep, batcher=batcher)
        for thread in batcher.threads:  # none when it already stopped
            await anyio.to_thread.run_sync(thread.join, 5)
            assert not thread.is_alive()
        assert batcher.threads == []
    assert batcher.trips == 2 and (tmp_path / "1.dcm").exists()


async def test_finish_here_runs_in_the_calling_thread_and_only_once(tmp_path: Path) -> None:
    limiter = anyio.CapacityLimiter(2)
    sink = _deferred(tmp_path / "t.part", limiter, durable=False)
    await sink.write(memoryview(b"abc"))
    with pytest.raises(RuntimeError):
        sink.finish_here(lambda s, b: None)  # not closed yet
    await sink.close()
    assert sink.whole
    here = threading.current_thread()

    def keep(s: FileSink, batch: SyncBatch) -> bool:
        assert threading.current_thread() is here
        return s.commit_sync(tmp_path / "t.dcm", batch=batch)

    assert sink.finish_here(keep)
    assert (tmp_path / "t.dcm").read_bytes() == b"abc"
    with pytest.raises(RuntimeError):
        sink.finish_here(keep)


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
@pytest.mark.parametrize(
    ("durable", "loop_write_max", "in_thread"),
    [(False, 256 * 1024, False), (False, 0, True), (True, 256 * 1024, True)],
)
async def test_scp_finishes_small_non_durable_instances_on_the_loop(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    durable: bool,
    loop_write_max: int,
    in_thread: bool,
) -> None:
    """Without fsync a small instance is written and named by the event loop (no thread
    trip); durable ones, or with ``loop_write_max=0``, go to the batcher's thread. Either
    way the answer comes after the file is in its place."""
    steps: list[str] = []
    real_run_trip = syncbatch.run_trip

    def run_trip(batch: list[syncbatch._Job[object]]) -> None:
        steps.extend(threading.current_thread().name for _ in batch)
        real_run_trip(batch)

    monkeypatch.setattr(syncbatch, "run_trip", run_trip)
    root = tmp_path / "root"
    scp = aiodimse.AE("STORE_SCP")
    options = StorageOptions(output_directory=root, durable=durable, loop_write_max=loop_write_max)
    storage = enable_storage(scp, options)
    items = [ct_bytes(seed=i) for i in range(3)]
    async with scp.serve("127.0.0.1", 0) as server:
        ctx = contexts_for([CT], ExplicitVRLittleEndian)
        async with aiodimse.AE("SCU").associate("127.0.0.1", server.port, contexts=ctx) as assoc:
            for data, spec in items:
                uid = spec.sop_instance_uid
                rsp = await store_bytes(assoc, data, sop_class_uid=CT, sop_instance_uid=uid)
                assert rsp.status == 0
                assert (root / f"{uid}.dcm").read_bytes().endswith(data)
    main = threading.main_thread().name
    assert len(steps) == len(items)
    assert all((name != main) is in_thread for name in steps), steps
    assert storage.stats.stored == len(items)
    storage._anonymous.close()
    assert sorted(os.listdir(root)) == sorted(f"{s.sop_instance_uid}.dcm" for _, s in items)


def test_loop_write_max_must_not_be_negative() -> None:
    with pytest.raises(ValueError):
        StorageOptions(loop_write_max=-1)


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
@pytest.mark.parametrize("durable", [False, True])
async def test_a_free_flat_name_is_linked_without_the_check_and_a_taken_one_is_checked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, durable: bool
) -> None:
    """The FLAT name is linked at once when free; a duplicate is still replaced and a
    symbolic link planted at the name and leading outside the root is still refused."""
    from aiodimse.services import filepolicy, storage_scp

    checked: list[tuple[str, ...]] = []
    real_resolve = filepolicy.resolve_inside

    def resolve_inside(root: Path, parts: tuple[str, ...], *, base: Path | None = None) -> Path:
        checked.append(parts)
        return real_resolve(root, parts, base=base)

    monkeypatch.setattr(storage_scp, "resolve_inside", resolve_inside)
    root, outside = tmp_path / "root", tmp_path / "outside"
    outside.mkdir()
    scp = aiodimse.AE("STORE_SCP")
    storage = enable_storage(scp, StorageOptions(output_directory=root, durable=durable))
    if not storage._anonymous.supported:  # pragma: no cover - no O_TMPFILE here
        pytest.skip("no nameless files on this platform")
    (free, free_spec), (planted, planted_spec) = ct_bytes(seed=1), ct_bytes(seed=2)
    try:
        (root / f"{planted_spec.sop_instance_uid}.dcm").symlink_to(outside / "x.dcm")
    except OSError:  # pragma: no cover - no symlink privilege
        pytest.skip("cannot create symlinks here")
    statuses: list[int] = []
    async with scp.serve("127.0.0.1", 0) as server:
        ctx = contexts_for([CT], ExplicitVRLittleEndian)
        async with aiodimse.AE("SCU").associate("127.0.0.1", server.port, contexts=ctx) as a:
            for data, spec in [(free, free_spec), (free, free_spec), (planted, planted_spec)]:
                uid = spec.sop_instance_uid
                rsp = await store_bytes(a, data, sop_class_uid=CT, sop_instance_uid=uid)
                statuses.append(rsp.status)
    storage._anonymous.close()
    assert statuses[:2] == [0, 0]  # stored, then replaced (the duplicate policy)
    assert statuses[2] != 0  # the planted link is refused
    assert (root / f"{free_spec.sop_instance_uid}.dcm").read_bytes().endswith(free)
    assert not (outside / "x.dcm").exists() and list(outside.iterdir()) == []
    # The first store needed no check; the duplicate and the planted name were checked.
    assert checked == [
        (f"{free_spec.sop_instance_uid}.dcm",),
        (f"{planted_spec.sop_instance_uid}.dcm",),
    ]
    assert not [p for p in root.iterdir() if p.name.endswith(".part")]


def _element(group: int, elem: int, vr: bytes, value: bytes) -> bytes:
    """One explicit VR little endian element with a 16-bit length (PS3.5 7.1.2)."""
    if len(value) % 2:
        value += b"\x00" if vr == b"UI" else b" "
    return struct.pack("<HH2sH", group, elem, vr, len(value)) + value


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_uids_past_the_first_look_are_still_read(tmp_path: Path) -> None:
    """The SCP reads the first 4 KiB of a dataset for its UIDs, and the whole held head when
    they are not there: a dataset whose UIDs follow a 10 KB element is checked and stored,
    and one whose instance UID there differs from the command's is refused (0xA900)."""
    image_type = b"\\".join([b"ORIGINAL_PRIMARY"] * 600)  # CS, ~10 KB
    good_uid, other_uid = "1.2.826.0.1.3680043.8.498.1", "1.2.826.0.1.3680043.8.498.2"

    def dataset(uid: str) -> bytes:
        return (
            _element(0x0008, 0x0008, b"CS", image_type)
            + _element(0x0008, 0x0016, b"UI", CT.encode())
            + _element(0x0008, 0x0018, b"UI", uid.encode())
            + _element(0x0010, 0x0010, b"PN", b"Far^Away")
        )

    root = tmp_path / "root"
    scp = aiodimse.AE("STORE_SCP")
    storage = enable_storage(scp, StorageOptions(output_directory=root, durable=False))
    async with scp.serve("127.0.0.1", 0) as server:
        ctx = contexts_for([CT], ExplicitVRLittleEndian)
        async with aiodimse.AE("SCU").associate("127.0.0.1", server.port, contexts=ctx) as a:
            ok = await store_bytes(
                a, dataset(good_uid), sop_class_uid=CT, sop_instance_uid=good_uid
            )
            bad = await store_bytes(
                a, dataset(other_uid), sop_class_uid=CT, sop_instance_uid="1.2.826.0.1.3"
            )
    storage._anonymous.close()
    assert ok.status == 0 and bad.status == 0xA900
    assert (root / f"{good_uid}.dcm").read_bytes().endswith(dataset(good_uid))
    assert [p.name for p in root.iterdir()] == [f"{good_uid}.dcm"]


async def test_head_start_copies_only_what_is_asked(tmp_path: Path) -> None:
    sink = _deferred(tmp_path / "h.part", anyio.CapacityLimiter(1), durable=False)
    data = bytes(range(256)) * 40
    await sink.write(memoryview(data))
    await sink.close()
    assert sink.head_start(100) == data[:100]
    assert sink.head_start(1 << 30) == sink.head == data[: 64 * 1024]
    await sink.discard()


async def test_a_path_made_later_is_made_only_when_a_name_is_needed(tmp_path: Path) -> None:
    made: list[Path] = []

    def make() -> Path:
        made.append(tmp_path / f"t{len(made)}.part")
        return made[-1]

    limiter = anyio.CapacityLimiter(1)
    with pytest.raises(ValueError):
        FileSink(make, limiter=limiter)  # no directory: refused
    # A named temporary file: the name is made when the file is opened, then renamed.
    sink = FileSink(make, directory=tmp_path, limiter=limiter, defer_finish=True)
    assert made == [] and sink.directory == tmp_path
    await sink.write(memoryview(b"abc"))
    await sink.close()
    assert sink.finish_here(lambda s, b: s.commit_sync(tmp_path / "a.dcm", batch=b))
    assert made == [tmp_path / "t0.part"] and sink.path == made[0]
    assert (tmp_path / "a.dcm").read_bytes() == b"abc" and not made[0].exists()
    # Discarded before anything was written: no name was ever needed.
    other = FileSink(make, directory=tmp_path, limiter=limiter)
    await other.write(memoryview(b"x"))
    await other.discard()
    assert len(made) == 1


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_a_forked_child_starts_its_own_threads(tmp_path: Path) -> None:
    """After a fork no thread of the parent runs: the child must not count them."""
    limiter = anyio.CapacityLimiter(1)
    batcher = ThreadBatcher(SyncBatcher(limiter), workers=1, idle_timeout=30)
    sink = await _closed(tmp_path / "a.part", limiter, b"a")
    await sink.finish(lambda s, b: s.commit_sync(tmp_path / "a.dcm", batch=b), batcher=batcher)
    # What a fork looks like from the child: another process id, the parent's (running)
    # thread still listed although it does not exist here.
    batcher._pid = -1
    batcher._waiting = 0
    ghost = threading.Thread(target=lambda: None)
    batcher._threads = {ghost}
    sink = await _closed(tmp_path / "b.part", limiter, b"b")
    with anyio.fail_after(10):
        await sink.finish(lambda s, b: s.commit_sync(tmp_path / "b.dcm", batch=b), batcher=batcher)
    assert (tmp_path / "b.dcm").read_bytes() == b"b"
    assert ghost not in batcher.threads and batcher._pid == os.getpid()
    batcher.close()
