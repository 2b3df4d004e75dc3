"""The Storage SCP (PS3.4 Annex B): C-STORE requests streamed to disk, checked, then kept.

Theory of operation
-------------------
:meth:`StorageSCP.install` adds the storage SOP classes to the AE's supported contexts and
registers two things for ``CStoreRQ``: a *sink factory* and a *request handler*.

1. When a C-STORE-RQ command arrives, the sink factory opens a
   :class:`~aiodimse.net.filesink.FileSink`: a nameless file made ahead of need
   (:mod:`aiodimse.net.nameless`, Linux; when no handler or conversion reads the file by
   name) or a temporary name (``filepolicy``) in the storage root, whose first bytes are
   the PS3.10 preamble and File Meta Information built from the command and the accepted
   context (PS3.10 7.1). The dataset then streams to
   that file as it arrives, byte for byte, with backpressure (see ``filesink``).
2. Group 0002 elements can only open a dataset (they sort first, PS3.5 7.1); the sink holds
   the first 256 KiB back, and any leading group 0002 elements are dropped before the first
   byte is written (logged; the answer is then 0xB006 "Elements Discarded"). In a deflated
   dataset they cannot be dropped without re-encoding: they are kept and logged.
3. When the message is complete, the handler reads the SOP Class/Instance UID (and, for the
   tree layout, Patient ID and Study/Series UIDs) from the start of the dataset
   (:mod:`.dataset_head`). A mismatch with the command (after stripping padding) is
   0xA900 and the file is removed (ROBUSTNESS 34). This, the write, the fsync and (without
   a handler or conversion) the naming run in one trip of the SCP's finishing threads,
   shared by the instances finishing together (:mod:`aiodimse.net.syncbatch`); with the
   opt-in ``loop_write_max``, a small instance that is not fsynced is finished by the event
   loop itself, which costs less than the hop to a thread.
4. The user's handler, if any, is awaited with a :class:`StoredInstance` (the complete,
   fsynced temporary file and where it will go). It returns the status. An exception is
   0xC211 with an Error Comment (ROBUSTNESS 37); a failure status removes the file.
5. On success or warning the file is moved to its final name atomically (``os.replace``;
   directory fsync where supported), after checking that the name resolves inside the root.
   Only then does the response go back: with ``durable`` (the default) a success status
   means the image is on disk.

Statuses (PS3.4 B.2.3): 0xA700 out of resources (write error, disk full, free space under
``min_free_space``); 0xA900 dataset does not match the command; 0xC210 dataset cannot be
parsed; 0xC211 the user's handler raised; 0xB006 group 0002 elements discarded.

Duplicates (ROBUSTNESS 35): a SOP Instance UID already stored is **replaced** atomically by
default (the last copy received wins; readers see the old or the new file, never a mix);
``DuplicatePolicy.KEEP`` keeps the first copy (the new one is dropped, success answered).

Abstract syntaxes: the acceptor can only accept SOP classes it lists
(``AE.supported_contexts``). All storage SOP classes pydicom knows are listed by default;
private or newer ones are added with ``StorageOptions.extra_sop_classes``.

Temporary files are removed at start-up (:meth:`StorageSCP.install`) and when an
association fails mid-transfer (ROBUSTNESS 36, 47).

Example::

    async def on_stored(instance: StoredInstance) -> int:
        await index(instance.sop_instance_uid, instance.destination)
        return 0x0000  # kept; a failure status (or an exception) drops the file

    ae = AE("STORESCP")
    enable_storage(ae, StorageOptions(output_directory=Path("incoming"), handler=on_stored))
    async with ae.serve("0.0.0.0", 11112):
        await anyio.sleep_forever()
"""

from __future__ import annotations

import enum
import functools
import io
import logging
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Final

import anyio
import anyio.to_thread
import pydicom
import pydicom.uid as puid

