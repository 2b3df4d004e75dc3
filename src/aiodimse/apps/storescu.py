"""``aiodimse storescu``: send DICOM files with C-STORE (PS3.4 Annex B).

Flags follow pynetdicom's storescu (which follows dcmtk's). Files and directories (``-r``
descends into subdirectories) are examined first; non-DICOM files are skipped with a
warning. The presentation contexts are proposed from the files themselves under
``--strategy`` (default ``auto``: each file's own transfer syntax, plus Explicit/Implicit VR
Little Endian fallbacks; see ``docs/transfer-syntaxes.md``); more than 128 contexts are
spread over several associations. When the peer rejects or aborts the association during
negotiation, or accepts no usable context for some files, those files are sent again with
the next more conservative strategy (``universal`` last) unless ``--no-fallback``. Each
failed or unsent file is reported on one line (file, SOP class, transfer syntax, the peer's
answer); the exit status is 1 when any instance failed.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any, TextIO

from .. import AE, DicomError, Limits, Timeouts
from ..services.parallel import send_files_parallel
from ..services.sending import send_prepared
from ..services.storage_scu import StoreResult, prepare_files
from ..services.ts_strategies import Strategy
from ._common import add_logging_flags, add_timeout_flags, fail, run_tool, setup_logging


def add_parser(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "storescu",
        help="send DICOM files to a Storage SCP (C-STORE)",
        description=(
            "Send DICOM files (and the DICOM files in directories) to a Storage SCP (one "
            "association, more past 128 presentation contexts or when falling back to a "
            "more conservative --strategy); exit 0 when every instance was stored."
        ),
    )
    p.add_argument("addr", help="peer host name or IP address")
    p.add_argument("port", type=int, help="peer TCP port")
    p.add_argument("paths", nargs="+", type=Path, metavar="PATH", help="files or directories")
    p.add_argument(
        "-r", "--recurse", action="store_true", help="descend into subdirectories of directories"
    )
    p.add_argument("-aet", "--calling-aet", default="STORESCU", help="our AE title (STORESCU)")
    p.add_argument("-aec", "--called-aet", default="ANY-SCP", help="peer AE title (ANY-SCP)")
    p.add_argument(
        "--max-pdu", type=int, default=None, metavar="N", help="our maximum PDU length in bytes"
    )
    p.add_argument(
        "--stop-on-error",
        action="store_true",
        help="send nothing more after the first failed instance",
    )
    p.add_argument(
        "--strategy",
        choices=[s.value for s in Strategy],
        default=Strategy.AUTO.value,
        help="transfer syntaxes to propose (auto): universal = Implicit VR LE only, "
        "conservative = + Explicit VR LE, standard = + Explicit VR BE, compression = + "
        "Deflated and lossless compressed, extended = + every file's own syntax",
    )
    p.add_argument(
        "--no-fallback",
        action="store_true",
        help="do not retry with a more conservative strategy after a refused negotiation",
    )
    p.add_argument(
        "--window",
        type=int,
        default=1,
        metavar="N",
        help="propose an asynchronous operations window of N (PS3.7 D.3.3.3): up to N "
        "C-STOREs outstanding per association when the peer grants it (1: one at a time)",
    )
    p.add_argument(
        "--associations",
        type=int,
        default=1,
        metavar="N",
        help="send over up to N associations at once (default 1); with N > 1 the files "
        "are proposed with strategy auto and without fallback",
    )
    add_timeout_flags(p, dimse_default=60.0, dimse_help="seconds a C-STORE may go without progress")
    add_logging_flags(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    setup_logging(args)
    result: int = run_tool(_main, args)
    return result


class _ProgressBar:
    """One self-overwriting line on a terminal: percent, MB, MB/s, instances done."""

    WIDTH = 30

    def __init__(self, stream: TextIO, count: int) -> None:
        self.stream = stream
        self.count = count
        self.done = 0
        self.started = time.monotonic()
        self._shown = False

    def update(self, sent: int, total: int) -> None:
        frac = sent / total if total else 1.0
        filled = int(frac * self.WIDTH)
        elapsed = max(time.monotonic() - self.started, 1e-6)
        line = (
            f"\r[{'#' * filled}{'.' * (self.WIDTH - filled)}] {frac * 100:5.1f}% "
            f"{sent / 1e6:8.1f}/{total / 1e6:.1f} MB {sent / 1e6 / elapsed:7.1f} MB/s "
            f"{self.done}/{self.count} files"
        )
        self.stream.write(line)
        self.stream.flush()
        self._shown = True

    def clear(self) -> None:
        if self._shown:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
            self._shown = False


async def _main(args: argparse.Namespace) -> int:
    quiet = bool(args.quiet)
    prepared = await prepare_files(args.paths, recurse=args.recurse)
    for skipped in prepared.skipped:
        if not quiet:
            print(f"W: skipping {skipped.path}: {skipped.reason}", file=sys.stderr)
    if not prepared.files:
        return fail("no DICOM file to send")
    try:
        limits = Limits(max_pdu_length=args.max_pdu) if args.max_pdu else Limits()
        ae = AE(
            args.calling_aet,
            limits=limits,
            timeouts=Timeouts(
                connect=args.connection_timeout,
                acse=args.acse_timeout,
                store=args.dimse_timeout,
            ),
        )
    except (DicomError, ValueError) as exc:
        return fail(str(exc))
    if not 1 <= args.window <= 0xFFFF or args.associations < 1:
        return fail("--window must be 1..65535 and --associations at least 1")
    ae.max_operations_invoked = args.window
    bar = (
        _ProgressBar(sys.stderr, len(prepared.files)) if sys.stderr.isatty() and not quiet else None
    )
    failed: list[StoreResult] = []

    def on_result(result: StoreResult) -> None:
        if bar is not None:
            bar.done += 1
        if not result.ok:
            failed.append(result)
            if bar is not None:
                bar.clear()
            print(f"E: {result.describe()}", file=sys.stderr)

    results: list[StoreResult] = []
    started = time.monotonic()
    error: str | None = None
    try:
        if args.associations > 1:
            results = await send_files_parallel(
                ae,
                args.addr,
                args.port,
                [info.path for info in prepared.files],
                called_ae=args.called_aet,
                associations=args.associations,
                continue_on_error=not args.stop_on_error,
                progress=bar.update if bar is not None else None,
                on_result=on_result,
            )
        else:
            results = await send_prepared(
                ae,
                args.addr,
                args.port,
                prepared.files,
                called_ae=args.called_aet,
                continue_on_error=not args.stop_on_error,
                progress=bar.update if bar is not None else None,
                on_result=on_result,
                strategy=Strategy(args.strategy),
                fallback=not args.no_fallback,
            )
    except DicomError as exc:
        error = str(exc)
    elapsed = max(time.monotonic() - started, 1e-6)
    if bar is not None:
        bar.clear()
    if error is not None and not results:
        for info in prepared.files:
            on_result(
                StoreResult(
                    path=info.path,
                    sop_class_uid=info.sop_class_uid,
                    sop_instance_uid=info.sop_instance_uid,
                    source_transfer_syntax=info.transfer_syntax_uid,
                    error=f"not sent: {error}",
                )
            )
    stored = sum(1 for r in results if r.ok)
    sent_bytes = sum(r.bytes_sent for r in results)
    if not quiet:
        print(
            f"sent {stored} of {len(prepared.files)} instances, {len(failed)} failed"
            + (f", {len(prepared.skipped)} non-DICOM skipped" if prepared.skipped else "")
            + f"; {sent_bytes / 1e6:.1f} MB in {elapsed:.2f} s"
            + f", {sent_bytes / 1e6 / elapsed:.1f} MB/s"
        )
    if error is not None:
        return fail(error)
    return 1 if failed else 0
