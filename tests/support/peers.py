"""Start and stop real DICOM peers (dcmtk, Orthanc, pynetdicom) on loopback for tests.

Each ``start_*`` function picks a free loopback port, starts the peer in its own working
directory with its output in ``<workdir>/<name>.log``, waits (bounded, by polling connect)
until the port accepts connections and returns a :class:`Peer` handle. ``Peer.stop()``
terminates the process by PID, waits, then kills. If the peer dies at start-up (typically a
port taken between our probe and its bind) it is retried on a new port.

Missing binaries: :func:`require_peer` applies the policy in one place: under ``CI=true``
the test fails with the install command, elsewhere it is skipped with that command.

Nothing here depends on aiodimse. Orthanc (with a urllib REST client) is in
:mod:`tests.support.orthanc_peer`.
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import pytest

__all__ = [
    "INSTALL_HINT",
    "LOOPBACK",
    "Peer",
    "PeerStartError",
    "find_binary",
    "free_port",
    "launch_peer",
    "missing_peer",
    "peer_version",
    "require_peer",
    "run_dcmtk_echoscu",
    "run_dcmtk_storescu",
    "run_pynetdicom_echoscu",
    "start_dcmqrscp",
    "start_dcmtk_storescp",
    "start_pynetdicom_storescp",
    "wait_for_port",
]

log = logging.getLogger("tests.support.peers")

LOOPBACK = "127.0.0.1"
INSTALL_HINT = (
    "scripts/install-peers.sh  (or: sudo apt-get update && sudo apt-get install -y dcmtk orthanc)"
)
START_TIMEOUT = 20.0
STOP_TIMEOUT = 5.0
_POLL = 0.02
# Orthanc installs into /usr/sbin, which is not on a normal user's PATH.
_EXTRA_DIRS = ("/usr/sbin", "/usr/local/sbin", "/usr/local/bin")


class PeerStartError(RuntimeError):
    """The peer process exited or never accepted connections; carries the log tail."""


# --------------------------------------------------------------------------- policy


def missing_peer(message: str) -> None:
    """The one place deciding what a missing peer means: fail under CI=true, else skip."""
    if os.environ.get("CI", "").strip().lower() == "true":
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


def find_binary(binary: str) -> str | None:
    """Full path of ``binary`` on PATH or in the sbin directories, else None."""
    found = shutil.which(binary)
    if found:
        return found
    for directory in _EXTRA_DIRS:
        found = shutil.which(binary, path=directory)
        if found:
            return found
    return None


def require_peer(name: str, binary: str) -> str:
    """Return the full path of ``binary`` (peer ``name``), or fail/skip per :func:`missing_peer`.

    ``binary`` may also be ``"python:<module>"`` for a Python package peer (pynetdicom);
    then the current interpreter's path is returned once the module is importable.
    """
    if binary.startswith("python:"):
        module = binary.split(":", 1)[1]
        import importlib.util

        if importlib.util.find_spec(module) is None:
            missing_peer(f"{name}: Python module {module!r} missing; install: pip install {module}")
        return sys.executable
    path = find_binary(binary)
    if path is None:
        missing_peer(f"{name}: {binary!r} not found; install with: {INSTALL_HINT}")
        raise AssertionError("unreachable")  # pytest.skip/fail raise
    return path


def peer_version(argv: Sequence[str]) -> str:
    """First non-empty line of ``argv --version`` (or of ``argv`` if it already asks)."""
    proc = subprocess.run(
        [*argv], capture_output=True, text=True, timeout=15, check=False, encoding="utf-8"
    )
    for line in (proc.stdout + proc.stderr).splitlines():
        if line.strip():
            return line.strip().strip("$").strip()
    return "unknown"


# --------------------------------------------------------------------------- ports


def free_port(host: str = LOOPBACK) -> int:
    """A port that was free a moment ago (bind port 0, read it, release it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for_port(
    port: int,
    *,
    host: str = LOOPBACK,
    timeout: float = START_TIMEOUT,
    proc: subprocess.Popen[bytes] | None = None,
) -> None:
    """Poll ``connect`` until ``host:port`` accepts, ``proc`` exits, or ``timeout`` passes.

    Raises :class:`PeerStartError` on exit or timeout.
    """
    deadline = time.monotonic() + timeout
    while True:
        if proc is not None and proc.poll() is not None:
            raise PeerStartError(f"process exited with {proc.returncode} before listening")
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise PeerStartError(f"{host}:{port} did not accept connections in {timeout} s")
        time.sleep(_POLL)


# --------------------------------------------------------------------------- process


@dataclass(kw_only=True)
class Peer:
    """A running peer process. ``port`` is its DICOM port on :data:`LOOPBACK`."""

    name: str
    ae_title: str
    port: int
    workdir: Path
    process: subprocess.Popen[bytes]
    log_path: Path
    version: str
    output_dir: Path | None = None
    host: str = LOOPBACK
    _log_file: IO[bytes] | None = field(default=None, repr=False)

    @property
    def pid(self) -> int:
        """Process ID of the peer."""
        return self.process.pid

    def received_files(self) -> list[Path]:
        """Regular files in ``output_dir`` (recursive, sorted), excluding dot/temp files."""
        if self.output_dir is None:
            return []
        return sorted(
            p
            for p in self.output_dir.rglob("*")
            if p.is_file() and not p.name.startswith(".") and not p.name.endswith(".tmp")
        )

    def wait_for_files(self, count: int, timeout: float = 10.0) -> list[Path]:
        """Poll until ``output_dir`` holds at least ``count`` files; return them."""
        deadline = time.monotonic() + timeout
        while True:
            files = self.received_files()
            if len(files) >= count or time.monotonic() > deadline:
                return files
            time.sleep(_POLL)

    def log_text(self) -> str:
        """The peer's combined stdout/stderr so far."""
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return ""

    def stop(self, timeout: float = STOP_TIMEOUT) -> int | None:
        """Terminate by PID, wait up to ``timeout``, then kill. Returns the exit code."""
        proc = self.process
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=timeout)
        if self._log_file is not None and not self._log_file.closed:
            self._log_file.close()
        return proc.returncode

    def __enter__(self) -> Peer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return ""


