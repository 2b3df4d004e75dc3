"""AssociationPool against Orthanc, which closes associations idle for ``DicomScpTimeout``.

Orthanc's default is 30 s; this Orthanc is started with 2 s so the test stays short. The
pool either expires its idle association first (``idle_timeout`` below the peer's), or
notices that Orthanc closed it and opens a new one.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest

import aiodimse
from aiodimse.services.contexts import VERIFICATION
from aiodimse.services.pool import AssociationPool
from tests.scale.scale_support import CT, make_instance, storage_contexts
from tests.support import orthanc_peer, peers

pytestmark = [pytest.mark.anyio, pytest.mark.interop]

ORTHANC_IDLE = 2  # seconds, Orthanc's DicomScpTimeout here


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
def impatient_orthanc(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[orthanc_peer.OrthancPeer]:
    exe = peers.require_peer("Orthanc", "Orthanc")
    server = orthanc_peer.start_orthanc(
        Path(tmp_path_factory.mktemp("orthanc-idle")),
        binary=exe,
        extra_config={"DicomScpTimeout": ORTHANC_IDLE},
    )
    try:
        yield server
    finally:
        server.stop()


def make_pool(orthanc: orthanc_peer.OrthancPeer, **kwargs: object) -> AssociationPool:
    return AssociationPool(
        aiodimse.AE("POOLSCU"),
        "127.0.0.1",
        orthanc.port,
        called_ae=orthanc.ae_title,
        contexts=[*storage_contexts(CT), VERIFICATION],
        **kwargs,  # type: ignore[arg-type]
    )


async def test_orthanc_closing_an_idle_association_is_replaced(
    impatient_orthanc: orthanc_peer.OrthancPeer,
) -> None:
    with anyio.fail_after(30):
        async with make_pool(impatient_orthanc, idle_timeout=None, check_after=None) as pool:
            async with pool.acquire() as first:
                assert (await first.store(make_instance(0))).ok
            await first.wait_closed()  # Orthanc closes it after DicomScpTimeout
            async with pool.acquire() as second:
                assert (await second.store(make_instance(1))).ok
            assert second is not first
            assert (pool.stats.lost, pool.stats.opened, pool.stats.reused) == (1, 2, 0)


async def test_pool_expires_before_orthanc_does(
    impatient_orthanc: orthanc_peer.OrthancPeer,
) -> None:
    with anyio.fail_after(30):
        async with make_pool(impatient_orthanc, idle_timeout=ORTHANC_IDLE / 4) as pool:
            async with pool.acquire() as first:
                await first.echo()
            await first.wait_closed()
            assert pool.stats.expired == 1 and pool.stats.lost == 0
            async with pool.acquire() as second:
                await second.echo()
