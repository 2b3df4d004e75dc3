"""Shared fixtures: generated DICOM data and real peers (dcmtk, Orthanc, pynetdicom).

Peer fixtures start their peer on a free loopback port in a temp directory and stop it by
PID at teardown. A missing peer skips the test, or fails it under ``CI=true``
(:func:`tests.support.peers.require_peer`). Orthanc is session-scoped (start-up takes
seconds); the function-scoped ``orthanc`` fixture empties it before each test.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support import datagen, loops, orthanc_peer, peers

log = logging.getLogger("tests.conftest")

#: AIODIMSE_TEST_LOOP=no-fd-callbacks: every loop behaves like Windows' proactor (no
#: add_reader/add_writer); see tests/support/loops.py.
TEST_LOOP = loops.install_from_environment()


def pytest_report_header(config: pytest.Config) -> list[str]:
    """Show which peers (and versions) this run will use."""
    lines = []
    for name, binary in (("dcmtk", "storescp"), ("orthanc", "Orthanc")):
        path = peers.find_binary(binary)
        version = peers.peer_version([path, "--version"]) if path else "MISSING"
        lines.append(f"peer {name}: {version}")
    try:
        import pynetdicom

        lines.append(f"peer pynetdicom: {pynetdicom.__version__}")
    except ImportError:
        lines.append("peer pynetdicom: MISSING")
    if TEST_LOOP:
        lines.append(f"event loops: {TEST_LOOP} ({loops.ENV})")
    return lines


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark every test under tests/interop with ``interop`` (select with ``-m interop``);
    under a simulated proactor loop, skip the tests of the add_reader paths themselves."""
    skip = pytest.mark.skip(reason=f"tests the add_reader path; {loops.ENV}={TEST_LOOP}")
    for item in items:
        if "interop" in Path(str(item.path)).parts:
            item.add_marker(pytest.mark.interop)
        if TEST_LOOP and item.get_closest_marker("fd_callbacks") is not None:
            item.add_marker(skip)


# --------------------------------------------------------------------------- data


@pytest.fixture(scope="session")
def dicom_corpus(tmp_path_factory: pytest.TempPathFactory) -> list[datagen.Generated]:
    """The standard generated corpus (every kind x TS, both umlaut charsets), seed 0."""
    return datagen.write_corpus(tmp_path_factory.mktemp("corpus"))


@pytest.fixture
def make_dicom(tmp_path: Path) -> Callable[..., datagen.Generated]:
    """Factory: ``make_dicom(**spec_fields)`` writes one file into ``tmp_path/data``."""

    def make(**kwargs: object) -> datagen.Generated:
        spec = datagen.Spec(**kwargs)  # type: ignore[arg-type]
        return datagen.write_file(spec, tmp_path / "data")

    return make


# --------------------------------------------------------------------------- peers


@pytest.fixture
def dcmtk_storescp(tmp_path: Path) -> Iterator[peers.Peer]:
    """dcmtk ``storescp +xa`` (AE ``STORESCP``) writing into ``peer.output_dir``."""
    exe = peers.require_peer("dcmtk storescp", "storescp")
    peer = peers.start_dcmtk_storescp(tmp_path / "storescp", binary=exe)
    log.info("started %s (pid %d, port %d)", peer.version, peer.pid, peer.port)
    try:
        yield peer
    finally:
        peer.stop()


@pytest.fixture
def pynetdicom_storescp(tmp_path: Path) -> Iterator[peers.Peer]:
    """pynetdicom's storescp app in a subprocess (AE ``PYNETDICOM``), all transfer syntaxes."""
    python = peers.require_peer("pynetdicom", "python:pynetdicom")
    peer = peers.start_pynetdicom_storescp(tmp_path / "pynetdicom", python=python)
    log.info("started %s (pid %d, port %d)", peer.version, peer.pid, peer.port)
    try:
        yield peer
    finally:
        peer.stop()


@pytest.fixture
def dcmqrscp_factory(tmp_path: Path) -> Iterator[Callable[..., peers.Peer]]:
    """Factory: ``dcmqrscp_factory(files, move_destinations={name: (aet, host, port)})``.

    Starts dcmtk ``dcmqrscp`` (AE ``QRSCP``) over the given files; all are stopped at teardown.
    """
    exe = peers.require_peer("dcmtk dcmqrscp", "dcmqrscp")
    idx = peers.require_peer("dcmtk dcmqridx", "dcmqridx")
    started: list[peers.Peer] = []

    def start(files: list[Path], **kwargs: object) -> peers.Peer:
        workdir = tmp_path / f"dcmqrscp{len(started)}"
        peer = peers.start_dcmqrscp(workdir, files, binary=exe, dcmqridx=idx, **kwargs)  # type: ignore[arg-type]
        started.append(peer)
        log.info("started %s (pid %d, port %d)", peer.version, peer.pid, peer.port)
        return peer

    try:
        yield start
    finally:
        for peer in started:
            peer.stop()


@pytest.fixture(scope="session")
def orthanc_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[orthanc_peer.OrthancPeer]:
    """One Orthanc for the session (AE ``ORTHANC``); prefer the ``orthanc`` fixture."""
    exe = peers.require_peer("Orthanc", "Orthanc")
    server = orthanc_peer.start_orthanc(tmp_path_factory.mktemp("orthanc"), binary=exe)
    log.info("started %s (pid %d, port %d)", server.version, server.peer.pid, server.port)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def orthanc(orthanc_server: orthanc_peer.OrthancPeer) -> orthanc_peer.OrthancPeer:
    """The session Orthanc, emptied of instances before the test.

    Point it at your own SCP with ``orthanc.rest.set_modality(name, ae_title, port)``.
    """
    if orthanc_server.peer.process.poll() is not None:
        pytest.fail(f"Orthanc died:\n{orthanc_server.peer.log_text()[-2000:]}")
    orthanc_server.rest.delete_all()
    return orthanc_server


@pytest.fixture(autouse=True)
def _restore_aiodimse_logger() -> Iterator[None]:
    """A CLI run in-process (``main([...])``) gives the ``aiodimse`` logger its own stderr
    handler and stops propagation; put it back so later tests' ``caplog`` sees the records."""
    logger = logging.getLogger("aiodimse")
    saved = (logger.handlers[:], logger.level, logger.propagate)
    yield
    logger.handlers[:], logger.level, logger.propagate = saved[0], saved[1], saved[2]
