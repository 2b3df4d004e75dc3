"""pydicom and pynetdicom as independent oracles for arbitrary messages (hypothesis).

* pydicom reads our bytes (Implicit VR LE) and finds the same values;
* a pydicom Dataset of the same command, written by pydicom, is byte-identical to ours, and we
  decode it to the same message;
* pynetdicom's primitive -> message path, for the fields its tables carry, gives our bytes.
"""

from __future__ import annotations

import dataclasses
from io import BytesIO
from typing import Any

from hypothesis import HealthCheck, given, settings
from pydicom.dataset import Dataset
from pydicom.filebase import DicomBytesIO
from pydicom.filereader import read_dataset
from pydicom.filewriter import write_dataset
from pynetdicom import dimse_messages as pnd_messages
from pynetdicom import dimse_primitives as pnd_primitives

from aiodimse.dimse.command_codec import decode_command, encode_command
from aiodimse.dimse.messages import DimseMessage
from tests.dimse.strategies_messages import any_message
from tests.dimse.test_command_codec_vectors import KEYWORDS

ORACLE = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

_TAG_LISTS = ("offending_element", "attribute_identifier_list")


def _fields(msg: DimseMessage) -> dict[str, Any]:
    return {
        f.name: getattr(msg, f.name)
        for f in dataclasses.fields(msg)
        if getattr(msg, f.name) is not None
    }


def to_pydicom(msg: DimseMessage) -> Dataset:
    ds = Dataset()
    ds.CommandField = int(msg.command_field)
    for name, value in _fields(msg).items():
        setattr(ds, KEYWORDS[name], list(value) if name in _TAG_LISTS else value)
    ds.CommandGroupLength = 0
    ds.CommandGroupLength = len(_write(ds)) - 12
    return ds


def _write(ds: Dataset) -> bytes:
    fp = DicomBytesIO()
    fp.is_little_endian = True
    fp.is_implicit_VR = True
    write_dataset(fp, ds)
    return fp.getvalue()


def from_pydicom(raw: bytes) -> dict[str, Any]:
    ds = read_dataset(BytesIO(raw), is_implicit_VR=True, is_little_endian=True)
    out: dict[str, Any] = {}
    for name, keyword in KEYWORDS.items():
        if keyword not in ds:
            continue
        value = ds[keyword].value
        if name in _TAG_LISTS:
            value = (int(value),) if isinstance(value, int) else tuple(int(t) for t in value)
        out[name] = value
    out["command_field"] = ds.CommandField
    out["group_length"] = ds.CommandGroupLength
    return out


@ORACLE
@given(any_message())
def test_pydicom_reads_our_encoding(msg: DimseMessage) -> None:
    raw = encode_command(msg)
    seen = from_pydicom(raw)
    assert seen.pop("command_field") == msg.command_field
    assert seen.pop("group_length") == len(raw) - 12
    assert seen == _fields(msg)


@ORACLE
@given(any_message())
def test_pydicom_writes_our_bytes_and_we_read_them(msg: DimseMessage) -> None:
    written = _write(to_pydicom(msg))
    assert written == encode_command(msg)
    assert decode_command(written) == msg


# pynetdicom's primitives carry a fixed set of fields per message (dimse_messages tables) and
# set Command Data Set Type to 0x0001 or 0x0101 from whether a data set is attached.
_PRIMITIVE = {
    "C_ECHO": pnd_primitives.C_ECHO,
    "C_STORE": pnd_primitives.C_STORE,
    "C_FIND": pnd_primitives.C_FIND,
    "C_GET": pnd_primitives.C_GET,
    "C_MOVE": pnd_primitives.C_MOVE,
    "C_CANCEL": pnd_primitives.C_CANCEL,
    "N_EVENT_REPORT": pnd_primitives.N_EVENT_REPORT,
    "N_GET": pnd_primitives.N_GET,
    "N_SET": pnd_primitives.N_SET,
    "N_ACTION": pnd_primitives.N_ACTION,
    "N_CREATE": pnd_primitives.N_CREATE,
    "N_DELETE": pnd_primitives.N_DELETE,
}


def _pnd_name(msg: DimseMessage) -> str:
    return msg.command_field.name  # e.g. "C_STORE_RQ", as pynetdicom names its classes


def _project(msg: DimseMessage) -> DimseMessage:
    """``msg`` reduced to what pynetdicom's tables carry for that message type."""
    name = _pnd_name(msg)
    keywords = pnd_messages._COMMAND_SET_KEYWORDS[name.replace("_", "-")]
    changes: dict[str, Any] = {
        f: None
        for f in _fields(msg)
        if f != "command_data_set_type" and KEYWORDS[f] not in keywords
    }
    with_dataset = msg.has_dataset and name in pnd_messages._DATASET_KEYWORDS
    changes["command_data_set_type"] = 0x0001 if with_dataset else 0x0101
    return dataclasses.replace(msg, **changes)


@ORACLE
@given(any_message().map(_project))
def test_pynetdicom_primitive_path_gives_our_bytes(msg: DimseMessage) -> None:
    name = _pnd_name(msg)
    prim = _PRIMITIVE[name.rsplit("_", 1)[0]]()
    for field, value in _fields(msg).items():
        if field == "command_data_set_type":
            continue
        setattr(prim, KEYWORDS[field], list(value) if field in _TAG_LISTS else value)
    if msg.has_dataset:
        setattr(prim, pnd_messages._DATASET_KEYWORDS[name], BytesIO(b"\x08\x00\x05\x00\0\0\0\0"))
    pnd_msg = getattr(pnd_messages, name)()
    pnd_msg.primitive_to_message(prim)
    theirs = _write(pnd_msg.command_set)
    assert theirs == encode_command(msg)
    assert decode_command(theirs) == msg


def test_command_dictionary_matches_pydicom() -> None:
    """Our group-0000 tags (current and retired) are exactly pydicom's, VRs included."""
    from pydicom._dicom_dict import DicomDictionary

    from aiodimse.dimse.command_codec import COMMAND_TAGS, RETIRED_COMMAND_TAGS, command_vr

    group0 = {tag: entry for tag, entry in DicomDictionary.items() if tag >> 16 == 0}
    current = {tag for tag, entry in group0.items() if entry[3] != "Retired"}
    retired = {tag for tag, entry in group0.items() if entry[3] == "Retired"}
    assert set(COMMAND_TAGS) | {0x00000000} == current
    assert set(RETIRED_COMMAND_TAGS) == retired
    for tag in COMMAND_TAGS:
        assert command_vr(tag) == group0[tag][0]
        assert COMMAND_TAGS[tag] == "_".join(group0[tag][2].lower().replace("-", "_").split())
