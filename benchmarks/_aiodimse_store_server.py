"""aiodimse Storage SCP for the C-STORE benchmarks, run as a subprocess (its RSS is measured).

Prints ``PORT <n>`` on stdout once it listens on 127.0.0.1, stores what it receives in
``--output-directory`` (fsync before each success unless ``--no-fsync``; nothing with
``--ignore``), accepts an asynchronous operations window up to ``--window``, serves until its
stdin reaches end of file (the harness closes it), then prints ``STATS <json>`` and exits.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import anyio
import anyio.to_thread


async def serve(args: argparse.Namespace) -> None:
    from _window import NoWindowOption, Role, ae_window_kwargs  # benchmarks/ is our dir

    import aiodimse
    from aiodimse.services.storage_scp import StorageOptions, enable_storage

    raise_open_files_limit(4 * args.max_associations + 256)
    try:
        window = ae_window_kwargs(aiodimse.AE, args.window, Role.ACCEPTOR)
    except NoWindowOption as exc:  # serve anyway: requestors then get one at a time
        print(f"warning: {exc}", file=sys.stderr, flush=True)
        window = {}
    ae = aiodimse.AE(
        args.aet,
        max_associations=args.max_associations,
        max_pending_connections=args.max_associations,
        **window,
    )
    options = StorageOptions(
        output_directory=args.output_directory,
        durable=not args.no_fsync,
        ignore=args.ignore,
        write_size=args.write_size,
    )
    scp = enable_storage(ae, options)
    async with ae.serve(args.host, args.port) as listener:
        print(f"PORT {listener.port}", flush=True)
        await anyio.to_thread.run_sync(sys.stdin.read)  # until the harness closes stdin
    stats = scp.stats
    report = {"stored": stats.stored, "failed": stats.failed, "bytes": stats.bytes_received}
    if scp._batcher is not None:  # how well the write-fsync-rename trips were grouped
        report.update(trips=scp._batcher.trips, jobs=scp._batcher.jobs)
    print("STATS " + json.dumps(report), flush=True)
    print("STATS " + json.dumps(report), file=sys.stderr, flush=True)


def raise_open_files_limit(wanted: int) -> None:
    """Raise the soft RLIMIT_NOFILE towards ``wanted`` (POSIX; nothing to do on Windows)."""
    try:
        import resource
    except ImportError:
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--aet", default="STORE_SCP")
    parser.add_argument("--max-associations", type=int, default=10)
    parser.add_argument("-od", "--output-directory", type=Path, required=True)
    parser.add_argument("--no-fsync", action="store_true", help="do not fsync (not durable)")
    parser.add_argument("--ignore", action="store_true", help="receive and discard")
    parser.add_argument("--window", type=int, default=1, help="async operations window")
    parser.add_argument(
        "--write-size", type=int, default=1 << 20, help="StorageOptions.write_size (bytes)"
    )
    args = parser.parse_args(argv)
    anyio.run(serve, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
