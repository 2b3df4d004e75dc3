"""``aiodimse storescp``: a Storage SCP (PS3.4 Annex B) plus Verification, until interrupted.

Flags follow pynetdicom's storescp (which follows dcmtk's). Received instances are stored
under ``-od`` as ``<SOPInstanceUID>.dcm`` (``--layout tree``: Patient/Study/Series
directories), fsynced before the success status unless ``--no-fsync``. SIGINT or SIGTERM
stops accepting, lets running associations finish (bounded) and exits 0.

``--workers N`` runs N processes on the one port (one event loop, so one core, each; see
:mod:`aiodimse.net.workers`): SO_REUSEPORT on Linux, one shared listening socket elsewhere.
``--max-ops N`` is the Asynchronous Operations Window granted to requestors that propose
one (PS3.7 D.3.3.3): how many of their C-STOREs one association may have in progress.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import socket
import sys
from pathlib import Path
from typing import Any

import anyio

from .. import AE
from ..config import Limits
from ..net import workers
from ..services.filepolicy import Layout
from ..services.storage_scp import StorageOptions, StorageSCP
from ._common import add_logging_flags, fail, run_tool, setup_logging

log = logging.getLogger("aiodimse.apps.storescp")


def add_parser(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "storescp",
        help="run a Storage SCP (C-STORE and C-ECHO)",
        description="Receive DICOM instances over C-STORE and answer C-ECHO until interrupted.",
    )
    p.add_argument("port", type=int, help="TCP port to listen on")
    p.add_argument("-aet", "--ae-title", default="STORESCP", help="our AE title (STORESCP)")
    p.add_argument("--bind", default="0.0.0.0", help="address to listen on (0.0.0.0)")
    p.add_argument(
        "-od",
        "--output-directory",
        type=Path,
        default=Path("."),
        help="where received files go (created when missing; default: current directory)",
    )
    p.add_argument(
        "--layout",
        choices=[m.value for m in Layout],
        default=Layout.FLAT.value,
        help="flat: <SOPInstanceUID>.dcm; tree: <PatientID>/<Study>/<Series>/<SOP>.dcm",
    )
    p.add_argument(
        "--max-pdu",
        type=int,
        default=None,
        metavar="N",
        help="maximum P-DATA-TF PDU length we receive (our default when omitted)",
    )
    p.add_argument(
        "--max-associations",
        type=int,
        default=1000,
        metavar="N",
        help="associations at once; more are rejected as transient (1000)",
    )
    p.add_argument("--ignore", action="store_true", help="receive data but store nothing")
    p.add_argument(
        "--no-fsync",
        action="store_true",
        help="do not fsync before answering (faster; a crash may lose acknowledged images)",
    )
    p.add_argument(
        "--min-free-space",
        type=int,
        default=64 << 20,
        metavar="BYTES",
        help="refuse instances (0xA700) when less disk space is free (64 MiB)",
    )
    p.add_argument(
        "--accept-sop-class",
        nargs="+",
        metavar="UID",
        default=[],
        help="also accept these (private or newer) storage SOP classes",
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
        "--workers",
        type=int,
        default=1,
        metavar="N",
        help="worker processes serving the port, one core each (1)",
    )
    p.add_argument(
        "--share-port",
        choices=["auto", *(m.value for m in workers.SharingMode)],
        default="auto",
        help="with --workers: one SO_REUSEPORT socket per worker (Linux default) or one "
        "socket shared by all (elsewhere)",
    )
    p.add_argument(
        "--max-ops",
        type=int,
        default=None,
        metavar="N",
        help="C-STOREs one association may have in progress when the requestor proposes an "
        "asynchronous operations window (16)",
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
    try:
        ae, storage = build(args)
    except (OSError, ValueError) as exc:
        return fail(str(exc))
    if args.workers < 1:
        return fail("--workers must be at least 1")
    if args.workers > 1:
        return _run_workers(args)
    try:
        run_tool(_main, args, ae, storage)
    except KeyboardInterrupt:  # Windows, or a signal before the receiver was installed
        pass
    except OSError as exc:
        return fail(f"cannot listen on port {args.port}: {exc}")
    return 0


def build(args: argparse.Namespace) -> tuple[AE, StorageSCP]:
    """The AE and its Storage SCP as the flags describe them."""
    limits = Limits(max_pdu_length=args.max_pdu) if args.max_pdu else None
    ae = AE(
        args.ae_title,
        limits=limits,
        max_associations=args.max_associations,
        require_called_aet=args.require_called_aet,
        require_calling_aets=args.require_calling_aet,
        tcp_quickack=not args.no_tcp_quickack,
        max_operations_performed=args.max_ops,
    )
    options = StorageOptions(
        output_directory=args.output_directory,
        layout=Layout(args.layout),
        durable=not args.no_fsync,
        min_free_space=args.min_free_space,
        ignore=args.ignore,
        extra_sop_classes=tuple(args.accept_sop_class),
    )
    storage = StorageSCP(options).install(ae)
    return ae, storage


def _run_workers(args: argparse.Namespace) -> int:
    mode = (
        workers.default_mode()
        if args.share_port == "auto"
        else workers.SharingMode(args.share_port)
    )
    try:
        sockets = workers.listening_sockets(args.bind, args.port, args.workers, mode)
    except OSError as exc:
        return fail(f"cannot listen on port {args.port}: {exc}")
    if not args.quiet:
        port = sockets[0][0].getsockname()[1]
        print(
            f"{args.ae_title}: {args.workers} worker processes on port {port} ({mode.value})",
            flush=True,
        )
    return workers.run_workers(_worker, (args,), sockets)


def _worker(args: argparse.Namespace, sockets: list[socket.socket], index: int) -> None:
    """One worker process (module level: started with the spawn method)."""
    setup_logging(args)
    ae, storage = build(args)
    try:
        run_tool(_main, args, ae, storage, sockets, index)
    except KeyboardInterrupt:
        pass


async def _main(
    args: argparse.Namespace,
    ae: AE,
    storage: StorageSCP,
    sockets: list[socket.socket] | None = None,
    worker: int | None = None,
) -> None:
    who = args.ae_title if worker is None else f"{args.ae_title} worker {worker} pid {os.getpid()}"
    async with ae.serve(args.bind, args.port, sockets=sockets) as server:
        if not args.quiet:
            mode = "ignoring data" if args.ignore else f"storing into {args.output_directory}"
            sync = "" if args.ignore else (", no fsync" if args.no_fsync else ", fsync")
            _say(f"{who} listening on {server.host}:{server.port}, {mode}{sync}")
        await _wait_for_signal()
        log.info("shutting down")
    if not args.quiet:
        s = storage.stats
        prefix = "" if worker is None else f"{who}: "
        _say(
            f"{prefix}received {s.stored} instance(s), {s.failed} failed, {s.bytes_received} bytes"
        )


def _say(line: str) -> None:
    """One line on stdout in one write (worker processes share the stream)."""
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


async def _wait_for_signal() -> None:
    """Return on SIGINT/SIGTERM (POSIX); on Windows Ctrl+C raises KeyboardInterrupt."""
    if sys.platform == "win32":
        await anyio.sleep_forever()
        return
    with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async for signum in signals:
            log.info("received %s", signal.Signals(signum).name)
            return
