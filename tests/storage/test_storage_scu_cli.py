"""``aiodimse storescu`` as a user runs it (a subprocess) against an aiodimse SCP."""

from __future__ import annotations

import socket
import sys
from pathlib import Path

import anyio
import pytest
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian, JPEGBaseline8Bit

from aiodimse.dimse.messages import CStoreRQ
from tests.storage.storage_scu_support import RecordingSCP, contexts_for
from tests.support import datagen

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def storescu(*args: str) -> tuple[int, str, str]:
    proc = await anyio.run_process(
        [sys.executable, "-m", "aiodimse", "storescu", *args], check=False
    )
    return proc.returncode, proc.stdout.decode(), proc.stderr.decode()


def write_tree(root: Path) -> list[datagen.Generated]:
    gens = [
        datagen.write_file(datagen.Spec(kind=datagen.Kind.CT, seed=1), root),
        datagen.write_file(
            datagen.Spec(kind=datagen.Kind.MR, transfer_syntax=ImplicitVRLittleEndian, seed=1),
            root / "series2",
        ),
        datagen.write_file(
            datagen.Spec(kind=datagen.Kind.SC, transfer_syntax=JPEGBaseline8Bit, seed=1),
            root / "series2" / "deeper",
        ),
    ]
    (root / "series2" / "README.txt").write_text("not DICOM")
    return gens


async def test_directory_recursion_summary_and_exit_zero(tmp_path: Path) -> None:
    gens = write_tree(tmp_path / "in")
    scp = RecordingSCP(
        contexts=contexts_for([g.sop_class_uid for g in gens], datagen.TRANSFER_SYNTAXES)
    )
    async with scp.ae.serve("127.0.0.1", 0) as server:
        port = str(server.port)
        code, out, err = await storescu("127.0.0.1", port, str(tmp_path / "in"), "-r")
        assert code == 0, err
        assert out.startswith("sent 3 of 3 instances, 0 failed, 1 non-DICOM skipped; ")
        assert "MB/s" in out
        assert f"W: skipping {tmp_path / 'in' / 'series2' / 'README.txt'}: not a DICOM" in err
        assert sorted(a.sop_instance_uid for a in scp.arrived) == sorted(
            g.sop_instance_uid for g in gens
        )
        # Without -r only the files directly in the directory go.
        code, out, _ = await storescu("127.0.0.1", port, str(tmp_path / "in"))
        assert code == 0 and out.startswith("sent 1 of 1 instances")


async def test_failures_name_file_class_syntax_and_answer(tmp_path: Path) -> None:
    gens = write_tree(tmp_path / "in")

    async def refuse_mr(rq: CStoreRQ) -> tuple[int, str | None]:
        return (
            (0xA700, "no space")
            if rq.affected_sop_class_uid == gens[1].sop_class_uid
            else (0, None)
        )

    # The JPEG file finds no context: the SCP takes its class in JPEG 2000 only (a JPEG is
    # decompressed for an uncompressed-only peer, never re-encoded in another compression).
    scp = RecordingSCP(
        contexts=contexts_for(
            [g.sop_class_uid for g in gens[:2]], (ExplicitVRLittleEndian, ImplicitVRLittleEndian)
        )
        + contexts_for([gens[2].sop_class_uid], ("1.2.840.10008.1.2.4.90",)),
        status_for=refuse_mr,
    )
    async with scp.ae.serve("127.0.0.1", 0) as server:
        code, out, err = await storescu(
            "127.0.0.1", str(server.port), "-r", "-aet", "MYSCU", "-aec", "TESTSCP",
            str(tmp_path / "in"),
        )  # fmt: skip
    assert code == 1
    assert out.startswith("sent 1 of 3 instances, 2 failed")
    lines = [line for line in err.splitlines() if line.startswith("E: ")]
    assert len(lines) == 2, err
    mr, jpeg = sorted(lines, key=lambda line: "JPEG" in line)
    assert str(gens[1].path) in mr
    assert f"MR Image Storage ({gens[1].sop_class_uid})" in mr
    assert f"Implicit VR Little Endian ({ImplicitVRLittleEndian})" in mr
    assert mr.endswith("0xA700 Refused: out of resources, comment 'no space'")
    assert str(gens[2].path) in jpeg
    assert f"Secondary Capture Image Storage ({gens[2].sop_class_uid})" in jpeg
    assert f"JPEG Baseline (Process 1) ({JPEGBaseline8Bit})" in jpeg
    assert "no presentation context" in jpeg


