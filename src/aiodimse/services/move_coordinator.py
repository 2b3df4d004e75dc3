"""The move coordinator: our Storage SCP for C-MOVEs whose destination is our own AE.

Theory of operation
-------------------
A C-MOVE SCP sends the instances over a *new* association to the move destination (PS3.4
C.4.2.3.1), which it looks up in its own table: the PACS must already know our AE title,
host and port, so the coordinator listens on a configured, fixed port (:meth:`running`).

Each C-STORE-RQ that arrives is handed to the operation that caused it:

1. by Move Originator Application Entity Title (0000,1030) and Move Originator Message ID
   (0000,1031), which a C-MOVE SCP includes in the sub-operation C-STORE-RQ (PS3.7 9.3.1.1,
   PS3.4 C.4.2.2). Our Message IDs are unique within the process
   (:data:`aiodimse.dimse.operations.DEFAULT_MESSAGE_ID_ALLOCATOR`), so two moves in flight
   never collide, whatever association they were sent on;
2. else by the UIDs asked for: an IMAGE-level move whose identifier lists the SOP Instance
   UID; or the only move in flight;
3. else (several moves in flight, no originator) the instance is stored in a shared
   ``unmatched`` directory, its head is read (off the loop) and matched against each move's
   identifier (Patient ID, Study/Series/SOP Instance UIDs).

Each operation gets its own directory below ``base_directory`` (file names from
:mod:`.filepolicy`, as the Storage SCP), removed when the caller's ``async with`` ends. What
is left behind (a crashed caller, instances arriving after their move ended, unmatched
instances) is removed after ``expiry`` seconds (default one hour) by a sweep that runs while
the coordinator runs.
"""

from __future__ import annotations

import logging
import secrets
import shutil
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

import anyio
import anyio.to_thread
import pydicom
from pydicom.dataset import Dataset

from ..dimse.messages import CStoreRQ, DimseMessage
from ..net.channel import Channel, Received
from ..net.sinks import DatasetSink
from .filepolicy import resolve_inside, strip_padding
from .retrieve_scu import RetrieveOperation
from .retrieve_storage import OperationStorage, make_directory
from .storage_scp import StorageOptions, StorageSCP

if TYPE_CHECKING:
    from .ae import AE
    from .server import Server

log = logging.getLogger("aiodimse.move")

__all__ = ["MoveCoordinator"]

_MATCH_KEYS = ("PatientID", "StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID")


@dataclass(slots=True, kw_only=True)
class _Pending:
    """One C-MOVE in flight whose destination is us."""

    operation: RetrieveOperation
    originator: str
    identifier: Dataset
    storage: OperationStorage
    extra_files: list[Path] = field(default_factory=list)

    def values(self, keyword: str) -> set[str] | None:
        """The values asked for ``keyword`` (``None`` when not a matching key)."""
        value = self.identifier.get(keyword)
        if value is None or value == "":
            return None
        items = [value] if isinstance(value, str) else list(value)
        return {strip_padding(str(v)) for v in items if strip_padding(str(v))} or None


