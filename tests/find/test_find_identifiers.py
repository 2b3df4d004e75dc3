"""Identifier building, charset choice, encoding round trip and findscu's -k parsing."""

from __future__ import annotations

import pytest
from pydicom.dataset import Dataset

from aiodimse.apps.findscu import format_match, parse_keys
from aiodimse.errors import LocalProtocolError
from aiodimse.services.qr_models import (
    QueryLevel,
    QueryModel,
    build_identifier,
    choose_charset,
    decode_identifier,
    encode_identifier,
)

IMPLICIT = "1.2.840.10008.1.2"
EXPLICIT = "1.2.840.10008.1.2.1"
BIG = "1.2.840.10008.1.2.2"


@pytest.mark.parametrize(
    ("name", "charset"),
    [
        ("Doe^John", None),
        ("Müller*", "ISO_IR 100"),
        ("Иванов*", "ISO_IR 192"),
        ("山田*", "ISO_IR 192"),
    ],
)
def test_charset_choice(name: str, charset: str | None) -> None:
    ds = build_identifier({"PatientName": name}, QueryModel.STUDY_ROOT, None)
    assert ds.get("SpecificCharacterSet") == charset
    assert choose_charset(ds) == charset


@pytest.mark.parametrize("ts", [IMPLICIT, EXPLICIT, BIG])
def test_round_trip_every_uncompressed_syntax(ts: str) -> None:
    q = {
        "PatientName": "Müller^Jürgen",
        "(0010,0020)": "",
        "StudyDate": "20240101-20241231",
        "ModalitiesInStudy": "CT\\MR",
        "NumberOfStudyRelatedInstances": None,
        "ReferencedStudySequence": [{"ReferencedSOPInstanceUID": ""}],
        0x00080061: "CT\\MR",
    }
    ds = build_identifier(q, QueryModel.STUDY_ROOT, QueryLevel.STUDY)
    back = decode_identifier(encode_identifier(ds, ts), ts)
    assert str(back.PatientName) == "Müller^Jürgen"
    assert back.PatientID == "" and back.QueryRetrieveLevel == "STUDY"
    assert list(back.ModalitiesInStudy) == ["CT", "MR"]
    assert back.ReferencedStudySequence[0].ReferencedSOPInstanceUID == ""
    assert back.SpecificCharacterSet == "ISO_IR 100"


def test_dataset_charset_is_kept_and_forced_charset_used() -> None:
    q = Dataset()
    q.SpecificCharacterSet = "ISO_IR 192"
    q.PatientName = "Müller*"
    assert build_identifier(q, QueryModel.STUDY_ROOT, None).SpecificCharacterSet == "ISO_IR 192"
    forced = build_identifier(
        {"PatientName": "Müller*"}, QueryModel.PATIENT_ROOT, None, charset="ISO_IR 192"
    )
    assert forced.SpecificCharacterSet == "ISO_IR 192"
    assert forced.QueryRetrieveLevel == "PATIENT"


def test_invalid_queries_raise_locally() -> None:
    with pytest.raises(LocalProtocolError):
        build_identifier({"NoSuchKeyword": ""}, QueryModel.STUDY_ROOT, None)
    with pytest.raises(LocalProtocolError):
        build_identifier({}, QueryModel.MODALITY_WORKLIST, QueryLevel.STUDY)
    with pytest.raises(LocalProtocolError):
        QueryLevel.parse("WARD")
    with pytest.raises(LocalProtocolError):
        QueryModel.parse("nope")
    assert QueryLevel.parse("instance") is QueryLevel.IMAGE
    assert QueryModel.parse("1.2.840.10008.5.1.4.31") is QueryModel.MODALITY_WORKLIST


def test_cli_key_parsing_and_output() -> None:
    q = parse_keys(
        [
            "PatientName=Müller*",
            "PatientID",
            "(0008,0020)=",
            "ReferencedStudySequence[0].ReferencedSOPInstanceUID",
        ]
    )
    assert q == {
        "PatientName": "Müller*",
        "PatientID": "",
        "(0008,0020)": "",
        "ReferencedStudySequence": [{"ReferencedSOPInstanceUID": ""}],
    }
    ds = build_identifier(q, QueryModel.STUDY_ROOT, None)
    line = format_match(ds)
    assert "PatientName=Müller*" in line and "ReferencedStudySequence=<[" in line
    with pytest.raises(ValueError):
        parse_keys(["Bad Key=1"])
