"""``aiodimse getscu`` and ``aiodimse movescu`` against the test-only retrieve SCP."""

from __future__ import annotations

import sys
from pathlib import Path

import anyio
import pytest

from tests.retrieve.test_retrieve_scu_support import Behaviour, RetrieveTestSCP, corpus
from tests.support.peers import free_port

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def cli(*args: str) -> tuple[int, str, str]:
    result = await anyio.run_process([sys.executable, "-m", "aiodimse", *args], check=False)
    return result.returncode, result.stdout.decode(), result.stderr.decode()


def names(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


async def test_getscu_and_movescu(tmp_path: Path) -> None:
    store_port = free_port()
    behaviour = Behaviour(destinations={"MOVESCU": store_port})
    scp = RetrieveTestSCP(corpus(), behaviour)
    study1 = [f"1.2.826.0.1.9.1.1.{i}.dcm" for i in (1, 2, 3)]
    study2 = [f"1.2.826.0.1.9.2.1.{i}.dcm" for i in (1, 2, 3)]
    async with scp.ae.serve("127.0.0.1", 0) as server:
        port = str(server.port)
        got = tmp_path / "missing" / "get"
        code, out, err = await cli(
            "getscu", "127.0.0.1", port, "-aec", "RETR_SCP", "-S",
            "-k", "QueryRetrieveLevel=STUDY", "-k", "StudyInstanceUID=1.2.826.0.1.9.1",
            "-od", str(got),
        )  # fmt: skip
        assert code == 0, err
        assert names(got) == study1
        assert len(out.splitlines()) == 3  # one path per received instance
        moved = tmp_path / "moved"
        code, out, err = await cli(
            "movescu", "127.0.0.1", port, "-aec", "RETR_SCP",
            "-k", "StudyInstanceUID=1.2.826.0.1.9.2", "-aem", "MOVESCU",
            "--store", "--store-port", str(store_port), "-od", str(moved),
        )  # fmt: skip
        assert code == 0, err
        assert names(moved) == study2
        code, out, err = await cli(
            "movescu", "127.0.0.1", port, "-aec", "RETR_SCP",
            "-k", "StudyInstanceUID=1.2.826.0.1.9.2", "-aem", "NOBODY",
        )  # fmt: skip
        assert code == 1
        assert err.count("\n") == 1 and "0xA801" in err, err
        behaviour.fail = {"1.2.826.0.1.9.1.1.2"}
        code, out, err = await cli(
            "getscu", "127.0.0.1", port, "-aec", "RETR_SCP",
            "-k", "StudyInstanceUID=1.2.826.0.1.9.1", "-od", str(tmp_path / "partial"),
        )  # fmt: skip
        assert code == 1 and "0xB000" in err and "1.2.826.0.1.9.1.1.2" in err, err
    assert len(behaviour.move_requests) == 2
