"""Our C-STORE SCU -> our acceptor restricted to one transfer syntax (issue 8).

Every source syntax (Implicit/Explicit VR Little Endian, Explicit VR Big Endian, Deflated,
JPEG Baseline, RLE Lossless, JPEG-LS Lossless, JPEG 2000 Lossless) against a peer accepting
exactly one uncompressed syntax: each instance arrives in that syntax, converted (streaming
transcoder or frame-by-frame decoding) unless it was already in it, and decodes to the
source dataset (pixels equal; within 2 for the lossy JPEG).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.uid import ImplicitVRLittleEndian, JPEGBaseline8Bit

import aiodimse
from aiodimse.net.filesource import read_file_info
from aiodimse.services.storage_contexts import Conversion, propose_contexts
from aiodimse.services.storage_scu import DatasetInstance
from aiodimse.services.ts_strategies import Strategy
from tests.storage.storage_scu_support import RecordingSCP, contexts_for
from tests.transfer.support import (
    COMPRESSED,
    UNCOMPRESSED,
    assert_same_instance,
    parse_wire,
    write_source,
)

pytestmark = pytest.mark.anyio


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[Path]]:
    root = tmp_path_factory.mktemp("sources")
    return {
        ts: [
            write_source(root, ts, seed=1),
            write_source(root, ts, seed=2, colour=True, frames=3),
        ]
        for ts in (*UNCOMPRESSED, *COMPRESSED)
    }


@pytest.mark.parametrize(
    ("strategy", "accepted"),
    [(Strategy.AUTO, ts) for ts in UNCOMPRESSED]
    # STANDARD proposes no Deflated context.
    + [(Strategy.STANDARD, ts) for ts in UNCOMPRESSED if ts != UNCOMPRESSED[3]],
)
async def test_every_source_reaches_a_peer_accepting_one_syntax(
    sources: dict[str, list[Path]], accepted: str, strategy: Strategy
) -> None:
    infos = [read_file_info(p) for paths in sources.values() for p in paths]
    scp = RecordingSCP(contexts=contexts_for([i.sop_class_uid for i in infos], (accepted,)))
    async with scp.ae.serve("127.0.0.1", 0) as server:
        scu = aiodimse.AE("SCU")
        contexts = propose_contexts(infos, strategy=strategy)
        async with scu.associate("127.0.0.1", server.port, contexts=contexts) as assoc:
            results = await assoc.store_many(infos)
    assert len(scp.arrived) == len(infos)
    for info, r, got in zip(infos, results, scp.arrived, strict=True):
        what = f"{info.transfer_syntax_uid} -> {accepted}"
        assert r.ok, (what, r.describe())
        assert r.transfer_syntax == accepted == got.transfer_syntax, what
        assert r.converted is (info.transfer_syntax_uid != accepted), what
        want = (
            Conversion.NONE
            if info.transfer_syntax_uid == accepted
            else Conversion.DECODE
            if info.transfer_syntax_uid in COMPRESSED
            else Conversion.TRANSCODE
        )
        assert r.conversion is want, what
        assert got.data is not None and r.bytes_sent == len(got.data), what
        if not r.converted:
            assert got.data == info.path.read_bytes()[info.dataset_offset :], what
        assert_same_instance(parse_wire(got.data, accepted), info.path, info.transfer_syntax_uid)
        if r.conversion is Conversion.DECODE:
            assert "decompressed and sent as" in r.describe()


async def test_a_compressed_pydicom_dataset_is_decoded_for_an_uncompressed_peer(
    sources: dict[str, list[Path]],
) -> None:
    path = sources[JPEGBaseline8Bit][1]
    ds = dcmread(path)
    inst = DatasetInstance.from_dataset(ds)
    scp = RecordingSCP(contexts=contexts_for([inst.sop_class_uid], (ImplicitVRLittleEndian,)))
    async with scp.ae.serve("127.0.0.1", 0) as server:
        scu = aiodimse.AE("SCU")
        async with scu.associate(
            "127.0.0.1", server.port, contexts=propose_contexts([inst])
        ) as assoc:
            r = await assoc.store(ds)
    assert r.ok and r.conversion is Conversion.DECODE
    got = scp.arrived[0]
    assert got.data is not None
    assert_same_instance(parse_wire(got.data, ImplicitVRLittleEndian), path, JPEGBaseline8Bit)
    # The caller's dataset is untouched (still compressed, still YBR).
    assert ds.file_meta.TransferSyntaxUID == JPEGBaseline8Bit
    assert ds.PhotometricInterpretation == dcmread(path).PhotometricInterpretation


async def test_progress_total_ends_exact_when_the_length_changes(
    sources: dict[str, list[Path]],
) -> None:
    infos = [read_file_info(p) for p in sources[JPEGBaseline8Bit] + sources[UNCOMPRESSED[1]]]
    scp = RecordingSCP(
        contexts=contexts_for([i.sop_class_uid for i in infos], ("1.2.840.10008.1.2.2",))
    )
    calls: list[tuple[int, int]] = []
    async with scp.ae.serve("127.0.0.1", 0) as server:
        scu = aiodimse.AE("SCU")
        contexts = propose_contexts(infos, strategy=Strategy.STANDARD)
        async with scu.associate("127.0.0.1", server.port, contexts=contexts) as assoc:
            results = await assoc.store_many(infos, progress=lambda s, t: calls.append((s, t)))
    assert all(r.ok and r.converted for r in results)
    total = sum(r.bytes_sent for r in results)
    assert total == sum(a.length for a in scp.arrived)
    assert calls[-1] == (total, total)
    assert all(s <= total for s, _ in calls)


async def test_conversion_work_never_runs_on_the_event_loop_thread(
    sources: dict[str, list[Path]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Transcoding and decoding are CPU work: they run in worker threads only."""
    import threading

    from aiodimse.dataset import transcode
    from aiodimse.services import decompress

    threads: list[str] = []
    feed, decoded = transcode.Transcoder.feed, decompress.decoded_chunks

    def spy_feed(self: transcode.Transcoder, data: bytes | memoryview) -> list[bytes | memoryview]:
        threads.append(f"transcode:{threading.current_thread().name}")
        return feed(self, data)

    def spy_decoded(*args: object) -> object:
        for chunk in decoded(*args):  # type: ignore[arg-type]
            threads.append(f"decode:{threading.current_thread().name}")
            yield chunk

    monkeypatch.setattr(transcode.Transcoder, "feed", spy_feed)
    monkeypatch.setattr("aiodimse.services.storage_convert.decoded_chunks", spy_decoded)
    infos = [read_file_info(p) for p in sources[JPEGBaseline8Bit] + sources[UNCOMPRESSED[1]]]
    scp = RecordingSCP(
        contexts=contexts_for([i.sop_class_uid for i in infos], ("1.2.840.10008.1.2.2",))
    )
    loop_thread = threading.current_thread().name
    async with scp.ae.serve("127.0.0.1", 0) as server:
        scu = aiodimse.AE("SCU")
        contexts = propose_contexts(infos, strategy=Strategy.STANDARD)
        async with scu.associate("127.0.0.1", server.port, contexts=contexts) as assoc:
            results = await assoc.store_many(infos)
    assert all(r.ok and r.converted for r in results)
    assert {t.split(":")[0] for t in threads} == {"transcode", "decode"}
    assert not [t for t in threads if t.endswith(":" + loop_thread)], threads


