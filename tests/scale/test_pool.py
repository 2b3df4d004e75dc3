"""AssociationPool against an aiodimse SCP: reuse, bound, expiry, dead peers, contexts."""

from __future__ import annotations

import anyio
import pytest
from pydicom.uid import ExplicitVRLittleEndian

import aiodimse
from aiodimse.errors import ContextNotAccepted
from aiodimse.net.channel import Channel
from aiodimse.services.contexts import Context
from aiodimse.services.pool import AssociationPool
from tests.scale.scale_support import CT, MR, Gate, WindowSCP, make_instance, storage_contexts

pytestmark = pytest.mark.anyio

LIMIT = 20.0


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def pool_for(port: int, **kwargs: object) -> AssociationPool:
    scu = aiodimse.AE("POOLSCU")
    return AssociationPool(
        scu,
        "127.0.0.1",
        port,
        called_ae="WINDOWSCP",
        contexts=storage_contexts(CT),
        **kwargs,  # type: ignore[arg-type]
    )


async def test_reuse_and_release_on_close() -> None:
    scp = WindowSCP()
    with anyio.fail_after(LIMIT):
        async with scp.ae.serve("127.0.0.1", 0) as server:
            async with pool_for(server.port) as pool:
                async with pool.acquire() as first:
                    assert (await first.store(make_instance(0))).ok
                async with pool.acquire() as second:
                    assert (await second.store(make_instance(1))).ok
                assert second is first
                assert pool.stats.opened == 1 and pool.stats.reused == 1
                assert pool.stats.idle == 1 and server.active == 1
            # Closing the pool releases its associations.
            await first.wait_closed()
            assert server.total_associations == 1


async def test_concurrent_borrowers_never_exceed_max_size() -> None:
    scp = WindowSCP()
    most = 0
    gate = Gate(2)  # the first two borrowers hold theirs at once: both are needed

    async def borrower(pool: AssociationPool, index: int, server: aiodimse.Server) -> None:
        nonlocal most
        async with pool.acquire() as assoc:
            most = max(most, server.active)
            if index < 2:
                await gate.wait()
            assert (await assoc.store(make_instance(index))).ok

    with anyio.fail_after(LIMIT):
        async with scp.ae.serve("127.0.0.1", 0) as server:
            async with pool_for(server.port, max_size=2) as pool:
                async with anyio.create_task_group() as tg:
                    for i in range(8):
                        tg.start_soon(borrower, pool, i, server)
                assert pool.stats.opened == 2
                assert pool.stats.reused == 6
    assert most == 2
    assert sorted(scp.arrived) == list(range(8))


async def test_idle_association_expires_with_a_release() -> None:
    scp = WindowSCP()
    with anyio.fail_after(LIMIT):
        async with scp.ae.serve("127.0.0.1", 0) as server:
            async with pool_for(server.port, idle_timeout=0.2) as pool:
                async with pool.acquire() as first:
                    await first.echo()
                await first.wait_closed()  # expired in the pool, released by us
                assert pool.stats.expired == 1 and pool.stats.idle == 0
                async with pool.acquire() as second:
                    await second.echo()
                assert second is not first and pool.stats.opened == 2
            assert server.total_associations == 2


async def test_peer_closing_an_idle_association_is_noticed_and_replaced() -> None:
    channels: list[Channel] = []

    async def remember(index: int, channel: Channel) -> int | None:
        channels.append(channel)
        return None

    scp = WindowSCP(hook=remember)
    with anyio.fail_after(LIMIT):
        async with scp.ae.serve("127.0.0.1", 0) as server:
            async with pool_for(server.port) as pool:
                async with pool.acquire() as first:
                    await first.store(make_instance(0))
                await channels[0].abort()  # the peer aborts it while it idles in the pool
                await first.wait_closed()
                async with pool.acquire() as second:
                    assert (await second.store(make_instance(1))).ok
                assert second is not first
                assert pool.stats.lost == 1 and pool.stats.opened == 2


async def test_health_check_before_reuse_replaces_a_failing_peer() -> None:
    answers = [0x0000, 0xC001]

    async def on_echo(request: object) -> int:
        return answers.pop(0) if answers else 0

    scp = WindowSCP()
    scp.ae.on_echo = on_echo
    with anyio.fail_after(LIMIT):
        async with scp.ae.serve("127.0.0.1", 0) as server:
            async with pool_for(server.port, check_after=0.0) as pool:
                async with pool.acquire() as first:
                    pass
                async with pool.acquire() as second:  # C-ECHO answered Success: reused
                    pass
                async with pool.acquire() as third:  # C-ECHO answered 0xC001: replaced
                    pass
                assert second is first and third is not first
                s = pool.stats
                assert (s.health_checks, s.health_failures, s.opened) == (2, 1, 2)


async def test_new_sop_class_opens_an_association_with_the_union() -> None:
    scp = WindowSCP(classes=(CT, MR))
    mr = Context(abstract_syntax=MR, transfer_syntaxes=(ExplicitVRLittleEndian,))
    with anyio.fail_after(LIMIT):
        async with scp.ae.serve("127.0.0.1", 0) as server:
            async with pool_for(server.port, max_size=1) as pool:
                async with pool.acquire() as ct_only:
                    assert (await ct_only.store(make_instance(0))).ok
                    with pytest.raises(ContextNotAccepted):
                        ct_only.context_for(MR)
                async with pool.acquire(contexts=[mr]) as both:
                    assert both is not ct_only
                    assert (await both.store(make_instance(1, sop_class=MR))).ok
                    assert (await both.store(make_instance(2))).ok
                assert pool.stats.evicted == 1  # max_size 1: the CT-only one made room
                async with pool.acquire() as again:  # CT only asked: the union serves it
                    assert again is both
                await ct_only.wait_closed()


async def test_a_failing_borrower_gets_its_association_aborted() -> None:
    scp = WindowSCP()
    with anyio.fail_after(LIMIT):
        async with scp.ae.serve("127.0.0.1", 0) as server:
            async with pool_for(server.port) as pool:
                with pytest.raises(RuntimeError):
                    async with pool.acquire() as first:
                        raise RuntimeError("the borrower's own bug")
                await first.wait_closed()
                async with pool.acquire() as second:
                    assert second is not first
                    await second.echo()


async def test_refused_connection_raises_and_frees_the_slot() -> None:
    with anyio.fail_after(LIMIT):
        async with pool_for(1, max_size=1) as pool:  # nothing listens on port 1
            for _ in range(2):
                with pytest.raises(aiodimse.NetworkError):
                    async with pool.acquire():
                        pass
            assert pool.stats.in_use == 0 and pool.stats.opened == 0


async def test_cancelled_during_the_health_check_frees_the_slot() -> None:
    release = anyio.Event()

    async def slow_echo(request: object) -> int:
        await release.wait()
        return 0

    scp = WindowSCP()
    scp.ae.on_echo = slow_echo
    with anyio.fail_after(LIMIT):
        async with scp.ae.serve("127.0.0.1", 0) as server:
            async with pool_for(server.port, max_size=1, check_after=0.0) as pool:
                async with pool.acquire() as first:
                    pass
                with anyio.move_on_after(0.2):
                    async with pool.acquire():  # its C-ECHO never answers: cancelled
                        pytest.fail("lent without a health check answer")
                release.set()
                await first.wait_closed()  # aborted, not lent again
                async with pool.acquire() as second:  # the slot (max_size 1) is free
                    assert second is not first
                assert pool.stats.in_use == 0
