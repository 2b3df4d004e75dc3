"""C-STORE SCU against an aiodimse SCP over loopback sockets, on asyncio and trio.

The SCP is :class:`tests.storage.storage_scu_support.RecordingSCP` (its own C-STORE handler,
independent of the library's Storage SCP): it records what arrived and answers the status
a test asks for.
"""

from __future__ import annotations

import hashlib
import io
import tracemalloc
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import numpy as np
import pytest
from pydicom import dcmread
from pydicom.filereader import read_dataset
from pydicom.filewriter import dcmwrite
from pydicom.uid import (
    DeflatedExplicitVRLittleEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEGBaseline8Bit,
)

import aiodimse
from aiodimse.dimse.messages import CStoreRQ
from aiodimse.dimse.status import StatusCategory
from aiodimse.errors import AssociationAborted, DicomTimeoutError, NetworkError
from aiodimse.net.channel import Channel
from aiodimse.net.filesource import DicomFileInfo, read_file_info
from aiodimse.pdu import AAssociateRQ, PDataTF
from aiodimse.services.storage_contexts import NoPresentationContext, propose_contexts
from aiodimse.services.storage_scu import DatasetInstance, StoreResult
from tests.net import badpeer
from tests.storage.storage_scu_support import RecordingSCP, contexts_for
from tests.support import datagen

pytestmark = pytest.mark.anyio

ALL_TS = tuple(datagen.TRANSFER_SYNTAXES)
UNCOMPRESSED = (ExplicitVRLittleEndian, ImplicitVRLittleEndian)
PRIVATE_CLASS = "1.2.826.0.1.3680043.9.9999.77"


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@asynccontextmanager
async def connected(
    scp: RecordingSCP,
    instances: Sequence[DicomFileInfo | DatasetInstance],
    *,
    timeouts: aiodimse.Timeouts | None = None,
) -> AsyncIterator[aiodimse.Association]:
    async with scp.ae.serve("127.0.0.1", 0) as server:
        scu = aiodimse.AE("SCU", timeouts=timeouts)
        contexts = propose_contexts(instances)
        async with scu.associate("127.0.0.1", server.port, contexts=contexts) as assoc:
            yield assoc


def dataset_part(path: Path) -> bytes:
    info = read_file_info(path)
    return path.read_bytes()[info.dataset_offset :]


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture(scope="module")
def corpus_infos(tmp_path_factory: pytest.TempPathFactory) -> list[DicomFileInfo]:
    gens = datagen.write_corpus(tmp_path_factory.mktemp("scu-corpus"))
    return [read_file_info(g.path) for g in gens]


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> DicomFileInfo:
    gen = datagen.write_streamed(tmp_path_factory.mktemp("scu-big"), 3 << 20, seed=11)
    return read_file_info(gen.path)


@pytest.fixture(scope="module")
def huge(tmp_path_factory: pytest.TempPathFactory) -> DicomFileInfo:
    gen = datagen.write_streamed(tmp_path_factory.mktemp("scu-huge"), 20 << 20, seed=12)
    return read_file_info(gen.path)


# ------------------------------------------------------------------------- bit-preserving


