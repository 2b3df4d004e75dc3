"""Automatic fallback of ``send_files`` against a picky peer (issue 8).

Our own Storage SCP (a recording test SCP) sits behind :mod:`tests.transfer.choosy`, a proxy
that rejects, aborts or closes an association proposing too many contexts, or drops the
contexts past its limit. ``send_files`` must retry with the next more conservative strategy
and report the strategy and transfer syntax finally used.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from pydicom.uid import UID, ExplicitVRLittleEndian, ImplicitVRLittleEndian, JPEGBaseline8Bit

import aiodimse
from aiodimse.errors import AssociationRejected
from aiodimse.services.sending import send_files
from aiodimse.services.storage_contexts import Conversion
from aiodimse.services.storage_scu import StoreResult
from aiodimse.services.ts_strategies import Strategy
from tests.storage.storage_scu_support import RecordingSCP, contexts_for
from tests.support import datagen
from tests.transfer.choosy import Mode, choosy_proxy

pytestmark = pytest.mark.anyio

ALL_SYNTAXES = (ExplicitVRLittleEndian, ImplicitVRLittleEndian, JPEGBaseline8Bit)


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def files(tmp_path: Path) -> list[datagen.Generated]:
    """CT Explicit, MR Implicit, SC JPEG: AUTO proposes 2 + 2 + 3 = 7 contexts, CONSERVATIVE
    and UNIVERSAL 3."""
    return [
        datagen.write_file(datagen.Spec(kind=k, transfer_syntax=t, seed=3), tmp_path / k.value)
        for k, t in (
            (datagen.Kind.CT, ExplicitVRLittleEndian),
            (datagen.Kind.MR, ImplicitVRLittleEndian),
            (datagen.Kind.SC, JPEGBaseline8Bit),
        )
    ]


def by_path(results: list[StoreResult]) -> dict[Path, StoreResult]:
    return {r.path: r for r in results if r.path is not None}


@pytest.mark.parametrize("mode", [Mode.REJECT, Mode.ABORT, Mode.CLOSE])
async def test_refused_negotiation_falls_back_to_conservative(
    files: list[datagen.Generated], mode: Mode
) -> None:
    scp = RecordingSCP(contexts=contexts_for([g.sop_class_uid for g in files], ALL_SYNTAXES))
    async with scp.ae.serve("127.0.0.1", 0) as server:
        async with choosy_proxy(server.port, max_contexts=4, mode=mode) as proxy:
            results = await send_files(
                aiodimse.AE("SCU"), "127.0.0.1", proxy.port, [g.path for g in files]
            )
    assert proxy.seen == [7, 3]
    got = by_path(results)
    assert len(got) == 3 and all(r.ok for r in results)
    assert {r.strategy for r in results} == {Strategy.CONSERVATIVE}
    jpeg = got[files[2].path]
    # CONSERVATIVE proposes no JPEG context: the JPEG was decompressed.
    assert jpeg.conversion is Conversion.DECODE
    assert jpeg.transfer_syntax in (ExplicitVRLittleEndian, ImplicitVRLittleEndian)
    assert got[files[0].path].transfer_syntax == ExplicitVRLittleEndian  # our preference
    assert len(scp.arrived) == 3


async def test_every_strategy_refused_raises_the_last_rejection(
    files: list[datagen.Generated],
) -> None:
    scp = RecordingSCP(contexts=contexts_for([g.sop_class_uid for g in files], ALL_SYNTAXES))
    async with scp.ae.serve("127.0.0.1", 0) as server:
        async with choosy_proxy(server.port, max_contexts=2, mode=Mode.REJECT) as proxy:
            with pytest.raises(AssociationRejected):
                await send_files(
                    aiodimse.AE("SCU"), "127.0.0.1", proxy.port, [g.path for g in files]
                )
    assert proxy.seen == [7, 3, 3]  # auto, conservative, universal
    assert scp.arrived == []


async def test_no_fallback_when_asked(files: list[datagen.Generated]) -> None:
    scp = RecordingSCP(contexts=contexts_for([g.sop_class_uid for g in files], ALL_SYNTAXES))
    async with scp.ae.serve("127.0.0.1", 0) as server:
        async with choosy_proxy(server.port, max_contexts=4, mode=Mode.REJECT) as proxy:
            with pytest.raises(AssociationRejected):
                await send_files(
                    aiodimse.AE("SCU"),
                    "127.0.0.1",
                    proxy.port,
                    [g.path for g in files],
                    fallback=False,
                )
    assert proxy.seen == [7]


async def test_unanswered_contexts_send_the_rest_again_more_conservatively(
    files: list[datagen.Generated],
) -> None:
    # The first 4 contexts (CT and MR) reach the SCP; SC's three are never answered.
    scp = RecordingSCP(contexts=contexts_for([g.sop_class_uid for g in files], ALL_SYNTAXES))
    seen: list[StoreResult] = []
    async with scp.ae.serve("127.0.0.1", 0) as server:
        async with choosy_proxy(server.port, max_contexts=4, mode=Mode.TRUNCATE) as proxy:
            results = await send_files(
                aiodimse.AE("SCU"),
                "127.0.0.1",
                proxy.port,
                [g.path for g in files],
                on_result=seen.append,
            )
    assert proxy.seen == [7, 1]
    got = by_path(results)
    assert all(r.ok for r in results) and len(seen) == 3
    assert got[files[0].path].strategy is Strategy.AUTO
    assert got[files[0].path].transfer_syntax == ExplicitVRLittleEndian
    assert not got[files[0].path].converted  # bit for bit under AUTO
    assert got[files[2].path].strategy is Strategy.CONSERVATIVE
    assert got[files[2].path].conversion is Conversion.DECODE
    assert {r.strategy for r in seen} == {Strategy.AUTO, Strategy.CONSERVATIVE}


async def test_an_unsupported_sop_class_fails_at_once_explained(
    files: list[datagen.Generated],
) -> None:
    # The SCP knows CT and MR only: SC is rejected as a SOP class, no retry can help.
    scp = RecordingSCP(contexts=contexts_for([g.sop_class_uid for g in files[:2]], ALL_SYNTAXES))
    async with scp.ae.serve("127.0.0.1", 0) as server:
        async with choosy_proxy(server.port, max_contexts=100, mode=Mode.REJECT) as proxy:
            results = await send_files(
                aiodimse.AE("SCU"), "127.0.0.1", proxy.port, [g.path for g in files]
            )
    assert proxy.seen == [7]
    sc = by_path(results)[files[2].path]
    assert not sc.ok and sc.status is None and sc.strategy is Strategy.AUTO
    line = sc.describe()
    assert "Secondary Capture Image Storage" in line
    assert "rejected every context proposed for it: SOP class not supported" in line
    assert "try: configure the peer to accept this SOP class" in line


async def test_more_than_128_contexts_go_over_several_associations(tmp_path: Path) -> None:
    # 70 SOP classes x (own + 1 fallback) = 140 contexts under AUTO: two associations.
    classes = [f"1.2.826.0.1.3680043.9.7777.{i}" for i in range(70)]
    paths = []
    for n, uid in enumerate(classes):
        ds = datagen.make_dataset(datagen.Spec(kind=datagen.Kind.CT, seed=n))
        ds.SOPClassUID = UID(uid)
        ds.file_meta.MediaStorageSOPClassUID = UID(uid)
        path = tmp_path / f"{n:03d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    scp = RecordingSCP(contexts=contexts_for(classes, (ExplicitVRLittleEndian,)))
    async with scp.ae.serve("127.0.0.1", 0) as server:
        async with choosy_proxy(server.port, max_contexts=128, mode=Mode.REJECT) as proxy:
            results = await send_files(aiodimse.AE("SCU"), "127.0.0.1", proxy.port, paths)
    assert all(r.ok for r in results) and [r.path for r in results] == paths
    assert proxy.seen == [128, 12]


async def test_ae_send_files_takes_the_strategy(files: list[datagen.Generated]) -> None:
    scp = RecordingSCP(contexts=contexts_for([g.sop_class_uid for g in files], ALL_SYNTAXES))
    async with scp.ae.serve("127.0.0.1", 0) as server:
        async with choosy_proxy(server.port, max_contexts=100, mode=Mode.REJECT) as proxy:
            results = await aiodimse.AE("SCU").send_files(
                "127.0.0.1", proxy.port, [g.path for g in files], strategy=Strategy.UNIVERSAL
            )
            ae = aiodimse.AE("SCU")
            async with ae.associate_for_files(
                "127.0.0.1", proxy.port, [files[0].path], strategy=Strategy.STANDARD
            ) as assoc:
                assert {c.transfer_syntax for c in assoc.negotiated.accepted.values()} == {
                    ExplicitVRLittleEndian
                }
    assert proxy.seen == [3, 1]
    assert all(r.ok and r.strategy is Strategy.UNIVERSAL for r in results)
    assert {a.transfer_syntax for a in scp.arrived} == {ImplicitVRLittleEndian}
