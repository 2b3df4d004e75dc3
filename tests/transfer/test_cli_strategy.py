"""``aiodimse storescu --strategy`` and ``--no-fallback`` (issue 8), through the proxy of
:mod:`tests.transfer.choosy` in front of a recording test SCP."""

from __future__ import annotations

import sys
from pathlib import Path

import anyio
import pytest
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian, JPEGBaseline8Bit

from tests.storage.storage_scu_support import RecordingSCP, contexts_for
from tests.support import datagen
from tests.transfer.choosy import Mode, choosy_proxy

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def storescu(*args: str) -> tuple[int, str, str]:
    proc = await anyio.run_process(
        [sys.executable, "-m", "aiodimse", "storescu", *args], check=False
    )
    return proc.returncode, proc.stdout.decode(), proc.stderr.decode()


@pytest.fixture
def tree(tmp_path: Path) -> tuple[Path, list[str]]:
    gens = [
        datagen.write_file(datagen.Spec(kind=k, transfer_syntax=t, seed=4), tmp_path / "in")
        for k, t in (
            (datagen.Kind.CT, ExplicitVRLittleEndian),
            (datagen.Kind.SC, JPEGBaseline8Bit),
        )
    ]
    return tmp_path / "in", [g.sop_class_uid for g in gens]


@pytest.mark.parametrize(
    ("args", "seen", "arrived_ts"),
    [
        ((), [5], {ExplicitVRLittleEndian, JPEGBaseline8Bit}),  # auto: own syntaxes kept
        (("--strategy", "universal"), [2], {ImplicitVRLittleEndian}),
        (("--strategy", "conservative"), [2], {ExplicitVRLittleEndian}),
    ],
)
async def test_strategy_flag(
    tree: tuple[Path, list[str]], args: tuple[str, ...], seen: list[int], arrived_ts: set[str]
) -> None:
    root, classes = tree
    syntaxes = (ExplicitVRLittleEndian, ImplicitVRLittleEndian, JPEGBaseline8Bit)
    scp = RecordingSCP(contexts=contexts_for(classes, syntaxes))
    async with scp.ae.serve("127.0.0.1", 0) as server:
        async with choosy_proxy(server.port, max_contexts=100, mode=Mode.REJECT) as proxy:
            code, out, err = await storescu("127.0.0.1", str(proxy.port), *args, "-r", str(root))
    assert code == 0, err
    assert out.startswith("sent 2 of 2 instances, 0 failed")
    assert proxy.seen == seen
    assert {a.transfer_syntax for a in scp.arrived} == arrived_ts


async def test_fallback_and_no_fallback(tree: tuple[Path, list[str]]) -> None:
    root, classes = tree
    scp = RecordingSCP(contexts=contexts_for(classes, (ExplicitVRLittleEndian,)))
    async with scp.ae.serve("127.0.0.1", 0) as server:
        async with choosy_proxy(server.port, max_contexts=3, mode=Mode.ABORT) as proxy:
            code, out, _ = await storescu("127.0.0.1", str(proxy.port), "-r", str(root))
            assert (code, proxy.seen) == (0, [5, 2])
            assert out.startswith("sent 2 of 2 instances, 0 failed")
            code, _, err = await storescu(
                "127.0.0.1", str(proxy.port), "--no-fallback", "-r", str(root)
            )
    assert code == 1 and proxy.seen == [5, 2, 5]
    assert "aborted" in err
