"""Test helpers for tests/scale: small instances and an SCP that shows its concurrency.

:class:`WindowSCP` registers its own C-STORE handler (not the library's Storage SCP): it
counts the requests being performed at once (``max_active``), lets a test hold a request
(``hold``) or answer a status by index, and records the order responses went out.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import anyio
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filewriter import dcmwrite
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian

import aiodimse
from aiodimse.dimse.messages import CStoreRQ, CStoreRSP
from aiodimse.net.channel import Channel, Received
from aiodimse.services.association import Association
from aiodimse.services.contexts import VERIFICATION, Context
from tests.storage.storage_scu_support import HashSink

CT = "1.2.840.10008.5.1.4.1.1.2"
MR = "1.2.840.10008.5.1.4.1.1.4"
UID_ROOT = "1.2.826.0.1.3680043.9.9999.424242"


def instance_uid(index: int) -> str:
    return f"{UID_ROOT}.{index + 1}"


def index_of(uid: str) -> int:
    return int(uid.rsplit(".", 1)[1]) - 1


def make_instance(index: int, *, sop_class: str = CT, size: int = 256) -> Dataset:
    """A small instance whose SOP Instance UID encodes ``index``."""
    ds = Dataset()
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = instance_uid(index)
    ds.StudyInstanceUID = f"{UID_ROOT}.0.1"
    ds.SeriesInstanceUID = f"{UID_ROOT}.0.2"
    ds.PatientName = "SCALE^TEST"
    ds.PatientID = "SCALE"
    ds.Modality = "CT" if sop_class == CT else "MR"
    ds.EncapsulatedDocument = b"x" * (size + size % 2)  # OB: any size, no VR warning
    return ds


def write_instances(directory: Path, count: int, *, size: int = 2048) -> list[Path]:
    """``count`` PS3.10 files (Explicit VR Little Endian) named so they sort by index."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        ds = make_instance(i, size=size)
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = ds.SOPClassUID
        meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.file_meta = meta
        path = directory / f"{i:05d}.dcm"
        dcmwrite(path, ds, enforce_file_format=True)
        paths.append(path)
    return paths


def storage_contexts(*classes: str) -> list[Context]:
    return [
        Context(
            abstract_syntax=c, transfer_syntaxes=(ExplicitVRLittleEndian, ImplicitVRLittleEndian)
        )
        for c in (classes or (CT,))
    ]


Hook = Callable[[int, Channel], Awaitable[int | None]]


@dataclass(kw_only=True)
class WindowSCP:
    """An aiodimse AE performing C-STOREs with a test-controlled hook per index.

    ``hook(index, channel)`` runs inside the handler; it may wait, abort, or return a
    status (``None``: success).
    """

    max_operations_performed: int = 16
    classes: tuple[str, ...] = (CT,)
    hook: Hook | None = None
    active: int = 0
    max_active: int = 0
    arrived: list[int] = field(default_factory=list)
    answered: list[int] = field(default_factory=list)
    associations: int = 0
    #: Seconds each write of a received dataset takes (a slow disk; 0: datasets in memory).
    sink_delay: float = 0.0

    def __post_init__(self) -> None:
        self.ae = aiodimse.AE(
            "WINDOWSCP",
            contexts=storage_contexts(*self.classes),
            max_operations_performed=self.max_operations_performed,
        )
        self.ae.request_handlers[CStoreRQ] = self._handle
        if self.sink_delay:
            delay = self.sink_delay
            self.ae.sink_factories[CStoreRQ] = lambda *_: HashSink(delay, slow_bytes=1 << 40)

    async def _handle(self, ae: aiodimse.AE, channel: Channel, received: Received) -> None:
        rq = received.message
        assert isinstance(rq, CStoreRQ)
        index = index_of(rq.affected_sop_instance_uid)
        self.arrived.append(index)
        self.active += 1
        self.max_active = max(self.max_active, self.active)
        try:
            status = await self.hook(index, channel) if self.hook is not None else None
        finally:
            self.active -= 1
        await channel.send_message(
            received.context_id,
            CStoreRSP(
                message_id_being_responded_to=rq.message_id,
                affected_sop_class_uid=rq.affected_sop_class_uid,
                affected_sop_instance_uid=rq.affected_sop_instance_uid,
                status=status or 0,
            ),
        )
        self.answered.append(index)


class Gate:
    """Opens once ``count`` parties are waiting in it at the same time (no sleeps)."""

    def __init__(self, count: int) -> None:
        self.count = count
        self.waiting = 0
        self.opened = anyio.Event()

    async def wait(self) -> None:
        self.waiting += 1
        if self.waiting >= self.count:
            self.opened.set()
        await self.opened.wait()


@asynccontextmanager
async def session(scp: WindowSCP, *, invoked: int = 16) -> AsyncIterator[Association]:
    """An association from an SCU proposing a window of ``invoked`` to ``scp``."""
    scu = aiodimse.AE("SCU", max_operations_invoked=invoked)
    async with scp.ae.serve("127.0.0.1", 0) as server:
        async with scu.associate(
            "127.0.0.1",
            server.port,
            called_ae="WINDOWSCP",
            contexts=[*storage_contexts(CT), VERIFICATION],
        ) as assoc:
            yield assoc
