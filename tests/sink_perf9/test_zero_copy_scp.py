"""The storage SCP over loopback with the zero-copy file sink: several associations at once,
multi-MiB datasets of odd sizes in PDUs of several sizes (streamed pieces, whole PDUs,
fragments short enough to be copied): every stored file holds exactly the bytes sent."""

from __future__ import annotations

import hashlib
from pathlib import Path

import anyio
import pytest
from pydicom.uid import ExplicitVRLittleEndian

import aiodimse
from aiodimse.services.storage_scp import StorageOptions, enable_storage
from tests.storage.scu_helper import contexts_for, store_bytes
from tests.support import datagen

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def dataset_part(path: Path) -> bytes:
    data = path.read_bytes()
    assert data[128:132] == b"DICM"
    return data[144 + int.from_bytes(data[140:144], "little") :]


@pytest.mark.parametrize("max_pdu", [16_384, 300_001, 1 << 20])
async def test_concurrent_associations_store_every_byte(tmp_path: Path, max_pdu: int) -> None:
    """The SCP's maximum PDU sets what the SCUs send: short PDVs (copied), whole PDUs and
    PDUs handed out in pieces (views)."""
    out = tmp_path / "out"
    scp = aiodimse.AE("STORE_SCP", limits=aiodimse.Limits(max_pdu_length=max_pdu))
    enable_storage(scp, StorageOptions(output_directory=out, durable=False))
    sizes = [(3 << 20) + 1001, (1 << 20) + 77, (2 << 20) + 12_345, 700_001] * 2
    gens = [datagen.write_streamed(tmp_path / f"s{i}", n, seed=90 + i) for i, n in enumerate(sizes)]
    datas = [dataset_part(g.path) for g in gens]
    pdus = [16_384, 65_536, 1 << 20, 300_000]  # the SCUs' own (receive) maximum PDU

    async def one(i: int) -> None:
        scu = aiodimse.AE(f"SCU{i}", limits=aiodimse.Limits(max_pdu_length=pdus[i]))
        contexts = contexts_for([gens[0].sop_class_uid], ExplicitVRLittleEndian)
        async with scu.associate("127.0.0.1", port, contexts=contexts) as assoc:
            for k in (2 * i, 2 * i + 1):  # two datasets each
                data = datas[k]
                step = 100_003 + 17 * i
                chunks = [data[a : a + step] for a in range(0, len(data), step)]
                rsp = await store_bytes(
                    assoc,
                    chunks,
                    sop_class_uid=gens[k].sop_class_uid,
                    sop_instance_uid=gens[k].sop_instance_uid,
                )
                assert rsp.status == 0

    async with scp.serve("127.0.0.1", 0) as server:
        port = server.port
        with anyio.fail_after(60):
            async with anyio.create_task_group() as tg:
                for i in range(len(pdus)):
                    tg.start_soon(one, i)
    for gen, data in zip(gens, datas, strict=True):
        stored = out / f"{gen.sop_instance_uid}.dcm"
        assert hashlib.sha256(dataset_part(stored)).digest() == hashlib.sha256(data).digest()
    assert len([p for p in out.rglob("*") if p.is_file()]) == 2 * len(pdus)
