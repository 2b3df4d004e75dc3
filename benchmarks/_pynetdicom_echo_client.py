"""pynetdicom Verification SCU loop for the benchmarks, timed inside this process.

Runs ``--count`` sequential associations (each: associate, ``--echoes`` C-ECHOs, release)
against 127.0.0.1:``--port`` after ``--warmup`` untimed ones (one C-ECHO each), and prints
one JSON line: ``{"elapsed": s, "associations_ok": n, "associations_failed": n, "echoes_ok": n}``.
Interpreter start-up and imports are not in ``elapsed``. Bounded by ``--time-limit``.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time

from pynetdicom import AE
from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]


def run(ae: AE, port: int, called: str, count: int, echoes: int, limit: float) -> dict[str, float]:
    ok = failed = echoes_ok = 0
    start = time.perf_counter()
    for _ in range(count):
        if time.perf_counter() - start > limit:
            break
        assoc = ae.associate("127.0.0.1", port, ae_title=called)
        if not assoc.is_established:
            failed += 1
            continue
        good = True
        for _ in range(echoes):
            status = assoc.send_c_echo()
            if status and status.Status == 0:
                echoes_ok += 1
            else:
                good = False
        assoc.release()
        if good:
            ok += 1
        else:
            failed += 1
    elapsed = time.perf_counter() - start
    return {
        "elapsed": elapsed,
        "associations_ok": ok,
        "associations_failed": failed,
        "echoes_ok": echoes_ok,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--called-aet", default="ANY-SCP")
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--echoes", type=int, default=1)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--time-limit", type=float, default=120.0)
    args = parser.parse_args(argv)
    logging.getLogger("pynetdicom").setLevel(logging.CRITICAL)

    ae = AE(ae_title="BENCH")
    ae.add_requested_context(Verification)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 30
    run(ae, args.port, args.called_aet, args.warmup, 1, args.time_limit)  # warm-up: 1 C-ECHO
    result = run(ae, args.port, args.called_aet, args.count, args.echoes, args.time_limit)
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
