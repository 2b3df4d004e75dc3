"""Sending over several associations at once (AE.send_files(associations=N, window=W))."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

import aiodimse
from aiodimse.net.channel import Channel
from aiodimse.services.parallel import send_files_parallel
from aiodimse.services.storage_scu import StoreResult
from tests.scale.scale_support import Gate, WindowSCP, write_instances

pytestmark = pytest.mark.anyio

LIMIT = 30.0


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


async def test_many_files_over_three_pipelined_associations(tmp_path: Path) -> None:
    paths = write_instances(tmp_path / "in", 60)
    (tmp_path / "in" / "README.txt").write_text("not DICOM")
    # The first 6 requests to arrive are held until all 6 are performed at once: more than
    # one association's window of 4 must be outstanding, or this never opens.
    gate = Gate(6)
    held = 0

    async def hook(index: int, channel: Channel) -> int | None:
        nonlocal held
        held += 1
        if held <= 6:
            await gate.wait()
        return None

    scp = WindowSCP(hook=hook)
    calls: list[tuple[int, int]] = []
    seen: list[StoreResult] = []
    scu = aiodimse.AE("PARALLEL")
    with anyio.fail_after(LIMIT):
        async with scp.ae.serve("127.0.0.1", 0) as server:
            results = await scu.send_files(
                "127.0.0.1",
                server.port,
                [tmp_path / "in"],
                called_ae="WINDOWSCP",
                associations=3,
                window=4,
                progress=lambda s, t: calls.append((s, t)),
                on_result=seen.append,
            )
            assert server.total_associations == 3
    assert results[0].path == tmp_path / "in" / "README.txt" and not results[0].sent
    assert [r.path for r in results[1:]] == paths
    assert all(r.ok for r in results[1:])
    assert sorted(scp.arrived) == list(range(60))
    assert 6 <= scp.max_active <= 12
    total = sum(r.bytes_sent for r in results)
    assert calls[-1] == (total, total)
    assert [s for s, _ in calls] == sorted(s for s, _ in calls)
    assert len(seen) == 61


async def test_a_lost_association_hands_its_unsent_files_to_another(tmp_path: Path) -> None:
    paths = write_instances(tmp_path / "in", 40)
    aborted = anyio.Event()

    async def hook(index: int, channel: Channel) -> int | None:
        if index == 5 and not aborted.is_set():
            aborted.set()
            await channel.abort()
        return None

    scp = WindowSCP(hook=hook)
    with anyio.fail_after(LIMIT):
        async with scp.ae.serve("127.0.0.1", 0) as server:
            results = await send_files_parallel(
                aiodimse.AE("PARALLEL"),
                "127.0.0.1",
                server.port,
                paths,
                called_ae="WINDOWSCP",
                associations=2,
                window=4,
            )
    failed = [r for r in results if not r.ok]
    # Only what was outstanding on the lost association fails (retryable); every file it
    # had not started went over another association.
    assert failed and len(failed) <= 4
    assert all(r.retryable and not r.sent for r in failed)
    assert results[5] in failed
    stored = {i for i in scp.answered}
    assert stored == {i for i, r in enumerate(results) if r.ok}
    assert len(stored) == 40 - len(failed)


async def test_stop_after_a_failure(tmp_path: Path) -> None:
    paths = write_instances(tmp_path / "in", 50)

    async def hook(index: int, channel: Channel) -> int | None:
        return 0xA900 if index == 2 else None

    scp = WindowSCP(hook=hook)
    with anyio.fail_after(LIMIT):
        async with scp.ae.serve("127.0.0.1", 0) as server:
            results = await send_files_parallel(
                aiodimse.AE("PARALLEL"),
                "127.0.0.1",
                server.port,
                paths,
                called_ae="WINDOWSCP",
                associations=2,
                continue_on_error=False,
            )
    assert results[2].status == 0xA900
    not_sent = [r for r in results if r.error == "not sent: stopped after a failure"]
    assert not_sent and all(not r.sent and not r.retryable for r in not_sent)
    assert all(r.ok for r in results if r.sent and r is not results[2])


async def test_an_scp_admitting_fewer_associations_still_gets_everything(tmp_path: Path) -> None:
    paths = write_instances(tmp_path / "in", 30)
    scp = WindowSCP()
    scp.ae.max_associations = 1  # the others are rejected (transient, local limit)
    with anyio.fail_after(LIMIT):
        async with scp.ae.serve("127.0.0.1", 0) as server:
            results = await send_files_parallel(
                aiodimse.AE("PARALLEL"),
                "127.0.0.1",
                server.port,
                paths,
                called_ae="WINDOWSCP",
                associations=4,
            )
            assert server.total_rejected >= 1
    assert all(r.ok for r in results)
    assert sorted(scp.arrived) == list(range(30))


async def test_no_association_at_all_raises(tmp_path: Path) -> None:
    paths = write_instances(tmp_path / "in", 3)
    with anyio.fail_after(LIMIT), pytest.raises(aiodimse.NetworkError):
        await send_files_parallel(aiodimse.AE("PARALLEL"), "127.0.0.1", 1, paths, associations=2)


async def test_a_raising_callback_surfaces_as_itself(tmp_path: Path) -> None:
    paths = write_instances(tmp_path / "in", 20)

    class Boom(Exception):
        pass

    def on_result(result: StoreResult) -> None:
        raise Boom

    with anyio.fail_after(LIMIT):
        async with WindowSCP().ae.serve("127.0.0.1", 0) as server:
            with pytest.raises(Boom):
                await send_files_parallel(
                    aiodimse.AE("PARALLEL"),
                    "127.0.0.1",
                    server.port,
                    paths,
                    called_ae="WINDOWSCP",
                    associations=3,
                    on_result=on_result,
                )
