"""Units of the storage SCP: the file sink (backpressure, errors) and the dataset head parser."""

from __future__ import annotations

import io
import struct
import threading
import warnings
from pathlib import Path

import anyio
import pydicom
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aiodimse.net.filesink import FileSink, SinkState
from aiodimse.services import dataset_head as dh
from aiodimse.services.storage_scp import file_meta
from tests.support import datagen

pytestmark = pytest.mark.anyio


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


class _BlockingFile(io.BytesIO):
    """A file whose writes wait for ``gate`` (a slow disk)."""

    def __init__(self, gate: threading.Event) -> None:
        super().__init__()
        self.gate = gate
        self.writes: list[int] = []

    def write(self, data: object) -> int:  # type: ignore[override]
        self.gate.wait(10)
        n = super().write(data)  # type: ignore[arg-type]
        self.writes.append(n)
        return n


async def test_backpressure_slow_disk_blocks_the_reader(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    gate = threading.Event()
    fake = _BlockingFile(gate)
    sink = FileSink(
        tmp_path / "t.part",
        limiter=anyio.CapacityLimiter(4),
        write_size=1024,
        queue_depth=2,
        durable=False,
    )
    monkeypatch.setattr(sink, "_open", lambda: fake)
    monkeypatch.setattr(fake, "close", lambda: None)
    chunk = memoryview(b"x" * 1024)
    accepted = 0

    async def reader() -> None:
        nonlocal accepted
        for _ in range(10):
            await sink.write(chunk)
            accepted += 1

    async with anyio.create_task_group() as tg:
        tg.start_soon(reader)
        await anyio.sleep(0.2)  # a reader that is not blocked writes all 10 in microseconds
        # The writer holds one buffer (blocked), the queue two more: the reader waits.
        assert accepted <= 4, accepted
        gate.set()
    assert accepted == 10
    await sink.close()
    assert fake.getvalue() == b"x" * 10 * 1024
    assert all(n >= 1024 for n in fake.writes)


async def test_writes_of_at_least_write_size_and_fsync(tmp_path: Path) -> None:
    path = tmp_path / "t.part"
    sink = FileSink(path, prefix=b"P" * 10, limiter=anyio.CapacityLimiter(2), write_size=4096)
    data = bytes(range(256)) * 100
    for i in range(0, len(data), 700):
        await sink.write(memoryview(data[i : i + 700]))
    await sink.close()
    assert path.read_bytes() == b"P" * 10 + data
    assert sink.state is SinkState.CLOSED and sink.on_disk
    dest = tmp_path / "a" / "b" / "final.dcm"
    assert await sink.commit(dest)
    assert dest.read_bytes() == b"P" * 10 + data and not path.exists()
    await sink.discard()  # no-op after commit
    assert dest.exists()


@pytest.mark.parametrize("durable", [True, False])
async def test_fsync_before_rename_only_when_durable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, durable: bool
) -> None:
    import os

    events: list[str] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd: int) -> None:
        events.append("fsync")
        real_fsync(fd)

    def replace(a: object, b: object) -> None:
        events.append("replace")
        real_replace(a, b)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    for size in (100, 5000):  # one-shot write, and the writer thread
        events.clear()
        sink = FileSink(
            tmp_path / f"t{size}.part",
            limiter=anyio.CapacityLimiter(2),
            durable=durable,
            write_size=1024,
        )
        await sink.write(memoryview(b"d" * size))
        await sink.close()
        await sink.commit(tmp_path / f"f{size}.dcm")
        if durable:
            assert events[0] == "fsync" and "replace" in events
            if os.name != "nt":
                assert events[-1] == "fsync"  # the directory, after the rename
        else:
            assert events == ["replace"]


async def test_discard_mid_stream_removes_the_file(tmp_path: Path) -> None:
    path = tmp_path / "t.part"
    sink = FileSink(path, limiter=anyio.CapacityLimiter(2), write_size=1024)
    for _ in range(8):
        await sink.write(memoryview(b"y" * 1000))
    await sink.discard()
    assert not path.exists()
    await sink.discard()
    await sink.write(memoryview(b"z"))  # ignored
    assert not path.exists()


