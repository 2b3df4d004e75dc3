"""pynetdicom C-STORE peer for the aiodimse benchmarks: ``server`` or ``client`` mode.

``server``: a Storage SCP (all of pynetdicom's storage SOP classes, its default transfer
syntaxes) that writes each dataset as received (``event.encoded_dataset()``: preamble, file
meta, dataset bytes, no decoding) to ``<output>/<SOPInstanceUID>.dcm``, with ``os.fsync``
before answering unless ``--no-fsync`` (``--ignore``: nothing written). Prints ``PORT <n>``,
serves until end of stdin.

``client``: one association, ``send_c_store(path)`` for every file, timed inside; prints one
JSON line like ``_aiodimse_store_client.py``.

``--chunked`` sets pynetdicom's ``STORE_SEND_CHUNKED_DATASET`` / ``STORE_RECV_CHUNKED_DATASET``
(off by default: pynetdicom then holds the whole dataset in memory, several times over).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any


def _configure(chunked: bool) -> None:
    from pynetdicom import _config

    logging.getLogger("pynetdicom").setLevel(logging.CRITICAL)
    _config.STORE_SEND_CHUNKED_DATASET = chunked
    _config.STORE_RECV_CHUNKED_DATASET = chunked


def serve(args: argparse.Namespace) -> int:
    from pynetdicom import (
        AE,
        ALL_TRANSFER_SYNTAXES,
        StoragePresentationContexts,
        build_context,
        evt,
    )
    from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]

    _configure(args.chunked)
    out: Path = args.output_directory
    out.mkdir(parents=True, exist_ok=True)
    durable = not args.no_fsync

    def handle_store(event: Any) -> int:
        if args.ignore:
            return 0x0000
        uid = str(event.request.AffectedSOPInstanceUID).rstrip("\0 ")
        target = out / f"{uid}.dcm"
        if args.chunked:
            # pynetdicom wrote the file (preamble, meta, dataset) to a temporary path.
            src = Path(event.dataset_path)
            if durable:
                with src.open("rb+") as fp:
                    os.fsync(fp.fileno())
            os.replace(src, target)
            return 0x0000
        with target.open("wb") as fp:
            fp.write(event.encoded_dataset())
            if durable:
                fp.flush()
                os.fsync(fp.fileno())
        return 0x0000

    ae = AE(ae_title=args.aet)
    # Every transfer syntax pynetdicom knows (its default list has no compressed ones), so
    # that JPEG instances are accepted as received.
    ae.supported_contexts = [
        build_context(cx.abstract_syntax, ALL_TRANSFER_SYNTAXES)
        for cx in StoragePresentationContexts
    ]
    ae.add_supported_context(Verification)
    ae.maximum_associations = 10
    server = ae.start_server(
        (args.host, args.port), block=False, evt_handlers=[(evt.EVT_C_STORE, handle_store)]
    )
    assert server is not None
    try:
        print(f"PORT {server.server_address[1]}", flush=True)
        sys.stdin.read()
    finally:
        server.shutdown()
    return 0


def _files(paths: list[Path]) -> list[Path]:
    out: list[Path] = []
    for p in paths:
        out.extend(sorted(q for q in p.rglob("*") if q.is_file()) if p.is_dir() else [p])
    return out


def send(args: argparse.Namespace) -> int:
    from pydicom import dcmread
    from pynetdicom import AE

    _configure(args.chunked)
    files = _files(args.paths)
    ae = AE(ae_title=args.aet)
    seen: set[tuple[str, str]] = set()
    for f in files:  # propose what the files need (file meta only)
        meta = dcmread(f, stop_before_pixels=True, specific_tags=[]).file_meta
        key = (str(meta.MediaStorageSOPClassUID), str(meta.TransferSyntaxUID))
        if key not in seen:
            seen.add(key)
            ae.add_requested_context(key[0], key[1])
    t0 = time.perf_counter()
    assoc = ae.associate(args.host, args.port, ae_title=args.aec)
    if not assoc.is_established:
        print(json.dumps({"error": "association not established"}), flush=True)
        return 1
    stored = 0
    sent = 0
    error = None
    for f in files:
        status = assoc.send_c_store(f)
        if status and status.Status in (0x0000, 0xB000, 0xB006, 0xB007):
            stored += 1
            sent += f.stat().st_size
        elif error is None:
            error = f"{f.name}: {status.Status if status else 'no response'}"
    assoc.release()
    elapsed = time.perf_counter() - t0
    report = {
        "elapsed": elapsed,
        "stored": stored,
        "failed": len(files) - stored,
        "bytes": sent,
        "error": error,
    }
    print(json.dumps(report), flush=True)
    return 1 if report["failed"] else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    sub = parser.add_subparsers(dest="mode", required=True)
    s = sub.add_parser("server")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=0)
    s.add_argument("--aet", default="PYNETDICOM_SCP")
    s.add_argument("-od", "--output-directory", type=Path, required=True)
    s.add_argument("--no-fsync", action="store_true")
    s.add_argument("--ignore", action="store_true", help="answer success, store nothing")
    s.add_argument("--chunked", action="store_true")
    c = sub.add_parser("client")
    c.add_argument("host")
    c.add_argument("port", type=int)
    c.add_argument("paths", nargs="+", type=Path)
    c.add_argument("--aet", default="STORESCU")
    c.add_argument("--aec", default="ANY-SCP")
    c.add_argument("--chunked", action="store_true")
    args = parser.parse_args(argv)
    return serve(args) if args.mode == "server" else send(args)


if __name__ == "__main__":
    sys.exit(main())