@pytest.mark.parametrize("max_pdu", [4096, 16384, 1 << 20])
async def test_corpus_arrives_bit_for_bit(
    corpus_infos: list[DicomFileInfo], big: DicomFileInfo, max_pdu: int
) -> None:
    """Every kind x transfer syntax (+ a 3 MB file) over one association; the receiver's
    maximum PDU varies (its decoder aborts on an oversized PDU)."""
    files = [*corpus_infos, big]
    scp = RecordingSCP(
        contexts=contexts_for([f.sop_class_uid for f in files], ALL_TS), max_pdu=max_pdu
    )
    calls: list[tuple[int, int]] = []
    async with connected(scp, files) as assoc:
        assert assoc.peer_max_pdu == max_pdu
        results = await assoc.store_many(files, progress=lambda s, t: calls.append((s, t)))
    assert [r.ok for r in results] == [True] * len(files)
    assert len(scp.arrived) == len(files)
    for info, r, got in zip(files, results, scp.arrived, strict=True):
        assert got.sha256 == sha(dataset_part(info.path)), info.path.name
        assert got.transfer_syntax == info.transfer_syntax_uid
        assert (got.sop_class_uid, got.sop_instance_uid) == (
            info.sop_class_uid,
            info.sop_instance_uid,
        )
        assert r.transfer_syntax == info.transfer_syntax_uid and not r.converted
        assert r.bytes_sent == info.dataset_length and r.path == info.path
        assert (r.status, r.category, r.meaning) == (0, StatusCategory.SUCCESS, "Success")
    total = sum(f.dataset_length for f in files)
    assert calls[-1] == (total, total)
    assert all(t == total for _, t in calls)
    assert [s for s, _ in calls] == sorted(s for s, _ in calls)
    # Throttled: far fewer calls than slices (3 MB at 64 KiB+ alone is 48 slices).
    assert len(calls) < 20


async def test_store_one_path_with_progress_and_a_private_sop_class(tmp_path: Path) -> None:
    ds = datagen.make_dataset(datagen.Spec(seed=4))
    ds.SOPClassUID = PRIVATE_CLASS
    ds.file_meta.MediaStorageSOPClassUID = PRIVATE_CLASS
    path = tmp_path / "private.dcm"
    dcmwrite(path, ds, enforce_file_format=True)
    info = read_file_info(path)
    scp = RecordingSCP(contexts=contexts_for([PRIVATE_CLASS], UNCOMPRESSED))
    calls: list[tuple[int, int]] = []
    async with connected(scp, [info]) as assoc:
        r = await assoc.store(str(path), progress=lambda s, t: calls.append((s, t)))
    assert r.ok and r.sop_class_uid == PRIVATE_CLASS
    assert calls[-1] == (info.dataset_length, info.dataset_length)
    assert scp.arrived[0].sha256 == sha(dataset_part(path))
    assert PRIVATE_CLASS in r.describe() and str(path) in r.describe()


# ------------------------------------------------------------------------- conversion


async def test_explicit_is_converted_when_the_peer_takes_implicit_only(tmp_path: Path) -> None:
    spec = datagen.Spec(kind=datagen.Kind.ENHANCED_CT, frames=2, seed=2)
    gen = datagen.write_file(spec, tmp_path)
    deflated = datagen.write_file(
        datagen.Spec(transfer_syntax=DeflatedExplicitVRLittleEndian, seed=2), tmp_path
    )
    infos = [read_file_info(gen.path), read_file_info(deflated.path)]
    scp = RecordingSCP(
        contexts=contexts_for([i.sop_class_uid for i in infos], (ImplicitVRLittleEndian,))
    )
    async with connected(scp, infos) as assoc:
        results = await assoc.store_many(infos)
    for r, got, g in zip(results, scp.arrived, (gen, deflated), strict=True):
        assert r.ok and r.converted and r.transfer_syntax == ImplicitVRLittleEndian
        assert got.transfer_syntax == ImplicitVRLittleEndian and got.data is not None
        assert r.bytes_sent == got.length
        back = read_dataset(io.BytesIO(got.data), True, True)
        back.SpecificCharacterSet = "ISO_IR 100"
        assert back.PatientName == datagen.PATIENT_NAME_UMLAUT
        assert back.SOPInstanceUID == g.sop_instance_uid
        assert 0x00091013 in back  # the private sequence survived
        pixels = np.frombuffer(back.PixelData, dtype="<u2")
        assert np.array_equal(pixels, datagen.expected_pixels(g.spec).ravel())
    assert "sent as Implicit VR Little Endian" in results[0].describe()


