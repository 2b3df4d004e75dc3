"""Streaming transcoder benchmark (issue 8): throughput and peak memory.

Two cases:

``huge``
    A 1 GiB Explicit VR Little Endian data set (Multi-frame Grayscale Word SC, the layout of
    ``tests.support.datagen.write_streamed``) generated on the fly in 1 MiB chunks and fed
    through :class:`aiodimse.dataset.Transcoder` to Implicit VR LE and to Explicit VR Big
    Endian (and to Deflated with ``--deflate``). Each target runs in a fresh subprocess so
    its peak RSS (Linux ``VmHWM``; Windows ``peak_wset``; else ``ru_maxrss``) is its own.
    MB/s counts source bytes over the time spent inside ``feed``/``finish`` (the pixel
    generator is not timed; wall time is reported too), beside one ``memcpy`` of the same
    chunks for reference. To Implicit VR LE the Pixel Data value is passed on as zero-copy
    slices of the (immutable) input chunks, so it can be faster than a copy. The run fails
    if a peak RSS reaches 100 MB.
``ct``
    A typical 512x512x16 bit CT data set (~512 KB, ``datagen`` CT) transcoded whole with
    ``transcode_bytes`` to each other syntax: datasets/s and MB/s, beside pydicom reading
    and re-writing the same data set in Implicit VR LE (the same work done the usual way).

Results are printed and written to ``benchmarks/results/transcode-<UTC>.json``. Timings on a
shared machine are noisy: compare ratios from one run, not absolutes across runs.

Usage::

    .venv/bin/python benchmarks/bench_transcode.py            # 1 GiB
    .venv/bin/python benchmarks/bench_transcode.py --quick    # 100 MiB, fewer CT repeats
"""

from __future__ import annotations

