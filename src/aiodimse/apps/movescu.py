"""``aiodimse movescu``: C-MOVE SCU (PS3.4 C.4.2), optionally receiving the instances.

Flags as pynetdicom's ``movescu``: ``-aem DEST`` the move destination (default: our own
``--store-aet``), ``--store`` runs our Storage SCP on ``--store-port`` (the peer must know
that AE title, host and port) and writes what arrives for this move into ``-od`` (created
when missing). Exit 0 when the final status is Success, else one line saying why
(0xA801: the peer does not know the destination).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import anyio

from ..config import Limits, Timeouts
from ..errors import DicomError
from ..services.ae import AE
from ..services.move_coordinator import MoveCoordinator
from ..services.qr_models import QueryLevel, QueryModel
from ..services.retrieve_scu import RetrieveOperation, move_contexts
from ..services.storage_scp import StorageOptions
from ._common import fail, run_tool, setup_logging
from .getscu import add_common_flags, outcome, query_and_level


def add_parser(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "movescu",
        help="ask a Query/Retrieve SCP to send instances to a destination (C-MOVE)",
        description="C-MOVE SCU (PS3.4 C.4.2); with --store, our own Storage SCP receives "
        "the instances into -od. Exit 0 when the final status is Success.",
    )
    add_common_flags(p, aet="MOVESCU", what="C-MOVE")
    p.add_argument("-aem", "--move-aet", default=None, help="move destination AE title")
    p.add_argument("--store", action="store_true", help="receive the instances ourselves")
    p.add_argument(
        "--store-port", type=int, default=11113, metavar="N", help="our Storage SCP port (11113)"
    )
    p.add_argument("--store-aet", default=None, help="our Storage SCP AE title (default: -aet)")
    p.add_argument(
        "-od", "--output-directory", type=Path, default=Path("."), help="for --store (.)"
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    setup_logging(args)
    return run_tool(_main, args)


async def _main(args: argparse.Namespace) -> int:
    model = QueryModel.parse(args.model)
    try:
        query, level = query_and_level(args)
    except (OSError, ValueError) as exc:
        return fail(str(exc))
    limits = Limits(max_pdu_length=args.max_pdu) if args.max_pdu else Limits()
    timeouts = Timeouts(
        connect=args.connection_timeout, acse=args.acse_timeout, move=args.dimse_timeout
    )
    store_aet = args.store_aet or args.calling_aet
    destination = args.move_aet or store_aet
    ae = AE(args.calling_aet, timeouts=timeouts, limits=limits)
    receiver = ae if store_aet == args.calling_aet else AE(store_aet, limits=limits)
    coordinator = MoveCoordinator(
        receiver, port=args.store_port, storage_options=StorageOptions(durable=True)
    )
    result = 1
    # Errors are caught inside the task group so that they end as one line, not a group.
    async with anyio.create_task_group() as tg:
        try:
            if args.store:
                await tg.start(_serve, coordinator)
            op = await _move(args, ae, coordinator, query, level, model, destination)
            result = outcome(op, args, "C-MOVE")
        except DicomError as exc:
            result = fail(str(exc))
        except (OSError, ValueError) as exc:
            result = fail(str(exc))
        finally:
            tg.cancel_scope.cancel()
    return result


async def _move(
    args: argparse.Namespace,
    ae: AE,
    coordinator: MoveCoordinator,
    query: dict[str, Any],
    level: QueryLevel | None,
    model: QueryModel,
    destination: str,
) -> RetrieveOperation:
    async with ae.associate(
        args.addr, args.port, called_ae=args.called_aet, contexts=move_contexts([model])
    ) as assoc:
        async with assoc.move(
            query,
            destination=destination,
            model=model,
            level=level,
            coordinator=coordinator if args.store else None,
            directory=args.output_directory if args.store else None,
            charset=args.charset,
        ) as op:
            async for instance in op:
                if not args.quiet:
                    print(instance.path, flush=True)
    return op


async def _serve(coordinator: MoveCoordinator, *, task_status: anyio.abc.TaskStatus[None]) -> None:
    async with coordinator.running():
        task_status.started()
        await anyio.sleep_forever()
