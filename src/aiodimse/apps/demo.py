"""``aiodimse demo`` (``make demo``): the main job end to end against an embedded SCP.

Until C-STORE lands, the demo starts an embedded SCP on a free loopback port and checks it
with C-ECHO from a second AE, printing the negotiated parameters.
"""

from __future__ import annotations

import argparse
from typing import Any

import anyio

from .. import AE
from ._common import add_logging_flags, setup_logging


def add_parser(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "demo",
        help="end-to-end demo against an embedded SCP",
        description="Start an embedded SCP on loopback and talk to it.",
    )
    add_logging_flags(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    setup_logging(args)
    return anyio.run(_main)


async def _main() -> int:
    scp = AE("DEMO_SCP")
    async with scp.serve("127.0.0.1", 0) as server:
        scu = AE("DEMO_SCU")
        async with scu.associate("127.0.0.1", server.port, called_ae="DEMO_SCP") as assoc:
            n = assoc.negotiated
            print(
                f"associated with DEMO_SCP on 127.0.0.1:{server.port}; peer max PDU "
                f"{assoc.peer_max_pdu}, implementation {n.peer_implementation_class_uid}"
            )
            status = await assoc.echo()
            print(f"C-ECHO: 0x{status.code:04X} {status.meaning}")
    print("C-STORE demo: not yet (arrives with the C-STORE issue)")
    return 0 if status.code == 0 else 1