import argparse
import datetime as _dt
import io
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make ``aiodimse``/``tests`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

RESULTS_DIR = Path(__file__).resolve().parent / "results"
EXPLICIT_LE = "1.2.840.10008.1.2.1"
TARGETS = {
    "implicit-le": "1.2.840.10008.1.2",
    "explicit-be": "1.2.840.10008.1.2.2",
    "deflated": "1.2.840.10008.1.2.1.99",
}
RSS_LIMIT = 100 * 1000 * 1000
FRAME = 512 * 512 * 2


def peak_rss() -> int:
    """Peak resident set size of this process in bytes."""
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    import psutil

    info = psutil.Process().memory_info()
    peak = getattr(info, "peak_wset", None)
    if peak:
        return int(peak)
    import resource  # POSIX without /proc (macOS: bytes)

    usage = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(usage if sys.platform == "darwin" else usage * 1024)


def dataset_header(pixel_len: int) -> bytes:
    """The Explicit VR LE data set up to and including the Pixel Data element header."""
    from pydicom.filebase import DicomBytesIO
    from pydicom.filewriter import write_dataset
    from tests.support.datagen import MF_GRAYSCALE_WORD_SC, Kind, Spec
    from tests.support.datasets import dataset_without_pixels, set_sequence_lengths

    frames = pixel_len // FRAME
    spec = Spec(kind=Kind.SC, rows=512, columns=512, frames=frames)
    ds = dataset_without_pixels(spec)
    ds.SOPClassUID = MF_GRAYSCALE_WORD_SC
    ds.NumberOfFrames = frames
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, 12, 11
    set_sequence_lengths(ds, True)
    fp = DicomBytesIO()
    fp.is_little_endian, fp.is_implicit_VR = True, False
    write_dataset(fp, ds)
    # PS3.5 7.1.2: (7FE0,0010) OW, 2 reserved bytes, 32-bit length.
    return fp.getvalue() + b"\xe0\x7f\x10\x00OW\x00\x00" + pixel_len.to_bytes(4, "little")


def child_huge(target: str, size: int, chunk: int) -> dict[str, Any]:
    """Run one huge case in this process; return its measurements."""
    from tests.support.datagen import iter_streamed_chunks

    from aiodimse.dataset import Transcoder

    pixel_len = max(1, size // FRAME) * FRAME
    header = dataset_header(pixel_len)
    rss_before = peak_rss()
    transcoder = Transcoder(EXPLICIT_LE, TARGETS[target])
    busy = 0.0
    copy = 0.0  # reference: one memcpy of each input chunk
    out_bytes = 0
    wall = time.perf_counter()
    t0 = time.perf_counter()
    out_bytes += sum(len(c) for c in transcoder.feed(header))
    busy += time.perf_counter() - t0
    for piece in iter_streamed_chunks(pixel_len, seed=0, chunk_size=chunk):
        t0 = time.perf_counter()
        out_bytes += sum(len(c) for c in transcoder.feed(piece))
        t1 = time.perf_counter()
        bytearray(piece)
        copy += time.perf_counter() - t1
        busy += t1 - t0
    t0 = time.perf_counter()
    out_bytes += sum(len(c) for c in transcoder.finish())
    busy += time.perf_counter() - t0
    wall = time.perf_counter() - wall
    source = len(header) + pixel_len
    return {
        "case": "huge",
        "target": target,
        "source_bytes": source,
        "output_bytes": out_bytes,
        "chunk_bytes": chunk,
        "transcode_seconds": busy,
        "wall_seconds": wall,
        "mb_per_s": source / busy / 1e6,
        "memcpy_mb_per_s": pixel_len / copy / 1e6,
        "peak_rss_bytes": peak_rss(),
        "rss_before_transcoding_bytes": rss_before,
    }


def bench_ct(repeat: int) -> list[dict[str, Any]]:
    from pydicom.filebase import DicomBytesIO
    from pydicom.filereader import read_dataset
    from pydicom.filewriter import write_dataset
    from tests.support.datagen import Kind, Spec, dataset_bytes

    from aiodimse.dataset import transcode_bytes

    data = dataset_bytes(Spec(kind=Kind.CT, rows=512, columns=512))
    rows: list[dict[str, Any]] = []

    def timed(name: str, func: Any) -> None:
        func()  # warm up
        t0 = time.perf_counter()
        for _ in range(repeat):
            func()
        dt = time.perf_counter() - t0
        rows.append(
            {
                "case": "ct",
                "what": name,
                "dataset_bytes": len(data),
                "repeat": repeat,
                "datasets_per_s": repeat / dt,
                "mb_per_s": repeat * len(data) / dt / 1e6,
            }
        )

    for target, uid in TARGETS.items():
        timed(
            f"aiodimse explicit-le -> {target}",
            lambda uid=uid: transcode_bytes(data, EXPLICIT_LE, uid),
        )

    def pydicom_roundtrip() -> bytes:
        ds = read_dataset(io.BytesIO(data), False, True)
        fp = DicomBytesIO()
        fp.is_little_endian, fp.is_implicit_VR = True, True
        write_dataset(fp, ds)
        return fp.getvalue()

    timed("pydicom read + write explicit-le -> implicit-le", pydicom_roundtrip)
    return rows


def run_child(target: str, size: int, chunk: int) -> dict[str, Any]:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", target]
    cmd += ["--size", str(size), "--chunk", str(chunk)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=1800)
    if proc.returncode != 0:
        raise RuntimeError(f"child {target} failed:\n{proc.stderr}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, default=1 << 30, help="source size in bytes")
    parser.add_argument("--chunk", type=int, default=1 << 20, help="feed chunk size")
    parser.add_argument("--quick", action="store_true", help="100 MiB and 50 CT repeats")
    parser.add_argument("--deflate", action="store_true", help="also the huge case to Deflated")
    parser.add_argument("--ct-repeat", type=int, default=200)
    parser.add_argument("--child", choices=sorted(TARGETS), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child_huge(args.child, args.size, args.chunk)))
        return 0
    size = 100 << 20 if args.quick else args.size
    repeat = 50 if args.quick else args.ct_repeat
    targets = ["implicit-le", "explicit-be"] + (["deflated"] if args.deflate else [])
    huge = [run_child(t, size, args.chunk) for t in targets]
    ct = bench_ct(repeat)
    print(f"huge: {size / (1 << 20):.0f} MiB Explicit VR LE in {args.chunk >> 10} KiB chunks")
    for r in huge:
        print(
            f"  -> {r['target']:<12} {r['mb_per_s']:8.0f} MB/s"
            f" (memcpy {r['memcpy_mb_per_s']:.0f} MB/s, wall {r['wall_seconds']:.1f} s)"
            f"  peak RSS {r['peak_rss_bytes'] / 1e6:6.1f} MB"
            f" (before transcoding {r['rss_before_transcoding_bytes'] / 1e6:.1f} MB)"
        )
    print(f"ct: {ct[0]['dataset_bytes'] / 1e3:.0f} KB CT data set, {repeat} repeats")
    for r in ct:
        print(f"  {r['what']:<50} {r['datasets_per_s']:8.0f} datasets/s {r['mb_per_s']:8.0f} MB/s")
    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    RESULTS_DIR.mkdir(exist_ok=True)
    path = RESULTS_DIR / f"transcode-{stamp}.json"
    payload = {
        "benchmark": "transcode",
        "utc": stamp,
        "machine": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
        },
        "rss_limit_bytes": RSS_LIMIT,
        "huge": huge,
        "ct": ct,
    }
    path.write_text(json.dumps(payload, indent=2) + "\n")
    print(f"wrote {path}")
    over = [r["target"] for r in huge if r["peak_rss_bytes"] >= RSS_LIMIT]
    if over:
        print(f"FAIL: peak RSS >= 100 MB for {over}")
        return 1
    ok = all(r["output_bytes"] > 0 for r in huge)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
