"""C-STORE benchmarks: aiodimse beside pynetdicom and dcmtk, every pair in one run.

Two cases (see benchmarks/README.md, "C-STORE"):

``throughput``
    ``500 × 64 KiB`` and ``50 × 4 MiB`` instances over **one association**, with the server
    durable (fsync before answering) and not durable: instances/s and MB/s for
    aiodimse → aiodimse SCP, pynetdicom → pynetdicom SCP, dcmtk storescu → storescp (Nagle
    on, dcmtk's default, and ``TCP_NODELAY=1``), and the cross pairs aiodimse → storescp and
    storescu → aiodimse SCP. dcmtk's storescp has no fsync option: it appears in the
    no-fsync sections only.
``huge``
    One instance of ``--huge-size`` (1 GiB; ``--quick``: 100 MiB), generated streamed in
    chunks, sent between two subprocesses: MB/s, peak RSS of the sending and the receiving
    process (each with its children), and whether the SHA-256 of the dataset bytes stored
    equals that of the bytes sent. The same for dcmtk and pynetdicom (default settings, and
    with its chunked send/receive options).

Every client and server is a subprocess of its own. Servers are measured with
``ManagedProcess.peak_rss`` (``VmHWM``, reset per repetition); clients with the
``ru_maxrss`` that ``wait4`` returns for them, which covers the process and the children it
waited for. Python clients report their own elapsed time (connect to release, interpreter
start-up and imports excluded); dcmtk's storescu is timed around the process (its start-up,
~20 ms, is included). MB/s counts dataset bytes (10^6 bytes per MB).

Usage::

    .venv/bin/python benchmarks/bench_store.py --quick
    .venv/bin/python benchmarks/bench_store.py                       # full: 1 GiB, 3 repeats
    .venv/bin/python benchmarks/bench_store.py --case throughput --impl aiodimse,dcmtk-nodelay
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import hashlib
import itertools
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make ``benchmarks`` and ``tests`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import harness
from benchmarks.harness import HOST, Column, ManagedProcess, Row, Unavailable

BENCH_DIR = Path(__file__).resolve().parent
IMPLS = ("aiodimse", "pynetdicom", "dcmtk", "dcmtk-nodelay")
DCMTK_PDU = 131072  # storescp's largest -pdu (its default is 16384)
CT_IMAGE = "1.2.840.10008.5.1.4.1.1.2"
EXPLICIT_LE = "1.2.840.10008.1.2.1"


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Workload:
    name: str
    count: int
    pixel_bytes: int


WORKLOADS = (
    Workload(name="500×64KiB", count=500, pixel_bytes=64 * 1024),
    Workload(name="50×4MiB", count=50, pixel_bytes=4 * 1024 * 1024),
)


# --------------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------------


def dataset_offset(head: bytes) -> int:
    """Start of the dataset in a PS3.10 file (PS3.10 7.1: group length at offset 132)."""
    if head[128:132] != b"DICM" or head[132:136] != b"\x02\x00\x00\x00":
        raise ValueError("not a PS3.10 file with a File Meta Information Group Length")
    return 144 + int(struct.unpack_from("<I", head, 140)[0])


def dataset_sha256(path: Path, chunk: int = 8 << 20) -> str:
    """SHA-256 of a file's dataset bytes (file meta excluded), read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as fp:
        head = fp.read(64 * 1024)
        start = dataset_offset(head)
        digest.update(head[start:])
        while block := fp.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def write_workload(directory: Path, work: Workload) -> int:
    """``work.count`` CT instances (Explicit VR LE) in ``directory``; returns dataset bytes."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.filewriter import dcmwrite
    from pydicom.uid import UID, generate_uid

    directory.mkdir(parents=True, exist_ok=True)
    pixels = os.urandom(work.pixel_bytes)
    columns = 256 if work.pixel_bytes < 4 << 20 else 2048
    rows = work.pixel_bytes // (2 * columns)
    study, series = generate_uid(), generate_uid()
    total = 0
    for n in range(work.count):
        uid = generate_uid()
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = UID(CT_IMAGE)
        meta.MediaStorageSOPInstanceUID = uid
        meta.TransferSyntaxUID = UID(EXPLICIT_LE)
        ds = Dataset()
        ds.file_meta = meta
        ds.SOPClassUID, ds.SOPInstanceUID = CT_IMAGE, uid
        ds.PatientName, ds.PatientID = "Bench^Store", "BENCH"
        ds.StudyInstanceUID, ds.SeriesInstanceUID = study, series
        ds.Modality, ds.InstanceNumber = "CT", n + 1
        ds.Rows, ds.Columns, ds.SamplesPerPixel = rows, columns, 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
        ds.PixelData = pixels
        ds["PixelData"].VR = "OW"
        path = directory / f"{n:04d}.dcm"
        dcmwrite(path, ds, enforce_file_format=True)
        with path.open("rb") as fp:
            total += path.stat().st_size - dataset_offset(fp.read(4096))
    return total


def write_huge(directory: Path, size: int) -> tuple[Path, int, str]:
    """One ``size``-byte instance, streamed (``tests.support.datagen.write_streamed``)."""
    from tests.support import datagen

    gen = datagen.write_streamed(directory, size, chunk_size=4 << 20)
    with gen.path.open("rb") as fp:
        length = gen.path.stat().st_size - dataset_offset(fp.read(64 * 1024))
    return gen.path, length, dataset_sha256(gen.path)


def stored_files(directory: Path) -> list[Path]:
    """Files a server finished (hidden/temporary names excluded)."""
    return [
        p
        for p in directory.rglob("*")
        if p.is_file() and not p.name.startswith(".") and not p.name.endswith((".part", ".tmp"))
    ]


_retired = itertools.count()


def retire(directory: Path) -> None:
    """Empty ``directory`` for the next repetition by *moving* what it holds aside (into
    ``<its parent>/retired``, deleted with the run's temporary directory at the end).

    Deleting instead makes the next repetition's file creation several times slower on
    ext4 (the inode allocator skips inodes freed in the last seconds; measured 0.1-1 ms
    of kernel time per create right after a deletion, for dcmtk's storescp as much as
    for aiodimse), so the rows would measure the allocator, not the servers."""
    if not directory.exists():
        return
    aside = directory.parent / "retired" / str(next(_retired))
    aside.mkdir(parents=True)
    for p in directory.iterdir():
        with contextlib.suppress(OSError):
            p.rename(aside / p.name)


# --------------------------------------------------------------------------------------------
# Servers
# --------------------------------------------------------------------------------------------


@dataclasses.dataclass(kw_only=True)
class Server:
    proc: ManagedProcess
    port: int
    aet: str
    output: Path


@contextlib.contextmanager
def start_server(
    impl: str,
    output: Path,
    *,
    durable: bool,
    chunked: bool = False,
    ignore: bool = False,
    window: int = 1,
    max_associations: int = 10,
) -> Iterator[Server]:
    """A storage server as a subprocess, storing in ``output`` (``ignore``: discarding).

    ``window`` and ``max_associations`` apply to the aiodimse SCP only.
    """
    output.mkdir(parents=True, exist_ok=True)
    if impl == "aiodimse":
        args = ["-od", str(output), "--aet", "STORE_SCP"] + ([] if durable else ["--no-fsync"])
        args += ["--ignore"] if ignore else []
        args += ["--window", str(window), "--max-associations", str(max_associations)]
        script = BENCH_DIR / "_aiodimse_store_server.py"
        with harness.python_server(script, args, name="aiodimse-scp") as (proc, port):
            yield Server(proc=proc, port=port, aet="STORE_SCP", output=output)
    elif impl == "pynetdicom":
        args = ["server", "-od", str(output)] + ([] if durable else ["--no-fsync"])
        args += ["--chunked"] if chunked else []
        args += ["--ignore"] if ignore else []
        script = BENCH_DIR / "_aiodimse_store_pynetdicom.py"
        with harness.python_server(script, args, name="pynetdicom-scp") as (proc, port):
            yield Server(proc=proc, port=port, aet="PYNETDICOM_SCP", output=output)
    elif impl in ("dcmtk", "dcmtk-nodelay"):
        if durable:
            raise Unavailable("dcmtk storescp has no fsync option: see the no-fsync rows")
        exe = harness.require_executable("storescp")
        port = harness.free_port()
        # +B: write the dataset exactly as received (as aiodimse does); largest PDU it allows.
        # +xa: accept every transfer syntax it supports (JPEG too), as the others do.
        argv = [exe, "-aet", "STORESCP", "-od", str(output), "+B", "-pdu", str(DCMTK_PDU), "+xa"]
        argv += ["--ignore"] if ignore else []
        env = harness.NODELAY_ENV if impl == "dcmtk-nodelay" else None
        proc = ManagedProcess([*argv, str(port)], name=impl, env=env, cwd=output)
        try:
            with proc:
                harness.wait_for_port(port, timeout=15, proc=proc.proc)
                proc.mark_idle()
                yield Server(proc=proc, port=port, aet="STORESCP", output=output)
        finally:
            proc.cleanup_logs()
    elif impl == "orthanc":
        # Orthanc keeps its own storage (SyncStorageArea: fsync, its default since 1.7.4);
        # ``output`` stays empty: count what the client reports as stored.
        with harness.orthanc_server() as (proc, port):
            yield Server(proc=proc, port=port, aet="ORTHANC", output=output)
    else:
        raise Unavailable(f"unknown server {impl}")


# --------------------------------------------------------------------------------------------
# Clients
# --------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class ClientRun:
    elapsed: float  # inside the client when it reports it, else around the process
    wall: float
    max_rss: int | None
    report: dict[str, Any]


def client_argv(impl: str, server: Server, source: Path, *, chunked: bool = False) -> list[str]:
    if impl == "aiodimse":
        script = BENCH_DIR / "_aiodimse_store_client.py"
        return [
            sys.executable,
            str(script),
            HOST,
            str(server.port),
            str(source),
            "-aec",
            server.aet,
        ]
    if impl == "pynetdicom":
        script = BENCH_DIR / "_aiodimse_store_pynetdicom.py"
        argv = [sys.executable, str(script), "client", HOST, str(server.port), str(source)]
        return [*argv, "--aec", server.aet] + (["--chunked"] if chunked else [])
    if impl in ("dcmtk", "dcmtk-nodelay"):
        exe = harness.require_executable("storescu")
        return [exe, "-aec", server.aet, "+sd", HOST, str(server.port), str(source)]
    raise Unavailable(f"unknown client {impl}")


#: GNU time forks the client from a small process, so the client's ``ru_maxrss`` is its own.
#: (A child forked from this big Python process would inherit our high-water mark at exec:
#: Linux keeps the pre-exec image's peak in the child's ``maxrss``.)
GNU_TIME = "/usr/bin/time"


def _poll_peak(pid: int, stop: threading.Event, peak: list[int]) -> None:
    while not stop.wait(0.02):
        value = harness.read_vmhwm(pid) or harness.current_rss(pid)
        if value is None:
            return
        peak[0] = max(peak[0], value)


def run_client(argv: list[str], *, env: dict[str, str] | None, timeout: float) -> ClientRun:
    """Run a client to completion; its peak RSS (children included).

    With GNU time (Linux): ``%M``, the ``ru_maxrss`` of the client and the children it
    waited for. Elsewhere: ``VmHWM``/RSS polled every 20 ms (may miss the last moments).
    """
    use_time = os.path.exists(GNU_TIME) and sys.platform.startswith("linux")
    with tempfile.TemporaryDirectory(prefix="bench-client-") as tmp:
        rss_file = Path(tmp) / "rss"
        full = [GNU_TIME, "-f", "%M", "-o", str(rss_file), *argv] if use_time else argv
        stop, peak = threading.Event(), [0]
        with open(Path(tmp) / "out", "w+b") as out, open(Path(tmp) / "err", "w+b") as err:
            t0 = time.perf_counter()
            proc = subprocess.Popen(
                full,
                stdout=out,
                stderr=err,
                stdin=subprocess.DEVNULL,
                env={**os.environ, **(env or {})},
            )
            poller = None
            if not use_time:
                poller = threading.Thread(target=_poll_peak, args=(proc.pid, stop, peak))
                poller.start()
            try:
                harness.wait_exactly(proc, timeout)  # a dcmtk client is timed by this wait
            except subprocess.TimeoutExpired:
                raise RuntimeError(f"client still running after {timeout:.0f} s") from None
            finally:
                stop.set()
                if poller is not None:
                    poller.join()
            wall = time.perf_counter() - t0
            out.seek(0)
            err.seek(0)
            stdout = out.read().decode("utf-8", "replace")
            stderr = err.read().decode("utf-8", "replace")
        max_rss: int | None = peak[0] or None
        if use_time:
            lines = rss_file.read_text(encoding="ascii", errors="replace").split()
            max_rss = int(lines[-1]) * 1024 if lines and lines[-1].isdigit() else None
    if proc.returncode != 0:
        # The last line of a traceback (or of the JSON report) says what went wrong.
        last = [line for line in (stderr + stdout).splitlines() if line.strip()][-1:]
        raise RuntimeError(f"client exit {proc.returncode}: {' '.join(last)[:200]}")
    report: dict[str, Any] = {}
    for line in stdout.splitlines():
        if line.startswith("{"):
            report = json.loads(line)
    return ClientRun(
        elapsed=float(report.get("elapsed", wall)), wall=wall, max_rss=max_rss, report=report
    )


# --------------------------------------------------------------------------------------------
# Cases
# --------------------------------------------------------------------------------------------

LABELS = {
    "aiodimse": "aiodimse",
    "pynetdicom": "pynetdicom",
    "dcmtk": "dcmtk storescu",
    "dcmtk-nodelay": "dcmtk storescu TCP_NODELAY=1",
}
SERVER_LABELS = {
    "aiodimse": "aiodimse SCP",
    "pynetdicom": "pynetdicom SCP",
    "dcmtk": "storescp",
    "dcmtk-nodelay": "storescp TCP_NODELAY=1",
    "orthanc": "Orthanc (fsync: SyncStorageArea)",
}


def pairs(impls: tuple[str, ...], durable: bool) -> list[tuple[str, str, str]]:
    """(row impl, client, server): own pairs, then the cheap cross pairs."""
    out = [(i, i, i) for i in IMPLS if i in impls]
    if "aiodimse" in impls and "dcmtk-nodelay" in impls:
        if not durable:
            out.append(("cross", "aiodimse", "dcmtk-nodelay"))
        out.append(("cross", "dcmtk-nodelay", "aiodimse"))
    return out


def client_env(client: str) -> dict[str, str] | None:
    return dict(harness.NODELAY_ENV) if client == "dcmtk-nodelay" else None


@contextlib.contextmanager
def setup_server(
    row: Row,
    out: Path,
    *,
    client: str,
    server_impl: str,
    source: Path,
    durable: bool,
    timeout: float,
    check: Callable[[Server, ClientRun], float],
    chunked: bool = False,
    ignore: bool = False,
    window: int = 1,
    client_args: tuple[str, ...] = (),
) -> Iterator[Callable[[int], float]]:
    """The row's server, storing in ``out``, running while the context is open; yields
    ``measure(i)``: one client run, which ``check`` turns into a sample (and details).

    ``ignore``: the server discards; ``window``: the aiodimse SCP's operations window;
    ``client_args`` are appended to the client's command line."""
    retire(out)
    try:
        with start_server(
            server_impl, out, durable=durable, chunked=chunked, ignore=ignore, window=window
        ) as server:
            argv = client_argv(client, server, source, chunked=chunked)
            # dcmtk wants options before its positional arguments; argparse takes them anywhere
            at = 1 if client.startswith("dcmtk") else len(argv)
            argv[at:at] = client_args

            def measure(i: int) -> float:
                retire(server.output)
                server.proc.reset_peak()
                run = run_client(argv, env=client_env(client), timeout=timeout)
                harness.append_detail(row, "server_rss", server.proc.peak_rss())
                harness.append_detail(row, "client_rss", run.max_rss)
                return check(server, run)

            yield measure
    finally:
        retire(out)


def run_setup(
    row: Row,
    tmp: Path,
    *,
    repeat: int,
    timeout: float,
    **setup: Any,
) -> None:
    """One fresh server for the row (:func:`setup_server`, ``setup`` its keywords);
    ``repeat`` client runs. Anything that goes wrong becomes the row's note."""
    print(f"  {row.section}: {row.label}", file=sys.stderr, flush=True)
    try:
        with setup_server(row, tmp / "out", timeout=timeout, **setup) as measure:
            harness.run_row(row, repeat, measure, time_budget=2 * timeout)
    except Unavailable as exc:
        row.error = str(exc)
    except Exception as exc:  # a peer that fails to start must not stop the run
        row.error = f"{type(exc).__name__}: {exc}"


def throughput_check(row: Row, work: Workload, total: int) -> Callable[[Server, ClientRun], float]:
    def check(server: Server, run: ClientRun) -> float:
        got = len(stored_files(server.output))
        if got != work.count:
            raise RuntimeError(f"{got} of {work.count} files stored")
        harness.append_detail(row, "mb_s", total / 1e6 / run.elapsed)
        return work.count / run.elapsed

    return check


def measure_throughput(settings: argparse.Namespace, tmp: Path, rows: list[Row]) -> None:
    for work in WORKLOADS:
        source = tmp / f"src-{work.count}"
        t0 = time.perf_counter()
        total = write_workload(source, work)
        print(
            f"generated {work.name}: {total / 1e6:.0f} MB in {time.perf_counter() - t0:.1f} s",
            file=sys.stderr,
        )
        for durable in (True, False):
            if ("durable" if durable else "nondurable") not in settings.durability:
                continue
            section = f"{work.name} {'fsync' if durable else 'no fsync'}"
            for impl, client, server_impl in pairs(settings.impls, durable):
                row = Row(
                    section=section,
                    impl=impl,
                    label=f"{LABELS[client]} → {SERVER_LABELS[server_impl]}",
                    metric="instances/s",
                    unit="inst/s",
                    higher_is_better=True,
                )
                rows.append(row)
                run_setup(
                    row,
                    tmp,
                    client=client,
                    server_impl=server_impl,
                    source=source,
                    durable=durable,
                    repeat=settings.repeat,
                    timeout=600,
                    check=throughput_check(row, work, total),
                )
        shutil.rmtree(source, ignore_errors=True)


def huge_check(row: Row, length: int, digest: str) -> Callable[[Server, ClientRun], float]:
    def check(server: Server, run: ClientRun) -> float:
        files = stored_files(server.output)
        if len(files) != 1:
            raise RuntimeError(f"{len(files)} files stored, expected 1")
        harness.append_detail(row, "sha256_equal", dataset_sha256(files[0]) == digest)
        harness.append_detail(row, "seconds", run.elapsed)
        return length / 1e6 / run.elapsed

    return check


def measure_huge(settings: argparse.Namespace, tmp: Path, rows: list[Row]) -> None:
    source = tmp / "huge"
    t0 = time.perf_counter()
    path, length, digest = write_huge(source, settings.huge_size)
    print(
        f"generated one {length / 1e6:.0f} MB instance in {time.perf_counter() - t0:.1f} s",
        file=sys.stderr,
    )
    section = f"1×{length / 2**20:.0f}MiB"
    setups: list[tuple[str, bool, bool, str]] = []  # impl, durable, chunked, note
    if "aiodimse" in settings.impls:
        # no fsync first: it is the section's baseline, like the peers (which do not fsync)
        setups += [("aiodimse", False, False, "no fsync"), ("aiodimse", True, False, "fsync")]
    if "dcmtk-nodelay" in settings.impls:
        setups.append(("dcmtk-nodelay", False, False, "+B, no fsync"))
    if "pynetdicom" in settings.impls:
        setups.append(("pynetdicom", False, True, "chunked options, no fsync"))
        if settings.huge_size <= settings.pynetdicom_default_max:
            setups.append(("pynetdicom", False, False, "default, no fsync"))
    for impl, durable, chunked, note in setups:
        row = Row(
            section=section,
            impl=impl,
            label=f"{LABELS[impl]} → {SERVER_LABELS[impl]} ({note})",
            metric="MB/s",
            unit="MB/s",
            higher_is_better=True,
        )
        rows.append(row)
        run_setup(
            row,
            tmp,
            client=impl,
            server_impl=impl,
            source=path,
            durable=durable,
            chunked=chunked,
            repeat=settings.huge_repeat,
            timeout=1800,
            check=huge_check(row, length, digest),
        )
        if impl.startswith("dcmtk") and False in row.details.get("sha256_equal", []):
            row.error = row.error or (
                "storescu re-encodes the dataset it sends (undefined-length sequences and items "
                "become defined-length); storescp +B stores what it received"
            )
    shutil.rmtree(source, ignore_errors=True)


def fmt_bool(value: Any) -> str:
    if isinstance(value, list) and value:
        return "yes" if all(v is True for v in value) else "NO"
    return "–"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--case", choices=("throughput", "huge", "all"), default="all")
    p.add_argument(
        "--impl",
        default=",".join(IMPLS),
        help=f"comma-separated subset of {','.join(IMPLS)} (default: all)",
    )
    p.add_argument("--quick", action="store_true", help="1 repetition, 100 MiB huge instance")
    p.add_argument("--repeat", type=int, default=None, help="repetitions per row (3; quick 1)")
    p.add_argument("--huge-repeat", type=int, default=1, help="repetitions of huge rows (1)")
    p.add_argument("--huge-size", type=int, default=None, help="bytes (1 GiB; quick 100 MiB)")
    p.add_argument(
        "--durability",
        default="durable,nondurable",
        help="durable (server fsyncs), nondurable, or both (default)",
    )
    p.add_argument(
        "--pynetdicom-default-max",
        type=int,
        default=2 << 30,
        help="largest huge instance sent through pynetdicom's default (in-memory) path",
    )
    p.add_argument("--no-save", action="store_true", help="do not write results/*.json")
    args = p.parse_args(argv)
    args.impls = tuple(i for i in args.impl.split(",") if i)
    unknown = set(args.impls) - set(IMPLS)
    if unknown:
        p.error(f"unknown --impl {sorted(unknown)}")
    args.durability = tuple(args.durability.split(","))
    args.repeat = args.repeat or (1 if args.quick else 3)
    args.huge_size = args.huge_size or ((100 << 20) if args.quick else (1 << 30))
    harness.install_signal_handlers()
    print(f"CPU pinning: {harness.pin_clients()}", flush=True)
    rows: list[Row] = []
    tmp = Path(tempfile.mkdtemp(prefix="bench-store-"))
    try:
        if args.case in ("throughput", "all"):
            measure_throughput(args, tmp, rows)
        if args.case in ("huge", "all"):
            measure_huge(args, tmp, rows)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    columns = [
        Column(key="mb_s", header="MB/s"),
        Column(key="seconds", header="s"),
        Column(key="server_rss", header="server peak RSS MiB", fmt=harness.fmt_mib),
        Column(key="client_rss", header="client peak RSS MiB", fmt=harness.fmt_mib),
        Column(key="sha256_equal", header="sha256 equal", fmt=fmt_bool),
    ]
    print()
    print(harness.markdown_table(rows, columns))
    if not args.no_save:
        parameters = {
            "case": args.case,
            "impls": list(args.impls),
            "repeat": args.repeat,
            "huge_repeat": args.huge_repeat,
            "huge_size": args.huge_size,
            "durability": list(args.durability),
            "workloads": [dataclasses.asdict(w) for w in WORKLOADS],
            "dcmtk": f"storescp +B -pdu {DCMTK_PDU} (no fsync); storescu +sd",
            "timing": "Python clients: inside (connect..release); storescu: around the process",
        }
        name = "store-quick" if args.quick else "store"
        path = harness.write_results(
            name, rows, parameters=parameters, machine=harness.machine_info()
        )
        print(f"\nsaved {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