async def test_unreachable_peer_lists_every_unsent_file(tmp_path: Path) -> None:
    write_tree(tmp_path / "in")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    code, out, err = await storescu("127.0.0.1", str(port), "-r", str(tmp_path / "in"))
    assert code == 1
    unsent = [line for line in err.splitlines() if "not sent" in line]
    assert len(unsent) == 3 and all("refused" in line for line in unsent)
    assert err.rstrip().splitlines()[-1].startswith("E: ") and "refused" in err.splitlines()[-1]
    assert out.startswith("sent 0 of 3 instances, 3 failed")


async def test_no_dicom_at_all_fails_in_one_line(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("x")
    code, out, err = await storescu("127.0.0.1", "104", str(tmp_path / "a.txt"), "-q")
    assert code == 1 and out == ""
    assert err.strip() == "E: no DICOM file to send"


async def test_window_and_associations_flags_pipeline_over_several_associations(
    tmp_path: Path,
) -> None:
    """``--window 4 --associations 2``: the SCP sees requests outstanding at once on one
    association (the window) and two associations; every file is stored once."""
    import aiodimse
    from aiodimse.dimse.messages import CStoreRSP
    from aiodimse.net.channel import Channel, Received

    gens = [
        datagen.write_file(datagen.Spec(kind=datagen.Kind.CT, seed=i), tmp_path / "in")
        for i in range(12)
    ]
    ae = aiodimse.AE(
        "TESTSCP",
        contexts=contexts_for([gens[0].sop_class_uid], datagen.TRANSFER_SYNTAXES),
        max_operations_performed=8,
    )
    in_flight: dict[int, int] = {}
    most = {"per_association": 0}
    crowded = anyio.Event()
    stored: list[str] = []

    async def handle(_: aiodimse.AE, channel: Channel, received: Received) -> None:
        rq = received.message
        assert isinstance(rq, CStoreRQ)
        key = id(channel)
        in_flight[key] = in_flight.get(key, 0) + 1
        most["per_association"] = max(most["per_association"], in_flight[key])
        if in_flight[key] >= 2:
            crowded.set()
        with anyio.move_on_after(2):  # only a pipelining sender gets past this at once
            await crowded.wait()
        in_flight[key] -= 1
        stored.append(rq.affected_sop_instance_uid)
        await channel.send_message(
            received.context_id,
            CStoreRSP(
                message_id_being_responded_to=rq.message_id,
                affected_sop_class_uid=rq.affected_sop_class_uid,
                affected_sop_instance_uid=rq.affected_sop_instance_uid,
                status=0,
            ),
        )

    ae.request_handlers[CStoreRQ] = handle
    async with ae.serve("127.0.0.1", 0) as server:
        code, out, err = await storescu(
            "127.0.0.1", str(server.port), str(tmp_path / "in"), "--window", "4",
            "--associations", "2", "-aec", "TESTSCP",
        )  # fmt: skip
    assert code == 0, err
    assert out.startswith("sent 12 of 12 instances, 0 failed"), out
    assert sorted(stored) == sorted(g.sop_instance_uid for g in gens)
    assert most["per_association"] >= 2  # pipelined within one association
    assert len(in_flight) == 2  # over two associations


async def test_window_flag_is_checked(tmp_path: Path) -> None:
    gen = datagen.write_file(datagen.Spec(kind=datagen.Kind.CT, seed=1), tmp_path)
    code, _, err = await storescu("127.0.0.1", "1", str(gen.path), "--window", "0")
    assert code == 1
    assert "--window must be 1..65535" in err
