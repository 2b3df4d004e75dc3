"""Flags and logging set-up shared by the tools (dcmtk/pynetdicom-style flags)."""

from __future__ import annotations

import argparse
import logging
import sys


def add_logging_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_mutually_exclusive_group()
    group.add_argument("-v", "--verbose", action="store_true", help="verbose: what happens")
    group.add_argument(
        "-d", "--debug", action="store_true", help="debug: every PDU and DIMSE message summary"
    )
    group.add_argument("-q", "--quiet", action="store_true", help="quiet: errors only")


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