class MoveCoordinator:
    """Receives the C-STOREs of our C-MOVEs and hands each to the move that caused it.

    ``ae`` is the AE that receives (its title is the move destination; usually the same AE
    that sends the C-MOVE). :meth:`install` (done by :meth:`running`) makes it a Storage
    SCP routed by this coordinator. Use::

        coordinator = MoveCoordinator(ae, port=11113)
        async with coordinator.running():
            async with ae.associate(host, port, contexts=move_contexts()) as assoc:
                async with assoc.move(query, destination=ae.ae_title,
                                      coordinator=coordinator) as op:
                    async for instance in op:
                        ...
    """

    def __init__(
        self,
        ae: AE,
        *,
        port: int,
        host: str = "0.0.0.0",
        base_directory: Path | None = None,
        expiry: float = 3600.0,
        storage_options: StorageOptions | None = None,
    ) -> None:
        if expiry <= 0:
            raise ValueError("expiry must be > 0")
        self.ae = ae
        self.host = host
        self.port = port
        self.expiry = expiry
        self._base = base_directory
        self._options = storage_options or StorageOptions(durable=False)
        self._ops: dict[int, _Pending] = {}
        self._routes: dict[tuple[int, int], _Pending | list[_Pending]] = {}
        self._installed = False
        self._own_base = False
        self._fallback: OperationStorage | None = None

    @property
    def ae_title(self) -> str:
        return self.ae.ae_title.strip()

    @property
    def base_directory(self) -> Path:
        if self._base is None:
            raise RuntimeError("the coordinator is not installed")
        return self._base

    # -- set-up ----------------------------------------------------------------------------

    def install(self) -> MoveCoordinator:
        """Create the base directory; make the AE a Storage SCP routed by us. Blocking I/O."""
        if self._installed:
            return self
        if self._base is None:
            import tempfile

            self._base = Path(tempfile.mkdtemp(prefix="aiodimse-move-"))
            self._own_base = True
        self._base.mkdir(parents=True, exist_ok=True)
        unmatched = self._base / "unmatched"
        unmatched.mkdir(exist_ok=True)
        # Adds the storage contexts to the AE's supported ones (and a handler we replace).
        StorageSCP(replace(self._options, output_directory=unmatched)).install(self.ae)
        self._fallback = OperationStorage(self.ae, unmatched, self._options)
        self.ae.request_handlers[CStoreRQ] = self.handle_store
        self.ae.sink_factories[CStoreRQ] = self.sink_factory
        self._installed = True
        return self

    @asynccontextmanager
    async def running(self) -> AsyncIterator[Server]:
        """Serve the AE on the fixed port, sweeping expired directories meanwhile."""
        await anyio.to_thread.run_sync(self.install)
        async with self.ae.serve(self.host, self.port) as server:
            async with anyio.create_task_group() as tg:
                tg.start_soon(self._sweeper)
                try:
                    yield server
                finally:
                    tg.cancel_scope.cancel()
        if self._own_base and not self._ops:
            # The temporary base we made goes with us (a given base_directory stays).
            base = self.base_directory
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(lambda: shutil.rmtree(base, ignore_errors=True))
            self._installed = False
            self._base = None

    async def _sweeper(self) -> None:
        while True:
            await self.sweep()
            await anyio.sleep(min(self.expiry, 60.0))

    async def sweep(self) -> int:
        """Remove what is older than ``expiry`` below the base directory; returns how many."""
        active = {p.storage.directory for p in self._ops.values()}
        base, expiry = self.base_directory, self.expiry
        return await anyio.to_thread.run_sync(_sweep, base, active, expiry)

    # -- operations ------------------------------------------------------------------------

    @asynccontextmanager
    async def register(
        self,
        operation: RetrieveOperation,
        *,
        originator: str,
        identifier: Dataset,
        directory: Path | None = None,
    ) -> AsyncIterator[Path]:
        """Route instances for ``operation`` to it while the block runs (yields its directory).

        ``directory`` (kept) or a fresh directory below the base (removed at the end).
        """
        await anyio.to_thread.run_sync(self.install)
        if directory is None:
            path = self.base_directory / f"move-{operation.message_id}-{secrets.token_hex(4)}"
        else:
            path = directory
        path, _ = await make_directory(path, "")
        storage = OperationStorage(self.ae, path, self._options)
        storage.operation = operation
        operation.directory = path
        pending = _Pending(
            operation=operation,
            originator=originator.strip(),
            identifier=identifier,
            storage=storage,
        )
        self._ops[operation.message_id] = pending
        try:
            yield path
        finally:
            del self._ops[operation.message_id]
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(
                    _remove, None if directory is not None else path, pending.extra_files
                )

    # -- routing ---------------------------------------------------------------------------

    def _route(self, msg: CStoreRQ) -> _Pending | None:
        mid = msg.move_originator_message_id
        if mid is not None:
            # PS3.7 9.3.1.1: the Message ID of the C-MOVE-RQ that caused this sub-operation.
            pending = self._ops.get(mid)
            title = strip_padding(msg.move_originator_application_entity_title or "")
            if pending is not None and (not title or title == pending.originator):
                return pending
            if pending is None and self._ops:
                log.info("C-STORE names move %d from %r, not ours in flight", mid, title)
        uid = strip_padding(msg.affected_sop_instance_uid)
        listed = [p for p in self._ops.values() if uid in (p.values("SOPInstanceUID") or ())]
        if len(listed) == 1:
            return listed[0]
        if mid is None and len(self._ops) == 1:
            return next(iter(self._ops.values()))
        return None

    def sink_factory(
        self, channel: Channel, context_id: int, message: DimseMessage
    ) -> DatasetSink | None:
        """The AE's sink factory for C-STORE-RQ: the matched operation's storage."""
        if not isinstance(message, CStoreRQ):
            return None
        target = self._route(message)
        if target is not None:
            self._routes[(id(channel), message.message_id)] = target
            return target.storage.sink_factory(channel, context_id, message)
        # Matched later, from the dataset: every move in flight waits for this one.
        waiting = list(self._ops.values())
        for pending in waiting:
            pending.operation.begin_store()
        self._routes[(id(channel), message.message_id)] = waiting
        assert self._fallback is not None
        return self._fallback.sink_factory(channel, context_id, message)

    async def handle_store(self, ae: AE, channel: Channel, received: Received) -> None:
        """The AE's C-STORE handler: store in the matched operation's directory."""
        msg = received.message
        assert isinstance(msg, CStoreRQ)
        route = self._routes.pop((id(channel), msg.message_id), None)
        if isinstance(route, _Pending):
            await route.storage.handle_store(ae, channel, received)
            return
        try:
            await self._store_unmatched(ae, channel, received)
        finally:
            for pending in route or ():
                pending.operation.end_store()

    async def _store_unmatched(self, ae: AE, channel: Channel, received: Received) -> None:
        fallback = self._fallback
        assert fallback is not None
        instance = await fallback.handle_store(ae, channel, received)
        if instance is None:
            return
        with anyio.CancelScope(shield=True):  # answered already: finish (a few tags read)
            head = await anyio.to_thread.run_sync(_read_keys, instance.path)
        matched = [p for p in self._ops.values() if head is not None and _matches(p, head)]
        if len(matched) != 1:
            log.warning(
                "%s: C-STORE of %s matches %d moves in flight; left in %s",
                channel.peer,
                instance.sop_instance_uid,
                len(matched),
                instance.path.parent,
            )
            return
        log.debug(
            "%s matched to move %d", instance.sop_instance_uid, matched[0].operation.message_id
        )
        target = matched[0]
        # Into the operation's directory, like a matched instance (same file name policy).
        with anyio.CancelScope(shield=True):
            try:
                moved = await anyio.to_thread.run_sync(
                    _move_into, instance.path, target.storage.directory
                )
            except OSError as exc:
                log.error(
                    "cannot move %s into %s: %s", instance.path, target.storage.directory, exc
                )
                target.extra_files.append(instance.path)
                moved = instance.path
        target.operation.deliver(replace(instance, path=moved))


