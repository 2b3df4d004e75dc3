"""K simultaneous aiodimse associations, each storing N instances, from one event loop.

For the scale case of ``make bench``: ``K`` associations are opened at once against one SCP;
each sends ``N`` CT instances (Explicit VR LE, ``--pixel-bytes`` of pixel data shared by all,
a unique SOP Instance UID each) with ``store_many`` and releases. Prints one JSON line:
``elapsed`` (first connect to last release), ``assoc_ok``, ``assoc_failed``, ``stored``,
``errors`` (exception type or failure text → count) and ``first_error``. Exit status 0
whenever the report was printed (it says what failed).
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import sys
import time
from typing import Any

import anyio

CT_IMAGE = "1.2.840.10008.5.1.4.1.1.2"
EXPLICIT_LE = "1.2.840.10008.1.2.1"


def raise_open_files_limit(wanted: int) -> None:
    """Raise the soft RLIMIT_NOFILE towards ``wanted`` (POSIX; nothing to do on Windows)."""
    try:
        import resource
    except ImportError:
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


def make_datasets(count: int, pixels: bytes, study: str) -> list[Any]:
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import UID, generate_uid

    columns = 256
    rows = len(pixels) // (2 * columns)
    out = []
    for n in range(count):
        uid = generate_uid()
        ds = Dataset()
        ds.file_meta = FileMetaDataset()
        ds.file_meta.TransferSyntaxUID = UID(EXPLICIT_LE)
        ds.SOPClassUID, ds.SOPInstanceUID = CT_IMAGE, uid
        ds.PatientName, ds.PatientID = "Bench^Scale", "SCALE"
        ds.StudyInstanceUID, ds.SeriesInstanceUID = study, study + ".1"
        ds.Modality, ds.InstanceNumber = "CT", n + 1
        ds.Rows, ds.Columns, ds.SamplesPerPixel = rows, columns, 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
        ds.PixelData = pixels
        ds["PixelData"].VR = "OW"
        out.append(ds)
    return out


async def run(args: argparse.Namespace) -> dict[str, Any]:
    from pydicom.uid import generate_uid

    import aiodimse
    from aiodimse.services.storage_contexts import propose_contexts
    from aiodimse.services.storage_scu import DatasetInstance

    pixels = os.urandom(args.pixel_bytes)
    timeouts = aiodimse.Timeouts(connect=args.timeout, acse=args.timeout, store=args.timeout)
    ae = aiodimse.AE("SCALESCU", timeouts=timeouts)
    batches = [
        [DatasetInstance.from_dataset(ds) for ds in make_datasets(args.n, pixels, generate_uid())]
        for _ in range(args.k)
    ]
    contexts = propose_contexts(batches[0][:1])
    counts: collections.Counter[str] = collections.Counter()
    errors: collections.Counter[str] = collections.Counter()
    first_error: list[str] = []

    async def one(batch: list[Any]) -> None:
        try:
            async with ae.associate(
                args.host, args.port, called_ae=args.aec, contexts=contexts
            ) as assoc:
                results = await assoc.store_many(batch)
        except Exception as exc:  # counted; the others go on
            counts["assoc_failed"] += 1
            errors[type(exc).__name__] += 1
            if not first_error:
                first_error.append(f"{type(exc).__name__}: {exc}"[:300])
            return
        good = sum(1 for r in results if r.ok)
        counts["stored"] += good
        counts["assoc_ok" if good == len(batch) else "assoc_failed"] += 1
        for r in results:
            if not r.ok:
                errors[r.describe()[:60]] += 1
                if not first_error:
                    first_error.append(r.describe()[:300])

    t0 = time.perf_counter()
    with anyio.move_on_after(args.time_limit):
        async with anyio.create_task_group() as tg:
            for batch in batches:
                tg.start_soon(one, batch)
    elapsed = time.perf_counter() - t0
    unfinished = args.k - counts["assoc_ok"] - counts["assoc_failed"]
    if unfinished:
        errors["unfinished at time limit"] += unfinished
    return {
        "elapsed": elapsed,
        "assoc_ok": counts["assoc_ok"],
        "assoc_failed": counts["assoc_failed"] + unfinished,
        "stored": counts["stored"],
        "errors": dict(errors.most_common(5)),
        "first_error": first_error[0] if first_error else None,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("host")
    parser.add_argument("port", type=int)
    parser.add_argument("-aec", "--aec", default="ANY-SCP")
    parser.add_argument("-k", type=int, default=100, help="simultaneous associations")
    parser.add_argument("-n", type=int, default=10, help="instances per association")
    parser.add_argument("--pixel-bytes", type=int, default=64 << 10)
    parser.add_argument("--timeout", type=float, default=120.0, help="connect/ACSE/store")
    parser.add_argument("--time-limit", type=float, default=300.0)
    args = parser.parse_args(argv)
    raise_open_files_limit(4 * args.k + 256)
    report: dict[str, Any] = anyio.run(run, args)
    print(json.dumps(report), flush=True)
    return 0  # the report says what failed; a crash exits non-zero


if __name__ == "__main__":
    sys.exit(main())
