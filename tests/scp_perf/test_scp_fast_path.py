"""The storage SCP's per-instance path (issue 9): nameless files when nothing reads the
file by name, a cheap root check that still refuses planted links, names without a system
call, and free-space readings shared by instances arriving together."""

from __future__ import annotations

import os
import shutil
import sys
from collections import namedtuple
from pathlib import Path

import anyio
import pytest
from pydicom.uid import ExplicitVRLittleEndian

import aiodimse
from aiodimse.net import filesink
from aiodimse.net.filesink import FileSink, InsufficientSpace
from aiodimse.services.filepolicy import (
    UnsafePathError,
    is_temporary_name,
    resolve_inside,
    temporary_name,
)
from aiodimse.services.storage_scp import StorageOptions, StoredInstance, enable_storage
from tests.storage.scu_helper import contexts_for, store_bytes
from tests.storage.test_storage_scp import CT, ct_bytes

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def test_stored_through_nameless_files_and_nothing_else_in_the_root(
    tmp_path: Path,
) -> None:
    root = tmp_path / "root"
    scp = aiodimse.AE("STORE_SCP", max_operations_performed=8)
    storage = enable_storage(scp, StorageOptions(output_directory=root))
    items = [ct_bytes(seed=i) for i in range(12)]
    async with scp.serve("127.0.0.1", 0) as server:
        ctx = contexts_for([CT], ExplicitVRLittleEndian)
        scu = aiodimse.AE("SCU", max_operations_invoked=8)
        async with scu.associate("127.0.0.1", server.port, contexts=ctx) as a:
            statuses: list[int] = []

            async def one(data: bytes, uid: str) -> None:
                rsp = await store_bytes(a, data, sop_class_uid=CT, sop_instance_uid=uid)
                statuses.append(rsp.status)

            async with anyio.create_task_group() as tg:
                for data, spec in items:
                    tg.start_soon(one, data, spec.sop_instance_uid)
    assert statuses == [0] * len(items)
    names = sorted(p.name for p in root.iterdir())
    assert names == sorted(f"{spec.sop_instance_uid}.dcm" for _, spec in items)
    for data, spec in items:
        assert (root / f"{spec.sop_instance_uid}.dcm").read_bytes().endswith(data)
    pool = storage._anonymous
    if sys.platform.startswith("linux"):
        assert pool.ready_taken + pool.created_on_demand == len(items)
    pool.close()


async def test_a_handler_still_gets_a_named_temporary_file(tmp_path: Path) -> None:
    seen: list[tuple[bool, bool]] = []

    async def handler(instance: StoredInstance) -> int:
        assert instance.path is not None
        seen.append((instance.path.exists(), is_temporary_name(instance.path.name)))
        return 0

    scp = aiodimse.AE("STORE_SCP")
    storage = enable_storage(scp, StorageOptions(output_directory=tmp_path, handler=handler))
    data, spec = ct_bytes()
    async with scp.serve("127.0.0.1", 0) as server:
        ctx = contexts_for([CT], ExplicitVRLittleEndian)
        async with aiodimse.AE("SCU").associate("127.0.0.1", server.port, contexts=ctx) as a:
            rsp = await store_bytes(
                a, data, sop_class_uid=CT, sop_instance_uid=spec.sop_instance_uid
            )
    assert rsp.status == 0 and seen == [(True, True)]
    assert storage._anonymous.ready_taken + storage._anonymous.created_on_demand == 0


def test_resolve_inside_with_a_resolved_base_refuses_a_link_planted_at_the_name(
    tmp_path: Path,
) -> None:
    root, outside = tmp_path / "root", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    base = root.resolve()
    assert resolve_inside(root, ("1.2.3.dcm",), base=base) == base / "1.2.3.dcm"
    try:
        (root / "1.2.4.dcm").symlink_to(outside / "x.dcm")
    except OSError:  # pragma: no cover - no symlink privilege (Windows)
        pytest.skip("cannot create symlinks here")
    with pytest.raises(UnsafePathError):
        resolve_inside(root, ("1.2.4.dcm",), base=base)
    # Names that are not one plain portable name take the full check.
    for parts in [("..",), (".",), ("",), ("a/../..",)]:
        with pytest.raises(UnsafePathError):
            resolve_inside(root, parts, base=base)


def test_temporary_names_are_unique_and_recognised() -> None:
    names = {temporary_name() for _ in range(10_000)}
    assert len(names) == 10_000 and all(is_temporary_name(n) for n in names)
    assert temporary_name("0" * 32) == ".aiodimse-" + "0" * 32 + ".part"
    with pytest.raises(ValueError):
        temporary_name("not-hex")


def test_instances_arriving_together_share_one_free_space_reading(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[Path] = []
    usage = namedtuple("usage", "total used free")

    def disk_usage(path: Path) -> object:
        calls.append(Path(path))
        return usage(10 << 30, 0, 1 << 30)

    monkeypatch.setattr(shutil, "disk_usage", disk_usage)
    monkeypatch.setattr(filesink, "_space_readings", {})
    limiter = anyio.CapacityLimiter(1)
    sinks = [
        FileSink(tmp_path / f"{i}.part", limiter=limiter, min_free_space=64 << 20) for i in range(5)
    ]
    for s in sinks:
        s._open()
        assert s._fp is not None
        s._fp.close()
    assert calls == [tmp_path]  # one reading for five files
    filesink._space_readings.clear()  # what an older reading amounts to
    too_full = FileSink(tmp_path / "x.part", limiter=limiter, min_free_space=2 << 30)
    with pytest.raises(InsufficientSpace):
        too_full._open()
    assert len(calls) == 2 and not (tmp_path / "x.part").exists()
    for i in range(5):
        os.unlink(tmp_path / f"{i}.part")
