"""Words and small socket helpers for the shell: PDU summaries for ``-d`` logs, transport
exceptions in words, and TCP_QUICKACK."""

from __future__ import annotations

import socket

from ..pdu import (
    AAbort,
    AAssociateAC,
    AAssociateRJ,
    AAssociateRQ,
    AReleaseRP,
    AReleaseRQ,
    PDataTF,
    pdu_type_name,
)
from .transport import Transport, is_inet

#: After a read at least this long no TCP_QUICKACK is re-armed: it held several full
#: segments, which Linux acknowledges by itself (every second full-sized segment, RFC 1122
#: 4.2.3.2), so the setsockopt and the extra bare ACKs (each processed in softirq on our CPU,
#: where it also makes the peer's socket transmit) are wasted during a bulk transfer.
BULK_READ = 128 * 1024


def summarize(item: object) -> str:
    """One line about a PDU or event, for ``-d`` logs (only built when debug is on)."""
    if isinstance(item, PDataTF):
        sizes = ", ".join(
            f"ctx {p.context_id} {'cmd' if p.is_command else 'data'}"
            f"{' last' if p.is_last else ''} {len(p.data)} B"
            for p in item.pdvs
        )
        return f"P-DATA-TF [{sizes}]"
    if isinstance(item, AAssociateRQ):
        ctx = ", ".join(f"{c.context_id}:{c.abstract_syntax}" for c in item.presentation_contexts)
        return (
            f"A-ASSOCIATE-RQ {item.calling_ae_title} -> {item.called_ae_title}, "
            f"max PDU {item.user_information.maximum_length}, contexts [{ctx}]"
        )
    if isinstance(item, AAssociateAC):
        ctx = ", ".join(
            f"{c.context_id}:ok {c.transfer_syntax}"
            if c.result == 0
            else f"{c.context_id}:rejected {c.result}"
            for c in item.presentation_contexts
        )
        return f"A-ASSOCIATE-AC max PDU {item.user_information.maximum_length}, contexts [{ctx}]"
    if isinstance(item, AAssociateRJ):
        return f"A-ASSOCIATE-RJ result {item.result} source {item.source} reason {item.reason}"
    if isinstance(item, AAbort):
        return f"A-ABORT source {item.source} reason {item.reason}"
    if isinstance(item, AReleaseRQ | AReleaseRP):
        return pdu_type_name(item)
    return repr(item)


def quickack_socket(transport: Transport) -> socket.socket | None:
    """The TCP socket under ``transport`` when the platform has TCP_QUICKACK (Linux)."""
    if not hasattr(socket, "TCP_QUICKACK"):
        return None
    sock = transport.raw_socket
    if sock is None or not is_inet(sock):
        return None
    return sock


def rearm_quickack(sock: socket.socket) -> None:
    """Acknowledge at once. A peer that leaves Nagle on and writes a PDU in two pieces
    (dcmtk without TCP_NODELAY=1) otherwise waits for our delayed ACK, ~40 ms per message.
    Linux clears the flag by itself, so it is set again after every read; measured with
    ``benchmarks/bench_quickack.py`` (dcmtk echoscu with Nagle on: 22 -> 532 C-ECHO/s)."""
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
    except OSError:
        pass


def describe_error(exc: BaseException) -> str:
    """Words for a transport exception."""
    if isinstance(exc, ConnectionResetError):
        return "connection reset by peer"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, BrokenPipeError):
        return "connection closed by peer (broken pipe)"
    text = str(exc) or type(exc).__name__
    cause = exc.__cause__
    if cause is not None and str(cause):
        text = f"{text}: {cause}"
    return text
