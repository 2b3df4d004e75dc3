"""``aiodimse findscu`` against our own C-FIND SCP: keys, ``--json``, ``-w``/``-od``, exit codes.

The SCP (a :class:`~tests.find.backend.ListBackend` behind ``aiodimse.enable_find``) runs on
an event loop in a thread (anyio's blocking portal), so the CLI can run both in this process
(``aiodimse.apps.__main__.main``: fast, and what the SCP received can be inspected) and as a
real ``python -m aiodimse findscu`` subprocess (exit status, stdout and stderr as a shell
sees them).
"""

from __future__ import annotations

import json
import logging
import os
import re
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import anyio.from_thread
import pydicom
import pytest
from pydicom.dataset import Dataset

import aiodimse
from aiodimse import FindFailed, QueryLevel, QueryModel
from aiodimse.apps.__main__ import main
from tests.find.backend import ListBackend

UMLAUT = "Müller^Jürgen"
#: ``run(*args) -> (exit status, stdout, stderr)``.
Run = Callable[..., tuple[int, str, str]]


def _patient(name: str, pid: str, study: str, charset: str | None) -> Dataset:
    ds = Dataset()
    if charset:
        ds.SpecificCharacterSet = charset
    ds.PatientName = name
    ds.PatientID = pid
    ds.PatientBirthDate = "19700101"
    ds.StudyInstanceUID = study
    ds.StudyDate = "20240102"
    ds.StudyDescription = "Prüfung" if charset else "Exam"
    return ds


DATA = [
    _patient(UMLAUT, "P1", "1.2.3.1", "ISO_IR 100"),
    _patient(UMLAUT, "P2", "1.2.3.2", "ISO_IR 192"),
    _patient("Doe^John", "P3", "1.2.3.3", None),
    _patient("Иванов^Иван", "P4", "1.2.3.4", "ISO_IR 192"),
]


class Backend(ListBackend):
    """``ListBackend`` that refuses ``PatientID=FAIL`` with 0xA700 (out of resources)."""

    async def find(
        self, identifier: Dataset, model: QueryModel, level: QueryLevel | None
    ) -> AsyncIterator[Dataset]:
        if identifier.get("PatientID") == "FAIL":
            self.queries.append((identifier, model, level))
            raise FindFailed(0xA700, "no room for this one")
        async for ds in super().find(identifier, model, level):
            yield ds


@pytest.fixture(scope="module")
def scp() -> Iterator[tuple[int, Backend]]:
    """Our SCP (AE ``FIND_SCP``, every model) on a loop in a thread: ``(port, backend)``."""
    backend = Backend(DATA)
    ae = aiodimse.AE("FIND_SCP")
    aiodimse.enable_find(ae, backend)
    with anyio.from_thread.start_blocking_portal() as portal:
        with portal.wrap_async_context_manager(ae.serve("127.0.0.1", 0)) as server:
            yield server.port, backend


@pytest.fixture
def cli(
    scp: tuple[int, Backend], capsys: pytest.CaptureFixture[str]
) -> Iterator[tuple[Run, Backend]]:
    """``run(*args) -> (exit status, stdout, stderr)``: findscu in this process against
    the SCP. The tool configures the ``aiodimse`` logger; that is undone afterwards."""
    port, backend = scp
    logger = logging.getLogger("aiodimse")
    saved = (logger.handlers[:], logger.level, logger.propagate)

    def run(*args: str) -> tuple[int, str, str]:
        capsys.readouterr()
        code = main(["findscu", "127.0.0.1", str(port), "-aec", "FIND_SCP", *args])
        out = capsys.readouterr()
        return code, out.out, out.err

    try:
        yield run, backend
    finally:
        logger.handlers[:], logger.level, logger.propagate = saved


def _subprocess(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "aiodimse", "findscu", *args],
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=60,
        check=False,
    )


def _subprocess_cp1252(*args: str) -> subprocess.CompletedProcess[bytes]:
    """As a Windows console or pipe would have it: stdout in the cp1252 code page."""
    env = {**os.environ, "PYTHONIOENCODING": "cp1252"}
    cmd = [sys.executable, "-m", "aiodimse", "findscu", *args]
    return subprocess.run(cmd, capture_output=True, timeout=60, check=False, env=env)


