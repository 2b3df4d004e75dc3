"""``aiodimse`` / ``python -m aiodimse``: one console script, a subcommand per tool.

Only the chosen tool's module is imported (start-up time matters for scripts that call a
tool many times); ``aiodimse --help`` imports them all to list them.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

TOOLS = ("echoscu", "findscu", "storescu", "storescp", "demo", "qrscp", "getscu", "movescu")


def main(argv: Sequence[str] | None = None) -> int:
    args_in = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(
        prog="aiodimse",
        description="DICOM networking tools (C-ECHO, C-STORE, C-FIND) built on aiodimse.",
    )
    sub = parser.add_subparsers(dest="tool", metavar="TOOL", required=True)
    chosen = [args_in[0]] if args_in and args_in[0] in TOOLS else list(TOOLS)
    for name in chosen:
        importlib.import_module(f"{__package__}.{name}").add_parser(sub)
    args = parser.parse_args(args_in)
    result: int = args.run(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
