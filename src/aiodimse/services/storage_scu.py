"""C-STORE as SCU (PS3.7 9.1.1, PS3.4 Annex B): files streamed from disk, datasets encoded.

Theory of operation
-------------------
An instance to store is a PS3.10 file (a path, or a :class:`DicomFileInfo` already probed)
or a pydicom ``Dataset``. A file is examined off the event loop
(:func:`aiodimse.net.filesource.probe_file`: file meta and the dataset's own SOP Class/
Instance UIDs, never the pixel data); :func:`~aiodimse.services.storage_contexts.choose_context`
picks the accepted presentation context. When it has the file's own transfer syntax the
dataset bytes go from disk to the socket unchanged: :class:`~aiodimse.net.filesource.DatasetReader`
reads 1 MiB at a time in a worker thread, the fragmenter cuts P-DATA-TF PDUs of the peer's
maximum length, and nothing holds more than a chunk or two (bit-preserving, bounded memory).
Over a plain TCP socket on Linux a dataset larger than one chunk is not read at all: a
:class:`~aiodimse.services.store_regions.RegionReader` hands out regions of the open file
and the transport writes them with ``os.sendfile`` (no copy, no worker-thread trip per
chunk). Handing out a region never waits, so such a dataset goes to the channel as a plain
iterable (:meth:`~aiodimse.services.store_pacing._Paced.regions`): the command leaves with
the first data PDU's headers in one gathered write, a short last PDU in one more. Pacing
(progress, the no-progress deadline) is :mod:`~aiodimse.services.store_pacing`.

Otherwise the dataset is converted while it is sent
(:class:`~aiodimse.services.storage_convert.ConvertedSource`): an uncompressed source is
transcoded element by element by the streaming transcoder (Implicit/Explicit VR Little
Endian, Explicit VR Big Endian, Deflated), a compressed one is decoded frame by frame
(:mod:`~aiodimse.services.decompress`); each step runs in a worker thread and memory stays
bounded. The first piece is produced before the C-STORE-RQ goes out, so a missing codec
fails that instance without touching the association. A pydicom ``Dataset`` is encoded in
memory in the chosen transfer syntax (decoded frame by frame when it is compressed and the
peer takes only uncompressed syntaxes).

Time: ``timeout`` (default ``Timeouts.store``, 60 s) is a **no-progress** deadline. It is
re-armed each time another slice of the dataset (about 1 MiB: :func:`slice_size_for`) has
gone to the transport, and once more when the last byte is out, so a slow transfer that
keeps moving (at least a slice per ``timeout``) never times out; a peer that stops reading,
or never answers, is aborted and the call raises :class:`~aiodimse.errors.DicomTimeoutError`.
A message cut short (timeout, cancellation, file changed under us, transport error) cannot
be continued (PS3.8 E.1), so the association is then aborted; so is it when the call is
cancelled while it waits for the response (an unanswered request would still count against
the operations window).

Progress: ``progress(bytes_sent, total)`` is called at most every
:data:`PROGRESS_INTERVAL` seconds while data moves (checked once per slice: one clock read
per MiB), and always once at the end of each instance with ``bytes_sent == total``.
"""

from __future__ import annotations

import logging
import zlib
from collections.abc import AsyncIterable, Callable, Iterable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Final, TypeAlias, cast

import anyio
from anyio.lowlevel import RunVar
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue

from ..constants import (
    DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN,
    EXPLICIT_VR_BIG_ENDIAN,
    EXPLICIT_VR_LITTLE_ENDIAN,
    IMPLICIT_VR_LITTLE_ENDIAN,
)
from ..dimse.messages import CStoreRQ, CStoreRSP, Priority
from ..dimse.status import Service, StatusCategory, status_info
from ..errors import (
    AssociationError,
    DicomError,
    DicomTimeoutError,
    LocalProtocolError,
    NetworkError,
)
from ..net.channel import Channel
from ..net.filesource import (
    DatasetReader,
    DicomFileError,
    DicomFileInfo,
    Prefetched,
    PreparedFiles,
    file_io_limiter,
    prepare_files,
    probe_files,
    read_file_info,
)
from .storage_contexts import ContextChoice, Conversion, choose_context, uid_name
from .storage_convert import ConvertedSource
from .store_pacing import (
    PROGRESS_INTERVAL,
    Progress,
    _Meter,
    _Paced,
    loop_clock,
    read_chunk_size,
    slice_size_for,
)
from .store_regions import RegionReader, regions_possible
from .ts_strategies import Capabilities, Strategy

