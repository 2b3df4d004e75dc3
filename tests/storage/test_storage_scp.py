"""Storage SCP over loopback: files as received, checks, statuses (ROBUSTNESS 32-38, 47)."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path

import anyio
import pydicom
import pytest
from pydicom.uid import (
    CTImageStorage,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
)

import aiodimse
from aiodimse.dimse.messages import CStoreRSP
from aiodimse.services.filepolicy import Layout, derived_name, temporary_name
from aiodimse.services.storage_scp import (
    STORAGE_SOP_CLASSES,
    DuplicatePolicy,
    StorageOptions,
    StoredInstance,
    enable_storage,
)
from tests.storage.scu_helper import contexts_for, raw_store_command, send_raw, store_bytes
from tests.support import datagen

pytestmark = pytest.mark.anyio

CT = str(CTImageStorage)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def ct_bytes(ts: str = ExplicitVRLittleEndian, seed: int = 0) -> tuple[bytes, datagen.Spec]:
    spec = datagen.Spec(kind=datagen.Kind.CT, transfer_syntax=pydicom.uid.UID(ts), seed=seed)
    return datagen.dataset_bytes(spec), spec


def stored_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


def files_in(directory: Path) -> list[Path]:
    """Regular files directly in ``directory``."""
    return sorted(p for p in directory.iterdir() if p.is_file())


async def wait_until(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    """Poll ``predicate`` (file system state has no event to wait on)."""
    with anyio.fail_after(timeout):
        for _ in iter(int, 1):
            if predicate():
                return
            await anyio.sleep(0.01)


def dataset_part(path: Path) -> bytes:
    data = path.read_bytes()
    assert data[128:132] == b"DICM"
    return data[144 + int.from_bytes(data[140:144], "little") :]


async def test_stores_bytes_exactly_with_correct_file_meta(tmp_path: Path) -> None:
    scp = aiodimse.AE("STORE_SCP")
    enable_storage(scp, StorageOptions(output_directory=tmp_path))
    data, spec = ct_bytes()
    async with scp.serve("127.0.0.1", 0) as server:
        async with aiodimse.AE("MODALITY").associate(
            "127.0.0.1", server.port, contexts=contexts_for([CT], ExplicitVRLittleEndian)
        ) as assoc:
            rsp = await store_bytes(
                assoc, data, sop_class_uid=CT, sop_instance_uid=spec.sop_instance_uid
            )
    assert rsp.status == 0x0000
    assert rsp.affected_sop_instance_uid == spec.sop_instance_uid
    (path,) = stored_files(tmp_path)
    assert path.name == f"{spec.sop_instance_uid}.dcm"
    assert hashlib.sha256(dataset_part(path)).digest() == hashlib.sha256(data).digest()
    ds = pydicom.dcmread(path)
    meta = ds.file_meta
    assert meta.FileMetaInformationVersion == b"\x00\x01"
    assert meta.MediaStorageSOPClassUID == CT
    assert meta.MediaStorageSOPInstanceUID == spec.sop_instance_uid
    assert meta.TransferSyntaxUID == ExplicitVRLittleEndian
    assert meta.ImplementationClassUID == scp.implementation_class_uid
    assert meta.ImplementationVersionName == scp.implementation_version_name
    assert meta.SourceApplicationEntityTitle == "MODALITY"
    assert str(ds.PatientName) == "Müller^Jürgen"


@pytest.mark.parametrize("max_pdu", [4096, 16384, 1 << 20])
async def test_max_pdu_on_receiving_side_streams_a_multi_mib_dataset(
    tmp_path: Path, max_pdu: int
) -> None:
    scp = aiodimse.AE("STORE_SCP", limits=aiodimse.Limits(max_pdu_length=max_pdu))
    # small write size so the writer thread and the bounded queue are exercised
    enable_storage(scp, StorageOptions(output_directory=tmp_path, write_size=64 * 1024))
    gen = datagen.write_streamed(tmp_path / "src", 3 << 20, seed=max_pdu)
    data = dataset_part(gen.path)
    async with scp.serve("127.0.0.1", 0) as server:
        async with aiodimse.AE("SCU").associate(
            "127.0.0.1",
            server.port,
            contexts=contexts_for([gen.sop_class_uid], ExplicitVRLittleEndian),
        ) as assoc:
            assert assoc.peer_max_pdu == max_pdu
            chunks = [data[i : i + 100_000] for i in range(0, len(data), 100_000)]
            rsp = await store_bytes(
                assoc,
                chunks,
                sop_class_uid=gen.sop_class_uid,
                sop_instance_uid=gen.sop_instance_uid,
            )
    assert rsp.status == 0
    path = tmp_path / f"{gen.sop_instance_uid}.dcm"
    assert hashlib.sha256(dataset_part(path)).hexdigest() == hashlib.sha256(data).hexdigest()
    assert not [p for p in files_in(tmp_path) if p.name.startswith(".")]


async def test_deflated_and_implicit_are_checked_and_kept_as_received(tmp_path: Path) -> None:
    scp = aiodimse.AE("STORE_SCP")
    enable_storage(scp, StorageOptions(output_directory=tmp_path))
    cases = [ct_bytes(ImplicitVRLittleEndian, 1), ct_bytes(DeflatedExplicitVRLittleEndian, 2)]
    async with scp.serve("127.0.0.1", 0) as server:
        ctx = [
            aiodimse.Context(abstract_syntax=CT, transfer_syntaxes=(str(ts),))
            for ts in (ImplicitVRLittleEndian, DeflatedExplicitVRLittleEndian)
        ]
        async with aiodimse.AE("SCU").associate("127.0.0.1", server.port, contexts=ctx) as a:
            for data, spec in cases:
                rsp = await store_bytes(
                    a,
                    data,
                    sop_class_uid=CT,
                    sop_instance_uid=spec.sop_instance_uid,
                    transfer_syntax=str(spec.transfer_syntax),
                )
                assert rsp.status == 0
    for data, spec in cases:
        path = tmp_path / f"{spec.sop_instance_uid}.dcm"
        assert dataset_part(path) == data
        ds = pydicom.dcmread(path)
        assert ds.file_meta.TransferSyntaxUID == spec.transfer_syntax
        assert ds.SOPInstanceUID == spec.sop_instance_uid


async def test_all_storage_sop_classes_are_supported() -> None:
    ae = aiodimse.AE("X")
    enable_storage(ae, StorageOptions(ignore=True))
    supported = {c.abstract_syntax for c in ae.supported_contexts}
    assert set(STORAGE_SOP_CLASSES) <= supported
    assert len(STORAGE_SOP_CLASSES) > 150
    assert CT in supported and "1.2.840.10008.1.1" in supported


# ----------------------------------------------------------------------- ROBUSTNESS 32-38


HOSTILE_UIDS = [
    "../../x",
    "/etc/passwd",
    "..",
    ".",
    "",
    "1." + "2" * 70,
    "1.2\x003",
    "1.2\\3",
    "C:\\x",
    "a:b",
    "1.2.ü",
    "CON",
]


@pytest.mark.parametrize("uid", HOSTILE_UIDS)
async def test_robustness_32_hostile_sop_instance_uid_safe_name_or_refused(
    tmp_path: Path, uid: str
) -> None:
    """The hostile UID in both the command (hand-encoded) and the dataset."""
    root = tmp_path / "root"
    scp = aiodimse.AE("STORE_SCP")
    enable_storage(scp, StorageOptions(output_directory=root))
    ds = datagen.make_dataset(datagen.Spec(kind=datagen.Kind.CT))
    data = _encode(ds, SOPInstanceUID=uid)
    raw_uid = uid.encode("latin-1")
    async with scp.serve("127.0.0.1", 0) as server:
        async with aiodimse.AE("SCU").associate(
            "127.0.0.1", server.port, contexts=contexts_for([CT], ExplicitVRLittleEndian)
        ) as assoc:
            channel = assoc._channel
            mid = channel.next_message_id()
            async with channel.expect_responses(mid) as responses:
                await send_raw(
                    channel, assoc.context_for(CT), raw_store_command(CT, raw_uid, mid), data
                )
                received = await channel.next_response(responses, 10, "C-STORE-RSP")
            rsp = received.message
            assert isinstance(rsp, CStoreRSP)
            assert (await assoc.echo()).code == 0  # the association goes on
    files = stored_files(tmp_path)
    for f in files:
        assert root.resolve() in f.resolve().parents
    if rsp.status == 0:
        (path,) = files
        assert path.parent == root
        assert path.name == derived_name(uid) + ".dcm"
        assert dataset_part(path) == data
    else:  # refused (e.g. a command the decoder does not accept): nothing kept
        assert rsp.status >= 0xA000 or rsp.status in (0x0106, 0x0110, 0x0120, 0x0122)
        assert files == []


async def test_robustness_33_hostile_tree_values_stay_under_root(tmp_path: Path) -> None:
    root = tmp_path / "root"
    scp = aiodimse.AE("STORE_SCP")
    enable_storage(scp, StorageOptions(output_directory=root, layout=Layout.TREE))
    spec = datagen.Spec(kind=datagen.Kind.CT)
    ds = datagen.make_dataset(spec)
    data = _encode(ds, PatientID="../../etc", StudyInstanceUID="..", SeriesInstanceUID="C:\\x")
    async with scp.serve("127.0.0.1", 0) as server:
        # An AE title is never a path component: a hostile one changes nothing.
        async with aiodimse.AE("../..").associate(
            "127.0.0.1", server.port, contexts=contexts_for([CT], ExplicitVRLittleEndian)
        ) as assoc:
            rsp = await store_bytes(
                assoc, data, sop_class_uid=CT, sop_instance_uid=spec.sop_instance_uid
            )
    assert rsp.status == 0
    (path,) = stored_files(tmp_path)
    assert path.relative_to(root).parts == (
        derived_name("../../etc"),
        derived_name(".."),
        derived_name("C:\\x"),
        f"{spec.sop_instance_uid}.dcm",
    )


def _encode(ds: pydicom.Dataset, **values: str) -> bytes:
    """Encode ``ds`` (with ``values`` set, invalid ones too) as C-STORE dataset bytes."""
    import io
    import warnings

    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for key, value in values.items():
            setattr(ds, key, value)
            if key == "SOPInstanceUID":
                ds.file_meta.MediaStorageSOPInstanceUID = value or "1.2.3"
        pydicom.dcmwrite(buf, ds, enforce_file_format=True)
    raw = buf.getvalue()
    return raw[144 + int.from_bytes(raw[140:144], "little") :]


@pytest.mark.parametrize("which", ["instance", "class"])
async def test_robustness_34_command_dataset_mismatch_is_a900_and_no_file(
    tmp_path: Path, which: str
) -> None:
    scp = aiodimse.AE("STORE_SCP")
    enable_storage(scp, StorageOptions(output_directory=tmp_path))
    data, spec = ct_bytes()
    sop_class = CT
    uid = spec.sop_instance_uid
    if which == "instance":
        uid = uid + ".9"
    else:
        sop_class = "1.2.840.10008.5.1.4.1.1.4"  # MR Image Storage
    async with scp.serve("127.0.0.1", 0) as server:
        async with aiodimse.AE("SCU").associate(
            "127.0.0.1",
            server.port,
            contexts=contexts_for([CT, sop_class], ExplicitVRLittleEndian),
        ) as assoc:
            rsp = await store_bytes(assoc, data, sop_class_uid=sop_class, sop_instance_uid=uid)
            assert rsp.status == 0xA900
            assert rsp.error_comment and "does not" not in rsp.error_comment  # words, not code
            assert rsp.offending_element == (
                (0x00080018,) if which == "instance" else (0x00080016,)
            )
            # the association goes on
            ok = await store_bytes(
                assoc, data, sop_class_uid=CT, sop_instance_uid=spec.sop_instance_uid
            )
            assert ok.status == 0
    assert [p.name for p in stored_files(tmp_path)] == [f"{spec.sop_instance_uid}.dcm"]


async def test_robustness_34_padding_is_not_a_mismatch(tmp_path: Path) -> None:
    scp = aiodimse.AE("STORE_SCP")
    enable_storage(scp, StorageOptions(output_directory=tmp_path))
    spec = datagen.Spec(kind=datagen.Kind.CT, seed=5)
    ds = datagen.make_dataset(spec)
    # odd-length UID: NUL padded in the dataset; the command carries it unpadded.
    uid = "1.2.3.4.5"
    data = _encode(ds, SOPInstanceUID=uid)
    async with scp.serve("127.0.0.1", 0) as server:
        async with aiodimse.AE("SCU").associate(
            "127.0.0.1", server.port, contexts=contexts_for([CT], ExplicitVRLittleEndian)
        ) as assoc:
            rsp = await store_bytes(assoc, data, sop_class_uid=CT, sop_instance_uid=uid)
    assert rsp.status == 0
    assert (tmp_path / "1.2.3.4.5.dcm").is_file()


@pytest.mark.parametrize("policy", list(DuplicatePolicy))
async def test_robustness_35_duplicate_policy(tmp_path: Path, policy: DuplicatePolicy) -> None:
    scp = aiodimse.AE("STORE_SCP")
    enable_storage(scp, StorageOptions(output_directory=tmp_path, duplicates=policy))
    first, spec = ct_bytes(seed=7)
    ds = datagen.make_dataset(spec)
    second = _encode(ds, PatientID="SECOND")
    assert first != second
    async with scp.serve("127.0.0.1", 0) as server:
        async with aiodimse.AE("SCU").associate(
            "127.0.0.1", server.port, contexts=contexts_for([CT], ExplicitVRLittleEndian)
        ) as assoc:
            for data in (first, second):
                rsp = await store_bytes(
                    assoc, data, sop_class_uid=CT, sop_instance_uid=spec.sop_instance_uid
                )
                assert rsp.status == 0
    (path,) = stored_files(tmp_path)
    expected = second if policy is DuplicatePolicy.REPLACE else first
    assert dataset_part(path) == expected


async def test_robustness_36_temporary_files_from_a_crash_are_removed_at_start(
    tmp_path: Path,
) -> None:
    stale = tmp_path / temporary_name()
    stale.write_bytes(b"partial")
    keep = tmp_path / "1.2.3.dcm"
    keep.write_bytes(b"kept")
    other = tmp_path / ".aiodimse-notours.part"
    other.write_bytes(b"x")
    enable_storage(aiodimse.AE("X"), StorageOptions(output_directory=tmp_path))
    assert not stale.exists()
    assert keep.exists() and other.exists()


async def test_robustness_37_handler_raises_failure_status_and_association_goes_on(
    tmp_path: Path,
) -> None:
    seen: list[StoredInstance] = []

    async def handler(instance: StoredInstance) -> int:
        seen.append(instance)
        assert instance.path is not None and instance.path.is_file()
        if len(seen) == 1:
            raise RuntimeError("database is down")
        return 0x0000

    scp = aiodimse.AE("STORE_SCP")
    enable_storage(
        scp, StorageOptions(output_directory=tmp_path, handler=handler, decode_dataset=True)
    )
    data, spec = ct_bytes(seed=3)
    async with scp.serve("127.0.0.1", 0) as server:
        async with aiodimse.AE("SCU").associate(
            "127.0.0.1", server.port, contexts=contexts_for([CT], ExplicitVRLittleEndian)
        ) as assoc:
            bad = await store_bytes(
                assoc, data, sop_class_uid=CT, sop_instance_uid=spec.sop_instance_uid
            )
            assert bad.status == 0xC211
            assert bad.error_comment is not None and "database is down" in bad.error_comment
            assert stored_files(tmp_path) == []
            good = await store_bytes(
                assoc, data, sop_class_uid=CT, sop_instance_uid=spec.sop_instance_uid
            )
            assert good.status == 0
    assert [p.name for p in stored_files(tmp_path)] == [f"{spec.sop_instance_uid}.dcm"]
    inst = seen[1]
    assert inst.destination == tmp_path / f"{spec.sop_instance_uid}.dcm"
    assert inst.calling_ae_title == "SCU"
    assert inst.transfer_syntax == ExplicitVRLittleEndian
    assert inst.size == len(data)
    assert inst.dataset is not None and inst.dataset.SOPInstanceUID == spec.sop_instance_uid


async def test_handler_failure_status_keeps_nothing(tmp_path: Path) -> None:
    async def handler(instance: StoredInstance) -> int:
        return 0xA700

    scp = aiodimse.AE("STORE_SCP")
    enable_storage(scp, StorageOptions(output_directory=tmp_path, handler=handler))
    data, spec = ct_bytes()
    async with scp.serve("127.0.0.1", 0) as server:
        async with aiodimse.AE("SCU").associate(
            "127.0.0.1", server.port, contexts=contexts_for([CT], ExplicitVRLittleEndian)
        ) as assoc:
            rsp = await store_bytes(
                assoc, data, sop_class_uid=CT, sop_instance_uid=spec.sop_instance_uid
            )
    assert rsp.status == 0xA700
    assert stored_files(tmp_path) == []


async def test_in_memory_small_datasets(tmp_path: Path) -> None:
    seen: list[StoredInstance] = []

    async def handler(instance: StoredInstance) -> int:
        seen.append(instance)
        return 0

    scp = aiodimse.AE("STORE_SCP")
    enable_storage(
        scp,
        StorageOptions(
            output_directory=tmp_path, handler=handler, in_memory_max=1 << 20, decode_dataset=True
        ),
    )
    data, spec = ct_bytes()
    async with scp.serve("127.0.0.1", 0) as server:
        async with aiodimse.AE("SCU").associate(
            "127.0.0.1", server.port, contexts=contexts_for([CT], ExplicitVRLittleEndian)
        ) as assoc:
            rsp = await store_bytes(
                assoc, data, sop_class_uid=CT, sop_instance_uid=spec.sop_instance_uid
            )
    assert rsp.status == 0
    assert stored_files(tmp_path) == []
    assert seen[0].data == data and seen[0].path is None
    assert seen[0].dataset is not None and str(seen[0].dataset.PatientName) == "Müller^Jürgen"


async def test_group_0002_inside_the_dataset_is_removed(tmp_path: Path) -> None:
    scp = aiodimse.AE("STORE_SCP")
    enable_storage(scp, StorageOptions(output_directory=tmp_path))
    data, spec = ct_bytes()
    # (0002,0010) UI "1.2.840.10008.1.2.1\0" then the dataset: explicit VR LE.
    value = b"1.2.840.10008.1.2.1\x00"
    junk = b"\x02\x00\x10\x00UI" + len(value).to_bytes(2, "little") + value
    async with scp.serve("127.0.0.1", 0) as server:
        async with aiodimse.AE("SCU").associate(
            "127.0.0.1", server.port, contexts=contexts_for([CT], ExplicitVRLittleEndian)
        ) as assoc:
            rsp = await store_bytes(
                assoc, junk + data, sop_class_uid=CT, sop_instance_uid=spec.sop_instance_uid
            )
    assert rsp.status == 0xB006
    (path,) = stored_files(tmp_path)
    assert dataset_part(path) == data


@pytest.mark.parametrize("fault", ["min_free_space", "permission"])
async def test_robustness_38_out_of_resources_a700_no_partial_file_server_goes_on(
    tmp_path: Path, fault: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "root"
    root.mkdir()
    scp = aiodimse.AE("STORE_SCP")
    options = StorageOptions(
        output_directory=root,
        min_free_space=(1 << 62) if fault == "min_free_space" else 0,
        write_size=64 * 1024,
    )
    storage = enable_storage(scp, options)
    if fault == "permission":
        if os.name == "nt" or os.geteuid() == 0:  # permissions not enforced: simulate EACCES
            from aiodimse.net import filesink

            def denied(self: filesink.FileSink) -> object:
                raise PermissionError(13, "Permission denied", str(self.path))

            monkeypatch.setattr(filesink.FileSink, "_open", denied)
        else:
            root.chmod(0o500)
    gen = datagen.write_streamed(tmp_path / "src", 2 << 20)
    big = dataset_part(gen.path)
    small, spec = ct_bytes()
    try:
        async with scp.serve("127.0.0.1", 0) as server:
            ctx = contexts_for([CT, gen.sop_class_uid], ExplicitVRLittleEndian)
            async with aiodimse.AE("SCU").associate("127.0.0.1", server.port, contexts=ctx) as a:
                for data, cls, uid in (
                    (small, CT, spec.sop_instance_uid),
                    (big, gen.sop_class_uid, gen.sop_instance_uid),
                ):
                    rsp = await store_bytes(a, data, sop_class_uid=cls, sop_instance_uid=uid)
                    assert rsp.status == 0xA700
                    assert rsp.error_comment
            # the server keeps serving
            async with aiodimse.AE("SCU").associate("127.0.0.1", server.port) as a:
                assert (await a.echo()).code == 0
    finally:
        root.chmod(0o700)
    assert list(root.iterdir()) == []
    assert storage.stats.failed == 2


async def test_disk_error_mid_stream_is_a700_and_no_partial_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """EIO after the first megabytes: the writer records it, the file goes, 0xA700."""
    from aiodimse.net import filesink

    calls = {"n": 0}
    real_check = filesink.FileSink._check_space

    def failing_check(self: filesink.FileSink) -> None:
        calls["n"] += 1
        if calls["n"] > 1:
            raise OSError(5, "Input/output error")
        real_check(self)

    monkeypatch.setattr(filesink, "_SPACE_CHECK_INTERVAL", 256 * 1024)
    monkeypatch.setattr(filesink.FileSink, "_check_space", failing_check)
    scp = aiodimse.AE("STORE_SCP")
    enable_storage(scp, StorageOptions(output_directory=tmp_path, write_size=64 * 1024))
    gen = datagen.write_streamed(tmp_path / "src", 2 << 20)
    data = dataset_part(gen.path)
    async with scp.serve("127.0.0.1", 0) as server:
        ctx = contexts_for([gen.sop_class_uid], ExplicitVRLittleEndian)
        async with aiodimse.AE("SCU").associate("127.0.0.1", server.port, contexts=ctx) as a:
            rsp = await store_bytes(
                a, data, sop_class_uid=gen.sop_class_uid, sop_instance_uid=gen.sop_instance_uid
            )
    assert rsp.status == 0xA700
    assert rsp.error_comment is not None and "Input/output" in rsp.error_comment
    assert files_in(tmp_path) == []


async def test_robustness_47_abort_mid_transfer_removes_partial_file(tmp_path: Path) -> None:
    called: list[StoredInstance] = []

    async def handler(instance: StoredInstance) -> int:
        called.append(instance)
        return 0

    scp = aiodimse.AE("STORE_SCP")
    enable_storage(
        scp, StorageOptions(output_directory=tmp_path, write_size=64 * 1024, handler=handler)
    )
    gen = datagen.write_streamed(tmp_path / "src", 4 << 20)
    data = dataset_part(gen.path)

    def temporary_file_exists() -> bool:
        return any(p.name.startswith(".aiodimse-") for p in files_in(tmp_path))

    async with scp.serve("127.0.0.1", 0) as server:
        ctx = contexts_for([gen.sop_class_uid], ExplicitVRLittleEndian)
        async with aiodimse.AE("SCU").associate("127.0.0.1", server.port, contexts=ctx) as a:
            channel = a._channel
            cid = a.context_for(gen.sop_class_uid)
            command = raw_store_command(
                gen.sop_class_uid, gen.sop_instance_uid.encode(), channel.next_message_id()
            )
            # the command and half the dataset, never the last fragment
            await send_raw(channel, cid, command, data[: len(data) // 2], last=False)
            # Wait until the SCP has a temporary file, then abort.
            await wait_until(
                lambda: any(p.name.startswith(".aiodimse-") for p in files_in(tmp_path))
            )
            await a.abort()
        await wait_until(lambda: server.active == 0)
    assert files_in(tmp_path) == []
    assert called == []


async def test_dataset_larger_than_the_in_memory_bound_streams_to_disk(tmp_path: Path) -> None:
    """``Limits.max_in_memory_dataset`` bounds memory sinks only: a file sink takes any size."""
    limits = aiodimse.Limits(max_in_memory_dataset=1 << 20)
    scp = aiodimse.AE("STORE_SCP", limits=limits)
    enable_storage(scp, StorageOptions(output_directory=tmp_path / "out"))
    gen = datagen.write_streamed(tmp_path / "src", 3 << 20, seed=11)
    data = dataset_part(gen.path)
    async with scp.serve("127.0.0.1", 0) as server:
        ctx = contexts_for([gen.sop_class_uid], ExplicitVRLittleEndian)
        async with aiodimse.AE("SCU").associate("127.0.0.1", server.port, contexts=ctx) as a:
            rsp = await store_bytes(
                a, data, sop_class_uid=gen.sop_class_uid, sop_instance_uid=gen.sop_instance_uid
            )
    assert rsp.status == 0
    assert dataset_part(tmp_path / "out" / f"{gen.sop_instance_uid}.dcm") == data


def test_storescp_cli_flags_build_the_scp(tmp_path: Path) -> None:
    import argparse

    from aiodimse.apps import storescp

    parser = argparse.ArgumentParser()
    storescp.add_parser(parser.add_subparsers())
    args = parser.parse_args(
        ["storescp", "11112", "-aet", "MYSCP", "-od", str(tmp_path / "od"), "--max-pdu", "4096",
         "--max-associations", "3", "--no-fsync", "--min-free-space", "0", "--layout", "tree",
         "--accept-sop-class", "1.2.3.4.5.6"]
    )  # fmt: skip
    ae, storage = storescp.build(args)
    assert ae.ae_title == "MYSCP" and ae.limits.max_pdu_length == 4096
    assert ae.max_associations == 3
    opts = storage.options
    assert opts.layout is Layout.TREE and not opts.durable and opts.min_free_space == 0
    assert (tmp_path / "od").is_dir()
    assert "1.2.3.4.5.6" in {c.abstract_syntax for c in ae.supported_contexts}
    ignore = parser.parse_args(["storescp", "11112", "--ignore", "-od", str(tmp_path / "x")])
    _, storage2 = storescp.build(ignore)
    assert storage2.options.ignore and not (tmp_path / "x").exists()


async def test_ignore_receives_and_discards(tmp_path: Path) -> None:
    scp = aiodimse.AE("STORE_SCP")
    storage = enable_storage(scp, StorageOptions(output_directory=tmp_path, ignore=True))
    data, spec = ct_bytes()
    async with scp.serve("127.0.0.1", 0) as server:
        async with aiodimse.AE("SCU").associate(
            "127.0.0.1", server.port, contexts=contexts_for([CT], ExplicitVRLittleEndian)
        ) as assoc:
            rsp = await store_bytes(
                assoc, data, sop_class_uid=CT, sop_instance_uid=spec.sop_instance_uid
            )
    assert rsp.status == 0
    assert stored_files(tmp_path) == []
    assert storage.stats.stored == 1 and storage.stats.bytes_received == len(data)


@pytest.mark.parametrize("listed", [True, False])
async def test_private_sop_class_accepted_only_when_listed(tmp_path: Path, listed: bool) -> None:
    private = "1.2.826.0.1.3680043.9.9999.1"
    scp = aiodimse.AE("STORE_SCP")
    extra = (private,) if listed else ()
    enable_storage(scp, StorageOptions(output_directory=tmp_path, extra_sop_classes=extra))
    ds = datagen.make_dataset(datagen.Spec(kind=datagen.Kind.SC, seed=2))
    data = _encode(ds, SOPClassUID=private)
    async with scp.serve("127.0.0.1", 0) as server:
        ctx = contexts_for([private], ExplicitVRLittleEndian)
        async with aiodimse.AE("SCU").associate("127.0.0.1", server.port, contexts=ctx) as a:
            if not listed:
                with pytest.raises(aiodimse.DicomError, match="accepted no presentation context"):
                    a.context_for(private)
                return
            rsp = await store_bytes(
                a, data, sop_class_uid=private, sop_instance_uid=str(ds.SOPInstanceUID)
            )
    assert rsp.status == 0
    (path,) = stored_files(tmp_path)
    assert pydicom.dcmread(path).file_meta.MediaStorageSOPClassUID == private
