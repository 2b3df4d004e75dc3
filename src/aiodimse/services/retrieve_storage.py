"""Where the C-STOREs of one retrieve go: a Storage SCP writing into the operation's directory.

Used by :mod:`.retrieve_scu` (C-GET: the requesting association's C-STORE-RQs are routed here
while the operation runs, :class:`GetRouter`) and by :mod:`.move_coordinator` (C-MOVE: the
coordinator picks the operation, then its :class:`OperationStorage`). Files are written by
:class:`~.storage_scp.StorageSCP`, so the file-name policy (:mod:`.filepolicy`), streaming to
disk and the checks of the Storage SCP apply unchanged (ROBUSTNESS 32-36).
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import anyio
import anyio.to_thread

from ..dimse.messages import CStoreRQ, DimseMessage
from ..errors import LocalProtocolError
from ..net.channel import Channel, Received
from ..net.sinks import DatasetSink
from .storage_scp import StorageOptions, StorageSCP, StoredInstance

if TYPE_CHECKING:
    from .ae import AE

__all__ = [
    "GetRouter",
    "OperationStorage",
    "RetrievedInstance",
    "make_directory",
    "remove_directory",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class RetrievedInstance:
    """One instance received for a retrieve: its UIDs and the stored file (PS3.10)."""

    sop_class_uid: str
    sop_instance_uid: str
    transfer_syntax: str
    path: Path
    size: int
    #: The AE title of the association that brought it (the C-STORE SCU).
    source_ae_title: str


class InstanceReceiver(Protocol):
    """What an operation offers its storage (see ``RetrieveOperation``)."""

    def begin_store(self) -> None: ...

    def end_store(self) -> None: ...

    def deliver(self, instance: RetrievedInstance) -> None: ...


class OperationStorage:
    """A Storage SCP writing into one operation's directory (file policy of ``storage_scp``).

    :meth:`sink_factory` and :meth:`handle_store` have the shapes of an AE's
    ``sink_factories``/``request_handlers`` entries; after a C-STORE that was kept, the
    instance is delivered to ``operation`` (when set).
    """

    def __init__(self, ae: AE, directory: Path, options: StorageOptions | None = None) -> None:
        from .ae import AE as _AE

        self.directory = directory
        self.operation: InstanceReceiver | None = None
        self._seen: dict[tuple[str, int], StoredInstance] = {}
        base = options or StorageOptions(durable=False)
        opts = replace(base, output_directory=directory, handler=self._capture, ignore=False)
        # A private AE to install into: the caller's AE keeps its own handlers and contexts.
        scratch = _AE(
            ae.ae_title,
            implementation_class_uid=ae.implementation_class_uid,
            implementation_version_name=ae.implementation_version_name,
        )
        self.scp = StorageSCP(opts).install(scratch)

    async def _capture(self, instance: StoredInstance) -> int:
        self._seen[(instance.peer, instance.message_id)] = instance
        return 0x0000

    def sink_factory(
        self, channel: Channel, context_id: int, message: DimseMessage
    ) -> DatasetSink | None:
        sink = self.scp.sink_factory(channel, context_id, message)
        if self.operation is not None and isinstance(message, CStoreRQ):
            self.operation.begin_store()
        return sink

    async def handle_store(
        self, ae: AE, channel: Channel, received: Received
    ) -> RetrievedInstance | None:
        """Store (and answer) one C-STORE; the kept instance, delivered to ``operation``."""
        operation = self.operation
        try:
            return await self._handle_store(ae, channel, received, operation)
        finally:
            if operation is not None:
                operation.end_store()

    async def _handle_store(
        self, ae: AE, channel: Channel, received: Received, operation: InstanceReceiver | None
    ) -> RetrievedInstance | None:
        msg = received.message
        assert isinstance(msg, CStoreRQ)
        try:
            await self.scp.handle_store(ae, channel, received)
        finally:
            stored = self._seen.pop((channel.peer, msg.message_id), None)
        if stored is None or stored.destination is None:
            return None
        # The C-STORE-RSP is out: the peer may release now and cancel this task; the file is
        # kept, so finish the hand-over (one stat) whatever happens.
        with anyio.CancelScope(shield=True):
            kept = await anyio.to_thread.run_sync(stored.destination.is_file)
        if not kept:
            return None  # the handler accepted it but keeping it failed (0xA700 answered)
        instance = RetrievedInstance(
            sop_class_uid=stored.sop_class_uid.strip(" \x00"),
            sop_instance_uid=stored.sop_instance_uid.strip(" \x00"),
            transfer_syntax=stored.transfer_syntax,
            path=stored.destination,
            size=stored.size,
            source_ae_title=stored.calling_ae_title,
        )
        if operation is not None:
            operation.deliver(instance)
        return instance


async def make_directory(directory: Path | None, prefix: str) -> tuple[Path, bool]:
    """``directory`` (created when missing) or a fresh temporary one; (path, is temporary)."""
    if directory is not None:
        await anyio.to_thread.run_sync(lambda: directory.mkdir(parents=True, exist_ok=True))
        return directory, False
    path = await anyio.to_thread.run_sync(lambda: Path(tempfile.mkdtemp(prefix=prefix)))
    return path, True


async def remove_directory(directory: Path) -> None:
    await anyio.to_thread.run_sync(lambda: shutil.rmtree(directory, ignore_errors=True))


class GetRouter:
    """Sends the channel's C-STORE-RQs to one C-GET's storage; everything else as before."""

    def __init__(self, channel: Channel, storage: OperationStorage, ae: AE) -> None:
        self.channel = channel
        self.storage = storage
        self.ae = ae
        self.previous_request = channel.on_request
        self.previous_sink = channel.sink_factory

    async def on_request(self, channel: Channel, received: Received) -> None:
        if isinstance(received.message, CStoreRQ):
            await self.storage.handle_store(self.ae, channel, received)
            return
        elif self.previous_request is not None:
            await self.previous_request(channel, received)

    def sink_factory(
        self, channel: Channel, context_id: int, message: DimseMessage
    ) -> DatasetSink | None:
        if isinstance(message, CStoreRQ):
            return self.storage.sink_factory(channel, context_id, message)
        return self.previous_sink(channel, context_id, message) if self.previous_sink else None

    def install(self) -> None:
        if isinstance(getattr(self.channel.on_request, "__self__", None), GetRouter):
            raise LocalProtocolError("one C-GET at a time per association")
        self.channel.on_request = self.on_request
        self.channel.sink_factory = self.sink_factory

    def uninstall(self) -> None:
        self.channel.on_request = self.previous_request
        self.channel.sink_factory = self.previous_sink
