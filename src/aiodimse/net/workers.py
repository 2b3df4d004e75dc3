"""Several processes serving one TCP port: the way past one core on one machine.

One event loop uses one core. To use more, ``storescp --workers N`` starts N worker
processes that each run their own loop (and their own associations) on the same port. The
parent creates every listening socket before it starts a worker, so errors such as "address
in use" are reported once, and port 0 works:

* **SO_REUSEPORT** (Linux): one listening socket per worker, all bound to the same port;
  the kernel spreads new connections over them (by a hash of the addresses), and a worker
  that dies stops receiving connections.
* **shared** (elsewhere: macOS, whose SO_REUSEPORT does not balance, and Windows): one
  listening socket, inherited by every worker; whichever worker accepts first gets the
  connection.

Sockets reach the workers through :mod:`multiprocessing` (spawn start method, so the
same on every OS: the socket is duplicated into the child). The parent only waits: on
SIGINT/SIGTERM it asks every worker to stop (SIGTERM; on Windows the process is
terminated) and waits for them. Past one machine, put several behind a TCP load balancer
(each association is one TCP connection, so any layer-4 balancer works).
"""

from __future__ import annotations

import enum
import logging
import multiprocessing
import os
import signal
import socket
import sys
from collections.abc import Callable, Sequence
from types import FrameType
from typing import Any

__all__ = ["SharingMode", "default_mode", "listening_sockets", "run_workers"]

log = logging.getLogger("aiodimse.net.workers")

#: How long the parent waits for a worker to finish after asking it to stop.
STOP_GRACE = 30.0


class SharingMode(enum.Enum):
    """How the workers share the port."""

    REUSE_PORT = "reuse-port"  # one socket per worker (Linux SO_REUSEPORT)
    SHARED = "shared"  # one socket, inherited by all


def default_mode() -> SharingMode:
    """SO_REUSEPORT where it balances connections (Linux), else one shared socket."""
    if sys.platform.startswith("linux") and hasattr(socket, "SO_REUSEPORT"):
        return SharingMode.REUSE_PORT
    return SharingMode.SHARED


def _server_socket(host: str, port: int, *, reuse_port: bool, backlog: int) -> socket.socket:
    if host in ("", "::") and socket.has_dualstack_ipv6():
        return socket.create_server(
            ("::", port),
            family=socket.AF_INET6,
            backlog=backlog,
            dualstack_ipv6=True,
            reuse_port=reuse_port,
        )
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    return socket.create_server(
        (host or "0.0.0.0", port), family=family, backlog=backlog, reuse_port=reuse_port
    )


def listening_sockets(
    host: str, port: int, workers: int, mode: SharingMode, *, backlog: int = 1024
) -> list[list[socket.socket]]:
    """The listening sockets of each worker (``port`` 0: a free port, the same for all)."""
    if workers < 1:
        raise ValueError("workers must be at least 1")
    if mode is SharingMode.SHARED or workers == 1:
        shared = _server_socket(host, port, reuse_port=False, backlog=backlog)
        return [[shared] for _ in range(workers)]
    first = _server_socket(host, port, reuse_port=True, backlog=backlog)
    port = first.getsockname()[1]
    per_worker = [[first]]
    try:
        for _ in range(workers - 1):
            per_worker.append([_server_socket(host, port, reuse_port=True, backlog=backlog)])
    except BaseException:
        for socks in per_worker:
            for s in socks:
                s.close()
        raise
    return per_worker


def _worker_entry(target: Callable[..., Any], *args: object) -> None:
    # Our own process group (POSIX): a terminal's Ctrl+C reaches the parent only, which
    # then stops every worker once, with SIGTERM.
    if hasattr(os, "setpgrp"):
        os.setpgrp()
    target(*args)


def run_workers(
    target: Callable[..., Any],
    args: Sequence[object],
    sockets: Sequence[Sequence[socket.socket]],
) -> int:
    """Start one process per entry of ``sockets`` running ``target(*args, sockets, index)``
    (a module-level function: it is pickled for the spawn start method), wait for all of
    them, and stop them on SIGINT/SIGTERM. Returns 0 when every worker exited with 0."""
    ctx = multiprocessing.get_context("spawn")
    processes = [
        ctx.Process(
            target=_worker_entry,
            args=(target, *args, list(socks), index),
            name=f"aiodimse-worker-{index}",
            daemon=False,
        )
        for index, socks in enumerate(sockets)
    ]
    stopping = False

    def stop(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True
        for p in processes:
            if p.is_alive():
                p.terminate()  # SIGTERM on POSIX: the worker shuts down gracefully

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        for p in processes:
            p.start()
        # The workers hold their own duplicates now; ours would keep the port open.
        for socks in sockets:
            for s in socks:
                s.close()
        for p in processes:
            p.join()
            if p.exitcode not in (0, None) and not stopping:
                log.error("worker %s (pid %s) exited with %s", p.name, p.pid, p.exitcode)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        for p in processes:
            if p.is_alive():
                p.join(STOP_GRACE)
            if p.is_alive():
                p.kill()
                p.join()
    codes = [p.exitcode for p in processes]
    # A worker stopped by our SIGTERM before it installed its handler exits with -SIGTERM.
    return 0 if all(c in (0, -signal.SIGTERM) for c in codes) else 1
