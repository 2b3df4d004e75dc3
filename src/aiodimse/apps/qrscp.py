"""``aiodimse qrscp``: a ready Query/Retrieve SCP over the files it receives.

Serves C-ECHO, C-STORE (into ``--db-dir``, same Storage SCP and file-name policy as
``storescp``), C-FIND (Patient Root and Study Root, every level, one answer per matching
entity), C-GET and C-MOVE (destinations from ``--move-dest AET=HOST:PORT``). The index is
SQLite in ``--db-dir`` (:mod:`aiodimse.services.file_index`); at start-up it is reconciled
with the files there (rebuilt when missing), off the event loop. An instance is in the
index before its C-STORE success is sent. SIGINT or SIGTERM stops it (exit 0).
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

from .. import AE
from ..config import Limits
from ..services.file_index import FileIndex
from ..services.filepolicy import Layout
from ..services.find_scp import enable_find
from ..services.qr_models import QueryModel
from ..services.retrieve_scp import MoveDestination, enable_retrieve
from ..services.storage_scp import StorageOptions, StorageSCP, StoredInstance
from ._common import add_logging_flags, fail, run_tool, setup_logging
from .storescp import _wait_for_signal

log = logging.getLogger("aiodimse.apps.qrscp")

#: PS3.4 B.2.3: "Cannot understand" (the received file cannot be indexed).
_STATUS_CANNOT_UNDERSTAND = 0xC210
_MODELS = (QueryModel.PATIENT_ROOT, QueryModel.STUDY_ROOT)


def add_parser(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "qrscp",
        help="run a Query/Retrieve SCP over received files (C-STORE/FIND/GET/MOVE/ECHO)",
        description="Store received instances and serve C-FIND, C-GET and C-MOVE from them.",
    )
    p.add_argument("port", type=int, help="TCP port to listen on")
    p.add_argument("-aet", "--ae-title", default="QRSCP", help="our AE title (QRSCP)")
    p.add_argument("--bind", default="0.0.0.0", help="address to listen on (0.0.0.0)")
    p.add_argument(
        "--db-dir",
        type=Path,
        default=Path("."),
        help="where received files and the index live (created when missing; default: .)",
    )
    p.add_argument(
        "--move-dest",
        action="append",
        default=[],
        metavar="AET=HOST:PORT",
        help="a C-MOVE destination (repeat for more)",
    )
    p.add_argument(
        "--layout",
        choices=[m.value for m in Layout],
        default=Layout.FLAT.value,
        help="flat: <SOPInstanceUID>.dcm; tree: <PatientID>/<Study>/<Series>/<SOP>.dcm",
    )
    p.add_argument("--max-pdu", type=int, default=None, metavar="N", help="our maximum PDU")
    p.add_argument("--max-associations", type=int, default=1000, metavar="N", help="at once (1000)")
    p.add_argument("--no-fsync", action="store_true", help="do not fsync before answering")
    add_logging_flags(p)
    p.set_defaults(run=run)


def parse_move_dest(text: str) -> tuple[str, MoveDestination]:
    """``AET=HOST:PORT`` (``[v6]:PORT`` too) -> (AE title, destination)."""
    aet, sep, where = text.partition("=")
    host, colon, port = where.rpartition(":")
    aet = aet.strip()
    if not sep or not colon or not aet or len(aet) > 16 or not host or not port.isdigit():
        raise ValueError(f"--move-dest {text!r}: expected AET=HOST:PORT")
    number = int(port)
    if not 0 < number < 65536:
        raise ValueError(f"--move-dest {text!r}: port out of range")
    return aet, MoveDestination(host=host.strip("[]"), port=number)


def build(args: argparse.Namespace) -> tuple[AE, StorageSCP, FileIndex]:
    """The AE with storage, find, get and move as the flags describe them."""
    table = dict(parse_move_dest(t) for t in args.move_dest)
    limits = Limits(max_pdu_length=args.max_pdu) if args.max_pdu else None
    ae = AE(args.ae_title, limits=limits, max_associations=args.max_associations)
    index = FileIndex(args.db_dir)

    async def on_stored(instance: StoredInstance) -> int:
        assert instance.path is not None
        if await index.add_file(instance.path, instance.destination):
            return 0x0000
        return _STATUS_CANNOT_UNDERSTAND

    options = StorageOptions(
        output_directory=args.db_dir,
        layout=Layout(args.layout),
        durable=not args.no_fsync,
        handler=on_stored,
    )
    storage = StorageSCP(options).install(ae)
    enable_find(ae, index, models=_MODELS)
    enable_retrieve(ae, index, models=_MODELS, move_destinations=table)
    return ae, storage, index


def run(args: argparse.Namespace) -> int:
    setup_logging(args)
    try:
        ae, storage, index = build(args)
    except (OSError, ValueError) as exc:
        return fail(str(exc))
    try:
        run_tool(_main, args, ae, index)
    except KeyboardInterrupt:
        pass
    except OSError as exc:
        return fail(f"cannot listen on port {args.port}: {exc}")
    finally:
        index.close()
    if not args.quiet:
        s = storage.stats
        print(f"received {s.stored} instance(s), {s.failed} failed", flush=True)
    return 0


async def _main(args: argparse.Namespace, ae: AE, index: FileIndex) -> None:
    added, removed = await index.open()
    async with ae.serve(args.bind, args.port) as server:
        if not args.quiet:
            count = index.count_sync()
            print(
                f"{args.ae_title} listening on {server.host}:{server.port}, "
                f"{count} instance(s) in {args.db_dir} ({added} indexed, {removed} gone)",
                flush=True,
            )
        await _wait_for_signal()
        log.info("shutting down")