def test_keys_keyword_tag_and_return_keys(cli: tuple[Run, Backend]) -> None:
    """``-k KEY=VALUE`` matches, ``-k KEY`` / ``-k KEY=`` ask for KEY empty; KEY a keyword or
    ``(gggg,eeee)``. The identifier the SCP received shows each form."""
    run, backend = cli
    code, out, err = run(
        "-k", "PatientName=Müller*", "-k", "PatientID", "-k", "(0008,0020)=",
        "-k", "(0010,0030)", "-k", "(0008,1030)=Prüf*",
    )  # fmt: skip
    assert code == 0, err
    identifier = backend.queries[-1][0]
    assert backend.queries[-1][1:] == (QueryModel.STUDY_ROOT, QueryLevel.STUDY)
    assert identifier.QueryRetrieveLevel == "STUDY"
    assert str(identifier.PatientName) == "Müller*"
    assert identifier.StudyDescription == "Prüf*"
    for keyword in ("PatientID", "StudyDate", "PatientBirthDate"):
        assert identifier[keyword].value in ("", None), keyword  # empty return keys
    assert identifier.SpecificCharacterSet == "ISO_IR 100"  # chosen for the umlauts
    lines = out.splitlines()
    assert [line.split()[0] for line in lines] == ["#1", "#2"]
    for line, pid in zip(lines, ("P1", "P2"), strict=True):
        assert f"PatientName={UMLAUT}" in line and f"PatientID={pid}" in line
        assert "StudyDate=20240102" in line and "PatientBirthDate=19700101" in line
    # A matching key given by tag.
    code, out, err = run("-k", "(0010,0020)=P3", "-k", "PatientName")
    assert code == 0, err
    assert out.count("\n") == 1 and "PatientName=Doe^John" in out
    assert "C-FIND complete: 1 matches" in err


def test_models_and_sequence_keys(cli: tuple[Run, Backend]) -> None:
    run, backend = cli
    code, out, err = run(
        "-P", "-k", "QueryRetrieveLevel=PATIENT", "-k", "PatientID=P4", "-k", "PatientName"
    )
    assert code == 0, err
    assert backend.queries[-1][1:] == (QueryModel.PATIENT_ROOT, QueryLevel.PATIENT)
    assert "PatientName=Иванов^Иван" in out
    code, out, err = run(
        "-W", "-k", "PatientName=Doe*", "-k", "ScheduledProcedureStepSequence[0].Modality=CT"
    )
    assert code == 0, err
    identifier, model, level = backend.queries[-1]
    assert (model, level) == (QueryModel.MODALITY_WORKLIST, None)
    assert "QueryRetrieveLevel" not in identifier  # PS3.4 K.6: no level in a worklist query
    assert identifier.ScheduledProcedureStepSequence[0].Modality == "CT"


def test_json_lines_are_dicom_json(cli: tuple[Run, Backend]) -> None:
    """``--json``: one DICOM JSON object per line (PS3.18 F.2), nothing else on stdout."""
    run, _ = cli
    code, out, err = run(
        "--json",
        "-k",
        "PatientName",
        "-k",
        "PatientID",
        "-k",
        "StudyDate",
        "-k",
        "IssuerOfPatientID",
    )
    assert code == 0, err
    lines = out.splitlines()
    assert len(lines) == len(DATA)
    objects = [json.loads(line) for line in lines]
    for obj in objects:
        # PS3.18 F.2.2: keys are the 8 upper-case hex digits of the tag, in ascending
        # order, each with its "vr" and at most one "Value" (none when empty).
        assert list(obj) == sorted(obj) and all(re.fullmatch("[0-9A-F]{8}", k) for k in obj)
        assert all("vr" in v for v in obj.values())
        assert obj["00100021"] == {"vr": "LO"}
        assert obj["00080052"] == {"vr": "CS", "Value": ["STUDY"]}
        assert set(obj["00100010"]["Value"][0]) == {"Alphabetic"}  # F.2.2: PN as components
    parsed = [Dataset.from_json(line) for line in lines]
    assert [(str(d.PatientName), d.PatientID) for d in parsed] == [
        (str(d.PatientName), d.PatientID) for d in DATA
    ]
    assert {d.StudyDate for d in parsed} == {"20240102"}


