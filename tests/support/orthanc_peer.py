"""Orthanc as a test peer: start it with its own JSON config, drive it through REST.

:func:`start_orthanc` writes a config (storage, index, ports, ``DicomModalities``) into its
work directory and starts ``Orthanc CONFIG.json`` via :mod:`tests.support.peers` (free ports,
bounded readiness polling, stop by PID). :class:`OrthancRest` wraps the REST API with urllib
only: list instances, read tags, upload, delete, set modalities, C-ECHO, C-STORE and C-MOVE
to a modality.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.support.peers import (
    LOOPBACK,
    START_TIMEOUT,
    Peer,
    PeerStartError,
    find_binary,
    free_port,
    launch_peer,
    peer_version,
)

__all__ = ["OrthancPeer", "OrthancRest", "start_orthanc"]

log = logging.getLogger("tests.support.orthanc_peer")
_POLL = 0.1


class OrthancRest:
    """Minimal urllib client for Orthanc's REST API on ``http://127.0.0.1:<port>``."""

    def __init__(self, port: int, *, host: str = LOOPBACK, timeout: float = 30.0) -> None:
        self.base = f"http://{host}:{port}"
        self.timeout = timeout

    def request(self, method: str, path: str, body: Any = None, *, raw: bool = False) -> Any:
        """Send one request; JSON-encode ``body`` unless it is bytes; decode a JSON reply."""
        data: bytes | None
        headers = {}
        if body is None:
            data = None
        elif isinstance(body, bytes | bytearray):
            data = bytes(body)
            headers["Content-Type"] = "application/dicom"
        else:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        req = urllib.request.Request(self.base + path, data=data, method=method, headers=headers)
        with urllib.request.urlopen(req, timeout=self.timeout) as resp:
            payload: bytes = resp.read()
        if raw:
            return payload
        if not payload:
            return None
        return json.loads(payload)

    def get(self, path: str) -> Any:
        """GET ``path`` and decode JSON."""
        return self.request("GET", path)

    def post(self, path: str, body: Any = None) -> Any:
        """POST ``body`` (JSON or raw DICOM bytes) to ``path``."""
        return self.request("POST", path, body)

    def system(self) -> dict[str, Any]:
        """``GET /system`` (contains ``Version``, ``DicomAet``, ``DicomPort``)."""
        result: dict[str, Any] = self.get("/system")
        return result

    def instances(self) -> list[str]:
        """Orthanc IDs of every stored instance."""
        result: list[str] = self.get("/instances")
        return result

    def instance_tags(self, instance_id: str) -> dict[str, Any]:
        """Simplified tags (``{"PatientName": "...", ...}``) of one instance, as UTF-8 text."""
        result: dict[str, Any] = self.get(f"/instances/{instance_id}/simplified-tags")
        return result

    def instance_file(self, instance_id: str) -> bytes:
        """The stored DICOM file bytes of one instance."""
        result: bytes = self.request("GET", f"/instances/{instance_id}/file", raw=True)
        return result

    def find_instance(self, sop_instance_uid: str) -> str | None:
        """Orthanc ID of the instance with this SOP Instance UID, or None."""
        found = self.post("/tools/lookup", sop_instance_uid.encode())
        for item in found or []:
            if item.get("Type") == "Instance":
                return str(item["ID"])
        return None

    def upload(self, dicom: bytes) -> dict[str, Any]:
        """``POST /instances`` with a DICOM file's bytes (not through DICOM)."""
        result: dict[str, Any] = self.post("/instances", dicom)
        return result

    def delete_all(self) -> None:
        """Delete every patient (and so every instance)."""
        for patient in self.get("/patients"):
            self.request("DELETE", f"/patients/{patient}")

    def set_modality(self, name: str, ae_title: str, port: int, host: str = LOOPBACK) -> None:
        """Create or replace the ``DicomModalities`` entry ``name`` at run time."""
        self.request("PUT", f"/modalities/{name}", {"AET": ae_title, "Host": host, "Port": port})

    def modalities(self) -> list[str]:
        """Names of the configured modalities."""
        result: list[str] = self.get("/modalities")
        return result

    def echo(self, modality: str) -> None:
        """Make Orthanc send C-ECHO to ``modality`` (raises HTTPError on failure)."""
        self.post(f"/modalities/{modality}/echo", {})

    def store_to(self, modality: str, resources: Sequence[str]) -> dict[str, Any]:
        """Make Orthanc C-STORE the given Orthanc resource IDs to ``modality`` (synchronous)."""
        result: dict[str, Any] = self.post(
            f"/modalities/{modality}/store", {"Resources": list(resources), "Synchronous": True}
        )
        return result

    def move_from(self, modality: str, level: str, query: Mapping[str, str], target_ae: str) -> Any:
        """Make Orthanc issue C-MOVE to ``modality`` (as SCU) moving ``query`` to ``target_ae``."""
        return self.post(
            f"/modalities/{modality}/move",
            {"Level": level, "Resources": [dict(query)], "TargetAet": target_ae},
        )