async def test_a_pydicom_dataset_is_encoded_in_the_negotiated_syntax() -> None:
    spec = datagen.Spec(kind=datagen.Kind.MR, seed=6)
    ds = datagen.make_dataset(spec)
    del ds.file_meta  # built in memory: native, any uncompressed syntax will do
    inst = DatasetInstance.from_dataset(ds)
    assert inst.transfer_syntax_uid == ExplicitVRLittleEndian
    scp = RecordingSCP(contexts=contexts_for([spec.sop_class_uid], (ImplicitVRLittleEndian,)))
    async with connected(scp, [inst]) as assoc:
        r = await assoc.store(ds)
    assert r.ok and r.transfer_syntax == ImplicitVRLittleEndian and r.path is None
    got = scp.arrived[0]
    assert got.data is not None and r.bytes_sent == len(got.data)
    back = read_dataset(io.BytesIO(got.data), True, True)
    assert back.SOPInstanceUID == spec.sop_instance_uid
    assert not [e for e in back if e.tag.group == 2]


# ------------------------------------------------------------------------- failures


async def test_no_context_fails_that_instance_with_the_reason(
    corpus_infos: list[DicomFileInfo],
) -> None:
    jpeg = next(i for i in corpus_infos if i.transfer_syntax_uid == JPEGBaseline8Bit)
    ct = next(i for i in corpus_infos if i.transfer_syntax_uid == ExplicitVRLittleEndian)
    # The SCP takes the JPEG's class in JPEG 2000 only: nothing we can produce (a JPEG is
    # decompressed for an uncompressed-only peer, never re-encoded in another compression).
    scp = RecordingSCP(
        contexts=contexts_for([ct.sop_class_uid], UNCOMPRESSED)
        + contexts_for([jpeg.sop_class_uid], ("1.2.840.10008.1.2.4.90",))
    )
    async with connected(scp, [jpeg, ct]) as assoc:
        with pytest.raises(NoPresentationContext) as info:
            await assoc.store(jpeg)
        results = await assoc.store_many([jpeg, ct])
    assert "JPEG Baseline (Process 1)" in str(info.value)
    assert "Secondary Capture Image Storage" in str(info.value)
    bad, good = results
    assert not bad.ok and bad.status is None and not bad.retryable and bad.bytes_sent == 0
    line = bad.describe()
    assert str(jpeg.path) in line and jpeg.sop_class_uid in line and JPEGBaseline8Bit in line
    # Its own JPEG context and the Explicit/Implicit fallbacks were proposed: the peer said no.
    assert (
        "no presentation context: the peer rejected every context proposed for it: "
        "transfer syntax not supported; context 1 (JPEG Baseline (Process 1)): rejected"
    ) in line
    assert good.ok and len(scp.arrived) == 1


@pytest.mark.parametrize(
    ("status", "comment", "category", "retryable", "ok"),
    [
        (0xA700, "disk full", StatusCategory.FAILURE, True, False),
        (0xA900, "wrong class", StatusCategory.FAILURE, False, False),
        (0xC123, None, StatusCategory.FAILURE, False, False),
        (0xB007, None, StatusCategory.WARNING, False, True),
    ],
)
async def test_peer_status_is_reported_in_full(
    corpus_infos: list[DicomFileInfo],
    status: int,
    comment: str | None,
    category: StatusCategory,
    retryable: bool,
    ok: bool,
) -> None:
    async def answer(rq: CStoreRQ) -> tuple[int, str | None]:
        return status, comment

    info = corpus_infos[0]
    scp = RecordingSCP(contexts=contexts_for([info.sop_class_uid], ALL_TS), status_for=answer)
    async with connected(scp, [info]) as assoc:
        r = await assoc.store(info)
        again = await assoc.store(info)  # the association goes on
    assert (r.status, r.category, r.retryable, r.ok) == (status, category, retryable, ok)
    assert r.error_comment == comment and again.status == status
    if status == 0xA900:
        assert r.offending_element == (0x00100010,)
        assert "offending element (0010,0010)" in r.answer()
        assert r.meaning == "Error: data set does not match SOP Class"


