"""The C-STORE cases of ``make bench`` (issue 9), built on :mod:`benchmarks.bench_store`.

Workloads over **one association** (every client and server a subprocess; see
``bench_store`` for timing and memory): ``500 × 64 KiB``, ``200 × 512 KiB``, ``50 × 4 MiB``
(CT, Explicit VR LE, random pixels) and ``200 × JPEG`` (~240 KB, Secondary Capture 768×768
RGB, real JPEG Baseline from ``tests.support.datagen``); the SCP in three modes:

* ``fsync``: durable, fsync before the success status (aiodimse, pynetdicom, and Orthanc
  for 64 KiB and 4 MiB: it fsyncs its storage area by default; dcmtk storescp has no such
  option);
* ``no fsync``: written, not synced (dcmtk storescp ``+B``, as it always does);
* ``discard``: received and thrown away (``--ignore`` in each implementation).

Slow senders (pynetdicom, dcmtk with Nagle on) send only the first ``slow_count`` files of a
workload: a rate needs no more, and the suite has a time budget. Their label says so.

The 64 KiB no-fsync section has a reference row, ``raw Python ceiling``
(:mod:`benchmarks.rawstore`): the cheapest asyncio pair doing that case's unavoidable work
without DICOM (the same files, window 16, one connection, a new file per message, an ack
each). No DICOM pair in Python can beat it on the same machine.

The section ``Nagle senders`` answers "does aiodimse avoid their stall": senders that leave
Nagle's algorithm on (pynetdicom, dcmtk storescu by default) against their own SCP and
against aiodimse's (which re-arms TCP_QUICKACK).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import functools
import os
import shutil
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager as ContextManager
from pathlib import Path

from benchmarks import bench_store, harness, rawlimit
from benchmarks.bench_store import ClientRun, Server
from benchmarks.harness import Row, Unavailable

JPEG_SIDE = 768  # 768×768 RGB at quality 90: ~240 KB per instance


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Workload:
    """``count`` instances: CT with ``pixel_bytes`` of random pixels, or JPEG (``jpeg``)."""

    key: str  # short id part: 64k, 512k, 4m, jpeg
    name: str
    count: int
    pixel_bytes: int = 0
    jpeg: bool = False


def workloads(quick: bool) -> tuple[Workload, ...]:
    if quick:
        return (
            Workload(key="64k", name="100×64KiB", count=100, pixel_bytes=64 << 10),
            Workload(key="4m", name="20×4MiB", count=20, pixel_bytes=4 << 20),
            Workload(key="jpeg", name="30×JPEG~240KB", count=30, jpeg=True),
        )
    return (
        Workload(key="64k", name="500×64KiB", count=500, pixel_bytes=64 << 10),
        Workload(key="512k", name="200×512KiB", count=200, pixel_bytes=512 << 10),
        Workload(key="4m", name="50×4MiB", count=50, pixel_bytes=4 << 20),
        Workload(key="jpeg", name="200×JPEG~240KB", count=200, jpeg=True),
    )


# --------------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------------


def write_jpeg_workload(directory: Path, count: int) -> int:
    """``count`` JPEG Baseline instances (one real JPEG image, new UIDs); dataset bytes."""
    from pydicom import dcmread
    from pydicom.uid import JPEGBaseline8Bit, generate_uid
    from tests.support import datagen
    from tests.support.datasets import Kind, Spec

    directory.mkdir(parents=True, exist_ok=True)
    spec = Spec(
        kind=Kind.SC,
        transfer_syntax=JPEGBaseline8Bit,
        rows=JPEG_SIDE,
        columns=JPEG_SIDE,
        samples_per_pixel=3,
        private_tags=False,
        seed=9,
    )
    first = datagen.write_file(spec, directory, "template.dcm")
    ds = dcmread(first.path)
    first.path.unlink()
    total = 0
    for n in range(count):
        uid = generate_uid()
        ds.SOPInstanceUID = uid
        ds.file_meta.MediaStorageSOPInstanceUID = uid
        ds.InstanceNumber = n + 1
        path = directory / f"{n:04d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        with path.open("rb") as fp:
            total += path.stat().st_size - bench_store.dataset_offset(fp.read(4096))
    return total


def generate(work: Workload, directory: Path) -> int:
    """Write the workload into ``directory``; return its dataset bytes."""
    if work.jpeg:
        return write_jpeg_workload(directory, work.count)
    return bench_store.write_workload(
        directory,
        bench_store.Workload(name=work.name, count=work.count, pixel_bytes=work.pixel_bytes),
    )


def subset(source: Path, count: int, target: Path) -> Path:
    """A directory with the first ``count`` files of ``source`` (hard links where possible)."""
    target.mkdir(parents=True, exist_ok=True)
    for path in sorted(source.iterdir())[:count]:
        dest = target / path.name
        try:
            os.link(path, dest)
        except OSError:
            shutil.copyfile(path, dest)
    return target


# --------------------------------------------------------------------------------------------
# Rows
# --------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Setup:
    """One row: ``client`` → ``server`` in ``mode`` (``fsync``/``no fsync``/``discard``)."""

    id: str
    section: str
    impl: str  # what the section's ratio compares ("aiodimse" is the baseline)
    client: str
    server: str
    mode: str
    slow: bool = False  # send only the first ``slow_count`` files
    #: Asynchronous operations window proposed by an aiodimse client (PS3.7 D.3.3.3); the
    #: aiodimse SCP always grants up to 16, so window 16 pipelines one association.
    window: int = 1


LABELS = {**bench_store.LABELS, "dcmtk": "storescu (Nagle on)",
          "raw": "raw Python ceiling: asyncio sender, no DICOM",
          "limit-sendfile": "raw loopback limit: blocking sendfile of the same files",
          "limit-sendall": "raw loopback limit: the same files read, blocking sendall"}  # fmt: skip
SERVER_LABELS = {**bench_store.SERVER_LABELS, "dcmtk": "storescp (Nagle on)",
                 "raw": "asyncio BufferedProtocol, new file per message",
                 "limit": "asyncio BufferedProtocol, discards"}  # fmt: skip
#: The row of :mod:`benchmarks.rawstore` (read by :mod:`benchmarks.targets` as context).
RAW_ID = "store.64k.nofsync.raw>raw"
#: The page-cache probe (:func:`benchmarks.rawlimit.file_write_cost_us`): one row in each
#: no-fsync section of the workloads with a target, measured in turns with the section's rows.
PROBE_IDS = {"64k": "store.64k.nofsync.probe>page-cache", "4m": "store.4m.nofsync.probe>page-cache"}
#: The loopback limit for the 4 MB workload's own files (:func:`benchmarks.rawlimit.send_files`),
#: one row per way of sending: the ceiling the "SCP discarding" target is judged against.
FILE_LIMIT_IDS = ("store.4m.discard.limit-sendall>limit", "store.4m.discard.limit-sendfile>limit")


def setups(work: Workload) -> list[Setup]:
    """The matrix for one workload, in table order."""
    out: list[Setup] = []
    for mode in ("fsync", "no fsync", "discard"):
        start = len(out)
        if work.key == "4m" and mode == "discard":  # the receiving limit for these files
            for ident in FILE_LIMIT_IDS:
                client, server = ident.rsplit(".", 1)[1].split(">")
                section = f"C-STORE {work.name}, SCP {mode}"
                out.append(Setup(id=ident, section=section, impl="limit", client=client,
                                 server=server, mode=mode))  # fmt: skip
        if work.key in PROBE_IDS and mode == "no fsync":  # the page cache's state, per turn
            section = f"C-STORE {work.name}, SCP {mode}"
            out.append(Setup(id=PROBE_IDS[work.key], section=section, impl="probe",
                             client="probe", server="page-cache", mode=mode))  # fmt: skip
        plan = [("aiodimse", "aiodimse", "aiodimse", False)]
        if mode != "discard" or work.key == "4m":  # the time budget: pynetdicom is slow
            plan.append(("pynetdicom", "pynetdicom", "pynetdicom", True))
        if mode != "fsync":
            plan.append(("dcmtk-nodelay", "dcmtk-nodelay", "dcmtk-nodelay", False))
        elif work.key in ("64k", "4m"):  # Orthanc fsyncs its storage by default
            plan.append(("orthanc", "aiodimse", "orthanc", False))
        if mode == "no fsync":
            plan.append(("dcmtk", "dcmtk", "dcmtk", True))
            if work.key in ("64k", "4m"):  # cross pairs where the targets are
                plan += [("cross", "aiodimse", "dcmtk-nodelay", False),
                         ("cross", "dcmtk-nodelay", "aiodimse", False)]  # fmt: skip
        for impl, client, server, slow in plan:
            out.append(
                Setup(
                    id=f"store.{work.key}.{mode.replace(' ', '')}.{client}>{server}",
                    section=f"C-STORE {work.name}, SCP {mode}",
                    impl=impl,
                    client=client,
                    server=server,
                    mode=mode,
                    slow=slow,
                )
            )
        if work.key in ("64k", "4m"):  # one association, pipelined (issue 9's window)
            out.append(
                Setup(
                    id=f"store.{work.key}.{mode.replace(' ', '')}.aiodimse-w16>aiodimse",
                    section=f"C-STORE {work.name}, SCP {mode}",
                    impl="aiodimse window 16",
                    client="aiodimse",
                    server="aiodimse",
                    mode=mode,
                    window=16,
                )
            )
        if work.key == "64k" and mode == "no fsync":  # the Python ceiling (rawstore.py)
            out.append(
                Setup(
                    id=RAW_ID,
                    section=f"C-STORE {work.name}, SCP {mode}",
                    impl="raw Python ceiling",
                    client="raw",
                    server="raw",
                    mode=mode,
                    window=16,
                )
            )
        out[start:] = sorted(out[start:], key=_turn_rank)
    if work.key == "64k":  # Nagle-enabled senders: their own SCP vs aiodimse's
        section = f"C-STORE {work.name}, SCP no fsync: Nagle senders"
        for impl, client, server in (
            ("dcmtk", "dcmtk", "dcmtk"),
            ("aiodimse", "dcmtk", "aiodimse"),
            ("pynetdicom", "pynetdicom", "pynetdicom"),
            ("aiodimse·pynetdicom", "pynetdicom", "aiodimse"),
        ):
            out.append(
                Setup(
                    id=f"nagle.{client}>{server}",
                    section=section,
                    impl=impl,
                    client=client,
                    server=server,
                    mode="no fsync",
                    slow=True,
                )
            )
    return out


def _turn_rank(s: Setup) -> int:
    """A section's order within each turn (stable for the rest): the probe or limit, then
    the rows the targets compare, back to back, so that the machine has no time to change
    state between them (on this VM the page cache can, within seconds)."""
    if s.impl in ("probe", "limit"):
        return 0
    for rank, suffix in enumerate((".aiodimse>aiodimse", ".aiodimse-w16>aiodimse",
                                   ".dcmtk-nodelay>dcmtk-nodelay"), start=1):  # fmt: skip
        if s.id.endswith(suffix):
            return rank
    return 4


def _check(
    row: Row, expected: int, total: int, *, ignore: bool
) -> Callable[[Server, ClientRun], float]:
    def check(server: Server, run: ClientRun) -> float:
        if ignore or server.aet == "ORTHANC":  # nothing in ``output`` to count
            stored = run.report.get("stored", expected)  # storescu reports nothing
            if stored != expected:
                raise RuntimeError(f"{stored} of {expected} stored: {run.report.get('error')}")
        else:
            got = len(bench_store.stored_files(server.output))
            if got != expected:
                raise RuntimeError(f"{got} of {expected} files stored")
        harness.append_detail(row, "mb_s", total / 1e6 / run.elapsed)
        return expected / run.elapsed

    return check


def run_workload(
    work: Workload, tmp: Path, *, repeat: int, slow_count: int, impls: tuple[str, ...]
) -> list[Row]:
    """Generate ``work``, run its matrix, remove the data; one Row per setup."""
    source = tmp / f"src-{work.key}"
    t0 = time.perf_counter()
    total = generate(work, source)
    print(f"  generated {work.name}: {total / 1e6:.0f} MB in {time.perf_counter() - t0:.1f} s",
          file=sys.stderr, flush=True)  # fmt: skip
    slow_n = min(slow_count, work.count)
    slow_dir = subset(source, slow_n, tmp / f"slow-{work.key}") if slow_n < work.count else source
    per_file = total / work.count
    rows: list[Row] = []
    sections: dict[str, list[tuple[Row, Callable[[Path], ContextManager[Measure]]]]] = {}
    for s in setups(work):
        raw = s.client == "raw"  # the reference rows run whatever the implementations
        limit = s.server == "limit"
        probe = s.client == "probe"
        if not (raw or limit or probe) and (s.client not in impls or s.server not in impls):
            continue
        if probe:
            row = Row(section=s.section, impl=s.impl, label=PROBE_LABEL, metric="µs CPU per file",
                      unit="µs/file", higher_is_better=False)  # fmt: skip
            row.details["id"] = s.id
            rows.append(row)
            sections.setdefault(s.section, []).append((row, _probe_opener))
            continue
        count = slow_n if s.slow else work.count
        label = f"{LABELS[s.client]} → {SERVER_LABELS[s.server]}"
        if s.slow and slow_n < work.count:
            label += f" (first {slow_n})"
        if s.window > 1:
            label += f" (window {s.window}, one {'connection' if raw else 'association'})"
        row = Row(
            section=s.section,
            impl=s.impl,
            label=label,
            metric="instances/s",
            unit="inst/s",
            higher_is_better=True,
        )
        row.details["id"] = s.id
        rows.append(row)
        ignore = s.mode == "discard"
        client_args: tuple[str, ...] = ()
        if work.jpeg and s.client.startswith("dcmtk"):
            client_args = ("-xy",)  # propose JPEG Baseline (and uncompressed)
        if s.window > 1:
            client_args = ("--window", str(s.window))
        check = _check(row, count, round(per_file * count), ignore=ignore)
        opener: Callable[[Path], ContextManager[Measure]]
        if raw:
            opener = functools.partial(raw_server, row, source=source, check=check,
                                       window=s.window)  # fmt: skip
        elif limit:
            opener = functools.partial(_file_limit_opener, row=row, source=source,
                                       use_sendfile=s.client.endswith("sendfile"))  # fmt: skip
        else:
            opener = functools.partial(
                bench_store.setup_server,
                row,
                client=s.client,
                server_impl=s.server,
                source=slow_dir if s.slow else source,
                durable=s.mode == "fsync",
                ignore=ignore,
                window=16 if s.window > 1 else 1,
                timeout=300,
                check=check,
                client_args=client_args,
            )
        sections.setdefault(s.section, []).append((row, opener))
    try:
        for section in sections.values():
            run_interleaved(section, tmp, repeat=repeat, time_budget=600)
    finally:
        shutil.rmtree(source, ignore_errors=True)
        shutil.rmtree(tmp / f"slow-{work.key}", ignore_errors=True)
    return rows


Measure = Callable[[int], float]


def run_interleaved(
    section: Sequence[tuple[Row, Callable[[Path], ContextManager[Measure]]]],
    tmp: Path,
    *,
    repeat: int,
    time_budget: float,
) -> None:
    """A section's rows measured in turns: every row's server is started (each with its own
    output directory), then repetition ``i`` of each row runs before repetition ``i + 1``
    of any. So a drift of the machine during the section (the page cache filling, another
    job, a VM's memory being backed) falls on every row alike, not on whichever ran last:
    on this project's 2-core VM, storescp's 4 MB to-disk row measured 574 and 1,259 MB/s in
    two runs of the same day when rows ran one after another. A row whose server fails to
    start, or whose run fails, keeps its error and is skipped from then on; one that has
    spent ``time_budget`` seconds stops with a note."""
    spent: dict[int, float] = {}
    with contextlib.ExitStack() as stack:
        runs: list[tuple[Row, Measure]] = []
        for k, (row, opener) in enumerate(section):
            try:
                runs.append((row, stack.enter_context(_noted(row, opener(tmp / f"out-{k}")))))
            except Unavailable as exc:
                row.error = str(exc)
            except Exception as exc:  # a peer that fails to start must not stop the run
                row.error = f"{type(exc).__name__}: {exc}"
        for i in range(repeat):
            for row, measure in runs:
                if row.error is not None:
                    continue
                if spent.get(id(row), 0.0) > time_budget:
                    row.error = f"time budget {time_budget:.0f} s spent after {i} repetitions"
                    continue
                print(f"  {row.section}: {row.label} [{i + 1}/{repeat}]", file=sys.stderr,
                      flush=True)  # fmt: skip
                t0 = time.monotonic()
                harness.run_row(row, 1, measure, time_budget=float("inf"))
                spent[id(row)] = spent.get(id(row), 0.0) + time.monotonic() - t0


@contextlib.contextmanager
def _noted(row: Row, opened: ContextManager[Measure]) -> Iterator[Measure]:
    """``opened``, with an error on closing it (a server that did not stop cleanly) noted
    in ``row`` instead of raised, as the rows measured one by one do."""
    measure = opened.__enter__()
    try:
        yield measure
    except BaseException as exc:
        if not opened.__exit__(type(exc), exc, exc.__traceback__):
            raise
    else:
        try:
            opened.__exit__(None, None, None)
        except Exception as exc:
            row.error = row.error or f"{type(exc).__name__}: {exc}"


@contextlib.contextmanager
def raw_server(
    row: Row,
    out: Path,
    source: Path,
    *,
    check: Callable[[Server, ClientRun], float],
    window: int,
    timeout: float = 60,
) -> Iterator[Measure]:
    """The raw Python ceiling (:mod:`benchmarks.rawstore`): its receiver as a server
    subprocess while the context is open; yields ``measure(i)``, one run of its sender as
    the client, timed and checked like the DICOM rows."""
    bench_store.retire(out)
    script = harness.BENCH_DIR / "rawstore.py"
    try:
        with harness.python_server(script, ["serve", "-od", str(out)], name="raw-store") as (
            proc,
            port,
        ):
            server = Server(proc=proc, port=port, aet="RAW", output=out)
            argv = [sys.executable, str(script), "send", harness.HOST, str(port), str(source),
                    "--window", str(window)]  # fmt: skip

            def measure(i: int) -> float:
                bench_store.retire(out)
                proc.reset_peak()
                run = bench_store.run_client(argv, env=None, timeout=timeout)
                harness.append_detail(row, "server_rss", proc.peak_rss())
                harness.append_detail(row, "client_rss", run.max_rss)
                return check(server, run)

            yield measure
    finally:
        bench_store.retire(out)


@contextlib.contextmanager
def file_limit_server(
    row: Row, source: Path, *, use_sendfile: bool, timeout: float = 60
) -> Iterator[Measure]:
    """The loopback limit for the files in ``source`` (:func:`benchmarks.rawlimit.send_files`):
    the minimal discarding receiver as a server subprocess while the context is open;
    ``measure(i)`` feeds it the files over one blocking socket from this process. Samples
    are files/s, like the section's other rows; ``mb_s`` counts every byte sent (the whole
    files: a few hundred bytes more than their datasets)."""
    paths = sorted(p for p in source.iterdir() if p.is_file())
    script = harness.BENCH_DIR / "rawlimit.py"
    with harness.python_server(script, ["serve"], name="raw-receiver") as (proc, port):

        def measure(_: int) -> float:
            proc.reset_peak()
            seconds, sent = rawlimit.send_files(
                port, paths, use_sendfile=use_sendfile, timeout=timeout
            )
            harness.append_detail(row, "server_rss", proc.peak_rss())
            harness.append_detail(row, "mb_s", sent / 1e6 / seconds)
            return len(paths) / seconds

        yield measure


PROBE_LABEL = "page-cache probe: one thread writing 300 new 64 KiB files (kernel CPU included)"


@contextlib.contextmanager
def _probe_opener(out: Path) -> Iterator[Measure]:
    """The page-cache probe as a row (:func:`benchmarks.rawlimit.file_write_cost_us`): its
    files go to ``out`` (moved aside afterwards, like the servers' files)."""

    def measure(_: int) -> float:
        bench_store.retire(out)
        return rawlimit.file_write_cost_us(out)

    try:
        yield measure
    finally:
        bench_store.retire(out)


def _file_limit_opener(
    out: Path, *, row: Row, source: Path, use_sendfile: bool
) -> ContextManager[Measure]:
    """:func:`file_limit_server` opened like the other rows (its receiver stores nothing)."""
    return file_limit_server(row, source, use_sendfile=use_sendfile)


def run_huge(
    tmp: Path, *, size: int, repeat: int, impls: tuple[str, ...], pynetdicom_default: bool = True
) -> list[Row]:
    """One instance of ``size`` bytes (``bench_store.measure_huge``); rows get ids.

    ``pynetdicom_default``: also send it through pynetdicom's default (in-memory) path.
    """
    settings = argparse.Namespace(
        impls=tuple(i for i in impls if i in bench_store.IMPLS),
        huge_size=size,
        huge_repeat=repeat,
        pynetdicom_default_max=size if pynetdicom_default else 0,
    )
    rows: list[Row] = []
    bench_store.measure_huge(settings, tmp, rows)
    for row in rows:
        note = row.label.rsplit("(", 1)[-1].rstrip(")").split(",")[0].replace(" ", "")
        row.details["id"] = f"huge.{row.impl}.{note}"
    return rows