if TYPE_CHECKING:
    from ..association.negotiation import AcceptedContext
    from ..net.inbound import Received
    from .ae import AE

__all__ = [
    "PROGRESS_INTERVAL",
    "DatasetInstance",
    "PreparedFiles",
    "Progress",
    "StoreItem",
    "StoreResult",
    "encode_dataset",
    "prepare_files",
    "resolve_items",
    "store",
]

log = logging.getLogger("aiodimse.storescu")

#: Worker threads encoding datasets at once per event loop (CPU bound: about the cores of a
#: small server; file reads have their own limiter).
ENCODE_THREADS: Final = 2

_DEFLATED: Final = frozenset({DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN, "1.2.840.10008.1.2.8.1"})


_encode_limiter: RunVar[anyio.CapacityLimiter] = RunVar("aiodimse_encode_limiter")


def _encoder_limiter() -> anyio.CapacityLimiter:
    try:
        return _encode_limiter.get()
    except LookupError:
        limiter = anyio.CapacityLimiter(ENCODE_THREADS)
        _encode_limiter.set(limiter)
        return limiter


# ------------------------------------------------------------------------------ instances


@dataclass(frozen=True, slots=True, kw_only=True)
class DatasetInstance:
    """A pydicom ``Dataset`` to store, with what :func:`propose_contexts` needs.

    ``transfer_syntax_uid`` is the dataset's own: its ``file_meta`` Transfer Syntax UID, or
    Explicit VR Little Endian for a dataset built in memory (native, encodable in any
    uncompressed transfer syntax).
    """

    dataset: Dataset
    sop_class_uid: str
    sop_instance_uid: str
    transfer_syntax_uid: str

    @classmethod
    def from_dataset(cls, ds: Dataset) -> DatasetInstance:
        """Read SOP Class/Instance UID (required) and the transfer syntax from ``ds``."""
        sop_class = _element_text(ds.get("SOPClassUID", ""))
        sop_instance = _element_text(ds.get("SOPInstanceUID", ""))
        if not sop_class or not sop_instance:
            raise LocalProtocolError("the dataset has no SOP Class UID or SOP Instance UID")
        meta = getattr(ds, "file_meta", None)
        ts = str(meta.get("TransferSyntaxUID", "") or "") if meta is not None else ""
        return cls(
            dataset=ds,
            sop_class_uid=sop_class,
            sop_instance_uid=sop_instance,
            transfer_syntax_uid=ts or EXPLICIT_VR_LITTLE_ENDIAN,
        )


def _element_text(value: object) -> str:
    """A UID value as it is on the wire: a (bad) multi-valued one joined by backslashes, so
    the command carries the dataset's own value (and the SCP can compare them)."""
    if isinstance(value, MultiValue | list | tuple):
        return "\\".join(str(v) for v in value).strip()
    return str(value or "").strip()


#: What :func:`store` takes: a path, a probed file, a pydicom Dataset.
StoreItem: TypeAlias = Path | str | DicomFileInfo | Dataset | DatasetInstance
_Resolved: TypeAlias = DicomFileInfo | DatasetInstance


