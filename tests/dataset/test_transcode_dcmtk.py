"""dcmtk as an independent reader of what the transcoder writes.

Each transcoded data set is wrapped in a PS3.10 file (preamble, ``DICM``, group 0002 naming
the target syntax) and converted by dcmtk's ``dcmconv +te`` to Explicit VR Little Endian;
dcmtk must accept it, and the data set it writes must equal the source data set (compared
after decoding with pydicom, :func:`tests.dataset.dicom_compare.canonical`).
"""

from __future__ import annotations

import io
import subprocess
from itertools import permutations
from pathlib import Path

import pytest
from pydicom.dataset import FileMetaDataset
from pydicom.filewriter import write_file_meta_info
from pydicom.uid import (
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
)

from aiodimse.dataset import transcode_bytes
from tests.dataset.dicom_compare import canonical, decode
from tests.support.datagen import Kind, Spec, dataset_bytes
from tests.support.peers import require_peer

pytestmark = pytest.mark.interop

SYNTAXES = (
    ImplicitVRLittleEndian,
    ExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    DeflatedExplicitVRLittleEndian,
)


def _as_file(data: bytes, ts: str) -> bytes:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    meta.MediaStorageSOPInstanceUID = "1.2.3.4"
    meta.TransferSyntaxUID = ts
    meta.ImplementationClassUID = "1.2.3.4.5"
    fp = io.BytesIO()
    fp.write(b"\x00" * 128 + b"DICM")
    write_file_meta_info(fp, meta)
    return fp.getvalue() + data


def _dataset_of(path: Path) -> bytes:
    data = path.read_bytes()
    # PS3.10 7.1: (0002,0000) UL explicit VR LE at offset 132; its value is group 2's length.
    return data[144 + int.from_bytes(data[140:144], "little") :]


@pytest.mark.parametrize("undefined", [True, False], ids=["undefined-lengths", "defined"])
@pytest.mark.parametrize(("a", "b"), list(permutations(SYNTAXES, 2)), ids=lambda u: u.name)
def test_dcmtk_reads_our_output(tmp_path: Path, a: str, b: str, undefined: bool) -> None:
    dcmconv = require_peer("dcmtk", "dcmconv")
    src = dataset_bytes(Spec(kind=Kind.CT, transfer_syntax=a, undefined_length_sequences=undefined))
    infile, outfile = tmp_path / "in.dcm", tmp_path / "out.dcm"
    infile.write_bytes(_as_file(transcode_bytes(src, a, b), b))
    proc = subprocess.run(
        [dcmconv, "+te", str(infile), str(outfile)], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    assert "E:" not in proc.stderr, proc.stderr
    got = decode(_dataset_of(outfile), ExplicitVRLittleEndian)
    assert canonical(got, ExplicitVRLittleEndian) == canonical(decode(src, a), a)
