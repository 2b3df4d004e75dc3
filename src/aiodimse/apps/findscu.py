"""``aiodimse findscu``: C-FIND a Query/Retrieve or Worklist SCP, flags as pynetdicom's findscu.

``-k KEY=VALUE`` sets a matching key; ``-k KEY`` or ``-k KEY=`` asks for KEY as an empty
return key. KEY is a keyword or ``(gggg,eeee)``; ``Seq[0].Key=value`` (or ``Seq.Key``) puts a
key in a sequence item (sequence matching, PS3.4 C.2.2.2.6). The level is
``-k QueryRetrieveLevel=...`` (default: the model's top level; ``INSTANCE`` means ``IMAGE``).
Each match is printed as it arrives: one line of ``Keyword=value`` pairs, or with ``--json``
one DICOM JSON object (PS3.18 F.2) per line. Exit status 0 when the final status is Success.
"""

from __future__ import annotations

import argparse
import io
import json
import re
import sys
from pathlib import Path
from typing import Any

import anyio
from pydicom import dcmread
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filewriter import dcmwrite
from pydicom.uid import UID, ExplicitVRLittleEndian, generate_uid

from .. import AE, DicomError, Limits, Timeouts
from ..services.contexts import VERIFICATION
from ..services.qr_models import QueryLevel, QueryModel, find_contexts
from ._common import add_logging_flags, add_query_flags, fail, run_tool, setup_logging

_PART = re.compile(r"^(?P<key>\([0-9A-Fa-f]{4},[0-9A-Fa-f]{4}\)|[A-Za-z0-9]+)(\[(?P<i>\d+)\])?$")


def add_parser(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "findscu",
        help="send a C-FIND query to a Query/Retrieve or Worklist SCP",
        description="C-FIND SCU (PS3.4 C.4.1, K.4). Prints each match as it arrives; "
        "exit 0 when the final status is Success.",
    )
    add_query_flags(
        p,
        aet="FINDSCU",
        what="C-FIND",
        dimse_default=120.0,
        worklist=True,
        key_metavar="KEY[=VALUE]",
        key_help="add a matching key (KEY=VALUE) or a return key (KEY); KEY is a keyword or "
        "(gggg,eeee); Seq[0].Key for a key in a sequence item",
        file_help="a DICOM file as the base query (-k adds)",
        charset_help="force Specific Character Set (default: automatic)",
    )
    p.add_argument("--json", action="store_true", help="print each match as DICOM JSON")
    p.add_argument("-w", "--write", action="store_true", help="write rspNNNNNN.dcm per match")
    p.add_argument("-od", "--output-directory", type=Path, default=Path("."), help="for -w")
    add_logging_flags(p)
    p.set_defaults(run=run)


def parse_keys(keys: list[str], base: Dataset | None = None) -> dict[str, Any]:
    """``-k`` arguments as the nested mapping :func:`build_identifier` takes."""
    query: dict[str, Any] = {}
    if base is not None:
        for elem in base:
            query[f"({elem.tag.group:04X},{elem.tag.element:04X})"] = elem.value
    for arg in keys:
        path, _, value = arg.partition("=")
        parts = path.strip().split(".")
        target = query
        for n, part in enumerate(parts):
            m = _PART.match(part)
            if m is None:
                raise ValueError(f"cannot parse -k {arg!r}")
            key = m.group("key")
            if n == len(parts) - 1:
                target[key] = value
                break
            index = int(m.group("i") or 0)
            items = target.setdefault(key, [])
            if not isinstance(items, list):
                items = target[key] = []
            while len(items) <= index:
                items.append({})
            target = items[index]
    return query


def format_match(ds: Dataset) -> str:
    """One line of ``Keyword=value`` pairs (text decoded with the match's character set)."""
    parts = []
    for elem in ds:
        name = elem.keyword or f"({elem.tag.group:04X},{elem.tag.element:04X})"
        if elem.VR == "SQ":
            items = " ".join(f"[{format_match(item)}]" for item in elem.value)
            parts.append(f"{name}=<{items}>")
        else:
            parts.append(f"{name}={'' if elem.value is None else elem.value}")
    return "  ".join(parts)


def run(args: argparse.Namespace) -> int:
    setup_logging(args)
    _set_output_encoding(json_lines=args.json)
    return run_tool(_main, args)


def _set_output_encoding(*, json_lines: bool) -> None:
    """Make every match printable, whatever the console's code page.

    ``--json`` output is UTF-8 (RFC 8259, which PS3.18 F.2 follows); plain text keeps the
    console's encoding but escapes what it cannot show, so a name such as ``Иванов`` on a
    cp1252 Windows console or pipe never ends the query half-way.
    """
    stream = sys.stdout
    if not isinstance(stream, io.TextIOWrapper):
        return
    if json_lines:
        if (stream.encoding or "").lower().replace("-", "") != "utf8":
            stream.reconfigure(encoding="utf-8")
    elif stream.errors == "strict":
        stream.reconfigure(errors="backslashreplace")


async def _main(args: argparse.Namespace) -> int:
    model = QueryModel.parse(args.model)
    try:
        base = dcmread(args.file, force=True) if args.file else None
        query = parse_keys(args.keyword, base)
    except (OSError, ValueError) as exc:
        return fail(str(exc))
    level: QueryLevel | None = None
    for key in ("QueryRetrieveLevel", "(0008,0052)"):
        if query.get(key):
            level = QueryLevel.parse(str(query.pop(key)))
    if level is None and model is not QueryModel.MODALITY_WORKLIST:
        level = model.default_level
    limits = Limits(max_pdu_length=args.max_pdu) if args.max_pdu else Limits()
    timeouts = Timeouts(
        connect=args.connection_timeout, acse=args.acse_timeout, find=args.dimse_timeout
    )
    if args.write:
        args.output_directory.mkdir(parents=True, exist_ok=True)
    try:
        ae = AE(args.calling_aet, timeouts=timeouts, limits=limits)
        contexts = [*find_contexts([model]), VERIFICATION]
        async with ae.associate(
            args.addr, args.port, called_ae=args.called_aet, contexts=contexts
        ) as assoc:
            async with assoc.find(query, model=model, level=level, charset=args.charset) as res:
                async for ds in res:
                    if args.json:
                        print(json.dumps(ds.to_json_dict(), ensure_ascii=False), flush=True)
                    elif not args.quiet:
                        print(f"#{res.count} {format_match(ds)}", flush=True)
                    if args.write:
                        path = args.output_directory / f"rsp{res.count:06d}.dcm"
                        await anyio.to_thread.run_sync(_write, path, ds, model.value)
            status = res.status
    except DicomError as exc:
        return fail(str(exc))
    except (OSError, ValueError) as exc:
        return fail(str(exc))
    if status is None or not status.is_success:
        what = f"0x{status.code:04X} {status.meaning}" if status else "no final status"
        return fail(f"C-FIND did not succeed: {what}")
    if not args.quiet and not args.json:
        print(f"C-FIND complete: {res.count} matches", file=sys.stderr)
    return 0


def _write(path: Path, ds: Dataset, sop_class_uid: str) -> None:
    """A PS3.10 file; the FIND SOP class stands in for the identifier's class, as dcmtk does."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = UID(sop_class_uid)
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta = meta
    dcmwrite(path, ds, enforce_file_format=True)