@dataclass(frozen=True, slots=True, kw_only=True)
class StoreResult:
    """The outcome of storing one instance.

    ``status`` is the C-STORE-RSP Status (0000,0900) with its ``meaning`` and ``category``
    (PS3.4 Table B.2-1, PS3.7 Annex C), and the peer's ``error_comment`` (0000,0902) and
    ``offending_element`` (0000,0901) when it sent them. ``status`` is ``None`` when the
    peer never answered: the instance could not be sent (``error`` says why: not a DICOM
    file, no presentation context, association lost...). ``retryable`` says whether trying
    again later can help (out-of-resources statuses, network faults, timeouts).
    ``transfer_syntax`` is what went on the wire (``None`` if nothing was sent);
    ``converted`` is true when it differs from ``source_transfer_syntax``, ``conversion``
    says how (transcoded, or decompressed). ``strategy`` is the proposal strategy of the
    association that carried it (set by ``send_files``; ``None`` otherwise). ``warnings``
    carries local findings such as a stale file meta.
    """

    sop_class_uid: str = ""
    sop_instance_uid: str = ""
    source_transfer_syntax: str = ""
    transfer_syntax: str | None = None
    path: Path | None = None
    status: int | None = None
    meaning: str = ""
    category: StatusCategory | None = None
    error_comment: str | None = None
    offending_element: tuple[int, ...] | None = None
    error: str | None = None
    retryable: bool = False
    bytes_sent: int = 0
    converted: bool = False
    warnings: tuple[str, ...] = ()
    elapsed: float = 0.0
    conversion: Conversion = Conversion.NONE
    strategy: Strategy | None = None

    @property
    def ok(self) -> bool:
        """Stored: the peer answered Success or a Warning status."""
        return self.category in (StatusCategory.SUCCESS, StatusCategory.WARNING)

    @property
    def sent(self) -> bool:
        """The peer answered (any status)."""
        return self.status is not None

    def answer(self) -> str:
        """The peer's answer (or why there was none) in words."""
        if self.status is None:
            return self.error or "not sent"
        text = f"0x{self.status:04X} {self.meaning}"
        if self.error_comment:
            text += f", comment {self.error_comment!r}"
        if self.offending_element:
            tags = ", ".join(f"({t >> 16:04X},{t & 0xFFFF:04X})" for t in self.offending_element)
            text += f", offending element {tags}"
        return text

    def describe(self) -> str:
        """One line: what (file or instance), SOP class and transfer syntax, the answer."""
        what = str(self.path) if self.path is not None else self.sop_instance_uid or "?"
        parts = [what]
        if self.sop_class_uid:
            parts.append(uid_name(self.sop_class_uid))
        if self.source_transfer_syntax:
            ts = uid_name(self.source_transfer_syntax)
            if self.converted and self.transfer_syntax:
                how = " decompressed and" if self.conversion is Conversion.DECODE else ""
                ts += f"{how} sent as {uid_name(self.transfer_syntax)}"
            parts.append(ts)
        return f"{', '.join(parts)}: {self.answer()}"


def _retryable(code: int) -> bool:
    # PS3.4 B.2.3: A7xx "Refused: out of resources"; PS3.7 C.5.9 0213H "Resource limitation".
    # Other failures (A9xx, Cxxx, 01xx) describe the instance or the SCP: the same request
    # would fail again.
    return 0xA700 <= code <= 0xA7FF or code == 0x0213


# ------------------------------------------------------------------------------ encoding


