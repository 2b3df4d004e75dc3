"""pynetdicom Verification SCP for the benchmarks (subprocess, so its RSS can be measured).

Prints ``PORT <n>`` on stdout once it listens on 127.0.0.1, serves until its stdin reaches
end of file, then shuts the server down. pynetdicom accepts 10 associations at a time by
default; ``--max-associations`` raises that (``AE.maximum_associations``).
"""

from __future__ import annotations

import argparse
import logging
import sys

from pynetdicom import AE
from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--max-associations", type=int, default=10)
    parser.add_argument("--aet", default="PYNETDICOM_SCP")
    args = parser.parse_args(argv)
    logging.getLogger("pynetdicom").setLevel(logging.CRITICAL)

    ae = AE(ae_title=args.aet)
    ae.add_supported_context(Verification)
    ae.maximum_associations = args.max_associations
    server = ae.start_server((args.host, args.port), block=False)
    assert server is not None, "non-blocking start_server returns the server"
    try:
        print(f"PORT {server.server_address[1]}", flush=True)
        sys.stdin.read()  # until the harness closes our stdin
    finally:
        server.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
