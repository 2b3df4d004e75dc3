"""The benchmark's floor server answers the raw probe like a Verification SCP would."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

from benchmarks import _rawecho

SERVER = Path(__file__).resolve().parents[2] / "benchmarks" / "_raw_echo_server.py"


def test_probe_gets_accept_success_and_release_from_the_raw_server() -> None:
    with subprocess.Popen(
        [sys.executable, str(SERVER)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    ) as proc:
        assert proc.stdout is not None and proc.stdin is not None
        try:
            port = int(proc.stdout.readline().split()[1])
            for _ in range(3):  # several associations, each one echo (Message ID 1)
                ok = asyncio.run(_rawecho.echo_association(port, echoes=1, called="RAW_SCP"))
                assert ok == 1
        finally:
            proc.stdin.close()
            assert proc.wait(timeout=10) == 0


def test_raw_server_pdus_are_well_formed_for_pynetdicom() -> None:
    """pynetdicom's PDU classes (an independent decoder) read the canned answers."""
    from benchmarks._raw_echo_server import associate_ac, echo_rsp
    from pynetdicom.pdu import A_ASSOCIATE_AC, P_DATA_TF

    ac = A_ASSOCIATE_AC()
    ac.decode(associate_ac("RAW_SCP", "BENCH"))
    assert ac.called_ae_title == "RAW_SCP"
    assert [(c.context_id, c.result) for c in ac.presentation_context] == [(1, 0)]
    data = P_DATA_TF()
    data.decode(echo_rsp())
    (pdv,) = data.presentation_data_value_items
    assert pdv.presentation_context_id == 1


def test_raw_server_answers_the_request_s_message_id() -> None:
    from benchmarks._raw_echo_server import _message_id, _rsp_for, echo_rsp

    assert _message_id(_rawecho.echo_rq(7)) == 7
    assert _message_id(_rawecho.echo_rq(65535)) == 65535
    assert _rsp_for(7) == echo_rsp(7) != echo_rsp(1)
    assert _rawecho._status(echo_rsp(7)[12:]) == 0  # the command set after the PDV header