from ..constants import (
    DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN,
    EXPLICIT_VR_BIG_ENDIAN,
    IMPLICIT_VR_LITTLE_ENDIAN,
)
from ..dimse.messages import CStoreRQ, CStoreRSP, DimseMessage
from ..dimse.status import Service, StatusCategory, status_info
from ..net.channel import Channel, Received, RequestDone
from ..net.filesink import AnonymousFiles, FileSink, SinkState
from ..net.sinks import DatasetSink
from ..net.syncbatch import SyncBatch, SyncBatcher, ThreadBatcher
from . import dataset_head as dh
from .contexts import Context
from .filepolicy import (
    Layout,
    is_temporary_name,
    relative_parts,
    resolve_inside,
    temporary_name,
)
from .storage_scp_meta import HOLD as _HOLD
from .storage_scp_meta import comment as _comment
from .storage_scp_meta import echo_class_uid as _echo_class_uid
from .storage_scp_meta import echo_uid as _echo_uid
from .storage_scp_meta import file_meta
from .storage_scp_meta import group2_marker as _group2_marker
from .storage_scp_meta import group2_skipper as _group2_skipper
from .storage_scp_meta import mismatch as _mismatch
from .storage_scp_meta import read_head as _read_head

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

    from .ae import AE

log = logging.getLogger("aiodimse.storage")

__all__ = [
    "ACCEPTED_TRANSFER_SYNTAXES",
    "STATUS_CANNOT_UNDERSTAND",
    "STATUS_DATASET_MISMATCH",
    "STATUS_ELEMENTS_DISCARDED",
    "STATUS_HANDLER_FAILED",
    "STATUS_OUT_OF_RESOURCES",
    "STORAGE_SOP_CLASSES",
    "DuplicatePolicy",
    "StorageOptions",
    "StorageSCP",
    "StoreHandler",
    "StoredInstance",
    "enable_storage",
    "file_meta",
    "remove_temporary_files",
]

#: PS3.4 B.2.3 Table B.2-1.
STATUS_OUT_OF_RESOURCES: Final = 0xA700
STATUS_DATASET_MISMATCH: Final = 0xA900
STATUS_CANNOT_UNDERSTAND: Final = 0xC210
STATUS_HANDLER_FAILED: Final = 0xC211
STATUS_ELEMENTS_DISCARDED: Final = 0xB006

#: Our order of preference (PS3.8 9.3.3.2: the acceptor picks): uncompressed first, so an
#: SCU offering several syntaxes for an uncompressed image never compresses it lossily.
ACCEPTED_TRANSFER_SYNTAXES: Final[tuple[str, ...]] = tuple(
    dict.fromkeys(
        [
            puid.ExplicitVRLittleEndian,
            IMPLICIT_VR_LITTLE_ENDIAN,
            DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN,
            EXPLICIT_VR_BIG_ENDIAN,
            puid.JPEGLosslessSV1,
            puid.JPEGLossless,
            puid.JPEGLSLossless,
            puid.JPEG2000Lossless,
            puid.HTJ2KLossless,
            puid.HTJ2KLosslessRPCL,
            puid.RLELossless,
            *puid.JPEGTransferSyntaxes,
            *puid.JPEGLSTransferSyntaxes,
            *puid.JPEG2000TransferSyntaxes,
        ]
    )
)


def _storage_sop_classes() -> tuple[str, ...]:
    """Every storage SOP class in pydicom's UID dictionary (PS3.4 B.5)."""
    found = {
        str(value)
        for name in dir(puid)
        if "Storage" in name
        and "Commitment" not in name
        and isinstance(value := getattr(puid, name), puid.UID)
        and value.type == "SOP Class"
    }
    return tuple(sorted(found))


#: All storage SOP classes pydicom knows.
STORAGE_SOP_CLASSES: Final[tuple[str, ...]] = _storage_sop_classes()

#: Threads finishing instances at once: one trip's writes overlap another's fsync waits.
#: Without fsync there is no wait to overlap: one thread, whose trips then take every
#: instance completed meanwhile (fewer, larger trips; no second thread contending for the
#: interpreter with the event loop).
_BATCH_WORKERS: Final = 2
_BATCH_WORKERS_NOT_DURABLE: Final = 1


class DuplicatePolicy(enum.Enum):
    """What happens when a SOP Instance UID is already stored (ROBUSTNESS 35)."""

    REPLACE = "replace"  # atomic replacement; the last copy wins
    KEEP = "keep"  # the first copy stays; the new one is dropped (success answered)


