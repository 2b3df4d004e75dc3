"""``aiodimse storescp``: a DICOM SCP answering C-ECHO (storage arrives with C-STORE)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import anyio

from .. import AE
from ._common import add_logging_flags, setup_logging


def add_parser(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "storescp",
        help="run a Storage SCP (answers C-ECHO)",
        description="Listen for associations and answer C-ECHO until interrupted.",
    )
    p.add_argument("port", type=int, help="TCP port to listen on")
    p.add_argument("-aet", "--ae-title", default="STORESCP", help="our AE title (STORESCP)")
    p.add_argument("--bind", default="0.0.0.0", help="address to listen on (0.0.0.0)")
    p.add_argument(
        "-od",
        "--output-directory",
        type=Path,
        default=Path("."),
        help="where received files go (created when missing)",
    )
    p.add_argument(
        "--max-associations",
        type=int,
        default=1000,
        metavar="N",
        help="associations at once; more are rejected as transient (1000)",
    )
    p.add_argument(
        "--require-called-aet",
        action="store_true",
        help="reject associations whose called AE title is not ours",
    )
    p.add_argument(
        "--require-calling-aet",
        nargs="+",
        metavar="AET",
        default=None,
        help="accept associations only from these calling AE titles",
    )
    p.add_argument(
        "--no-tcp-quickack",
        action="store_true",
        help="do not re-arm TCP_QUICKACK after reads (Linux; for measurements)",
    )
    add_logging_flags(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    setup_logging(args)
    args.output_directory.mkdir(parents=True, exist_ok=True)
    try:
        anyio.run(_main, args)
    except KeyboardInterrupt:
        pass
    return 0


async def _main(args: argparse.Namespace) -> None:
    ae = AE(
        args.ae_title,
        max_associations=args.max_associations,
        require_called_aet=args.require_called_aet,
        require_calling_aets=args.require_calling_aet,
        tcp_quickack=not args.no_tcp_quickack,
    )
    async with ae.serve(args.bind, args.port) as server:
        if not args.quiet:
            print(f"{args.ae_title} listening on {server.host}:{server.port}", flush=True)
        await anyio.sleep_forever()
