"""``aiodimse getscu``: C-GET SCU (PS3.4 C.4.3), instances written into ``-od``.

Flags as pynetdicom's ``getscu``: ``-P``/``-S`` information model, ``-k KEY=VALUE`` keys
(as ``findscu``; ``-k QueryRetrieveLevel=SERIES`` sets the level), ``-od`` the output
directory (created when missing; file names from the Storage SCP's policy). Exit 0 when the
final status is Success, else one line saying why.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from pydicom import dcmread

from ..config import Limits, Timeouts
from ..errors import DicomError
from ..services.ae import AE
from ..services.qr_models import QueryLevel, QueryModel
from ..services.retrieve_scu import RetrieveOperation, get_contexts
from ..services.storage_scp import StorageOptions
from ._common import add_logging_flags, add_query_flags, fail, run_tool, setup_logging
from .findscu import parse_keys


def add_common_flags(p: argparse.ArgumentParser, *, aet: str, what: str) -> None:
    """Flags shared by ``getscu`` and ``movescu``."""
    add_query_flags(
        p,
        aet=aet,
        what=what,
        dimse_default=300.0,
        worklist=False,
        key_metavar="KEY=VALUE",
        key_help="a unique key to retrieve (KEY is a keyword or (gggg,eeee)); "
        "-k QueryRetrieveLevel=SERIES sets the level",
        file_help="a DICOM file as the base identifier",
        charset_help="force Specific Character Set",
    )
    add_logging_flags(p)


def add_parser(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "getscu",
        help="retrieve instances with C-GET over the same association",
        description="C-GET SCU (PS3.4 C.4.3). Writes what arrives into -od; exit 0 when "
        "the final status is Success.",
    )
    add_common_flags(p, aet="GETSCU", what="C-GET")
    p.add_argument(
        "-od", "--output-directory", type=Path, default=Path("."), help="where files go (.)"
    )
    p.set_defaults(run=run)


def query_and_level(args: argparse.Namespace) -> tuple[dict[str, Any], QueryLevel | None]:
    """The identifier keys and the level from ``-f``/``-k`` (raises OSError/ValueError)."""
    base = dcmread(args.file, force=True) if args.file else None
    query = parse_keys(args.keyword, base)
    level: QueryLevel | None = None
    for key in ("QueryRetrieveLevel", "(0008,0052)"):
        if query.get(key):
            level = QueryLevel.parse(str(query.pop(key)))
    return query, level


def outcome(op: RetrieveOperation, args: argparse.Namespace, service: str) -> int:
    """Exit status and summary line of a finished C-GET/C-MOVE."""
    status, counts = op.status, op.counts
    summary = (
        f"{service}: completed {counts.completed}, failed {counts.failed}, warning {counts.warning}"
    )
    if op.failed_sop_instance_uids:
        summary += f"; failed SOP instances: {', '.join(op.failed_sop_instance_uids)}"
    if status is None or not status.is_success:
        what = f"0x{status.code:04X} {status.meaning}" if status else "no final status"
        return fail(f"{service} did not succeed: {what} ({summary})")
    if not args.quiet:
        print(summary, file=sys.stderr)
    return 0


def run(args: argparse.Namespace) -> int:
    setup_logging(args)
    return run_tool(_main, args)


async def _main(args: argparse.Namespace) -> int:
    model = QueryModel.parse(args.model)
    try:
        query, level = query_and_level(args)
    except (OSError, ValueError) as exc:
        return fail(str(exc))
    limits = Limits(max_pdu_length=args.max_pdu) if args.max_pdu else Limits()
    timeouts = Timeouts(
        connect=args.connection_timeout, acse=args.acse_timeout, get=args.dimse_timeout
    )
    try:
        ae = AE(args.calling_aet, timeouts=timeouts, limits=limits)
        async with ae.associate(
            args.addr, args.port, called_ae=args.called_aet, contexts=get_contexts([model])
        ) as assoc:
            async with assoc.get(
                query,
                model=model,
                level=level,
                directory=args.output_directory,
                storage_options=StorageOptions(durable=True),
                charset=args.charset,
            ) as op:
                async for instance in op:
                    if not args.quiet:
                        print(instance.path, flush=True)
    except DicomError as exc:
        return fail(str(exc))
    except (OSError, ValueError) as exc:
        return fail(str(exc))
    return outcome(op, args, "C-GET")