@dataclass(frozen=True, slots=True, kw_only=True)
class StoredInstance:
    """One received SOP instance, as the user's handler sees it.

    ``path`` is the complete file (PS3.10, fsynced when durable) under a temporary name;
    it becomes ``destination`` when the handler returns a success or warning status. Read
    it, do not move it. In memory (``StorageOptions.in_memory_max``) ``path`` and
    ``destination`` are None and ``data`` holds the dataset bytes (no file meta).
    """

    sop_class_uid: str
    sop_instance_uid: str
    transfer_syntax: str
    calling_ae_title: str
    peer: str
    message_id: int
    size: int
    path: Path | None = None
    destination: Path | None = None
    data: bytes | None = None
    #: The decoded dataset when ``StorageOptions.decode_dataset`` (decoded off the loop).
    dataset: Dataset | None = None
    file_meta: bytes = b""


StoreHandler = Callable[[StoredInstance], Awaitable[int]]


@dataclass(frozen=True, slots=True, kw_only=True)
class StorageOptions:
    """How the Storage SCP stores what it receives (see the module docstring)."""

    output_directory: Path = field(default_factory=lambda: Path("."))
    layout: Layout = Layout.FLAT
    #: fsync the file before the rename and the directory after it, before answering.
    durable: bool = True
    #: Refuse (0xA700) when the file system has less free space than this (bytes).
    min_free_space: int = 64 << 20
    duplicates: DuplicatePolicy = DuplicatePolicy.REPLACE
    #: Datasets up to this size stay in memory and never reach the disk (0: off).
    in_memory_max: int = 0
    handler: StoreHandler | None = None
    #: Give the handler the decoded pydicom Dataset (whole file read off the loop).
    decode_dataset: bool = False
    #: Receive and discard (``storescp --ignore``): nothing is written.
    ignore: bool = False
    transfer_syntaxes: tuple[str, ...] = ACCEPTED_TRANSFER_SYNTAXES
    #: Convert each file received on disk to this uncompressed transfer syntax before it is
    #: kept (the handler still sees it as received); ``None`` keeps it bit for bit. A file
    #: that cannot be converted (no codec) is kept as received, with a warning logged.
    convert_to: str | None = None
    sop_classes: tuple[str, ...] = STORAGE_SOP_CLASSES
    #: Private or newer SOP classes to accept as well.
    extra_sop_classes: tuple[str, ...] = ()
    write_size: int = 1 << 20
    queue_depth: int = 4
    #: Worker threads for disk work at once (opening, fsync, renames, blocked hand-overs).
    io_threads: int = 8
    #: Opt-in (0, the default: every write in a thread). Without ``durable``, an instance of
    #: at most this many bytes is written, named and answered by the event loop itself,
    #: which costs less than the hop to a thread and back (100-150 us per instance) while
    #: the page cache takes writes at once. Off by default because a write can block: when
    #: dirty pages pile up the kernel throttles writers, and on the loop that stalls every
    #: association it serves, not only this one.
    loop_write_max: int = 0

    def __post_init__(self) -> None:
        if self.min_free_space < 0 or self.in_memory_max < 0 or self.loop_write_max < 0:
            raise ValueError("min_free_space, in_memory_max and loop_write_max must be >= 0")
        if self.write_size < 64 * 1024 or self.queue_depth < 1 or self.io_threads < 1:
            raise ValueError("write_size >= 64 KiB, queue_depth >= 1, io_threads >= 1")


class _NullSink:
    """Counts and drops a dataset (``ignore``)."""

    __slots__ = ("size",)

    def __init__(self) -> None:
        self.size = 0

    async def write(self, data: memoryview) -> None:
        self.size += len(data)

    def write_nowait(self, data: memoryview) -> bool:
        """Count ``data`` at once (the channel then needs no reader trip per read)."""
        self.size += len(data)
        return True

    async def close(self) -> None:
        return None

    def close_nowait(self) -> bool:
        return True

    async def discard(self) -> None:
        return None


#: (status, error comment, offending elements) of a C-STORE-RSP.
_Status = tuple[int, str | None, tuple[int, ...] | None]