async def test_continue_on_error_false_stops_after_the_first_failure(
    corpus_infos: list[DicomFileInfo],
) -> None:
    async def answer(rq: CStoreRQ) -> tuple[int, str | None]:
        return (0xA700, "full") if len(scp.arrived) == 2 else (0, None)

    files = corpus_infos[:5]
    scp = RecordingSCP(
        contexts=contexts_for([f.sop_class_uid for f in files], ALL_TS), status_for=answer
    )
    seen: list[StoreResult] = []
    async with connected(scp, files) as assoc:
        results = await assoc.store_many(files, continue_on_error=False, on_result=seen.append)
    assert seen == results and len(results) == 5
    assert [r.ok for r in results] == [True, False, False, False, False]
    assert results[1].status == 0xA700
    assert all(
        r.status is None and "stopped after a failure" in (r.error or "") for r in results[2:]
    )
    assert len(scp.arrived) == 2


async def test_stale_file_meta_is_a_warning_and_the_dataset_uid_is_sent(tmp_path: Path) -> None:
    from tests.storage.test_filesource import write_stale

    gen, stale = write_stale(tmp_path)
    scp = RecordingSCP(contexts=contexts_for([gen.sop_class_uid], ALL_TS))
    async with connected(scp, [read_file_info(gen.path)]) as assoc:
        r = await assoc.store(gen.path)
    assert r.ok and len(r.warnings) == 1 and stale in r.warnings[0]
    assert scp.arrived[0].sop_instance_uid == gen.sop_instance_uid


# ------------------------------------------------------------------------- faults


async def test_a_peer_that_never_answers_times_out_and_is_aborted(
    corpus_infos: list[DicomFileInfo],
) -> None:
    async def never(rq: CStoreRQ) -> tuple[int, str | None]:
        await anyio.sleep_forever()
        raise AssertionError

    info = corpus_infos[0]
    scp = RecordingSCP(contexts=contexts_for([info.sop_class_uid], ALL_TS), status_for=never)
    async with connected(scp, [info], timeouts=aiodimse.Timeouts(store=0.3)) as assoc:
        started = anyio.current_time()
        with pytest.raises(DicomTimeoutError) as exc:
            await assoc.store(info)
        assert 0.25 < anyio.current_time() - started < 3
        assert exc.value.retryable and not assoc.is_established
        results = await assoc.store_many(corpus_infos[:2])
    assert all(r.status is None and r.retryable for r in results)


async def test_peer_abort_while_waiting_fails_the_rest_as_retryable(
    corpus_infos: list[DicomFileInfo],
) -> None:
    """ROBUSTNESS 47 (SCU side): the peer aborts instead of answering the C-STORE."""
    files = corpus_infos[:3]
    scp = RecordingSCP(contexts=contexts_for([f.sop_class_uid for f in files], ALL_TS))
    scp_channels: list[Channel] = []
    configure = scp.ae.configure_channel

    def remember(channel: Channel) -> None:
        scp_channels.append(channel)
        configure(channel)

    async def abort_instead(rq: CStoreRQ) -> tuple[int, str | None]:
        for ch in scp_channels:
            await ch.abort()
        await anyio.sleep_forever()
        raise AssertionError

    scp.ae.configure_channel = remember  # type: ignore[method-assign]
    scp.status_for = abort_instead
    async with connected(scp, files) as assoc:
        results = await assoc.store_many(files)
    assert results[0].status is None and results[0].retryable
    assert "abort" in (results[0].error or "")
    assert all("not sent: the association ended" in (r.error or "") for r in results[1:])
    assert all(r.retryable for r in results)


