"""C-ECHO against the real peers, both directions (issue 4).

dcmtk ``echoscu`` and pynetdicom's echoscu call our SCP; our AE and our ``aiodimse echoscu``
call dcmtk ``storescp``, Orthanc and pynetdicom's storage SCP. Rejections come back in words.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import anyio
import pytest

import aiodimse
from aiodimse.errors import AssociationRejected
from tests.support import orthanc_peer, peers

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def test_dcmtk_echoscu_to_aiodimse() -> None:
    exe = peers.require_peer("dcmtk", "echoscu")
    scp = aiodimse.AE("AIO_SCP")
    calls: list[str] = []

    async def on_echo(req: aiodimse.EchoRequest) -> int:
        calls.append(req.calling_ae_title)
        return 0

    scp.on_echo = on_echo
    async with scp.serve("127.0.0.1", 0) as server:
        result = await anyio.run_process(
            [
                exe,
                "-v",
                "-aet",
                "DCMTK",
                "-aec",
                "AIO_SCP",
                "--repeat",
                "3",
                "127.0.0.1",
                str(server.port),
            ],
            check=False,
        )
    out = result.stdout.decode() + result.stderr.decode()
    assert result.returncode == 0, out
    assert calls == ["DCMTK"] * 3
    assert "Association Accepted" in out


async def test_pynetdicom_echoscu_to_aiodimse() -> None:
    peers.require_peer("pynetdicom", "python:pynetdicom")
    async with aiodimse.AE("AIO_SCP").serve("127.0.0.1", 0) as server:
        result = await anyio.run_process(
            [
                sys.executable,
                "-m",
                "pynetdicom",
                "echoscu",
                "-v",
                "-aec",
                "AIO_SCP",
                "127.0.0.1",
                str(server.port),
            ],
            check=False,
        )
    out = result.stdout.decode() + result.stderr.decode()
    assert result.returncode == 0, out
    # pynetdicom's echoscu exits 0 even when it fails: check what it logged.
    assert "Received Echo Response (Status: 0x0000 - Success)" in out, out


async def test_aiodimse_to_dcmtk_storescp(dcmtk_storescp: peers.Peer) -> None:
    ae = aiodimse.AE("AIO_SCU")
    async with ae.associate(
        "127.0.0.1", dcmtk_storescp.port, called_ae=dcmtk_storescp.ae_title
    ) as a:
        assert (await a.echo()).code == 0
        assert a.negotiated.peer_implementation_class_uid  # dcmtk's implementation UID
        assert "OFFIS" in (a.negotiated.peer_implementation_version_name or "")


async def test_aiodimse_to_orthanc(orthanc: orthanc_peer.OrthancPeer) -> None:
    ae = aiodimse.AE("AIO_SCU")
    async with ae.associate("127.0.0.1", orthanc.port, called_ae=orthanc.ae_title) as a:
        for _ in range(3):
            assert (await a.echo()).code == 0


async def test_aiodimse_to_pynetdicom_storescp(pynetdicom_storescp: peers.Peer) -> None:
    ae = aiodimse.AE("AIO_SCU")
    async with ae.associate(
        "127.0.0.1", pynetdicom_storescp.port, called_ae=pynetdicom_storescp.ae_title
    ) as a:
        assert (await a.echo()).code == 0


@pytest.mark.parametrize("peer_name", ["dcmtk", "orthanc", "pynetdicom"])
def test_echoscu_cli_against_each_peer(peer_name: str, request: pytest.FixtureRequest) -> None:
    fixture = {
        "dcmtk": "dcmtk_storescp",
        "orthanc": "orthanc",
        "pynetdicom": "pynetdicom_storescp",
    }[peer_name]
    peer = request.getfixturevalue(fixture)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "aiodimse",
            "echoscu",
            "127.0.0.1",
            str(peer.port),
            "-aec",
            peer.ae_title,
            "--repeat",
            "2",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("0x0000 Success") == 2, result.stdout


def test_echoscu_cli_reports_refused_port() -> None:
    port = peers.free_port()
    result = subprocess.run(
        [sys.executable, "-m", "aiodimse", "echoscu", "127.0.0.1", str(port)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "connection refused" in lines[0], result.stderr


async def test_orthanc_wrong_called_ae_is_rejected_in_words(tmp_path: Path) -> None:
    exe = peers.require_peer("Orthanc", "Orthanc")
    server = await anyio.to_thread.run_sync(
        lambda: orthanc_peer.start_orthanc(
            tmp_path, binary=exe, extra_config={"DicomCheckCalledAet": True}
        )
    )
    try:
        ae = aiodimse.AE("AIO_SCU")
        with pytest.raises(AssociationRejected, match="called AE title not recognized") as info:
            async with ae.associate("127.0.0.1", server.port, called_ae="NOT_ORTHANC"):
                pass
        assert info.value.source == 1 and info.value.reason == 7
        async with ae.associate("127.0.0.1", server.port, called_ae=server.ae_title) as a:
            assert (await a.echo()).code == 0
    finally:
        await anyio.to_thread.run_sync(server.stop)


def test_dcmtk_rejection_by_aiodimse_cli_is_in_words(tmp_path: Path) -> None:
    """Our storescp with --require-called-aet rejects dcmtk's echoscu with 1/1/7."""
    exe = peers.require_peer("dcmtk", "echoscu")
    port = peers.free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "aiodimse",
            "storescp",
            str(port),
            "-aet",
            "MINE",
            "--require-called-aet",
            "-od",
            str(tmp_path / "out"),
            "--bind",
            "127.0.0.1",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        peers.wait_for_port(port, timeout=20, proc=proc)
        bad = peers.run_dcmtk_echoscu(port, called_ae="OTHER", binary=exe)
        assert bad.returncode != 0
        assert "Called AE Title Not Recognized" in bad.stdout + bad.stderr
        good = peers.run_dcmtk_echoscu(port, called_ae="MINE", binary=exe)
        assert good.returncode == 0, good.stdout + good.stderr
        assert (tmp_path / "out").is_dir()
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_echoscu_cli_on_uvloop_against_dcmtk(dcmtk_storescp: peers.Peer) -> None:
    """``--uvloop`` runs the tool on uvloop (installed by the test extras) and still works."""
    pytest.importorskip("uvloop")  # never on Windows; the test extras install it elsewhere
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "aiodimse",
            "echoscu",
            "--uvloop",
            "-d",
            "127.0.0.1",
            str(dcmtk_storescp.port),
            "-aec",
            dcmtk_storescp.ae_title,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "event loop: uvloop" in result.stderr
    assert "0x0000 Success" in result.stdout
