"""C-FIND case of ``make bench``: a Study-level query returning N matches from Orthanc.

Orthanc (HTTP off, no fsync of its storage, ``LimitFindResults`` 0) is loaded once with N
studies of one small instance each, sent by aiodimse over a few associations (much faster
than its REST API). Then, ``repeat`` times each, after one warm-up: aiodimse and pynetdicom
in the benchmark process (:mod:`benchmarks.bench_find`: associate, C-FIND, iterate every
match, release) and dcmtk ``findscu`` as a process. Rate: matches per second; the time to
the first match is a detail.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any

import anyio
from benchmarks import bench_find, harness
from benchmarks.harness import HOST, Row, Unavailable

ORTHANC_FIND = {"DicomAlwaysAllowFind": True, "LimitFindResults": 0, "SyncStorageArea": False}


def _datasets(n: int) -> list[Any]:
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import UID, generate_uid

    out = []
    for i in range(n):
        ds = Dataset()
        ds.file_meta = FileMetaDataset()
        ds.file_meta.TransferSyntaxUID = UID("1.2.840.10008.1.2.1")
        ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
        ds.SOPInstanceUID = generate_uid()
        ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
        ds.PatientName, ds.PatientID = f"Bench^P{i:05d}", f"B{i:05d}"
        ds.StudyDate, ds.Modality, ds.InstanceNumber = "20260101", "CT", 1
        ds.Rows = ds.Columns = 8
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
        ds.PixelData = bytes(128)
        ds["PixelData"].VR = "OW"
        out.append(ds)
    return out


def load(port: int, n: int, *, associations: int = 4) -> float:
    """Store ``n`` one-instance studies into the SCP at ``port``; seconds taken."""
    import aiodimse
    from aiodimse.services.storage_contexts import propose_contexts
    from aiodimse.services.storage_scu import DatasetInstance

    items = [DatasetInstance.from_dataset(ds) for ds in _datasets(n)]
    contexts = propose_contexts(items[:1])
    failed: list[str] = []

    async def one(part: list[DatasetInstance]) -> None:
        ae = aiodimse.AE("LOADER")
        async with ae.associate(HOST, port, called_ae="ORTHANC", contexts=contexts) as assoc:
            results = await assoc.store_many(part)
            # Orthanc now and then answers 0xA700 (out of resources) under 4 concurrent
            # loaders: a retryable status; such instances are sent once more.
            again = [item for item, r in zip(part, results, strict=True) if r.retryable]
            if again:
                retried = {
                    id(i): r for i, r in zip(again, await assoc.store_many(again), strict=True)
                }
                results = [retried.get(id(i), r) for i, r in zip(part, results, strict=True)]
        failed.extend(r.describe() for r in results if not r.ok)

    async def main() -> None:
        async with anyio.create_task_group() as tg:
            for i in range(associations):
                tg.start_soon(one, items[i::associations])

    t0 = time.perf_counter()
    anyio.run(main, backend="asyncio")
    if failed:
        raise RuntimeError(f"{len(failed)} of {n} not loaded: {failed[0]}")
    return time.perf_counter() - t0


def run_find(*, n: int, repeat: int, impls: tuple[str, ...]) -> list[Row]:
    section = f"C-FIND Study level, {n:,} matches from Orthanc"
    plan: list[tuple[str, str, str, Callable[[int, int], dict[str, float]]]] = [
        ("find.aiodimse", "aiodimse", "aiodimse (in process)", bench_find.aiodimse_in_process),
        ("find.pynetdicom", "pynetdicom", "pynetdicom (in process)",
         bench_find.pynetdicom_in_process),
    ]  # fmt: skip
    findscu = harness.require_executable("findscu") if "dcmtk" in impls else None
    if findscu:
        k_args = [a for key in bench_find.KEYS for a in ("-k", key)]
        argv = [findscu, "-S", "-aec", "ORTHANC", "-k", "QueryRetrieveLevel=STUDY", *k_args,
                HOST, "{port}"]  # fmt: skip
        plan.append(("find.dcmtk", "dcmtk", "dcmtk findscu (process)", bench_find.process(argv)))
    rows = []
    for ident, impl, label, _ in plan:
        row = Row(section=section, impl=impl, label=label, metric="matches/s", unit="match/s",
                  higher_is_better=True)  # fmt: skip
        row.details["id"] = ident
        if impl not in impls:
            row.error = "not selected"
        rows.append(row)
    try:
        with harness.orthanc_server(extra_config=ORTHANC_FIND) as (_proc, port):
            seconds = load(port, n)
            print(f"  loaded {n} studies into Orthanc in {seconds:.1f} s", file=sys.stderr)
            for row, (_, _, label, fn) in zip(rows, plan, strict=True):
                if row.error:
                    continue
                print(f"  {section}: {label}", file=sys.stderr, flush=True)

                def one(i: int, fn: Any = fn, row: Row = row) -> float:
                    if i == 0:
                        fn(port, n)  # warm-up (Orthanc's caches, imports)
                    sample = fn(port, n)
                    if "first_s" in sample:
                        harness.append_detail(row, "first_s", sample["first_s"])
                    harness.append_detail(row, "seconds", sample["total_s"])
                    return float(n / sample["total_s"])

                harness.run_row(row, repeat, one, time_budget=300)
    except Unavailable as exc:
        for row in rows:
            row.error = row.error or str(exc)
    except Exception as exc:  # Orthanc failing to load must not end the run
        for row in rows:
            row.error = row.error or f"{type(exc).__name__}: {exc}"
    return rows
