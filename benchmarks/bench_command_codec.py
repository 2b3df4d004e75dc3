"""Command-set codec throughput: aiodimse's dedicated group-0000 codec vs pydicom/pynetdicom.

For a C-STORE-RQ and a C-FIND-RSP (pending, with a data set) it times, in messages per second:

* encode, aiodimse: ``encode_command(message)``;
* encode, pydicom: build a pydicom ``Dataset`` with the same elements and write it Implicit VR
  Little Endian with ``pydicom.filewriter.write_dataset``; the Command Group Length needs the
  length of the rest, so the set is written twice, as pynetdicom's ``DIMSEMessage`` does;
* encode, pynetdicom: primitive -> ``primitive_to_message`` -> ``dsutils.encode``;
* decode, aiodimse: ``decode_command(raw)``;
* decode, pydicom: ``pydicom.filereader.read_dataset`` and reading every element's value
  (pydicom converts values lazily; a codec has to produce them);
* decode, pynetdicom: ``dsutils.decode`` + ``message_to_primitive``.

Each figure is the best of ``--repeat`` runs of ``--seconds`` each. Prints one line per case
and the aiodimse/pydicom ratio; ``--json`` prints the same as one JSON object.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from io import BytesIO
from typing import Any

from pydicom.dataset import Dataset
from pydicom.filebase import DicomBytesIO
from pydicom.filereader import read_dataset
from pydicom.filewriter import write_dataset

from aiodimse.dimse.command_codec import decode_command, encode_command
from aiodimse.dimse.messages import CFindRSP, CStoreRQ, DimseMessage

STORE_RQ = CStoreRQ(
    message_id=7,
    affected_sop_class_uid="1.2.840.10008.5.1.4.1.1.2",
    affected_sop_instance_uid="1.2.826.0.1.3680043.8.498.12345678901234567890123456789",
    priority=0,
    move_originator_application_entity_title="MOVESCU",
    move_originator_message_id=3,
)
FIND_RSP = CFindRSP(
    message_id_being_responded_to=2,
    affected_sop_class_uid="1.2.840.10008.5.1.4.1.2.2.1",
    status=0xFF00,
    command_data_set_type=0x0001,
)

_KEYWORDS = {
    "affected_sop_class_uid": "AffectedSOPClassUID",
    "message_id": "MessageID",
    "message_id_being_responded_to": "MessageIDBeingRespondedTo",
    "priority": "Priority",
    "command_data_set_type": "CommandDataSetType",
    "status": "Status",
    "affected_sop_instance_uid": "AffectedSOPInstanceUID",
    "move_originator_application_entity_title": "MoveOriginatorApplicationEntityTitle",
    "move_originator_message_id": "MoveOriginatorMessageID",
}


def _fields(message: DimseMessage) -> dict[str, Any]:
    return {k: getattr(message, k) for k in _KEYWORDS if getattr(message, k, None) is not None}


def _write(ds: Dataset) -> bytes:
    fp = DicomBytesIO()
    fp.is_little_endian = True
    fp.is_implicit_VR = True
    write_dataset(fp, ds)
    return fp.getvalue()


def pydicom_encoder(message: DimseMessage) -> Callable[[], bytes]:
    fields = _fields(message)
    command_field = int(message.command_field)

    def encode() -> bytes:
        ds = Dataset()
        ds.CommandField = command_field
        for name, value in fields.items():
            setattr(ds, _KEYWORDS[name], value)
        ds.CommandGroupLength = len(_write(ds))
        return _write(ds)

    return encode


def pydicom_decoder(raw: bytes) -> Callable[[], object]:
    def decode() -> object:
        ds = read_dataset(BytesIO(raw), is_implicit_VR=True, is_little_endian=True)
        return [elem.value for elem in ds]

    return decode


def pynetdicom_encoder(message: DimseMessage) -> Callable[[], bytes]:
    from pynetdicom import dimse_messages, dimse_primitives
    from pynetdicom.dsutils import encode as pnd_encode

    name = message.command_field.name
    primitive_cls = getattr(dimse_primitives, name.rsplit("_", 1)[0])
    message_cls = getattr(dimse_messages, name)
    fields = {_KEYWORDS[k]: v for k, v in _fields(message).items() if k != "command_data_set_type"}
    dataset_attr = dimse_messages._DATASET_KEYWORDS.get(name) if message.has_dataset else None
    payload = b"\x08\x00\x05\x00\x00\x00\x00\x00"

    def encode() -> bytes:
        primitive = primitive_cls()
        for keyword, value in fields.items():
            setattr(primitive, keyword, value)
        if dataset_attr:
            setattr(primitive, dataset_attr, BytesIO(payload))
        msg = message_cls()
        msg.primitive_to_message(primitive)
        encoded = pnd_encode(msg.command_set, True, True)
        assert encoded is not None
        return bytes(encoded)

    return encode


def pynetdicom_decoder(raw: bytes, message: DimseMessage) -> Callable[[], object]:
    from pynetdicom import dimse_messages
    from pynetdicom.dsutils import decode as pnd_decode

    message_cls = getattr(dimse_messages, message.command_field.name)

    def decode() -> object:
        msg = message_cls()
        msg.command_set = pnd_decode(BytesIO(raw), True, True)
        return msg.message_to_primitive()

    return decode


def rate(func: Callable[[], object], seconds: float, repeat: int) -> float:
    """Best messages/s over ``repeat`` runs of about ``seconds`` each."""
    best = 0.0
    for _ in range(repeat):
        count = 0
        batch = 64
        start = time.perf_counter()
        elapsed = 0.0
        while elapsed < seconds:
            for _ in range(batch):
                func()
            count += batch
            elapsed = time.perf_counter() - start
        best = max(best, count / elapsed)
    return best


def run(seconds: float, repeat: int, with_pynetdicom: bool) -> dict[str, dict[str, float]]:
    results: dict[str, dict[str, float]] = {}
    for label, message in (("C-STORE-RQ", STORE_RQ), ("C-FIND-RSP", FIND_RSP)):
        raw = encode_command(message)
        assert pydicom_encoder(message)() == raw, "pydicom encoding differs"
        assert decode_command(raw) == message
        cases: dict[str, Callable[[], object]] = {
            "encode aiodimse": lambda m=message: encode_command(m),  # type: ignore[misc]
            "encode pydicom": pydicom_encoder(message),
            "decode aiodimse": lambda r=raw: decode_command(r),  # type: ignore[misc]
            "decode pydicom": pydicom_decoder(raw),
        }
        if with_pynetdicom:
            assert pynetdicom_encoder(message)() == raw, "pynetdicom encoding differs"
            cases["encode pynetdicom"] = pynetdicom_encoder(message)
            cases["decode pynetdicom"] = pynetdicom_decoder(raw, message)
        results[label] = {name: rate(func, seconds, repeat) for name, func in cases.items()}
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=0.5, help="time per run (default 0.5)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per case, best kept")
    parser.add_argument("--no-pynetdicom", action="store_true", help="skip the pynetdicom rows")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    results = run(args.seconds, args.repeat, not args.no_pynetdicom)
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    for label, rows in results.items():
        print(label)
        for name, value in rows.items():
            print(f"  {name:<20} {value:>12,.0f} msg/s")
        for op in ("encode", "decode"):
            ratio = rows[f"{op} aiodimse"] / rows[f"{op} pydicom"]
            print(f"  {op} aiodimse/pydicom ratio: {ratio:.1f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
