"""``aiodimse echoscu``: C-ECHO a peer (PS3.7 9.1.5), flags as pynetdicom's echoscu."""

from __future__ import annotations

import argparse
from typing import Any

from .. import AE, DicomError, Timeouts
from ._common import add_logging_flags, add_timeout_flags, fail, run_tool, setup_logging


def add_parser(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "echoscu",
        help="send C-ECHO to a DICOM peer",
        description="Send C-ECHO requests to a DICOM peer; exit 0 when every one succeeds.",
    )
    p.add_argument("addr", help="peer host name or IP address")
    p.add_argument("port", type=int, help="peer TCP port")
    p.add_argument("-aet", "--calling-aet", default="ECHOSCU", help="our AE title (ECHOSCU)")
    p.add_argument("-aec", "--called-aet", default="ANY-SCP", help="peer AE title (ANY-SCP)")
    p.add_argument("--repeat", type=int, default=1, metavar="N", help="C-ECHOs to send (1)")
    add_timeout_flags(p, dimse_default=10.0, dimse_help="C-ECHO response timeout in seconds")
    p.add_argument(
        "--max-pdu", type=int, default=None, metavar="N", help="our maximum PDU length in bytes"
    )
    add_logging_flags(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    setup_logging(args)
    if args.repeat < 1:
        return fail("--repeat must be at least 1")
    return run_tool(_main, args)


async def _main(args: argparse.Namespace) -> int:
    from ..config import Limits

    limits = Limits(max_pdu_length=args.max_pdu) if args.max_pdu else Limits()
    timeouts = Timeouts(
        connect=args.connection_timeout, acse=args.acse_timeout, echo=args.dimse_timeout
    )
    try:
        ae = AE(args.calling_aet, timeouts=timeouts, limits=limits)
        async with ae.associate(args.addr, args.port, called_ae=args.called_aet) as assoc:
            for _ in range(args.repeat):
                status = await assoc.echo()
                if not args.quiet:
                    print(
                        f"C-ECHO to {args.called_aet}@{args.addr}:{args.port}: "
                        f"0x{status.code:04X} {status.meaning}"
                    )
                if status.code != 0x0000:
                    return fail(f"C-ECHO failed: 0x{status.code:04X} {status.meaning}")
    except DicomError as exc:
        return fail(str(exc))
    return 0