def encode_dataset(
    ds: Dataset, transfer_syntax: str, *, source_syntax: str = EXPLICIT_VR_LITTLE_ENDIAN
) -> bytes:
    """``ds`` encoded as a C-STORE data set in ``transfer_syntax`` (blocking, CPU bound).

    Implicit/Explicit VR Little Endian, Explicit VR Big Endian, Deflated (PS3.5 A.5: the
    encoded dataset deflated, raw deflate) or, for an encapsulated (compressed) syntax,
    Explicit VR Little Endian with the pixel data as it is in ``ds``. Group 0002 elements
    never belong in a data set on the wire (PS3.7 9.3.1.1) and are left out. pydicom may
    convert ``ds``'s raw elements in place while doing so.

    ``source_syntax`` is the encoding ``ds``'s values come from (its file's transfer
    syntax; Explicit VR Little Endian for a dataset built in memory). pydicom writes OB/OW
    values as they are, so a change of byte order goes through the streaming transcoder,
    which swaps each value by its VR (PS3.5 7.3).
    """
    from pydicom.filebase import DicomBytesIO
    from pydicom.filewriter import write_dataset

    if any(tag.group == 0x0002 for tag in ds.keys()):
        ds = ds[0x00030000:]
    big_in = source_syntax == EXPLICIT_VR_BIG_ENDIAN
    big_out = transfer_syntax == EXPLICIT_VR_BIG_ENDIAN
    written = transfer_syntax
    if big_in != big_out:
        written = EXPLICIT_VR_BIG_ENDIAN if big_in else EXPLICIT_VR_LITTLE_ENDIAN
    fp = DicomBytesIO()
    fp.is_implicit_VR = written == IMPLICIT_VR_LITTLE_ENDIAN
    fp.is_little_endian = written != EXPLICIT_VR_BIG_ENDIAN
    write_dataset(fp, ds)
    data = fp.getvalue()
    if written != transfer_syntax:
        from ..dataset.transcode import transcode_bytes

        # Deflating, when wanted, is the transcoder's job too.
        return transcode_bytes(data, written, transfer_syntax)
    if transfer_syntax in _DEFLATED:
        packer = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, -zlib.MAX_WBITS)
        data = packer.compress(data) + packer.flush()
    return data


# ------------------------------------------------------------------------------ sending


async def _resolve(item: StoreItem) -> _Resolved:
    if isinstance(item, DicomFileInfo | DatasetInstance):
        return item
    if isinstance(item, Dataset):
        return DatasetInstance.from_dataset(item)
    return await anyio.to_thread.run_sync(read_file_info, Path(item), limiter=file_io_limiter())


async def resolve_items(items: Sequence[StoreItem]) -> list[_Resolved | DicomFileError]:
    """Every item as something to send, in order: paths probed together off the loop
    (:func:`probe_files`), datasets wrapped; one that cannot be sent becomes its
    :class:`DicomFileError` (never raised)."""
    paths = [Path(i) for i in items if isinstance(i, str | Path)]
    probed = iter(await probe_files(paths))
    resolved: list[_Resolved | DicomFileError] = []
    for item in items:
        if isinstance(item, str | Path):
            resolved.append(next(probed))
        elif isinstance(item, Dataset):
            try:
                resolved.append(DatasetInstance.from_dataset(item))
            except LocalProtocolError as exc:
                resolved.append(DicomFileError("<dataset>", str(exc)))
        else:
            resolved.append(item)
    return resolved


async def choose_instance_context(
    channel: Channel,
    item: _Resolved,
    usable: Callable[[AcceptedContext], bool] | None = None,
) -> ContextChoice:
    """:func:`choose_context` for ``item`` over the accepted contexts ``usable`` allows."""
    negotiated = channel.negotiated
    if negotiated is None:
        raise channel.error or AssociationError("association is not established")
    accepted = negotiated.accepted
    if usable is not None:
        accepted = {cid: ctx for cid, ctx in accepted.items() if usable(ctx)}
    rq_contexts = channel.request.presentation_contexts if channel.request is not None else ()
    return choose_context(
        accepted,
        item.sop_class_uid,
        item.transfer_syntax_uid,
        rejected=negotiated.rejected,
        proposed={pc.context_id: tuple(pc.transfer_syntaxes) for pc in rq_contexts},
        capabilities=await Capabilities.detect_async(),
    )


async def _discard(prefetched: Prefetched) -> None:
    """Close a read-ahead file that will not be sent as it is (off the loop, shielded)."""
    if prefetched.fp is not None:
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(prefetched.close, limiter=file_io_limiter())


