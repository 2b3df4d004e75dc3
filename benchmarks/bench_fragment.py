"""Benchmark DIMSE fragmentation and reassembly: aiodimse against pynetdicom.

One C-STORE-RQ with a dataset of ``--size-mb`` MB is cut into P-DATA-TF PDUs for each peer
maximum PDU length (``--max-pdu``), then reassembled from the wire bytes. Cases:

fragment (aiodimse)
    ``Fragmenter.gather`` from one buffer: gather lists, no payload copy (what a
    ``sendmsg``/``writelines`` transport sends), and the same joined to one ``bytes`` per
    PDU (what a plain ``send(bytes)`` needs); and from 64 KiB and 4 KiB chunks (file read
    loops; 4 KiB chunks are joined, 64 KiB ones pass through).
fragment (pynetdicom)
    ``DIMSEMessage.encode_msg`` + ``P_DATA_TF.from_primitive(...).encode()`` per PDU.
reassemble (aiodimse)
    the wire stream in 64 KiB reads through ``PDUDecoder.feed``/``next_pdu`` and
    ``MessageAssembler.receive_pdata``; the dataset either streamed (fragments counted, as
    a file sink would see them) or written to a ``BytesIO`` (in-memory sink, as pynetdicom).
reassemble (pynetdicom)
    ``P_DATA_TF().decode`` on each (pre-split) PDU, ``to_primitive`` and
    ``DIMSEMessage.decode_msg`` (framing not timed, which favours pynetdicom).

Prints MB/s (dataset bytes / best time of ``--repeat`` runs) and aiodimse/pynetdicom ratios.

    .venv/bin/python benchmarks/bench_fragment.py
    .venv/bin/python benchmarks/bench_fragment.py --size-mb 16 --max-pdu 16384 --repeat 1
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Iterator
from io import BytesIO

from aiodimse.config import Limits
from aiodimse.dimse.assembler import DataFragment, MessageAssembler
from aiodimse.dimse.command_codec import encode_command
from aiodimse.dimse.fragmenter import Fragmenter
from aiodimse.dimse.messages import CStoreRQ
from aiodimse.pdu import PDataTF
from aiodimse.pdu.decoder import PDUDecoder

SOP_CLASS = "1.2.840.10008.5.1.4.1.1.7"
SOP_INSTANCE = "1.2.826.0.1.3680043.2.1125.1.42"
READ_SIZE = 64 * 1024
CHUNK = 64 * 1024


def best(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def chunks(data: bytes, size: int = CHUNK) -> Iterator[memoryview]:
    view = memoryview(data)
    for i in range(0, len(view), size):
        yield view[i : i + size]


# ----------------------------------------------------------------------------- aiodimse


def ours_gather(frag: Fragmenter, cmd: bytes, data: bytes) -> int:
    n = 0
    for parts in frag.gather(1, cmd, data):
        n += len(parts)
    return n


def ours_join(frag: Fragmenter, cmd: bytes, data: bytes) -> int:
    n = 0
    for parts in frag.gather(1, cmd, data):
        n += len(b"".join(parts))
    return n


def ours_chunked(frag: Fragmenter, cmd: bytes, data: bytes, size: int = CHUNK) -> int:
    n = 0
    for parts in frag.gather(1, cmd, chunks(data, size)):
        n += len(parts)
    return n


def ours_wire(frag: Fragmenter, cmd: bytes, data: bytes) -> tuple[bytes, list[bytes]]:
    pdus = [b"".join(parts) for parts in frag.gather(1, cmd, data)]
    return b"".join(pdus), pdus


def ours_reassemble(wire: bytes, max_pdu: int, in_memory: bool) -> int:
    decoder = PDUDecoder(Limits(max_pdu_length=max(max_pdu, 16384)))
    asm = MessageAssembler([1])
    sink = BytesIO()
    got = 0
    view = memoryview(wire)
    for i in range(0, len(view), READ_SIZE):
        decoder.feed(view[i : i + READ_SIZE])
        while (pdu := decoder.next_pdu()) is not None:
            assert isinstance(pdu, PDataTF)
            for ev in asm.receive_pdata(pdu):
                if isinstance(ev, DataFragment):
                    if in_memory:
                        sink.write(ev.data)
                    got += len(ev.data)
    return got


# --------------------------------------------------------------------------- pynetdicom


def pnd_message(data: bytes) -> object:
    from pynetdicom.dimse_messages import C_STORE_RQ
    from pynetdicom.dimse_primitives import C_STORE

    prim = C_STORE()
    prim.MessageID = 1
    prim.AffectedSOPClassUID = SOP_CLASS
    prim.AffectedSOPInstanceUID = SOP_INSTANCE
    prim.Priority = 0
    prim.DataSet = BytesIO(data)
    msg = C_STORE_RQ()
    msg.primitive_to_message(prim)
    return msg


def pnd_fragment(data: bytes, max_pdu: int) -> list[bytes]:
    from pynetdicom.pdu import P_DATA_TF

    msg = pnd_message(data)
    out = []
    for prim in msg.encode_msg(1, max_pdu):  # type: ignore[attr-defined]
        pdu = P_DATA_TF()
        pdu.from_primitive(prim)
        out.append(pdu.encode())
    return out


def pnd_reassemble(pdus: list[bytes]) -> int:
    from pynetdicom.dimse_messages import DIMSEMessage
    from pynetdicom.pdu import P_DATA_TF

    msg = DIMSEMessage()
    done = False
    for raw in pdus:
        pdu = P_DATA_TF()
        pdu.decode(raw)
        done = msg.decode_msg(pdu.to_primitive())
    assert done
    assert msg.data_set is not None
    return len(msg.data_set.getvalue())


# ------------------------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mb", type=int, default=64, help="dataset size (default 64)")
    parser.add_argument(
        "--max-pdu", type=int, nargs="+", default=[16384, 1048576], help="peer maximum(s)"
    )
    parser.add_argument("--repeat", type=int, default=3, help="runs per case, best kept")
    parser.add_argument("--no-pynetdicom", action="store_true", help="skip pynetdicom")
    args = parser.parse_args()

    data = (bytes(range(256)) * 4096 * 4)[: 1 << 20] * args.size_mb
    cmd = encode_command(
        CStoreRQ(
            message_id=1, affected_sop_class_uid=SOP_CLASS, affected_sop_instance_uid=SOP_INSTANCE
        )
    )
    print(f"dataset {len(data) / 2**20:.0f} MiB, best of {args.repeat}; MB/s (10^6 B/s)")
    for max_pdu in args.max_pdu:
        bench_one(max_pdu, cmd, data, args.repeat, not args.no_pynetdicom)


def bench_one(max_pdu: int, cmd: bytes, data: bytes, repeat: int, pynetdicom: bool) -> None:
    """Print the table for one peer maximum PDU length."""
    size_mb = len(data) / 1e6
    frag = Fragmenter(max_pdu)
    wire, pdus = ours_wire(frag, cmd, data)
    assert ours_reassemble(wire, max_pdu, True) == len(data)
    rows: list[tuple[str, float]] = []

    def run(name: str, fn: Callable[[], object]) -> float:
        mbps = size_mb / best(fn, repeat)
        rows.append((name, mbps))
        return mbps

    f_gather = run("fragment   aiodimse gather lists", lambda: ours_gather(frag, cmd, data))
    f_join = run("fragment   aiodimse joined bytes", lambda: ours_join(frag, cmd, data))
    run("fragment   aiodimse 64 KiB chunks", lambda: ours_chunked(frag, cmd, data))
    run("fragment   aiodimse 4 KiB chunks", lambda: ours_chunked(frag, cmd, data, 4096))
    r_stream = run("reassemble aiodimse streamed", lambda: ours_reassemble(wire, max_pdu, False))
    r_mem = run("reassemble aiodimse in memory", lambda: ours_reassemble(wire, max_pdu, True))
    if pynetdicom:
        theirs = pnd_fragment(data, max_pdu)
        assert pnd_reassemble(theirs) == len(data)
        p_frag = run("fragment   pynetdicom", lambda: pnd_fragment(data, max_pdu))
        p_reas = run("reassemble pynetdicom", lambda: pnd_reassemble(theirs))
    print(f"\nmax PDU {max_pdu} ({len(pdus)} PDUs)")
    for name, mbps in rows:
        print(f"  {name:34s} {mbps:10.0f} MB/s")
    if pynetdicom:
        print(f"  ratio fragment   gather/pynetdicom  {f_gather / p_frag:8.1f}x")
        print(f"  ratio fragment   joined/pynetdicom  {f_join / p_frag:8.1f}x")
        print(f"  ratio reassemble stream/pynetdicom  {r_stream / p_reas:8.1f}x")
        print(f"  ratio reassemble memory/pynetdicom  {r_mem / p_reas:8.1f}x")


if __name__ == "__main__":
    main()