def launch_peer(
    *,
    name: str,
    ae_title: str,
    workdir: Path,
    version: str,
    make_argv: Callable[[int], list[str]],
    env: Mapping[str, str] | None = None,
    output_dir: Path | None = None,
    ready: Callable[[Peer], None] | None = None,
    attempts: int = 3,
) -> Peer:
    """Start ``make_argv(port)`` on fresh ports until it listens (``attempts`` tries).

    ``make_argv`` returns the command line for a port; ``ready(peer)`` (optional) runs after
    the port accepts and raises :class:`PeerStartError` if the peer is not usable yet.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    log_path = workdir / f"{name}.log"
    last_error: Exception | None = None
    for attempt in range(attempts):
        port = free_port()
        argv = make_argv(port)
        log_file = log_path.open("ab")
        log_file.write(f"--- attempt {attempt + 1}: {' '.join(argv)}\n".encode())
        log_file.flush()
        full_env = {**os.environ, **(env or {})}
        proc = subprocess.Popen(
            argv,
            cwd=workdir,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            env=full_env,
        )
        peer = Peer(
            name=name,
            ae_title=ae_title,
            port=port,
            workdir=workdir,
            process=proc,
            log_path=log_path,
            version=version,
            output_dir=output_dir,
            _log_file=log_file,
        )
        try:
            wait_for_port(port, proc=proc)
            if ready is not None:
                ready(peer)
        except PeerStartError as exc:
            last_error = exc
            peer.stop()
            log.warning("%s failed to start on port %d: %s", name, port, exc)
            continue
        log.info("%s %s listening on %s:%d (pid %d)", name, version, LOOPBACK, port, proc.pid)
        return peer
    raise PeerStartError(f"{name} did not start: {last_error}\n{_tail(log_path)}")


# --------------------------------------------------------------------------- dcmtk


def start_dcmtk_storescp(
    workdir: Path,
    *,
    ae_title: str = "STORESCP",
    binary: str | None = None,
    accept_all: bool = True,
    nodelay: bool = False,
    extra_args: Sequence[str] = (),
) -> Peer:
    """dcmtk ``storescp`` writing into ``workdir/received`` (``+xa`` accepts all TS).

    ``nodelay=True`` sets ``TCP_NODELAY=1`` in its environment (dcmtk keeps Nagle on
    otherwise). Files are named by dcmtk (``<modality>.<SOP Instance UID>``).
    """
    exe = binary or find_binary("storescp") or "storescp"
    out = workdir / "received"
    out.mkdir(parents=True, exist_ok=True)

    def argv(port: int) -> list[str]:
        args = [exe, "-aet", ae_title, "-od", str(out)]
        if accept_all:
            args.append("+xa")
        return [*args, *extra_args, str(port)]

    return launch_peer(
        name="storescp",
        ae_title=ae_title,
        workdir=workdir,
        version=peer_version([exe, "--version"]),
        make_argv=argv,
        env={"TCP_NODELAY": "1"} if nodelay else None,
        output_dir=out,
    )


def run_dcmtk_echoscu(
    port: int,
    *,
    called_ae: str = "ANY-SCP",
    calling_ae: str = "ECHOSCU",
    binary: str | None = None,
    timeout: float = 30.0,
) -> subprocess.CompletedProcess[str]:
    """Run dcmtk ``echoscu`` against ``127.0.0.1:port``; the caller checks ``returncode``."""
    exe = binary or find_binary("echoscu") or "echoscu"
    return subprocess.run(
        [exe, "-aet", calling_ae, "-aec", called_ae, LOOPBACK, str(port)],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def run_dcmtk_storescu(
    port: int,
    files: Sequence[Path],
    *,
    called_ae: str = "ANY-SCP",
    calling_ae: str = "STORESCU",
    binary: str | None = None,
    extra_args: Sequence[str] = (),
    timeout: float = 60.0,
) -> subprocess.CompletedProcess[str]:
    """Run dcmtk ``storescu -R`` (only the needed SOP classes) with ``files``.

    storescu proposes the uncompressed transfer syntaxes by default; for JPEG Baseline files
    pass ``extra_args=["-xy"]`` (it cannot convert JPEG to uncompressed and fails otherwise).
    """
    exe = binary or find_binary("storescu") or "storescu"
    return subprocess.run(
        [
            exe,
            "-aet",
            calling_ae,
            "-aec",
            called_ae,
            "-R",
            *extra_args,
            LOOPBACK,
            str(port),
            *map(str, files),
        ],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def start_dcmqrscp(
    workdir: Path,
    files: Sequence[Path] = (),
    *,
    ae_title: str = "QRSCP",
    move_destinations: Mapping[str, tuple[str, str, int]] | None = None,
    binary: str | None = None,
    dcmqridx: str | None = None,
) -> Peer:
    """dcmtk ``dcmqrscp`` serving ``files``, indexed with ``dcmqridx``.

    ``move_destinations`` maps a name to ``(AE title, host, port)`` (its HostTable): C-MOVE
    works only to those AE titles. The database directory is ``peer.output_dir``, so files
    stored into it by C-STORE show up there too.
    """
    exe = binary or find_binary("dcmqrscp") or "dcmqrscp"
    idx = dcmqridx or find_binary("dcmqridx") or "dcmqridx"
    db = workdir / "db"
    db.mkdir(parents=True, exist_ok=True)
    if files:
        subprocess.run(
            [idx, str(db), *map(str, files)], check=True, capture_output=True, timeout=60
        )
    hosts = "\n".join(
        f"{name} = ({aet}, {host}, {port})"
        for name, (aet, host, port) in (move_destinations or {}).items()
    )
    config = workdir / "dcmqrscp.cfg"

    def argv(port: int) -> list[str]:
        # dcmtk's own config format (documented in dcmtk's dcmqrcnf.txt).
        config.write_text(
            f"NetworkTCPPort  = {port}\nMaxPDUSize      = 16384\nMaxAssociations = 16\n"
            f"HostTable BEGIN\n{hosts}\nHostTable END\n"
            "VendorTable BEGIN\nVendorTable END\n"
            f'AETable BEGIN\n{ae_title} "{db}" RW (200, 1024mb) ANY\nAETable END\n',
            encoding="utf-8",
        )
        # Not ``-s``: dcmtk 3.6.7's single-process mode segfaults after the first
        # association is released; the default forks one child per association.
        return [exe, "-c", str(config), str(port)]

    return launch_peer(
        name="dcmqrscp",
        ae_title=ae_title,
        workdir=workdir,
        version=peer_version([exe, "--version"]),
        make_argv=argv,
        output_dir=db,
    )


# --------------------------------------------------------------------------- pynetdicom


def _pynetdicom_version() -> str:
    import pynetdicom

    return f"pynetdicom {pynetdicom.__version__}"


def start_pynetdicom_storescp(
    workdir: Path, *, ae_title: str = "PYNETDICOM", python: str | None = None
) -> Peer:
    """pynetdicom's storage SCP app in a subprocess, bound to loopback, all transfer syntaxes.

    A subprocess keeps pynetdicom's threads out of the test process.
    """
    exe = python or sys.executable
    out = workdir / "received"
    out.mkdir(parents=True, exist_ok=True)

    def argv(port: int) -> list[str]:
        return [
            exe,
            "-m",
            "pynetdicom",
            "storescp",
            "-aet",
            ae_title,
            "-ba",
            LOOPBACK,
            "-od",
            str(out),
            str(port),
        ]

    return launch_peer(
        name="pynetdicom-storescp",
        ae_title=ae_title,
        workdir=workdir,
        version=_pynetdicom_version(),
        make_argv=argv,
        output_dir=out,
    )


def run_pynetdicom_echoscu(
    port: int,
    *,
    called_ae: str = "ANY-SCP",
    calling_ae: str = "ECHOSCU",
    python: str | None = None,
    timeout: float = 30.0,
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m pynetdicom echoscu`` against ``127.0.0.1:port``.

    pynetdicom's echoscu exits 0 even when the association is rejected, so callers should
    also look at ``stderr`` (it logs ``E:`` lines on failure); run with ``-v`` so the
    response status is logged.
    """
    exe = python or sys.executable
    return subprocess.run(
        [
            exe,
            "-m",
            "pynetdicom",
            "echoscu",
            "-v",
            "-aet",
            calling_ae,
            "-aec",
            called_ae,
            LOOPBACK,
            str(port),
        ],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
