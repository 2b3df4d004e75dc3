"""aiodimse Verification SCP for the benchmarks, run as a subprocess so its RSS can be measured.

Prints ``PORT <n>`` on stdout once it listens on 127.0.0.1, serves until its stdin reaches
end of file (the harness closes it to stop the server), then exits.
"""

from __future__ import annotations

import argparse
import sys

import anyio


async def serve(host: str, port: int, max_associations: int, ae_title: str) -> None:
    import aiodimse

    try:  # connections awaiting their A-ASSOCIATE-RQ are bounded separately, if supported
        server = aiodimse.AE(
            ae_title, max_associations=max_associations, max_pending_connections=max_associations
        )
    except TypeError:
        server = aiodimse.AE(ae_title, max_associations=max_associations)
    async with server.serve(host, port) as listener:
        print(f"PORT {listener.port}", flush=True)
        # Blocks until the harness closes our stdin; the thread returns at end of file.
        await anyio.to_thread.run_sync(sys.stdin.read)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--max-associations", type=int, default=2000)
    parser.add_argument("--aet", default="ECHO_SCP")
    parser.add_argument("--uvloop", action="store_true", help="run on uvloop (aiodimse[speed])")
    args = parser.parse_args(argv)
    options = {"use_uvloop": True} if args.uvloop else {}
    anyio.run(serve, args.host, args.port, args.max_associations, args.aet, backend_options=options)
    return 0


if __name__ == "__main__":
    sys.exit(main())
