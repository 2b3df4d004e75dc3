"""Study-level C-FIND returning N matches from Orthanc: aiodimse beside dcmtk and pynetdicom.

One Orthanc (subprocess, loopback) is loaded once through its REST API with N small
studies (one 8x8 CT instance each). Then each row is measured ``--repeat`` times:

* ``aiodimse (in process)``: associate, C-FIND Study Root STUDY level, release; time to
  the first result and total, plus the growth of our RSS while results stream;
* ``pynetdicom (in process)``: the same with ``Association.send_c_find``;
* ``aiodimse findscu``, ``dcmtk findscu``, ``pynetdicom findscu``: whole process (start,
  associate, query, release, exit), the way a user runs the tools.

Usage::

    .venv/bin/python benchmarks/bench_find.py --n 200          # quick
    .venv/bin/python benchmarks/bench_find.py --n 1000 --repeat 5
    .venv/bin/python benchmarks/bench_find.py --n 10000 --repeat 3
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil  # type: ignore[import-untyped]

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support import datagen, orthanc_peer, peers  # noqa: E402
from tests.support.datasets import Charset, Spec  # noqa: E402

KEYS = ("StudyInstanceUID", "PatientID", "PatientName", "StudyDate")
Sample = dict[str, float]


def load(server: orthanc_peer.OrthancPeer, n: int) -> float:
    t0 = time.perf_counter()
    for i in range(n):
        spec = Spec(
            seed=10_000 + i,
            charset=Charset.DEFAULT,
            patient_name=f"Bench^P{i:05d}",
            patient_id=f"B{i:05d}",
            rows=8,
            columns=8,
            private_tags=False,
        )
        server.rest.upload(datagen.file_bytes(spec))
    return time.perf_counter() - t0


def aiodimse_in_process(port: int, n: int) -> Sample:
    import anyio

    import aiodimse
    from aiodimse.services.qr_models import find_contexts

    proc = psutil.Process(os.getpid())

    async def main() -> Sample:
        ae = aiodimse.AE("FINDSCU")
        base = proc.memory_info().rss
        peak = base
        t0 = time.perf_counter()
        first = None
        count = 0
        async with ae.associate(
            "127.0.0.1", port, called_ae="ORTHANC", contexts=find_contexts()
        ) as assoc:
            async with assoc.find(dict.fromkeys(KEYS, "")) as results:
                async for _ in results:
                    count += 1
                    if first is None:
                        first = time.perf_counter() - t0
                    if count % 100 == 0:
                        peak = max(peak, proc.memory_info().rss)
        total = time.perf_counter() - t0
        assert count == n, f"expected {n} matches, got {count}"
        growth = (peak - base) / 2**20
        return {"first_s": first or total, "total_s": total, "rss_growth_mib": growth}

    return anyio.run(main)


def pynetdicom_in_process(port: int, n: int) -> Sample:
    from pydicom.dataset import Dataset
    from pynetdicom import AE
    from pynetdicom.sop_class import StudyRootQueryRetrieveInformationModelFind  # type: ignore

    ae = AE(ae_title="FINDSCU")
    ae.add_requested_context(StudyRootQueryRetrieveInformationModelFind)
    q = Dataset()
    q.QueryRetrieveLevel = "STUDY"
    for k in KEYS:
        setattr(q, k, "")
    t0 = time.perf_counter()
    first = None
    count = 0
    assoc = ae.associate("127.0.0.1", port, ae_title="ORTHANC")
    assert assoc.is_established
    for status, _ident in assoc.send_c_find(q, StudyRootQueryRetrieveInformationModelFind):
        if status and status.Status in (0xFF00, 0xFF01):
            count += 1
            if first is None:
                first = time.perf_counter() - t0
    assoc.release()
    total = time.perf_counter() - t0
    ae.shutdown()
    assert count == n, f"expected {n} matches, got {count}"
    return {"first_s": first or total, "total_s": total}


def process(argv: list[str]) -> Callable[[int, int], Sample]:
    def run(port: int, n: int) -> Sample:
        t0 = time.perf_counter()
        res = subprocess.run(
            [a.replace("{port}", str(port)) for a in argv],
            capture_output=True,
            timeout=600,
            check=False,
        )
        total = time.perf_counter() - t0
        if res.returncode != 0:
            raise RuntimeError(res.stderr.decode(errors="replace")[-400:])
        return {"total_s": total}

    return run


def rows(findscu: str | None) -> list[tuple[str, Callable[[int, int], Sample]]]:
    k_args = [arg for key in KEYS for arg in ("-k", f"{key}=")]
    out: list[tuple[str, Callable[[int, int], Sample]]] = [
        ("aiodimse (in process)", aiodimse_in_process),
        ("pynetdicom (in process)", pynetdicom_in_process),
        (
            "aiodimse findscu (process)",
            process(
                [
                    sys.executable,
                    "-m",
                    "aiodimse",
                    "findscu",
                    "-q",
                    "-aec",
                    "ORTHANC",
                    *k_args,
                    "127.0.0.1",
                    "{port}",
                ]
            ),
        ),
        (
            "pynetdicom findscu (process)",
            process(
                [
                    sys.executable,
                    "-m",
                    "pynetdicom",
                    "findscu",
                    "-S",
                    "-aec",
                    "ORTHANC",
                    "-k",
                    "QueryRetrieveLevel=STUDY",
                    *k_args,
                    "127.0.0.1",
                    "{port}",
                ]
            ),
        ),
    ]
    if findscu:
        out.append(
            (
                "dcmtk findscu (process)",
                process(
                    [
                        findscu,
                        "-S",
                        "-aec",
                        "ORTHANC",
                        "-k",
                        "QueryRetrieveLevel=STUDY",
                        *[a.rstrip("=") for a in k_args],
                        "127.0.0.1",
                        "{port}",
                    ]
                ),
            )
        )
    return out


def fmt(values: list[float], unit: str = "s") -> str:
    if not values:
        return "-"
    med = statistics.median(values)
    return f"{med:.3f} {unit} ({min(values):.3f}-{max(values):.3f})"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--n", type=int, default=1000, help="studies loaded into Orthanc (1000)")
    p.add_argument("--repeat", type=int, default=5, help="measurements per row (5)")
    p.add_argument("--no-save", action="store_true", help="do not write results/*.json")
    args = p.parse_args(argv)
    exe = peers.find_binary("Orthanc")
    if exe is None:
        print("Orthanc is not installed", file=sys.stderr)
        return 1
    tmp = Path(tempfile.mkdtemp(prefix="bench-find-"))
    server = orthanc_peer.start_orthanc(
        tmp, binary=exe, extra_config={"DicomAlwaysAllowFind": True, "LimitFindResults": 0}
    )
    results: dict[str, Any] = {"n": args.n, "repeat": args.repeat, "orthanc": server.version}
    try:
        load_s = load(server, args.n)
        print(f"{server.version}: loaded {args.n} studies in {load_s:.1f} s", file=sys.stderr)
        table = []
        for name, fn in rows(peers.find_binary("findscu")):
            samples: list[Sample] = []
            note = ""
            try:
                fn(server.port, args.n)  # warm-up (Orthanc's caches, imports)
                for _ in range(args.repeat):
                    samples.append(fn(server.port, args.n))
            except Exception as exc:  # a row that cannot run becomes a note
                note = f"{type(exc).__name__}: {exc}"[:200]
            firsts = [s["first_s"] for s in samples if "first_s" in s]
            totals = [s["total_s"] for s in samples]
            rss = [s["rss_growth_mib"] for s in samples if "rss_growth_mib" in s]
            table.append((name, fmt(firsts), fmt(totals), fmt(rss, "MiB") if rss else "-", note))
            results[name] = samples
    finally:
        server.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"\nStudy-level C-FIND, {args.n} matches from {results['orthanc']}, "
          f"median (min-max) of {args.repeat}\n")  # fmt: skip
    print("| row | first result | total | RSS growth | note |\n|---|---|---|---|---|")
    for row in table:
        print("| " + " | ".join(row) + " |")
    if not args.no_save:
        out = ROOT / "benchmarks" / "results"
        out.mkdir(exist_ok=True)
        stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        path = out / f"find-{args.n}-{stamp}.json"
        path.write_text(json.dumps(results, indent=2), encoding="utf-8")
        print(f"\nsaved {path.relative_to(ROOT)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