def test_write_responses_into_new_directory(cli: tuple[Run, Backend], tmp_path: Path) -> None:
    """``-w`` writes ``rspNNNNNN.dcm`` into ``-od``, created when missing; pydicom reads them."""
    run, _ = cli
    out_dir = tmp_path / "not" / "there"
    code, _, err = run("-w", "-od", str(out_dir), "-q", "-k", "PatientName", "-k", "PatientID")
    assert code == 0, err
    files = sorted(out_dir.iterdir())
    assert [p.name for p in files] == [f"rsp{i:06d}.dcm" for i in range(1, len(DATA) + 1)]
    read = [pydicom.dcmread(p) for p in files]  # PS3.10 files: preamble, DICM, meta
    assert [(str(d.PatientName), d.PatientID) for d in read] == [
        (str(d.PatientName), d.PatientID) for d in DATA
    ]
    assert {d.file_meta.MediaStorageSOPClassUID for d in read} == {QueryModel.STUDY_ROOT.value}
    assert read[0].SpecificCharacterSet == "ISO_IR 100"
    assert read[1].SpecificCharacterSet == "ISO_IR 192"


def test_failure_status_exit_code(cli: tuple[Run, Backend]) -> None:
    """A failure final status: exit 1 and one line with the status and Error Comment."""
    run, _ = cli
    code, out, err = run("-k", "PatientID=FAIL")
    assert code == 1 and out == ""
    # PS3.4 C.4.1.1.4 meaning, then the SCP's Error Comment (0000,0902).
    assert err == "E: C-FIND failed: 0xA700 Refused: out of resources: no room for this one\n"
    code, _, err = run("-k", "(zzzz,0010)=x")
    assert code == 1 and err.startswith("E: cannot parse -k") and err.count("\n") == 1


def test_subprocess_success_and_json(scp: tuple[int, Backend], tmp_path: Path) -> None:
    port, _ = scp
    res = _subprocess(
        "127.0.0.1", str(port), "-aec", "FIND_SCP", "--json", "-w", "-od", str(tmp_path / "o"),
        "-k", "PatientName=Müller*", "-k", "PatientID",
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    parsed = [Dataset.from_json(line) for line in res.stdout.splitlines()]
    assert [d.PatientID for d in parsed] == ["P1", "P2"]
    assert {str(d.PatientName) for d in parsed} == {UMLAUT}
    assert len(list((tmp_path / "o").glob("rsp*.dcm"))) == 2


def test_subprocess_refused_connection_exit_code() -> None:
    """Nothing listens: exit status 1, one line on stderr, nothing on stdout."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, not listening: connections are refused
        res = _subprocess("127.0.0.1", str(port), "-to", "5", "-k", "PatientID")
    assert res.returncode == 1
    assert res.stdout == ""
    lines = res.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("E: "), res.stderr
    assert str(port) in lines[0]


def test_subprocess_non_latin_names_on_a_cp1252_console(scp: tuple[int, Backend]) -> None:
    """``Иванов`` cannot be shown in cp1252: ``--json`` is still UTF-8 (RFC 8259), plain text
    escapes it; neither ends the query half-way."""
    port, _ = scp
    args = ("127.0.0.1", str(port), "-aec", "FIND_SCP", "-k", "PatientName", "-k", "PatientID")
    res = _subprocess_cp1252(*args, "--json")
    assert res.returncode == 0, res.stderr
    parsed = [Dataset.from_json(line) for line in res.stdout.decode("utf-8").splitlines()]
    assert [str(d.PatientName) for d in parsed] == [str(d.PatientName) for d in DATA]
    res = _subprocess_cp1252(*args)
    assert res.returncode == 0, res.stderr
    text = res.stdout.decode("cp1252")
    assert text.count("\n") == len(DATA)
    assert f"PatientName={UMLAUT}" in text  # shown where the code page can
    assert "PatientName=\\u0418\\u0432\\u0430\\u043d\\u043e\\u0432^" in text