async def _encode_off_loop(func: Callable[..., bytes], *args: object) -> bytes:
    """Run an encoder in a worker thread; its failures become LocalProtocolError."""
    try:
        return await anyio.to_thread.run_sync(func, *args, limiter=_encoder_limiter())
    except DicomError:
        raise
    except Exception as exc:  # pydicom raises many kinds for values it cannot encode
        raise LocalProtocolError(f"cannot encode the dataset: {exc}") from exc


def _transport_of(channel: Channel) -> object:
    """The channel's transport (asked whether it writes file regions)."""
    return channel.transport


def _store_timeout(ae: AE, timeout: float | None) -> float | None:
    if timeout is not None and timeout < 0:
        return ae.timeouts.store
    return timeout


async def _store_one(
    channel: Channel,
    ae: AE,
    item: _Resolved,
    *,
    meter: _Meter,
    timeout: float | None,
    priority: int,
    move_originator: tuple[str, int] | None = None,
    usable: Callable[[AcceptedContext], bool] | None = None,
    choice: ContextChoice | None = None,
    prefetched: Prefetched | None = None,
) -> StoreResult:
    """Send one resolved instance; raises on local failure or loss of the association.

    ``choice`` is the context :func:`choose_instance_context` gives for ``item`` (a batch
    computes it once per SOP class and transfer syntax); ``prefetched`` is the start of the
    file's dataset read ahead (sent as it is; this call owns it and closes it either way).
    """
    try:
        negotiated = channel.negotiated
        if negotiated is None or channel.is_closed:
            raise channel.error or AssociationError("association is not established")
        if choice is None:
            choice = await choose_instance_context(channel, item, usable)
    except BaseException:
        if prefetched is not None:
            await _discard(prefetched)
        raise
    if prefetched is not None and (choice.convert or not isinstance(item, DicomFileInfo)):
        await _discard(prefetched)
        prefetched = None
    clock = loop_clock()
    started = clock()
    payload: bytes | None = None
    converted: ConvertedSource | None = None
    if choice.conversion is Conversion.ENCODE:
        from .encode_lossless import encode_lossless

        log.info(
            "%s: encoding %s losslessly in %s",
            item.path if isinstance(item, DicomFileInfo) else item.sop_instance_uid,
            uid_name(item.transfer_syntax_uid),
            uid_name(choice.transfer_syntax),
        )
        payload = await _encode_off_loop(
            partial(encode_lossless, limit=ae.limits.max_in_memory_dataset),
            item if isinstance(item, DicomFileInfo) else item.dataset,
            item.transfer_syntax_uid,
            choice.transfer_syntax,
        )
        # The caller's total counted the stored length (nothing for a Dataset).
        planned = item.dataset_length if isinstance(item, DicomFileInfo) else 0
        meter.total += len(payload) - planned
    elif isinstance(item, DatasetInstance) and choice.conversion is not Conversion.DECODE:
        payload = await _encode_off_loop(
            partial(encode_dataset, source_syntax=item.transfer_syntax_uid),
            item.dataset,
            choice.transfer_syntax,
        )
        meter.total += len(payload)
    elif choice.convert:
        log.info(
            "%s: %s %s to %s",
            item.path if isinstance(item, DicomFileInfo) else item.sop_instance_uid,
            "decompressing" if choice.conversion is Conversion.DECODE else "transcoding",
            uid_name(item.transfer_syntax_uid),
            uid_name(choice.transfer_syntax),
        )
        converted = ConvertedSource(
            conversion=choice.conversion,
            source_syntax=item.transfer_syntax_uid,
            target_syntax=choice.transfer_syntax,
            limiter=_encoder_limiter(),
            file=item if isinstance(item, DicomFileInfo) else None,
            dataset=item.dataset if isinstance(item, DatasetInstance) else None,
            stored_length=item.dataset_length if isinstance(item, DicomFileInfo) else 0,
        )
    message_id = channel.next_message_id()
    rq = CStoreRQ(
        message_id=message_id,
        affected_sop_class_uid=item.sop_class_uid,
        affected_sop_instance_uid=item.sop_instance_uid,
        priority=priority,
        # PS3.7 9.1.1.1: a C-STORE sub-operation of a C-MOVE names the move's originator.
        move_originator_application_entity_title=move_originator[0] if move_originator else None,
        move_originator_message_id=move_originator[1] if move_originator else None,
    )
    slice_size = slice_size_for(channel, negotiated.peer_max_pdu)
    if prefetched is not None:
        if prefetched.error is not None:
            raise prefetched.error  # as opening it now would: nothing was sent
        if prefetched.fp is None:
            payload = prefetched.head  # the whole dataset, read ahead: no reader needed
    # What to close once the request went out (or failed): the converter, or the reader
    # (neither takes the exception: a plain try/finally, no exit stack per instance).
    close_converted: ConvertedSource | None = None
    close_reader: DatasetReader | RegionReader | None = None
    scope: anyio.CancelScope | None = None
    try:
        source: DatasetReader | RegionReader | ConvertedSource | bytes
        by_regions = False  # a RegionReader: the dataset is a plain iterable (no waiting)
        if converted is not None:
            close_converted = converted
            # The first piece before the request: a missing codec, a file that cannot be
            # decoded or transcoded fails this instance here, with nothing on the wire.
            try:
                await converted.prime()
            except DicomError:
                raise
            except Exception as exc:  # pydicom and the codecs raise many kinds
                raise LocalProtocolError(f"cannot convert the dataset: {exc}") from exc
            source = converted
        elif payload is None:
            assert isinstance(item, DicomFileInfo)
            # Opens the file: a vanished or changed file fails here, before anything is sent.
            chunk_size = read_chunk_size(slice_size)
            reader: DatasetReader | RegionReader
            if regions_possible(_transport_of(channel), item, chunk_size):
                # A region holds nothing in memory: one per slice (one PDU), so the pacing
                # has nothing to merge (a 4 MiB PDU: 1 region instead of 4 read chunks).
                reader = RegionReader(item, chunk_size=slice_size, prefetched=prefetched)
                by_regions = True
            else:
                reader = DatasetReader(item, chunk_size=chunk_size, prefetched=prefetched)
            source = await reader.__aenter__()
            close_reader = reader
        else:
            source = payload
        now = clock()
        # Without a timeout (a pipelined batch: its watchdog keeps the deadline) nothing can
        # cancel the send: no scope (a scope made, entered and left per instance saved).
        if timeout is not None:
            scope = anyio.CancelScope(deadline=now + timeout)
        with scope if scope is not None else nullcontext():
            paced = _Paced(
                source,
                slice_size=slice_size,
                scope=scope,
                timeout=timeout,
                meter=meter,
                planned=item.dataset_length if isinstance(item, DicomFileInfo) else 0,
                armed=now,
            )
            try:
                received = await channel.request_one(
                    choice.context_id,
                    rq,
                    None,  # the no-progress timer above bounds the wait
                    "the C-STORE response",
                    # The fragmenter and the socket transport take FileRegion chunks too.
                    dataset=paced.whole()
                    if source is payload
                    else cast("Iterable[memoryview]", paced.regions())
                    if by_regions
                    else cast("AsyncIterable[memoryview]", paced),
                    on_sent=paced.settle,
                )
            except BaseException as exc:
                # PS3.8 E.1: a message cut short can be neither finished nor withdrawn;
                # and a request left unanswered would still count against the
                # negotiated operations window (PS3.7 D.3.3.3). Either way: abort. Not
                # when the peer closed the connection under our write: nothing more can be
                # sent, and the reader ends the association once it has handled what
                # arrived before the break, such as the answers to our other outstanding
                # requests (aborting here would discard those unread).
                if not _peer_broke(exc):
                    with anyio.CancelScope(shield=True):
                        await channel.abort()
                raise
    finally:
        if close_reader is not None:
            await close_reader.__aexit__(None, None, None)
        elif close_converted is not None:
            await close_converted.aclose()
    if scope is not None and scope.cancelled_caught:
        await channel.abort()
        raise DicomTimeoutError("progress of the C-STORE (no byte sent or answer)", timeout or 0)
    return answer_result(channel, item, choice, received, paced.sent, clock() - started)


