"""Benchmark P-DATA-TF decoding: aiodimse's zero-copy path against pynetdicom.

For each PDU size, a stream of P-DATA-TF PDUs (one PDV each, PDU length = size) is pushed
through ``PDUDecoder.get_buffer`` / ``buffer_updated`` in reads of ``--read-size`` bytes
(the copy into the buffer stands in for ``socket.recv_into``), then every PDU is taken
with ``next_pdu``. pynetdicom's ``P_DATA_TF().decode`` is timed on whole PDUs (framing
not included, so the comparison favours pynetdicom). Prints PDUs/s, MB/s and the ratio.

    .venv/bin/python benchmarks/bench_pdu.py
    .venv/bin/python benchmarks/bench_pdu.py --sizes 16384 1048576 --total-mb 256
"""

from __future__ import annotations

import argparse
import time

from aiodimse.config import Limits
from aiodimse.pdu import PDV, PDataTF, PDUDecoder, encode_pdu


def make_pdu(size: int) -> bytes:
    """One P-DATA-TF whose PDU length field is ``size`` (one PDV of size - 6 data bytes)."""
    data = bytes(range(256)) * (size // 256 + 1)
    pdv = PDV(context_id=1, is_command=False, is_last=False, data=data[: size - 6])
    return encode_pdu(PDataTF(pdvs=(pdv,)))


def bench_aiodimse(pdu: bytes, count: int, read_size: int) -> float:
    """Seconds to decode ``count`` copies of ``pdu`` through the zero-copy path."""
    stream = memoryview(pdu * count)
    decoder = PDUDecoder(Limits(max_pdu_length=max(len(pdu), 16384)))
    got = 0
    pos = 0
    total = len(stream)
    start = time.perf_counter()
    while pos < total:
        view = decoder.get_buffer(read_size)
        n = min(read_size, total - pos)
        view[:n] = stream[pos : pos + n]
        decoder.buffer_updated(n)
        pos += n
        while (item := decoder.next_pdu()) is not None:
            got += len(item.pdvs)  # type: ignore[union-attr]
    elapsed = time.perf_counter() - start
    assert got == count, (got, count)
    return elapsed


def bench_pynetdicom(pdu: bytes, count: int) -> float | None:
    """Seconds for pynetdicom's P_DATA_TF.decode on ``count`` whole PDUs (None if absent)."""
    try:
        from pynetdicom.pdu import P_DATA_TF
    except ImportError:
        return None
    start = time.perf_counter()
    for _ in range(count):
        decoded = P_DATA_TF()
        decoded.decode(pdu)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--sizes",
        type=int,
        nargs="+",
        default=[16 * 1024, 1024 * 1024],
        help="P-DATA-TF PDU lengths to test (default: 16 KiB and 1 MiB)",
    )
    parser.add_argument(
        "--total-mb", type=int, default=256, help="MiB decoded per size (default 256)"
    )
    parser.add_argument(
        "--read-size", type=int, default=256 * 1024, help="bytes per simulated read"
    )
    parser.add_argument("--repeat", type=int, default=3, help="best of N runs (default 3)")
    args = parser.parse_args()

    print(f"{'PDU size':>10} {'impl':>10} {'PDUs/s':>12} {'MB/s':>10} {'ratio':>7}")
    for size in args.sizes:
        pdu = make_pdu(size)
        count = max(1, args.total_mb * 1024 * 1024 // len(pdu))
        ours = min(bench_aiodimse(pdu, count, args.read_size) for _ in range(args.repeat))
        theirs_runs = [bench_pynetdicom(pdu, count) for _ in range(args.repeat)]
        mb = count * len(pdu) / 1e6
        print(f"{size:>10} {'aiodimse':>10} {count / ours:>12,.0f} {mb / ours:>10,.0f} {'':>7}")
        if theirs_runs[0] is not None:
            theirs = min(t for t in theirs_runs if t is not None)
            print(
                f"{size:>10} {'pynetdicom':>10} {count / theirs:>12,.0f} {mb / theirs:>10,.0f} "
                f"{theirs / ours:>6.1f}x"
            )


if __name__ == "__main__":
    main()