@dataclass(kw_only=True)
class OrthancPeer:
    """A running Orthanc: DICOM :attr:`port`, HTTP :attr:`http_port`, REST :attr:`rest`."""

    peer: Peer
    http_port: int
    rest: OrthancRest
    config_path: Path

    @property
    def port(self) -> int:
        """DICOM port."""
        return self.peer.port

    @property
    def ae_title(self) -> str:
        """Orthanc's DICOM AE title."""
        return self.peer.ae_title

    @property
    def version(self) -> str:
        """Version string reported by ``/system``."""
        return self.peer.version

    def stop(self) -> int | None:
        """Stop the process (by PID)."""
        return self.peer.stop()


def start_orthanc(
    workdir: Path,
    *,
    ae_title: str = "ORTHANC",
    modalities: Mapping[str, tuple[str, str, int]] | None = None,
    binary: str | None = None,
    extra_config: Mapping[str, Any] | None = None,
) -> OrthancPeer:
    """Orthanc with its own JSON config in ``workdir`` (storage and index there too).

    ``modalities`` maps a name to ``(AE title, host, port)`` (``DicomModalities``); entries
    can also be changed later with :meth:`OrthancRest.set_modality`. Ready means both the
    DICOM port accepts and ``GET /system`` answers.
    """
    exe = binary or find_binary("Orthanc") or "Orthanc"
    http_ports: dict[int, int] = {}
    config_path = workdir / "orthanc.json"

    def argv(port: int) -> list[str]:
        http_port = free_port()
        http_ports[port] = http_port
        config: dict[str, Any] = {
            "Name": "aiodimse-test",
            "StorageDirectory": str(workdir / "storage"),
            "IndexDirectory": str(workdir / "index"),
            "HttpServerEnabled": True,
            "HttpPort": http_port,
            "RemoteAccessAllowed": False,
            "AuthenticationEnabled": False,
            "DicomServerEnabled": True,
            "DicomAet": ae_title,
            "DicomPort": port,
            "DicomCheckCalledAet": False,
            "DicomAlwaysAllowEcho": True,
            "DicomAlwaysAllowStore": True,
            "UnknownSopClassAccepted": True,
            "Plugins": [],
            "SaveJobs": False,
            "ConcurrentJobs": 2,
            "DicomModalities": {k: list(v) for k, v in (modalities or {}).items()},
            **(extra_config or {}),
        }
        config_path.write_text(json.dumps(config, indent=2), encoding="utf-8")
        return [exe, str(config_path)]

    def ready(peer: Peer) -> None:
        rest = OrthancRest(http_ports[peer.port])
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if peer.process.poll() is not None:
                raise PeerStartError("Orthanc exited")
            with contextlib.suppress(OSError, urllib.error.URLError):
                rest.system()
                return
            if time.monotonic() > deadline:
                raise PeerStartError("Orthanc REST API did not answer")
            time.sleep(_POLL)

    workdir.mkdir(parents=True, exist_ok=True)
    peer = launch_peer(
        name="orthanc",
        ae_title=ae_title,
        workdir=workdir,
        version=peer_version([exe, "--version"]),
        make_argv=argv,
        ready=ready,
        output_dir=workdir / "storage",
    )
    rest = OrthancRest(http_ports[peer.port])
    peer.version = f"Orthanc {rest.system().get('Version', '?')}"
    log.info("Orthanc REST on port %d reports %s", http_ports[peer.port], peer.version)
    return OrthancPeer(
        peer=peer, http_port=http_ports[peer.port], rest=rest, config_path=config_path
    )