async def test_file_shrinking_mid_send_aborts_and_reports(
    big: DicomFileInfo, tmp_path: Path
) -> None:
    copy = tmp_path / "shrinks.dcm"
    copy.write_bytes(big.path.read_bytes())
    info = read_file_info(copy)
    other = read_file_info(big.path)
    scp = RecordingSCP(contexts=contexts_for([info.sop_class_uid], ALL_TS), keep_bytes=False)

    def shrink(sent: int, total: int) -> None:
        if sent and copy.stat().st_size == info.file_size:
            with copy.open("r+b") as fp:
                fp.truncate(info.dataset_offset + (1 << 20) + 100)

    async with connected(scp, [info]) as assoc:
        results = await assoc.store_many([info, other], progress=shrink)
        assert not assoc.is_established
    assert "became shorter" in (results[0].error or "") and results[0].status is None
    assert "not sent" in (results[1].error or "")
    assert scp.arrived == []


async def test_cancelling_a_store_mid_transfer_aborts_the_association(
    huge: DicomFileInfo,
) -> None:
    """ROBUSTNESS 48: cancelled mid-message, the peer sees A-ABORT and keeps no instance."""
    scp = RecordingSCP(
        contexts=contexts_for([huge.sop_class_uid], ALL_TS),
        keep_bytes=False,
        # Per 256 KiB fragment: in the 0.3 s before the cancel the SCP takes ~2.5 MiB, and
        # the socket buffers (autotuned up to ~10 MiB on Linux) and the reader's read-ahead
        # (2 MiB) hold the rest of what was sent: well short of the 20 MiB, so the cancel
        # always lands mid-message (at 0.01 s per fragment it could all fit: flaky).
        sink_delay=0.03,
        slow_bytes=1 << 30,
        max_pdu=256 * 1024,
    )
    calls: list[tuple[int, int]] = []
    async with connected(scp, [huge]) as assoc:
        with anyio.move_on_after(0.3) as scope:
            await assoc.store(huge, progress=lambda s, t: calls.append((s, t)))
        assert scope.cancelled_caught
        assert not assoc.is_established
    assert calls and 0 < calls[-1][0] < huge.dataset_length  # it was mid-transfer
    assert scp.arrived == []


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_a_slow_transfer_that_keeps_moving_does_not_time_out(huge: DicomFileInfo) -> None:
    """The store timeout is "no progress for N s", not "N s in all"."""
    scp = RecordingSCP(
        contexts=contexts_for([huge.sop_class_uid], ALL_TS),
        keep_bytes=False,
        sink_delay=0.02,  # per dataset fragment: 256 KiB PDUs make ~48 of them
        slow_bytes=12 << 20,  # the first 12 MB trickle in, the rest is fast
        max_pdu=256 * 1024,
    )
    async with connected(scp, [huge], timeouts=aiodimse.Timeouts(store=0.5)) as assoc:
        r = await assoc.store(huge)
    assert r.ok and r.elapsed > 0.5
    assert scp.arrived[0].length == huge.dataset_length


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
@pytest.mark.fd_callbacks  # the bound of the native (sendfile) path
async def test_memory_stays_far_below_the_file_size(huge: DicomFileInfo) -> None:
    """20 MB sent (and hashed by the receiver in the same process): traced peak < 6 MB."""
    scp = RecordingSCP(contexts=contexts_for([huge.sop_class_uid], ALL_TS), keep_bytes=False)
    async with connected(scp, [huge]) as assoc:
        tracemalloc.start()
        try:
            r = await assoc.store(huge)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert r.ok and r.bytes_sent == huge.dataset_length > 20_000_000
    assert scp.arrived[0].sha256 == sha(dataset_part(huge.path))
    print(f"traced peak {peak / 2**20:.2f} MiB")
    assert peak < 6 << 20, f"traced peak {peak / 2**20:.1f} MiB"


async def test_network_error_is_retryable_and_names_the_peer() -> None:
    # An association that is already gone: store() raises the recorded transport error.
    spec = datagen.Spec(seed=8)
    inst = DatasetInstance.from_dataset(datagen.make_dataset(spec))
    scp = RecordingSCP(contexts=contexts_for([spec.sop_class_uid], ALL_TS))
    async with connected(scp, [inst]) as assoc:
        await assoc.abort()
        with pytest.raises((NetworkError, AssociationAborted)) as info:
            await assoc.store(inst)
    assert info.value.retryable


