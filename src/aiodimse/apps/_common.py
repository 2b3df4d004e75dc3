"""Flags and logging set-up shared by the tools (dcmtk/pynetdicom-style flags)."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

from ..net.loop import run

T = TypeVar("T")


def add_logging_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_mutually_exclusive_group()
    group.add_argument("-v", "--verbose", action="store_true", help="verbose: what happens")
    group.add_argument(
        "-d", "--debug", action="store_true", help="debug: every PDU and DIMSE message summary"
    )
    group.add_argument("-q", "--quiet", action="store_true", help="quiet: errors only")
    parser.add_argument(
        "--uvloop",
        action="store_true",
        help="run on uvloop when installed (pip install aiodimse[speed]); also AIODIMSE_UVLOOP=1",
    )


def run_tool(func: Callable[..., Awaitable[T]], args: argparse.Namespace, *rest: Any) -> T:
    """Run a tool's main coroutine; uvloop with ``--uvloop`` (or ``AIODIMSE_UVLOOP=1``)."""
    return run(func, args, *rest, uvloop=True if getattr(args, "uvloop", False) else None)


def setup_logging(args: argparse.Namespace) -> None:
    level = logging.WARNING
    if getattr(args, "verbose", False):
        level = logging.INFO
    if getattr(args, "debug", False):
        level = logging.DEBUG
    if getattr(args, "quiet", False):
        level = logging.ERROR
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname).1s: %(message)s"))
    root = logging.getLogger("aiodimse")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False


def fail(message: str) -> int:
    """One-line reason on stderr, exit status 1."""
    print(f"E: {message}", file=sys.stderr)
    return 1


def add_timeout_flags(
    parser: argparse.ArgumentParser, *, dimse_default: float, dimse_help: str
) -> None:
    """``-to``/``-ta``/``-td`` as in pynetdicom's and dcmtk's tools (seconds)."""
    parser.add_argument(
        "-to",
        "--connection-timeout",
        type=float,
        default=30.0,
        metavar="S",
        help="TCP connect timeout in seconds (30)",
    )
    parser.add_argument(
        "-ta",
        "--acse-timeout",
        type=float,
        default=30.0,
        metavar="S",
        help="association establishment/release timeout in seconds (30)",
    )
    parser.add_argument(
        "-td",
        "--dimse-timeout",
        type=float,
        default=dimse_default,
        metavar="S",
        help=f"{dimse_help} ({dimse_default:g})",
    )


def add_query_flags(
    parser: argparse.ArgumentParser,
    *,
    aet: str,
    what: str,
    dimse_default: float,
    worklist: bool,
    key_metavar: str,
    key_help: str,
    file_help: str,
    charset_help: str,
) -> None:
    """Peer, timeouts, information model (``-P``/``-S``[/``-W``]), ``-k``, ``-f`` and
    ``--charset``: the flags ``findscu``, ``getscu`` and ``movescu`` share (as pynetdicom's)."""
    parser.add_argument("addr", help="peer host name or IP address")
    parser.add_argument("port", type=int, help="peer TCP port")
    parser.add_argument("-aet", "--calling-aet", default=aet, help=f"our AE title ({aet})")
    parser.add_argument("-aec", "--called-aet", default="ANY-SCP", help="peer AE title (ANY-SCP)")
    add_timeout_flags(
        parser,
        dimse_default=dimse_default,
        dimse_help=f"longest wait in seconds between {what} responses",
    )
    parser.add_argument(
        "-pdu", "--max-pdu", type=int, default=None, metavar="N", help="our max PDU"
    )
    model = parser.add_mutually_exclusive_group()
    model.add_argument(
        "-P", "--patient", dest="model", action="store_const", const="patient",
        help="use the Patient Root information model",
    )  # fmt: skip
    model.add_argument(
        "-S", "--study", dest="model", action="store_const", const="study",
        help="use the Study Root information model (default)",
    )  # fmt: skip
    if worklist:
        model.add_argument(
            "-W", "--worklist", dest="model", action="store_const", const="worklist",
            help="use the Modality Worklist information model",
        )  # fmt: skip
    parser.add_argument(
        "-k", "--keyword", action="append", default=[], metavar=key_metavar, help=key_help
    )
    parser.add_argument("-f", "--file", type=Path, help=file_help)
    parser.add_argument("--charset", default=None, help=charset_help)
    parser.set_defaults(model="study")