@dataclass(frozen=True, slots=True, kw_only=True)
class _Destination:
    """Where a checked instance goes: the parts of its path under the storage root."""

    parts: tuple[str, ...]

    def path(self, root: Path) -> Path:
        return root.joinpath(*self.parts)


@dataclass(slots=True)
class StorageStats:
    """Counters since start (for the CLI summary and benchmarks)."""

    stored: int = 0
    failed: int = 0
    bytes_received: int = 0


class StorageSCP:
    """A Storage SCP for an :class:`~aiodimse.services.ae.AE`; call :meth:`install`."""

    def __init__(self, options: StorageOptions | None = None) -> None:
        self.options = options or StorageOptions()
        self.root = Path(self.options.output_directory)
        self.stats = StorageStats()
        self._limiter: anyio.CapacityLimiter | None = None
        self._batcher: ThreadBatcher | None = None
        self._base: Path | None = None  # the root, resolved once (install)
        self._base_prefix: str | None = None  # the same, as a str ending with a separator
        # Nameless files made ahead of need (Linux O_TMPFILE), for instances that go
        # straight to their final name (no handler, no conversion: see ``_store``).
        self._anonymous = AnonymousFiles(self.root)

    # -- set-up --------------------------------------------------------------------------------

    def install(self, ae: AE) -> StorageSCP:
        """Create the root, remove stale temporary files, register with ``ae``.

        Call before ``ae.serve()`` (the acceptor policy is fixed when listening starts).
        Does blocking file system work: call it at start-up.
        """
        opts = self.options
        if not opts.ignore:
            self.root.mkdir(parents=True, exist_ok=True)
            self._base = self.root.resolve()
            self._base_prefix = os.path.join(self._base, "")
            removed = remove_temporary_files(self.root)
            if removed:
                log.warning("removed %d temporary file(s) left in %s", removed, self.root)
        have = {c.abstract_syntax for c in ae.supported_contexts}
        for sop in dict.fromkeys(opts.sop_classes + opts.extra_sop_classes):
            if sop not in have:
                ae.supported_contexts.append(
                    Context(abstract_syntax=sop, transfer_syntaxes=opts.transfer_syntaxes)
                )
        ae.request_handlers[CStoreRQ] = self.handle_store
        ae.sink_factories[CStoreRQ] = self.sink_factory
        ae.request_starters[CStoreRQ] = self.start_store
        self._ae = ae
        return self

    def limiter(self) -> anyio.CapacityLimiter:
        """The capacity limiter of this SCP's disk work (created in the running loop)."""
        if self._limiter is None:
            self._limiter = anyio.CapacityLimiter(self.options.io_threads)
        return self._limiter

    def batcher(self) -> ThreadBatcher:
        """Groups the write-fsync-rename trips of instances finishing at the same time (a
        dedicated thread on asyncio, anyio worker threads elsewhere)."""
        if self._batcher is None:
            most = _BATCH_WORKERS if self.options.durable else _BATCH_WORKERS_NOT_DURABLE
            workers = min(self.options.io_threads, most)
            self._batcher = ThreadBatcher(SyncBatcher(self.limiter()), workers=workers)
        return self._batcher

    # -- the sink factory ----------------------------------------------------------------------

    def sink_factory(
        self, channel: Channel, context_id: int, message: DimseMessage
    ) -> DatasetSink | None:
        """A temporary file for the dataset of a C-STORE-RQ (called by the channel)."""
        if not isinstance(message, CStoreRQ):
            return None
        if self.options.ignore:
            return _NullSink()
        ts = _transfer_syntax(channel, context_id)
        opts = self.options
        # The handler and the conversion read the file by its (temporary) name.
        direct = self._kept_as_it_came(ts)
        prefix = file_meta(
            sop_class_uid=message.affected_sop_class_uid,
            sop_instance_uid=message.affected_sop_instance_uid,
            transfer_syntax=ts,
            implementation_class_uid=self._ae.implementation_class_uid,
            implementation_version_name=self._ae.implementation_version_name,
            source_ae_title=_peer_ae_title(channel),
        )
        return FileSink(
            self._temporary_path,  # made only if needed (a nameless file has no name)
            directory=self.root,
            prefix=prefix,
            limiter=self.limiter(),
            durable=opts.durable,
            write_size=opts.write_size,
            queue_depth=opts.queue_depth,
            hold=_HOLD,
            keep_head=_HOLD,
            leading_skip=_group2_skipper(ts),
            skip_marker=_group2_marker(ts),
            in_memory_max=opts.in_memory_max,
            min_free_space=opts.min_free_space,
            # The reader goes on with the next message; handle_store finishes this one.
            defer_finish=True,
            anonymous=self._anonymous if direct else None,
        )

    def _temporary_path(self) -> Path:
        return self.root / temporary_name()

    # -- the request handler -------------------------------------------------------------------

    async def handle_store(self, ae: AE, channel: Channel, received: Received) -> None:
        """C-STORE SCP (PS3.4 B.2): check, hand to the user, keep, answer."""
        msg = received.message
        assert isinstance(msg, CStoreRQ)
        sink = received.sink
        status, comment, offending = 0x0000, None, None
        try:
            status, comment, offending = await self._store(channel, received, msg)
        except Exception as exc:  # a bug of ours must not end the association
            log.exception("%s: storing %s failed", channel.peer, msg.affected_sop_instance_uid)
            status, comment = STATUS_CANNOT_UNDERSTAND, _comment(f"internal error: {exc}")
        finally:
            if isinstance(sink, FileSink) and sink.state not in _SETTLED:
                with anyio.CancelScope(shield=True):
                    await sink.discard()
        await channel.send_message(
            received.context_id, self._answer(msg, sink, status, comment, offending)
        )

    def _answer(
        self,
        msg: CStoreRQ,
        sink: DatasetSink | None,
        status: int,
        comment: str | None,
        offending: tuple[int, ...] | None,
    ) -> CStoreRSP:
        """Count the outcome, and the C-STORE-RSP that reports it (PS3.4 B.2.3)."""
        if status == 0x0000 or status_info(status, Service.STORAGE).category in (
            StatusCategory.SUCCESS,
            StatusCategory.WARNING,
        ):
            self.stats.stored += 1
        else:
            self.stats.failed += 1
        self.stats.bytes_received += getattr(sink, "size", 0)
        return CStoreRSP(
            message_id_being_responded_to=msg.message_id,
            affected_sop_class_uid=_echo_class_uid(msg.affected_sop_class_uid),
            affected_sop_instance_uid=_echo_uid(msg.affected_sop_instance_uid),
            status=status,
            error_comment=comment,
            offending_element=offending,
        )

    def _kept_as_it_came(self, ts: str) -> bool:
        """An instance in transfer syntax ``ts`` is kept as received: no handler reads it
        and no conversion rewrites it."""
        return self.options.handler is None and self.options.convert_to in (None, ts)

    def _finished_on_loop(self, sink: FileSink) -> bool:
        """A small dataset held whole that is not fsynced: written to the page cache on the
        loop, cheaper than the hop to a thread (opt-in ``loop_write_max``)."""
        opts = self.options
        return not opts.durable and sink.whole and sink.size <= opts.loop_write_max

    def start_store(self, channel: Channel, received: Received, done: RequestDone) -> bool:
        """The channel's :data:`~aiodimse.net.inbound.RequestStarter` for C-STORE: what
        :meth:`handle_store` does, without a task, for an instance kept as it came (no
        handler, no conversion) whose file a worker thread finishes (asyncio). The thread's
        trip ends in :meth:`_stored`, on the loop, which answers. False for anything else
        (the handler's task performs it)."""
        msg = received.message
        sink = received.sink
        if (
            not isinstance(msg, CStoreRQ)
            or not isinstance(sink, FileSink)
            or not sink.defer_finish
            or sink.state is not SinkState.CLOSED
            or self._ae is None
            or self._ae.request_handlers.get(CStoreRQ) != self.handle_store  # replaced
        ):
            return False
        ts = _transfer_syntax(channel, received.context_id)
        if not self._kept_as_it_came(ts):
            return False
        if self._finished_on_loop(sink):
            return False  # handle_store does it (see _store)
        batcher = self.batcher()
        if not isinstance(batcher, ThreadBatcher):
            return False
        keep = functools.partial(self._check_and_keep, channel.peer, msg, ts)
        stored = functools.partial(self._stored, channel, received, done)
        return sink.finish_soon(keep, stored, batcher=batcher)

    def _stored(
        self,
        channel: Channel,
        received: Received,
        done: RequestDone,
        outcome: Callable[[], tuple[int, str | None, tuple[int, ...] | None]],
    ) -> None:
        """On the loop: the worker thread finished an instance :meth:`start_store` took."""
        msg = received.message
        sink = received.sink
        assert isinstance(msg, CStoreRQ) and isinstance(sink, FileSink)
        try:
            status, comment, offending = outcome()
        except Exception as exc:  # a bug of ours must not end the association
            log.exception("%s: storing %s failed", channel.peer, msg.affected_sop_instance_uid)
            status, comment, offending = (
                STATUS_CANNOT_UNDERSTAND,
                _comment(f"internal error: {exc}"),
                None,
            )
        rsp = self._answer(msg, sink, status, comment, offending)
        if sink.state in _SETTLED and channel.respond_nowait(received.context_id, rsp):
            done(None)
        else:
            done(functools.partial(self._answer_later, channel, received.context_id, sink, rsp))

    @staticmethod
    async def _answer_later(
        channel: Channel, context_id: int, sink: FileSink, rsp: CStoreRSP
    ) -> None:
        """:meth:`_stored`'s answer when it needs waiting (as in :meth:`handle_store`)."""
        if sink.state not in _SETTLED:
            with anyio.CancelScope(shield=True):
                await sink.discard()
        await channel.send_message(context_id, rsp)

    async def _store(
        self, channel: Channel, received: Received, msg: CStoreRQ
    ) -> tuple[int, str | None, tuple[int, ...] | None]:
        sink = received.sink
        context_id = received.context_id
        if not isinstance(sink, FileSink):
            return 0x0000, None, None  # ignore mode: received and dropped
        peer = channel.peer
        ts = _transfer_syntax(channel, context_id)
        if self._kept_as_it_came(ts):
            # One worker-thread trip (grouped with other instances finishing now): write,
            # fsync, check against the command, rename, fsync the directory; then answer.
            if sink.defer_finish:
                keep = functools.partial(self._check_and_keep, peer, msg, ts)
                if self._finished_on_loop(sink):
                    return sink.finish_here(keep)
                return await sink.finish(keep, batcher=self.batcher())
            return await anyio.to_thread.run_sync(
                self._check_and_keep, peer, msg, ts, sink, None, limiter=self.limiter()
            )
        # With a handler or a conversion: the complete, durable file first (one trip), the
        # handler and the conversion, then the rename (another trip).
        if sink.defer_finish:
            checked = await sink.finish(
                lambda s, _batch: self._check(peer, msg, ts, s), batcher=self.batcher()
            )
        else:
            checked = await anyio.to_thread.run_sync(
                self._check, peer, msg, ts, sink, limiter=self.limiter()
            )
        if not isinstance(checked, _Destination):
            return checked  # a failure status
        destination, parts = checked.path(self.root), checked.parts
        uid = msg.affected_sop_instance_uid
        status, comment = 0x0000, None
        if self.options.handler is not None:
            status, comment = await self._call_handler(channel, context_id, msg, sink, destination)
        category = status_info(status, Service.STORAGE).category
        if category not in (StatusCategory.SUCCESS, StatusCategory.WARNING):
            return status, comment, None
        if sink.on_disk and self.options.convert_to not in (None, ts):
            from .storage_convert import convert_received  # issue 8: convert on receipt

            await convert_received(
                sink.path, ts, str(self.options.convert_to), limiter=self.limiter(),
                durable=self.options.durable,
            )  # fmt: skip
        if sink.on_disk:
            try:
                placed = await sink.commit(
                    destination,
                    replace=self.options.duplicates is DuplicatePolicy.REPLACE,
                    check=lambda: resolve_inside(self.root, parts, base=self._base),
                )
            except (OSError, ValueError) as exc:
                log.error("%s: %s not stored: %s", peer, uid, exc)
                return STATUS_OUT_OF_RESOURCES, _comment(f"not stored: {exc}"), None
            _log_stored(peer, destination, sink, placed)
        if status == 0x0000 and sink.skipped:
            return STATUS_ELEMENTS_DISCARDED, "group 0002 elements removed from the dataset", None
        return status, comment, None

    def _check(self, peer: str, msg: CStoreRQ, ts: str, sink: FileSink) -> _Destination | _Status:
        """Worker thread: the written dataset against the command (PS3.4 B.2.3); returns
        the destination or a failure status."""
        uid = msg.affected_sop_instance_uid
        if sink.error is not None:
            log.error("%s: %s not stored: %s", peer, uid, sink.error)
            return STATUS_OUT_OF_RESOURCES, _comment(f"not stored: {sink.error}"), None
        tree = self.options.layout is Layout.TREE
        wanted = _WANTED_TREE if tree else _WANTED
        try:
            # The UIDs come early: a short look first, the whole head only when it is not
            # enough (same result: the walk stops once past the last wanted tag).
            raw = sink.head_start(_FIRST_LOOK)
            head = _read_head(raw, ts, sink.size <= len(raw), wanted)
            if not head.complete and len(raw) < sink.size:
                raw = sink.head  # a copy: taken once
                head = _read_head(raw, ts, sink.size <= len(raw), wanted)
        except dh.DatasetHeadError as exc:
            log.warning("%s: %s: %s", peer, uid, exc)
            return STATUS_CANNOT_UNDERSTAND, _comment(str(exc)), None
        mismatch = _mismatch(msg, head)
        if mismatch is not None:
            log.warning("%s: %s", peer, mismatch[0])
            return STATUS_DATASET_MISMATCH, _comment(mismatch[0]), (mismatch[1],)
        if sink.skipped:
            log.warning("%s: %s: %d bytes of group 0002 removed", peer, uid, sink.skipped)
        elif head.group2_length:
            log.warning("%s: %s: group 0002 inside a deflated dataset kept", peer, uid)
        if not tree:
            return _Destination(parts=relative_parts(sop_instance_uid=uid))
        parts = relative_parts(
            sop_instance_uid=uid,
            layout=Layout.TREE,
            patient_id=head.text(dh.PATIENT_ID),
            study_instance_uid=head.text(dh.STUDY_INSTANCE_UID),
            series_instance_uid=head.text(dh.SERIES_INSTANCE_UID),
        )
        return _Destination(parts=parts)

    def _check_and_keep(
        self, peer: str, msg: CStoreRQ, ts: str, sink: FileSink, batch: SyncBatch | None
    ) -> _Status:
        """Worker thread, no handler and no conversion: :meth:`_check`, then the atomic
        rename (its directory fsync left to ``batch``), then the status to answer."""
        checked = self._check(peer, msg, ts, sink)
        if not isinstance(checked, _Destination):
            return checked  # a failure status
        parts = checked.parts
        if sink.on_disk:
            base, prefix = self._base, self._base_prefix
            # FLAT: one name the policy made plain, directly in the resolved root: linked
            # there at once when free; resolve_inside decides only when the name exists.
            # A str, not a Path: no path object built per instance on this path.
            first = prefix + parts[0] if len(parts) == 1 and prefix is not None else None
            destination = first if first is not None else checked.path(self.root)
            try:
                placed = sink.commit_sync(
                    destination,
                    replace=self.options.duplicates is DuplicatePolicy.REPLACE,
                    check=lambda: resolve_inside(self.root, parts, base=base),
                    batch=batch,
                    first=first,
                )
            except (OSError, ValueError) as exc:
                log.error("%s: %s not stored: %s", peer, msg.affected_sop_instance_uid, exc)
                return STATUS_OUT_OF_RESOURCES, _comment(f"not stored: {exc}"), None
            _log_stored(peer, destination, sink, placed)
        if sink.skipped:
            return STATUS_ELEMENTS_DISCARDED, "group 0002 elements removed from the dataset", None
        return 0x0000, None, None

    async def _call_handler(
        self,
        channel: Channel,
        context_id: int,
        msg: CStoreRQ,
        sink: FileSink,
        destination: Path,
    ) -> tuple[int, str | None]:
        assert self.options.handler is not None
        ts = _transfer_syntax(channel, context_id)
        dataset: Dataset | None = None
        if self.options.decode_dataset:
            source: Path | bytes = sink.path if sink.on_disk else sink.prefix + (sink.data or b"")
            try:
                dataset = await anyio.to_thread.run_sync(_decode, source, limiter=self.limiter())
            except Exception as exc:
                log.warning(
                    "%s: cannot decode %s: %s", channel.peer, msg.affected_sop_instance_uid, exc
                )
                return STATUS_CANNOT_UNDERSTAND, _comment(f"cannot decode dataset: {exc}")
        instance = StoredInstance(
            sop_class_uid=msg.affected_sop_class_uid,
            sop_instance_uid=msg.affected_sop_instance_uid,
            transfer_syntax=ts,
            calling_ae_title=_peer_ae_title(channel),
            peer=channel.peer,
            message_id=msg.message_id,
            size=sink.size - sink.skipped,
            path=sink.path if sink.on_disk else None,
            destination=destination if sink.on_disk else None,
            data=sink.data,
            dataset=dataset,
            file_meta=sink.prefix,
        )
        try:
            return int(await self.options.handler(instance)), None
        except Exception as exc:
            # ROBUSTNESS 37 / PS3.4 B.2.3 "Error: cannot understand" (Cxxx) with a comment.
            log.exception("%s: the storage handler raised", channel.peer)
            return STATUS_HANDLER_FAILED, _comment(f"handler failed: {type(exc).__name__}: {exc}")