@pytest.mark.parametrize("after_pdus", [3, None])
async def test_peer_closing_the_connection_fails_the_store_promptly(
    big: DicomFileInfo, after_pdus: int | None
) -> None:
    """ROBUSTNESS 47: the peer closes mid P-DATA (after 3 PDUs), or after the whole message
    while we wait for the response: a defined, retryable error, nothing hangs."""

    async def script(peer: badpeer.RawPeer) -> None:
        rq = await peer.receive_pdu()
        assert isinstance(rq, AAssociateRQ)
        await peer.send_pdu(badpeer.accept_ac(rq))
        if after_pdus is not None:
            for _ in range(after_pdus):
                await peer.receive_pdu()
            return
        while True:  # until the dataset's last fragment
            pdu = await peer.receive_pdu()
            assert isinstance(pdu, PDataTF)
            if any(p.is_last and not p.is_command for p in pdu.pdvs):
                return

    async with badpeer.raw_acceptor(script) as port:
        ae = aiodimse.AE("SCU")
        with anyio.fail_after(10):
            async with ae.associate("127.0.0.1", port, contexts=propose_contexts([big])) as a:
                with pytest.raises((NetworkError, AssociationAborted)) as info:
                    await a.store(big)
                results = await a.store_many([big])
    assert info.value.retryable
    assert results[0].status is None and results[0].retryable


# ------------------------------------------------------------------------- AE level


async def test_send_files_and_associate_for_files(tmp_path: Path) -> None:
    gens = [
        datagen.write_file(datagen.Spec(kind=k, transfer_syntax=t, seed=1), tmp_path)
        for k, t in (
            (datagen.Kind.CT, ImplicitVRLittleEndian),
            (datagen.Kind.SC, JPEGBaseline8Bit),
            (datagen.Kind.MR, ExplicitVRLittleEndian),
        )
    ]
    (tmp_path / "readme.txt").write_text("no DICOM here")
    scp = RecordingSCP(contexts=contexts_for([g.sop_class_uid for g in gens], ALL_TS))
    scu = aiodimse.AE("SCU")
    async with scp.ae.serve("127.0.0.1", 0) as server:
        results = await scu.send_files("127.0.0.1", server.port, [tmp_path], called_ae="TESTSCP")
        assert [r.path.name for r in results if r.path] == [
            "readme.txt",
            *sorted(g.path.name for g in gens),
        ]
        assert not results[0].ok and "not a DICOM file" in (results[0].error or "")
        assert all(r.ok for r in results[1:])
        async with scu.associate_for_files("127.0.0.1", server.port, [tmp_path]) as assoc:
            again = await assoc.store_many([g.path for g in gens])
        assert all(r.ok for r in again)
    assert len(scp.arrived) == 6
    by_uid = {a.sop_instance_uid: a for a in scp.arrived}
    for g in gens:
        assert by_uid[g.sop_instance_uid].sha256 == sha(dataset_part(g.path))
        assert by_uid[g.sop_instance_uid].transfer_syntax == g.transfer_syntax_uid


async def test_dataset_from_dcmread_keeps_its_compressed_syntax(tmp_path: Path) -> None:
    gen = datagen.write_file(
        datagen.Spec(kind=datagen.Kind.SC, transfer_syntax=JPEGBaseline8Bit), tmp_path
    )
    ds = dcmread(gen.path)
    inst = DatasetInstance.from_dataset(ds)
    assert inst.transfer_syntax_uid == JPEGBaseline8Bit
    scp = RecordingSCP(contexts=contexts_for([gen.sop_class_uid], ALL_TS))
    async with connected(scp, [inst]) as assoc:
        r = await assoc.store(ds)
    assert r.ok and r.transfer_syntax == JPEGBaseline8Bit
    assert scp.arrived[0].sha256 == sha(dataset_part(gen.path))
