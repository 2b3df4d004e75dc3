"""``dataset_head.parse_head`` against pydicom as oracle, on generated datasets.

Random top-level elements (short and long VRs, sequences of undefined length, UN of
undefined length) around the wanted tags, encoded by pydicom in Implicit VR LE, Explicit VR
LE and Explicit VR BE: every wanted tag pydicom reads is found with its raw value, whole
prefixes are ``complete``, and any prefix gives a subset of the same values.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from pydicom.dataset import Dataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_dataset
from pydicom.sequence import Sequence

from aiodimse.services import dataset_head as dh

WANTED = [dh.SOP_CLASS_UID, dh.SOP_INSTANCE_UID, dh.PATIENT_ID, dh.STUDY_INSTANCE_UID]
ENCODINGS = [(True, True), (False, True), (False, False)]  # (implicit, little)
uids = st.from_regex(r"1\.2\.[1-9][0-9]{0,19}", fullmatch=True)


def encode(ds: Dataset, implicit: bool, little: bool) -> bytes:
    fp = DicomBytesIO()
    fp.is_implicit_VR = implicit
    fp.is_little_endian = little
    write_dataset(fp, ds)
    return fp.getvalue()


@st.composite
def datasets(draw: st.DrawFn) -> Dataset:
    ds = Dataset()
    if draw(st.booleans()):
        ds.SpecificCharacterSet = "ISO_IR 100"
    if draw(st.booleans()):
        ds.ImageType = ["ORIGINAL", "PRIMARY"]
    if draw(st.booleans()):
        item = Dataset()
        item.CodeValue = draw(st.text("ABC123", min_size=1, max_size=8))
        ds.add_new(0x00081032, "SQ", Sequence([item] * draw(st.integers(0, 3))))
    if draw(st.booleans()):
        ds.SOPClassUID = draw(uids)
    if draw(st.booleans()):
        ds.SOPInstanceUID = draw(uids)
    if draw(st.booleans()):
        ds.add_new(0x00090010, "LO", "PRIVATE")
        ds.add_new(0x00091001, "OB", bytes(draw(st.integers(0, 40))))
    if draw(st.booleans()):
        ds.PatientID = draw(st.text("ABCXYZ0123", max_size=16))
    if draw(st.booleans()):
        ds.StudyInstanceUID = draw(uids)
    if draw(st.booleans()):
        ds.add_new(0x7FE00010, "OB", bytes(draw(st.integers(0, 64)) * 2))
    return ds


@settings(max_examples=150, deadline=None)
@given(ds=datasets(), cut=st.integers(0, 400), encoding=st.sampled_from(ENCODINGS))
def test_parse_head_finds_what_pydicom_encoded(
    ds: Dataset, cut: int, encoding: tuple[bool, bool]
) -> None:
    implicit, little = encoding
    data = encode(ds, implicit, little)
    expected = {}
    for tag in WANTED:
        if tag in ds:
            single = Dataset()
            single.add(ds[tag])
            raw = encode(single, implicit, little)
            header = 8 if implicit or raw[4:6] not in (b"OB", b"UN", b"SQ") else 12
            expected[tag] = raw[header:]
    whole = dh.parse_head(data, implicit=implicit, little=little, wanted=WANTED, at_end=True)
    assert whole.complete
    assert whole.values == expected
    part = dh.parse_head(data[:cut], implicit=implicit, little=little, wanted=WANTED)
    assert part.values.items() <= expected.items()
    if part.complete:
        assert part.values == expected
