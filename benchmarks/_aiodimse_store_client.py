"""aiodimse C-STORE SCU for the benchmarks: one association, every file, timed inside.

Prints one JSON line: ``elapsed`` (seconds from connect to release, interpreter start-up and
imports excluded), ``cpu`` (this process's CPU seconds over the same span, every thread:
``time.process_time``; per instance it says how heavy the sending side is), ``stored``,
``failed``, ``bytes`` (dataset bytes sent), the negotiated
asynchronous operations ``window`` (invoked, performed; ``--window`` proposes one) and the
first failure in words. Exit status 0 when every file was stored. It runs on the standard
asyncio loop; ``AIODIMSE_UVLOOP=1`` in the environment runs it on uvloop when installed.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path


async def send(args: argparse.Namespace) -> int:
    import aiodimse
    from aiodimse.services.storage_contexts import propose_contexts
    from aiodimse.services.storage_scu import prepare_files

    prepared = await prepare_files(args.paths, recurse=True)
    limits = aiodimse.Limits(max_pdu_length=args.max_pdu) if args.max_pdu else aiodimse.Limits()
    from _window import ae_window_kwargs  # benchmarks/ is this script's directory

    ae = aiodimse.AE(args.aet, limits=limits, **ae_window_kwargs(aiodimse.AE, args.window))
    contexts = propose_contexts(prepared.files)
    t0 = time.perf_counter()
    c0 = time.process_time()
    async with ae.associate(args.host, args.port, called_ae=args.aec, contexts=contexts) as assoc:
        results = await assoc.store_many(prepared.files)
        negotiated = assoc.negotiated
    elapsed = time.perf_counter() - t0
    cpu = time.process_time() - c0
    failed = [r for r in results if not r.ok]
    report = {
        "elapsed": elapsed,
        "cpu": cpu,
        "stored": len(results) - len(failed),
        "failed": len(failed) + len(prepared.skipped),
        "bytes": sum(r.bytes_sent for r in results),
        "peer_max_pdu": assoc.peer_max_pdu,
        "window": [negotiated.max_operations_invoked, negotiated.max_operations_performed],
        "error": failed[0].describe() if failed else None,
    }
    print(json.dumps(report), flush=True)
    return 1 if report["failed"] else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("host")
    parser.add_argument("port", type=int)
    parser.add_argument("paths", nargs="+", type=Path, help="files or directories")
    parser.add_argument("-aet", "--aet", default="STORESCU")
    parser.add_argument("-aec", "--aec", default="ANY-SCP")
    parser.add_argument("--window", type=int, default=1, help="async operations window")
    parser.add_argument("--max-pdu", type=int, default=0, help="our maximum PDU (default)")
    args = parser.parse_args(argv)
    from aiodimse.net.loop import run

    # The standard asyncio loop unless AIODIMSE_UVLOOP=1 asks for uvloop (when installed).
    result: int = run(send, args)
    return result


if __name__ == "__main__":
    sys.exit(main())