@pytest.mark.parametrize("own", [UNCOMPRESSED[1], UNCOMPRESSED[2]])  # Explicit LE, Big Endian
@pytest.mark.parametrize("accepted", UNCOMPRESSED)
async def test_a_pydicom_dataset_changes_byte_order_correctly(
    tmp_path: Path, own: str, accepted: str
) -> None:
    """pydicom writes OB/OW values as they are: a change of byte order must swap them."""
    from tests.transfer.support import write_ct

    path = write_ct(tmp_path, own, seed=31)
    ds = dcmread(path)
    inst = DatasetInstance.from_dataset(ds)
    assert inst.transfer_syntax_uid == own
    scp = RecordingSCP(contexts=contexts_for([inst.sop_class_uid], (accepted,)))
    async with scp.ae.serve("127.0.0.1", 0) as server:
        scu = aiodimse.AE("SCU")
        contexts = propose_contexts([inst], strategy=Strategy.COMPRESSION)
        async with scu.associate("127.0.0.1", server.port, contexts=contexts) as assoc:
            r = await assoc.store(ds)
    assert r.ok and r.transfer_syntax == accepted
    got = scp.arrived[0]
    assert got.data is not None
    assert_same_instance(parse_wire(got.data, accepted), path, own)


@pytest.mark.parametrize(
    "accepted",
    ["1.2.840.10008.1.2.4.80", "1.2.840.10008.1.2.4.90", "1.2.840.10008.1.2.5"],
    ids=["jpeg-ls-lossless", "j2k-lossless", "rle"],
)
async def test_uncompressed_sources_are_encoded_losslessly_as_a_last_resort(
    sources: dict[str, list[Path]], tmp_path: Path, accepted: str
) -> None:
    """A peer taking only one lossless compressed syntax (COMPRESSION proposes what we can
    encode): every uncompressed source arrives encoded, and decodes to the same pixels."""
    from tests.transfer.support import write_ct

    paths = [p for ts in UNCOMPRESSED for p in sources[ts]]
    paths += [write_ct(tmp_path, ts, seed=40 + n) for n, ts in enumerate(UNCOMPRESSED)]
    infos = [read_file_info(p) for p in paths]
    scp = RecordingSCP(contexts=contexts_for([i.sop_class_uid for i in infos], (accepted,)))
    async with scp.ae.serve("127.0.0.1", 0) as server:
        scu = aiodimse.AE("SCU")
        contexts = propose_contexts(infos, strategy=Strategy.COMPRESSION)
        async with scu.associate("127.0.0.1", server.port, contexts=contexts) as assoc:
            results = await assoc.store_many(infos)
    for info, r, got in zip(infos, results, scp.arrived, strict=True):
        assert r.ok and r.conversion is Conversion.ENCODE, r.describe()
        assert r.transfer_syntax == accepted == got.transfer_syntax
        assert got.data is not None and r.bytes_sent == len(got.data)
        assert_same_instance(parse_wire(got.data, accepted), info.path, info.transfer_syntax_uid)
