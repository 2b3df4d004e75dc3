"""A requestor asking for a window of 16 against peers that grant none: one at a time.

dcmtk's storescp and pynetdicom's storescp app answer no Asynchronous Operations Window
(PS3.7 D.3.3.3: absent means 1/1), so ``store_many`` must not pipeline; every instance must
still arrive.
"""

from __future__ import annotations

import anyio
import pytest

import aiodimse
from tests.scale.scale_support import CT, make_instance, storage_contexts
from tests.support.peers import Peer

pytestmark = [pytest.mark.anyio, pytest.mark.interop]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def _store_window_16(peer: Peer) -> None:
    scu = aiodimse.AE("WINDOW16", max_operations_invoked=16)
    items = [make_instance(i) for i in range(12)]
    with anyio.fail_after(60):
        async with scu.associate(
            "127.0.0.1", peer.port, called_ae=peer.ae_title, contexts=storage_contexts(CT)
        ) as assoc:
            rq = assoc._channel.request
            assert rq is not None and rq.user_information.asynchronous_operations_window
            assert assoc.operations_window == 1  # the peer granted no window
            results = await assoc.store_many(items)
    assert all(r.ok for r in results), [r.describe() for r in results if not r.ok]
    assert peer.output_dir is not None
    # Both peers write the file before they answer.
    names = " ".join(p.name for p in peer.output_dir.rglob("*"))
    for ds in items:
        assert str(ds.SOPInstanceUID) in names


async def test_dcmtk_storescp_gets_one_at_a_time(dcmtk_storescp: Peer) -> None:
    await _store_window_16(dcmtk_storescp)


async def test_pynetdicom_storescp_gets_one_at_a_time(pynetdicom_storescp: Peer) -> None:
    await _store_window_16(pynetdicom_storescp)