def _peer_broke(exc: BaseException) -> bool:
    """Whether ``exc`` is a send that failed because the peer closed or reset the
    connection."""
    return isinstance(exc, NetworkError) and isinstance(
        exc.__cause__, BrokenPipeError | ConnectionResetError | anyio.BrokenResourceError
    )


def answer_result(
    channel: Channel,
    item: _Resolved,
    choice: ContextChoice,
    received: Received,
    bytes_sent: int,
    elapsed: float,
) -> StoreResult:
    """The result of a C-STORE of ``item`` sent over ``choice`` and answered with
    ``received``; raises :class:`AssociationError` when that is not a C-STORE-RSP."""
    rsp = received.message
    if not isinstance(rsp, CStoreRSP):
        raise AssociationError(f"expected C-STORE-RSP, got {type(rsp).__name__}")
    if rsp.affected_sop_instance_uid and rsp.affected_sop_instance_uid != item.sop_instance_uid:
        log.warning(
            "%s: C-STORE-RSP names instance %s, we sent %s",
            channel.peer,
            rsp.affected_sop_instance_uid,
            item.sop_instance_uid,
        )
    info = status_info(rsp.status, Service.STORAGE)
    return StoreResult(
        sop_class_uid=item.sop_class_uid,
        sop_instance_uid=item.sop_instance_uid,
        source_transfer_syntax=item.transfer_syntax_uid,
        transfer_syntax=choice.transfer_syntax,
        path=item.path if isinstance(item, DicomFileInfo) else None,
        status=rsp.status,
        meaning=info.meaning,
        category=info.category,
        error_comment=rsp.error_comment,
        offending_element=rsp.offending_element,
        retryable=_retryable(rsp.status),
        bytes_sent=bytes_sent,
        converted=choice.transfer_syntax != item.transfer_syntax_uid,
        conversion=choice.conversion,
        warnings=item.warnings if isinstance(item, DicomFileInfo) else (),
        elapsed=elapsed,
    )


