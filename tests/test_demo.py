"""``python -m aiodimse demo`` (``make demo``) end to end, in a subprocess as a user runs it."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from aiodimse.apps.demo import PATIENT, dataset_offset

ENV = {**os.environ, "PYTHONIOENCODING": "utf-8"}


def _run(*code_or_args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *code_or_args],
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=timeout,
        env=ENV,
        check=False,
    )


def _work_dir(stdout: str) -> Path:
    found = re.search(r"\((.+)[/\\]outgoing\)", stdout)
    assert found, stdout
    return Path(found.group(1))


def test_demo_stores_every_instance_intact() -> None:
    result = _run("-m", "aiodimse", "demo", "--count", "10")
    out = result.stdout
    assert result.returncode == 0, out + result.stderr
    assert "C-ECHO: 0x0000 Success" in out
    assert "sent 10 of 10 instances" in out
    assert "10/10 instances stored, 10/10 with identical dataset bytes" in out
    assert f"10/10 patient names intact ({PATIENT} in ISO_IR 100 and ISO_IR 192)" in out
    assert "JPEG Baseline" in out  # Pillow and numpy are installed with the test extras
    assert re.search(r"\d+\.\d MB/s, \d+\.\d instances/s", out), out
    assert out.count("0x0000 Success") == 11  # the echo and each instance
    assert out.rstrip().endswith("demo OK")
    assert not _work_dir(out).exists(), "the demo removes what it created"


def test_demo_without_pillow_sends_uncompressed_and_says_so() -> None:
    code = (
        "import sys; sys.modules['PIL'] = None; "  # makes `import PIL.Image` fail
        "from aiodimse.apps.__main__ import main; sys.exit(main(['demo', '--count', '3']))"
    )
    result = _run("-c", code)
    out = result.stdout
    assert result.returncode == 0, out + result.stderr
    assert "Pillow not installed: uncompressed instances only" in out
    assert "-SC-" not in out and "-US-" not in out  # no JPEG instance generated
    assert "3/3 instances stored, 3/3 with identical dataset bytes" in out


def test_dataset_offset_reads_the_group_length() -> None:
    meta_body = b"\x02\x00\x01\x00OB\x00\x00\x02\x00\x00\x00\x00\x01"  # (0002,0001) 00\01
    head = (
        b"\x00" * 128
        + b"DICM"
        + b"\x02\x00\x00\x00UL\x04\x00"
        + len(meta_body).to_bytes(4, "little")
    )
    assert dataset_offset(head + meta_body + b"DATA") == len(head) + len(meta_body)
    with pytest.raises(ValueError):
        dataset_offset(b"\x00" * 200)


def test_generated_instances_are_realistic(tmp_path: Path) -> None:
    """Sizes 50 KB-1 MB, real JPEG Baseline codestreams that decode, names in both charsets."""
    import pydicom

    from aiodimse.apps.demo import generate

    instances, jpeg_off = generate(tmp_path, 5, seed=3)
    assert jpeg_off is None
    assert all(50_000 <= i.size <= 1_000_000 for i in instances), [i.size for i in instances]
    jpeg = [i for i in instances if i.kind.transfer_syntax == "1.2.840.10008.1.2.4.50"]
    assert len(jpeg) == 2
    for inst in jpeg:
        ds = pydicom.dcmread(inst.path)
        assert ds.pixel_array.shape[:2] == (inst.kind.rows, inst.kind.columns)  # Pillow decodes
    raw = {i.charset: i.path.read_bytes() for i in instances}
    assert "Müller^Jürgen".encode("latin-1") in raw["ISO_IR 100"]
    assert "Müller^Jürgen".encode() in raw["ISO_IR 192"]