def _log_stored(peer: str, destination: Path | str, sink: FileSink, placed: bool) -> None:
    if log.isEnabledFor(logging.INFO):
        log.info(
            "%s: stored %s (%d bytes)%s",
            peer,
            destination,
            sink.size,
            "" if placed else "; kept the copy already there",
        )


def enable_storage(ae: AE, options: StorageOptions | None = None) -> StorageSCP:
    """Make ``ae`` a Storage SCP: ``StorageSCP(options).install(ae)``."""
    return StorageSCP(options).install(ae)


def remove_temporary_files(root: Path) -> int:
    """Delete temporary files a crash left in ``root`` (ROBUSTNESS 36); returns how many."""
    removed = 0
    try:
        entries = list(root.iterdir())
    except FileNotFoundError:
        return 0
    for entry in entries:
        if is_temporary_name(entry.name) and entry.is_file():
            try:
                entry.unlink()
                removed += 1
            except OSError as exc:
                log.error("cannot remove stale temporary file %s: %s", entry, exc)
    return removed


# -- helpers -------------------------------------------------------------------------------------


#: The elements read from a dataset's head: the UIDs checked against the command, and for
#: the tree layout the directory names.
_WANTED: Final = frozenset({dh.SOP_CLASS_UID, dh.SOP_INSTANCE_UID})
_WANTED_TREE: Final = _WANTED | {dh.PATIENT_ID, dh.STUDY_INSTANCE_UID, dh.SERIES_INSTANCE_UID}

#: Bytes of a dataset's head read first (then all of it, up to ``_HOLD``, if needed).
_FIRST_LOOK: Final = 4096

#: A sink in these states has nothing left to remove.
_SETTLED: Final = frozenset({SinkState.COMMITTED, SinkState.DISCARDED})


def _transfer_syntax(channel: Channel, context_id: int) -> str:
    negotiated = channel.negotiated
    assert negotiated is not None  # a message arrived: the association is established
    return negotiated.accepted[context_id].transfer_syntax


def _peer_ae_title(channel: Channel) -> str:
    """The peer's AE title: the calling AE when we accepted, the called AE when we requested."""
    rq = channel.request
    if rq is None:
        return ""
    return (rq.calling_ae_title if channel.on_associate is not None else rq.called_ae_title).strip()


def _decode(source: Path | bytes) -> Dataset:
    if isinstance(source, Path):
        return pydicom.dcmread(source)
    return pydicom.dcmread(io.BytesIO(source))
