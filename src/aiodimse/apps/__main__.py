"""``aiodimse`` / ``python -m aiodimse``: one console script, a subcommand per tool."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from . import demo, echoscu, findscu, storescp, storescu

TOOLS = {
    "echoscu": echoscu,
    "findscu": findscu,
    "storescp": storescp,
    "storescu": storescu,
    "demo": demo,
}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="aiodimse",
        description="DICOM networking tools (C-ECHO, storage SCP) built on aiodimse.",
    )
    sub = parser.add_subparsers(dest="tool", metavar="TOOL", required=True)
    for module in TOOLS.values():
        module.add_parser(sub)
    args = parser.parse_args(argv)
    result: int = args.run(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