async def store(
    channel: Channel,
    ae: AE,
    item: StoreItem,
    *,
    progress: Progress | None = None,
    timeout: float | None = -1.0,
    priority: int = Priority.MEDIUM,
    move_originator: tuple[str, int] | None = None,
    usable: Callable[[AcceptedContext], bool] | None = None,
) -> StoreResult:
    """C-STORE one instance (PS3.7 9.1.1); used as ``Association.store``.

    ``move_originator`` (AE title, Message ID) is set on C-STORE sub-operations of a C-MOVE
    (PS3.7 9.1.1.1); ``usable`` restricts the accepted contexts considered (a C-GET SCP
    sends only over contexts where the requestor took the SCP role, PS3.7 D.3.3.4).

    ``item`` is a PS3.10 file (path or :class:`DicomFileInfo`) or a pydicom ``Dataset``.
    Returns the result for any status the peer answers (check ``result.ok``). Raises
    :class:`~aiodimse.net.filesource.DicomFileError` for a file that cannot be sent,
    :class:`~aiodimse.services.storage_contexts.NoPresentationContext` when no accepted
    context fits (nothing was sent in either case), and the association errors
    (:class:`~aiodimse.errors.DicomTimeoutError` after ``timeout`` seconds without progress,
    default ``Timeouts.store``; ``None`` waits forever) when the association is lost.
    """
    resolved = await _resolve(item)
    total = resolved.dataset_length if isinstance(resolved, DicomFileInfo) else 0
    meter = _Meter(progress, total)
    result = await _store_one(
        channel,
        ae,
        resolved,
        meter=meter,
        timeout=_store_timeout(ae, timeout),
        priority=priority,
        move_originator=move_originator,
        usable=usable,
    )
    meter.report()
    return result