async def test_leading_skip_and_in_memory(tmp_path: Path) -> None:
    sink = FileSink(
        tmp_path / "t.part",
        limiter=anyio.CapacityLimiter(2),
        hold=8,
        leading_skip=lambda head: 3 if head.startswith(b"ABC") else 0,
        in_memory_max=100,
    )
    await sink.write(memoryview(b"ABCdef"))
    await sink.write(memoryview(b"ghi"))
    await sink.close()
    assert sink.data == b"defghi" and sink.skipped == 3
    assert not (tmp_path / "t.part").exists()


async def test_open_error_is_recorded_and_data_ignored(tmp_path: Path) -> None:
    sink = FileSink(tmp_path / "missing-dir" / "t.part", limiter=anyio.CapacityLimiter(2))
    await sink.write(memoryview(b"a" * 10))
    await sink.close()
    assert isinstance(sink.error, OSError)
    assert not sink.on_disk


# --------------------------------------------------------------------------- file meta


def test_file_meta_reads_back_with_pydicom() -> None:
    meta = file_meta(
        sop_class_uid="1.2.840.10008.5.1.4.1.1.2",
        sop_instance_uid="1.2.3.4\x00",
        transfer_syntax="1.2.840.10008.1.2",
        implementation_class_uid="1.2.3",
        implementation_version_name="V1",
        source_ae_title="MOD ",
    )
    ds_bytes = datagen.dataset_bytes(
        datagen.Spec(transfer_syntax=pydicom.uid.ImplicitVRLittleEndian)
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = pydicom.dcmread(io.BytesIO(meta + ds_bytes))
    fm = ds.file_meta
    assert fm.FileMetaInformationGroupLength == len(meta) - 144
    assert fm.MediaStorageSOPInstanceUID == "1.2.3.4"
    assert fm.TransferSyntaxUID == "1.2.840.10008.1.2"
    assert fm.ImplementationVersionName == "V1"
    assert fm.SourceApplicationEntityTitle == "MOD"
    assert str(ds.PatientName) == "Müller^Jürgen"


# --------------------------------------------------------------------------- dataset head


def _explicit(tag: int, vr: bytes, value: bytes) -> bytes:
    g, e = tag >> 16, tag & 0xFFFF
    if vr in (b"SQ", b"OB", b"UN"):
        return struct.pack("<HH2sHI", g, e, vr, 0, len(value)) + value
    return struct.pack("<HH2sH", g, e, vr, len(value)) + value


def _undef_seq(tag: int, item_body: bytes, depth: int) -> bytes:
    """``depth`` nested undefined-length sequences (explicit VR LE), built in linear time."""
    opening = struct.pack("<HH2sHI", tag >> 16, tag & 0xFFFF, b"SQ", 0, 0xFFFFFFFF)
    opening += b"\xfe\xff\x00\xe0\xff\xff\xff\xff"  # item, undefined length
    closing = b"\xfe\xff\x0d\xe0\x00\x00\x00\x00" + b"\xfe\xff\xdd\xe0\x00\x00\x00\x00"
    return opening * depth + item_body + closing * depth


@pytest.mark.parametrize(
    "ts",
    [
        pydicom.uid.ImplicitVRLittleEndian,
        pydicom.uid.ExplicitVRLittleEndian,
        pydicom.uid.ExplicitVRBigEndian,
        pydicom.uid.DeflatedExplicitVRLittleEndian,
    ],
)
@pytest.mark.parametrize("undefined", [True, False])
def test_head_finds_uids_in_every_uncompressed_encoding(
    ts: pydicom.uid.UID, undefined: bool
) -> None:
    spec = datagen.Spec(
        kind=datagen.Kind.MR, transfer_syntax=ts, undefined_length_sequences=undefined
    )
    data = datagen.dataset_bytes(spec)
    if ts == pydicom.uid.DeflatedExplicitVRLittleEndian:
        data = dh.inflate_prefix(data, 1 << 20)
    head = dh.parse_head(
        data,
        implicit=ts == pydicom.uid.ImplicitVRLittleEndian,
        little=ts != pydicom.uid.ExplicitVRBigEndian,
        wanted=[dh.SOP_CLASS_UID, dh.SOP_INSTANCE_UID, dh.PATIENT_ID, dh.STUDY_INSTANCE_UID,
                dh.SERIES_INSTANCE_UID],
    )  # fmt: skip
    assert head.complete
    assert head.text(dh.SOP_INSTANCE_UID) == spec.sop_instance_uid
    assert head.text(dh.SOP_CLASS_UID) == spec.sop_class_uid
    assert head.text(dh.PATIENT_ID) == spec.patient_id
    assert head.text(dh.STUDY_INSTANCE_UID) == spec.study_instance_uid
    assert head.text(dh.SERIES_INSTANCE_UID) == spec.series_instance_uid
    # byte at a time prefixes never raise and never report a wrong value
    for n in range(0, len(data), 97):
        part = dh.parse_head(data[:n], implicit=ts == pydicom.uid.ImplicitVRLittleEndian,
                             little=ts != pydicom.uid.ExplicitVRBigEndian)  # fmt: skip
        for tag, value in part.values.items():
            assert value == head.values.get(tag, value)


def test_head_skips_nested_sequences_and_group_0002() -> None:
    g2 = _explicit(0x00020010, b"UI", b"1.2.840.10008.1.2.1\x00")
    seq = _undef_seq(0x00080006, _explicit(0x00081150, b"UI", b"1.2\x00"), depth=5)
    body = (
        g2 + seq + _explicit(0x00080016, b"UI", b"1.2.3\x00") + _explicit(0x00080018, b"UI", b"9.8")
    )
    body += b"\x00"
    head = dh.parse_head(body, implicit=False)
    assert head.group2_length == len(g2)
    assert head.text(dh.SOP_CLASS_UID) == "1.2.3"
    # (0008,0018) "9.8" has odd length 3 here: the parse reads the declared length only.
    assert head.values[dh.SOP_INSTANCE_UID] == b"9.8"


@pytest.mark.parametrize("depth", [64, 65, 1000, 100_000])
def test_robustness_28_deep_nesting_is_a_typed_error_never_recursion(depth: int) -> None:
    body = _undef_seq(0x00080006, b"", depth=depth)
    if depth <= 64:
        head = dh.parse_head(body, implicit=False, at_end=True)
        assert head.values == {}
    else:
        with pytest.raises(dh.DatasetHeadError):
            dh.parse_head(body, implicit=False)


def test_robustness_29_lengths_past_the_end_never_allocate() -> None:
    body = struct.pack("<HH2sH", 0x0008, 0x0016, b"UI", 0xFFFE)
    head = dh.parse_head(body + b"1.2", implicit=False)
    assert head.values == {} and not head.complete
    huge = struct.pack("<HHI", 0x0008, 0x0016, 0xFFFFFFF0) + b"1.2"
    assert dh.parse_head(huge, implicit=True).values == {}


def test_robustness_30_inflation_is_bounded() -> None:
    import zlib

    bomb = zlib.compressobj(9, zlib.DEFLATED, -15)
    data = bomb.compress(b"\x00" * (50 << 20)) + bomb.flush()
    assert len(data) < 100_000
    assert len(dh.inflate_prefix(data, 1 << 20)) == 1 << 20


@settings(max_examples=200, deadline=None)
@given(data=st.binary(max_size=400), implicit=st.booleans(), little=st.booleans())
def test_head_parser_never_crashes(data: bytes, implicit: bool, little: bool) -> None:
    try:
        head = dh.parse_head(data, implicit=implicit, little=little)
    except dh.DatasetHeadError:
        return
    for value in head.values.values():
        assert len(value) <= len(data)
    assert 0 <= head.group2_length <= len(data)