def _read_keys(path: Path) -> Dataset | None:
    try:
        return pydicom.dcmread(path, stop_before_pixels=True, specific_tags=list(_MATCH_KEYS))
    except Exception as exc:  # a file we just wrote and checked; log and leave it
        log.warning("cannot read %s: %s", path, exc)
        return None


def _matches(pending: _Pending, head: Dataset) -> bool:
    asked = False
    for keyword in _MATCH_KEYS:
        wanted = pending.values(keyword)
        if wanted is None:
            continue
        asked = True
        if strip_padding(str(head.get(keyword, ""))) not in wanted:
            return False
    return asked


def _move_into(path: Path, directory: Path) -> Path:
    destination = resolve_inside(directory, (path.name,))
    shutil.move(path, destination)
    return destination


def _remove(directory: Path | None, files: list[Path]) -> None:
    if directory is not None:
        shutil.rmtree(directory, ignore_errors=True)
    for path in files:
        path.unlink(missing_ok=True)


def _sweep(base: Path, active: set[Path], expiry: float) -> int:
    removed = 0
    limit = time.time() - expiry
    try:
        entries = list(base.iterdir())
    except FileNotFoundError:
        return 0
    for entry in entries:
        try:
            if entry.name == "unmatched":
                for child in entry.iterdir():
                    if child.is_file() and child.stat().st_mtime < limit:
                        child.unlink(missing_ok=True)
                        removed += 1
            elif entry not in active and entry.stat().st_mtime < limit:
                shutil.rmtree(entry, ignore_errors=True)
                removed += 1
        except OSError as exc:
            log.warning("sweeping %s: %s", entry, exc)
    return removed
