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


def bench_aiodimse(pdu: bytes, count: int, read_size: int) -> tuple[float, float]:
    """(total seconds, seconds inside next_pdu) for ``count`` copies of ``pdu``.

    The total includes the copy of each read into the decoder's buffer (what
    ``socket.recv_into`` would do) and buffer management.
    """
    stream = memoryview(pdu * count)
    decoder = PDUDecoder(Limits(max_pdu_length=max(len(pdu), 16384)))
    got = 0
    pos = 0
    total = len(stream)
    clock = time.perf_counter
    decoding = 0.0
    start = clock()
    while pos < total:
        view = decoder.get_buffer(read_size)
        n = min(read_size, total - pos)
        view[:n] = stream[pos : pos + n]
        del view  # as asyncio does: the read buffer is not kept past buffer_updated()
        decoder.buffer_updated(n)
        pos += n
        t0 = clock()
        while (item := decoder.next_pdu()) is not None:
            got += len(item.pdvs)  # type: ignore[union-attr]
        decoding += clock() - t0
    elapsed = clock() - start
    assert got == count, (got, count)
    return elapsed, decoding


def bench_pynetdicom(pdu: bytes, count: int, *, with_read: bool) -> float | None:
    """Seconds for pynetdicom's ``P_DATA_TF().decode`` on ``count`` PDUs (None if absent).

    ``with_read``: each PDU is first copied out of one long stream (as a ``recv`` would
    produce it), so memory is as cold as in our run; otherwise the same bytes object is
    decoded again and again (cache-hot, no read cost).
    """
    try:
        from pynetdicom.pdu import P_DATA_TF
    except ImportError:
        return None
    size = len(pdu)
    stream = memoryview(pdu * count) if with_read else None
    start = time.perf_counter()
    for i in range(count):
        wire = bytes(stream[i * size : (i + 1) * size]) if stream is not None else pdu
        decoded = P_DATA_TF()
        decoded.decode(wire)
    return time.perf_counter() - start


def _print_row(
    size: int, count: int, mb: float, what: str, seconds: float, reference: float | None
) -> None:
    ratio = f"{seconds / reference:>7.2f}x" if reference else ""
    print(f"{size:>9} {what:<38} {count / seconds:>10,.0f} {mb / seconds:>8,.0f} {ratio}")


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

    header = f"{'PDU size':>9} {'what':<38} {'PDUs/s':>10} {'MB/s':>8} {'vs ours':>8}"
    print(header)
    for size in args.sizes:
        pdu = make_pdu(size)
        count = max(1, args.total_mb * 1024 * 1024 // len(pdu))
        mb = count * len(pdu) / 1e6
        runs = [bench_aiodimse(pdu, count, args.read_size) for _ in range(args.repeat)]
        ours = min(r[0] for r in runs)
        ours_decode = min(r[1] for r in runs)
        head = (size, count, mb)
        _print_row(*head, "aiodimse get_buffer+next_pdu", ours, None)
        _print_row(*head, "aiodimse next_pdu only", ours_decode, None)
        for with_read, label in (
            (True, "pynetdicom read copy+decode"),
            (False, "pynetdicom decode (same bytes)"),
        ):
            runs_pn = [
                bench_pynetdicom(pdu, count, with_read=with_read) for _ in range(args.repeat)
            ]
            if runs_pn[0] is not None:
                best = min(t for t in runs_pn if t is not None)
                _print_row(*head, label, best, ours)
    print("'vs ours' = pynetdicom time / aiodimse total time (above 1: aiodimse is faster)")


if __name__ == "__main__":
    main()
