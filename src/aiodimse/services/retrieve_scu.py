"""C-GET and C-MOVE as SCU, with C-CANCEL (PS3.7 9.1.3, 9.1.4; PS3.4 C.4.2, C.4.3).

Theory of operation
-------------------
:func:`get` and :func:`move` send one retrieve request and hand the caller a
:class:`RetrieveOperation`: an async iterator of the instances received for *this*
operation (:class:`RetrievedInstance`: UIDs and the path of the stored file) as they arrive,
plus the sub-operation counts, the final status and the Failed SOP Instance UID List.

Where instances come from:

* **C-GET** (PS3.4 C.4.3): the SCP performs C-STORE sub-operations over the *same*
  association, so the requestor must have proposed the storage SOP classes with the SCP role
  (PS3.7 D.3.3.4, :func:`get_contexts`). While the operation runs, the channel's incoming
  C-STORE-RQs go to a Storage SCP of this operation (:class:`OperationStorage`), writing
  into the operation's directory with the Storage SCP's file policy (streamed to disk, never
  collected in memory).
* **C-MOVE** (PS3.4 C.4.2): the SCP opens a new association to the move destination. When
  that destination is our own AE, a :class:`~.move_coordinator.MoveCoordinator` receives the
  C-STOREs and hands each to the operation that caused it; otherwise no instance is
  yielded, only counts and status.

A background task reads the responses; the time limit (``Timeouts.get``/``Timeouts.move``)
applies *between* responses, and a received instance counts as progress too, so a long
retrieve with sparse pending responses does not fail. Leaving the ``async with`` block
before the final response sends C-CANCEL-RQ (PS3.7 9.3.3.3, 9.3.4.3) from a shielded scope
and waits for the final response, bounded by ``Timeouts.abort`` (then the association is
aborted), as C-FIND does (:mod:`.find_scu`).

Statuses (PS3.4 C.4.2.1.5, C.4.3.1.4): a failure (0xA701/0xA702 out of resources, 0xA801
move destination unknown, 0xA900, 0xCxxx) raises :class:`RetrieveFailed` at the end of the
iteration; Warning 0xB000 and Cancel 0xFE00 end it normally (look at ``status``).
"""

from __future__ import annotations

import logging
import math
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Final

import anyio
import anyio.abc
import anyio.to_thread
import pydicom.uid as puid
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
from pydicom.dataset import Dataset

from ..constants import EXPLICIT_VR_LITTLE_ENDIAN, IMPLICIT_VR_LITTLE_ENDIAN
from ..dimse.messages import (
    CCancelRQ,
    CGetRQ,
    CGetRSP,
    CMoveRQ,
    CMoveRSP,
    Priority,
)
from ..dimse.status import Service, StatusCategory, StatusInfo, status_info
from ..errors import AssociationError, DicomError, DicomTimeoutError, LocalProtocolError
from ..net.channel import Channel, Received
from .contexts import UNCOMPRESSED, Context
from .qr_models import (
    Query,
    QueryLevel,
    QueryModel,
    build_identifier,
    decode_identifier,
    encode_identifier,
)
from .retrieve_storage import (
    GetRouter,
    OperationStorage,
    RetrievedInstance,
    make_directory,
    remove_directory,
)
from .storage_scp import STORAGE_SOP_CLASSES, StorageOptions

if TYPE_CHECKING:
    from .ae import AE
    from .association import Association
    from .move_coordinator import MoveCoordinator

log = logging.getLogger("aiodimse.retrieve")

__all__ = [
    "DEFAULT_GET_STORAGE_CLASSES",
    "RetrieveFailed",
    "RetrieveOperation",
    "RetrievedInstance",
    "SubOperationCounts",
    "get",
    "get_contexts",
    "move",
    "move_contexts",
    "retrieve_sop_class",
]

#: PS3.4 C.6.1.1 / C.6.2.1 (UIDs PS3.6 A.1): the retrieve SOP classes of each model.
_GET_SOP: Final = {
    QueryModel.PATIENT_ROOT: "1.2.840.10008.5.1.4.1.2.1.3",
    QueryModel.STUDY_ROOT: "1.2.840.10008.5.1.4.1.2.2.3",
}
_MOVE_SOP: Final = {
    QueryModel.PATIENT_ROOT: "1.2.840.10008.5.1.4.1.2.1.2",
    QueryModel.STUDY_ROOT: "1.2.840.10008.5.1.4.1.2.2.2",
}

#: Storage SOP classes proposed for C-GET when the caller names none: the common ones
#: first, then the rest of pydicom's list, up to 127 (one context is the GET SOP class;
#: PS3.8 9.3.2.2 allows 128).
_COMMON_STORAGE: Final = (
    puid.CTImageStorage,
    puid.EnhancedCTImageStorage,
    puid.MRImageStorage,
    puid.EnhancedMRImageStorage,
    puid.ComputedRadiographyImageStorage,
    puid.DigitalXRayImageStorageForPresentation,
    puid.DigitalXRayImageStorageForProcessing,
    puid.DigitalMammographyXRayImageStorageForPresentation,
    puid.UltrasoundImageStorage,
    puid.UltrasoundMultiFrameImageStorage,
    puid.SecondaryCaptureImageStorage,
    puid.MultiFrameTrueColorSecondaryCaptureImageStorage,
    puid.MultiFrameGrayscaleByteSecondaryCaptureImageStorage,
    puid.MultiFrameGrayscaleWordSecondaryCaptureImageStorage,
    puid.NuclearMedicineImageStorage,
    puid.PositronEmissionTomographyImageStorage,
    puid.XRayAngiographicImageStorage,
    puid.XRayRadiofluoroscopicImageStorage,
    puid.RTImageStorage,
    puid.RTDoseStorage,
    puid.RTStructureSetStorage,
    puid.RTPlanStorage,
    puid.BasicTextSRStorage,
    puid.EnhancedSRStorage,
    puid.ComprehensiveSRStorage,
    puid.KeyObjectSelectionDocumentStorage,
    puid.GrayscaleSoftcopyPresentationStateStorage,
    puid.EncapsulatedPDFStorage,
    puid.VLPhotographicImageStorage,
    puid.SegmentationStorage,
)
DEFAULT_GET_STORAGE_CLASSES: Final[tuple[str, ...]] = tuple(
    dict.fromkeys([*map(str, _COMMON_STORAGE), *STORAGE_SOP_CLASSES])
)[:127]

#: What we propose to receive in (the SCP picks one per context, PS3.8 9.3.3.2).
GET_STORAGE_TRANSFER_SYNTAXES: Final[tuple[str, ...]] = (
    EXPLICIT_VR_LITTLE_ENDIAN,
    IMPLICIT_VR_LITTLE_ENDIAN,
)


def retrieve_sop_class(model: QueryModel | str, service: Service) -> str:
    """The C-GET or C-MOVE SOP class UID of a Q/R information model (PS3.4 C.6)."""
    qmodel = QueryModel.parse(model)
    table = _GET_SOP if service is Service.GET else _MOVE_SOP
    if qmodel not in table or service not in (Service.GET, Service.MOVE):
        raise LocalProtocolError(f"{qmodel.name} has no {service.value} SOP class")
    return table[qmodel]


def get_contexts(
    models: Iterable[QueryModel | str] = (QueryModel.STUDY_ROOT,),
    storage_sop_classes: Sequence[str] | None = None,
    transfer_syntaxes: Sequence[str] = GET_STORAGE_TRANSFER_SYNTAXES,
) -> list[Context]:
    """Contexts to propose for C-GET: the GET SOP classes, then storage with our SCP role.

    PS3.4 C.4.3.3.1 / PS3.7 D.3.3.4: the C-STORE sub-operations travel over this
    association with us as Storage SCP, which the requestor proposes with an SCP/SCU Role
    Selection sub-item (SCU role 0, SCP role 1). At most 128 contexts in all.
    """
    out = [Context(abstract_syntax=retrieve_sop_class(m, Service.GET)) for m in models]
    room = 128 - len(out)
    if storage_sop_classes is None:
        wanted = list(DEFAULT_GET_STORAGE_CLASSES[:room])  # the broad default, trimmed
    else:
        wanted = list(dict.fromkeys(storage_sop_classes))
    if len(wanted) > room:
        raise LocalProtocolError(
            f"{len(wanted)} storage SOP classes do not fit in {room} presentation contexts"
        )
    out.extend(
        Context(
            abstract_syntax=sop,
            transfer_syntaxes=tuple(transfer_syntaxes),
            scu_role=False,
            scp_role=True,
        )
        for sop in wanted
    )
    return out


def move_contexts(models: Iterable[QueryModel | str] = (QueryModel.STUDY_ROOT,)) -> list[Context]:
    """Contexts to propose for C-MOVE (the MOVE SOP class of each model)."""
    return [
        Context(abstract_syntax=retrieve_sop_class(m, Service.MOVE), transfer_syntaxes=UNCOMPRESSED)
        for m in models
    ]


@dataclass(frozen=True, slots=True, kw_only=True)
class SubOperationCounts:
    """Number of Remaining/Completed/Failed/Warning Sub-operations (PS3.7 C.4.2.1.4)."""

    remaining: int | None = None
    completed: int = 0
    failed: int = 0
    warning: int = 0


class RetrieveFailed(DicomError):
    """A C-GET or C-MOVE ended with a failure status (PS3.4 C.4.2.1.5, C.4.3.1.4).

    Carries the peer's ``status`` (with meaning), ``error_comment``, the final ``counts``
    and ``failed_sop_instance_uids`` (0008,0058). ``retryable`` is true for 0xA7xx
    "Refused: out of resources"; ``unknown_destination`` for C-MOVE 0xA801.
    """

    def __init__(
        self,
        service: Service,
        status: StatusInfo,
        error_comment: str | None = None,
        *,
        counts: SubOperationCounts | None = None,
        failed_sop_instance_uids: tuple[str, ...] = (),
    ) -> None:
        text = f"{service.value} failed: 0x{status.code:04X} {status.meaning}"
        if error_comment:
            text += f": {error_comment}"
        super().__init__(text)
        self.service = service
        self.status = status
        self.error_comment = error_comment
        self.counts = counts or SubOperationCounts()
        self.failed_sop_instance_uids = failed_sop_instance_uids
        self.retryable = 0xA700 <= status.code <= 0xA7FF
        self.unknown_destination = service is Service.MOVE and status.code == 0xA801


class _Final:
    """Marker on the event stream: the final response was handled."""


_FINAL: Final = _Final()
_Event = RetrievedInstance | _Final | BaseException


class RetrieveOperation:
    """The instances, counts and final status of one C-GET or C-MOVE (async iterator).

    Attributes, readable at any time: ``message_id``, ``context_id``, ``service``,
    ``directory`` (where received files go; ``None`` for a move to another AE),
    ``counts`` (from the last response), ``received`` (instances yielded or queued),
    ``status`` (final, else ``None``), ``error_comment``, ``failed_sop_instance_uids``,
    ``cancel_sent``.
    """

    def __init__(
        self,
        channel: Channel,
        *,
        service: Service,
        message_id: int,
        context_id: int,
        transfer_syntax: str,
        timeout: float | None,
        cancel_timeout: float,
        directory: Path | None,
    ) -> None:
        self._channel = channel
        self.service = service
        self.message_id = message_id
        self.context_id = context_id
        self._transfer_syntax = transfer_syntax
        self._timeout = timeout
        self._cancel_timeout = cancel_timeout
        self.directory = directory
        self.counts = SubOperationCounts()
        self.received = 0
        self.status: StatusInfo | None = None
        self.error_comment: str | None = None
        self.failed_sop_instance_uids: tuple[str, ...] = ()
        self.cancel_sent = False
        self._send: MemoryObjectSendStream[_Event]
        self._events: MemoryObjectReceiveStream[_Event]
        # Unbounded, but what is queued is small (UIDs and a path; the data is on disk) and
        # at most one entry per sub-operation the SCP announced.
        self._send, self._events = anyio.create_memory_object_stream[_Event](math.inf)
        self._last_activity = anyio.current_time()
        self._closed = False
        self._error: BaseException | None = None
        self._pump_done = anyio.Event()
        self._storing = 0
        self._idle = anyio.Event()
        self._idle.set()

    @property
    def done(self) -> bool:
        """The final response has been received."""
        return self.status is not None

    def __aiter__(self) -> RetrieveOperation:
        return self

    async def __anext__(self) -> RetrievedInstance:
        try:
            event = await self._events.receive()
        except (anyio.EndOfStream, anyio.ClosedResourceError):
            raise StopAsyncIteration from None
        if isinstance(event, RetrievedInstance):
            return event
        if isinstance(event, BaseException):
            raise event
        self._raise_if_failed()
        raise StopAsyncIteration

    def _raise_if_failed(self) -> None:
        if self.status is not None and self.status.category is StatusCategory.FAILURE:
            raise RetrieveFailed(
                self.service,
                self.status,
                self.error_comment,
                counts=self.counts,
                failed_sop_instance_uids=self.failed_sop_instance_uids,
            )

    # -- fed by the storage side ---------------------------------------------------------

    def touch(self) -> None:
        """Progress (a sub-operation C-STORE started or ended): restarts the response timer."""
        self._last_activity = anyio.current_time()

    def begin_store(self) -> None:
        """A sub-operation C-STORE-RQ for us arrived; the final response waits for it."""
        self.touch()
        if self._storing == 0:
            self._idle = anyio.Event()
        self._storing += 1

    def end_store(self) -> None:
        """That C-STORE was handled (and its instance delivered, if kept)."""
        self.touch()
        self._storing -= 1
        if self._storing == 0:
            self._idle.set()

    def deliver(self, instance: RetrievedInstance) -> None:
        """Queue a received instance for the caller (never waits: it runs after the
        C-STORE-RSP went out, when the peer may already be closing that association)."""
        self.touch()
        if self._closed:
            return
        self.received += 1
        try:
            self._send.send_nowait(instance)
        except (anyio.BrokenResourceError, anyio.ClosedResourceError):
            pass

    # -- the response reader -------------------------------------------------------------

    async def _pump(self, responses: MemoryObjectReceiveStream[Received]) -> None:
        try:
            while self.status is None:
                received = await self._next_response(responses)
                self._handle(received)
                self.touch()
            # The SCP answers finally after our C-STORE-RSPs: the handlers that sent them may
            # still be delivering their instances; the caller gets those before the end.
            # Bounded: a C-STORE whose association failed mid-dataset never ends.
            with anyio.move_on_after(self._cancel_timeout):
                await self._idle.wait()
            await self._emit(_FINAL)
        except Exception as exc:
            self._error = exc
            if isinstance(exc, DicomTimeoutError) and not self._channel.is_closed:
                # A late response would be read by the next operation: end the association.
                with anyio.CancelScope(shield=True):
                    await self._channel.abort()
            await self._emit(exc)
        finally:
            self._pump_done.set()

    async def _emit(self, event: _Event) -> None:
        try:
            await self._send.send(event)
        except (anyio.BrokenResourceError, anyio.ClosedResourceError):
            pass

    async def _next_response(self, responses: MemoryObjectReceiveStream[Received]) -> Received:
        what = f"a {self.service.value} response"
        while True:
            if self._timeout is None:
                wait: float | None = None
            else:
                wait = self._last_activity + self._timeout - anyio.current_time()
                if wait <= 0:
                    raise DicomTimeoutError(what, self._timeout)
            try:
                with anyio.move_on_after(wait):
                    return await responses.receive()
            except (anyio.EndOfStream, anyio.ClosedResourceError):
                raise self._channel.error or AssociationError(
                    f"{self._channel.peer}: association ended during {self.service.value}"
                ) from None
            # Timed out: loop; a sub-operation since then moved the deadline.

    def _handle(self, received: Received) -> None:
        rsp = received.message
        expected = CGetRSP if self.service is Service.GET else CMoveRSP
        if not isinstance(rsp, CGetRSP | CMoveRSP) or not isinstance(rsp, expected):
            raise AssociationError(f"expected {expected.__name__}, got {type(rsp).__name__}")
        info = status_info(rsp.status, self.service)
        # PS3.7 C.4.2.1.4 / 9.3.3.2: counts are conditional; keep what was last sent.
        self.counts = SubOperationCounts(
            remaining=rsp.number_of_remaining_sub_operations,
            completed=_count(rsp.number_of_completed_sub_operations, self.counts.completed),
            failed=_count(rsp.number_of_failed_sub_operations, self.counts.failed),
            warning=_count(rsp.number_of_warning_sub_operations, self.counts.warning),
        )
        if info.category is StatusCategory.PENDING:
            return
        self.status = info
        self.error_comment = rsp.error_comment
        if received.dataset:
            # PS3.4 C.4.2.1.4 / C.4.3.1.3: the final identifier lists the failed instances.
            self.failed_sop_instance_uids = _failed_uids(received.dataset, self._transfer_syntax)
        log.info(
            "%s: %s final status 0x%04X %s (completed %d, failed %d, warning %d)",
            self._channel.peer,
            self.service.value,
            info.code,
            info.meaning,
            self.counts.completed,
            self.counts.failed,
            self.counts.warning,
        )

    async def _finish(self) -> None:
        """On leaving the block: C-CANCEL when unfinished, then wait for the final response."""
        self._closed = True
        self._events.close()
        channel = self._channel
        if self.status is not None or self._error is not None:
            return
        if channel.is_closed or channel.error is not None:
            return
        with anyio.CancelScope(shield=True):
            with anyio.move_on_after(self._cancel_timeout) as scope:
                try:
                    # PS3.7 9.3.3.3 / 9.3.4.3: C-CANCEL names the operation it cancels.
                    await channel.send_message(
                        self.context_id,
                        CCancelRQ(message_id_being_responded_to=self.message_id),
                    )
                    self.cancel_sent = True
                    log.info("%s: C-CANCEL sent for message %d", channel.peer, self.message_id)
                except DicomError as exc:
                    log.info("%s: C-CANCEL not sent: %s", channel.peer, exc)
                    return
                await self._pump_done.wait()
            if scope.cancelled_caught and not channel.is_closed:
                log.warning(
                    "%s: no final %s response within %g s of C-CANCEL; aborting",
                    channel.peer,
                    self.service.value,
                    self._cancel_timeout,
                )
                await channel.abort()

    def _close(self) -> None:
        self._closed = True
        self._send.close()
        self._events.close()


def _count(value: int | None, previous: int) -> int:
    return previous if value is None else value


def _failed_uids(data: bytes, transfer_syntax: str) -> tuple[str, ...]:
    try:
        ds = decode_identifier(data, transfer_syntax)
    except DicomError as exc:
        log.warning("final response identifier not decoded: %s", exc)
        return ()
    value = ds.get("FailedSOPInstanceUIDList")
    if value is None or value == "":
        return ()
    items = [value] if isinstance(value, str) else list(value)
    return tuple(str(v).strip(" \x00") for v in items if str(v).strip(" \x00"))


def _identifier(
    assoc: Association,
    query: Query,
    model: QueryModel,
    level: QueryLevel | str | None,
    sop_class: str,
    charset: str | None,
) -> tuple[int, str, bytes, Dataset]:
    qlevel = QueryLevel.parse(level) if level is not None else None
    cid = assoc.context_for(sop_class)
    transfer_syntax = assoc.negotiated.accepted[cid].transfer_syntax
    identifier = build_identifier(query, model, qlevel, charset=charset)
    return cid, transfer_syntax, encode_identifier(identifier, transfer_syntax), identifier


@asynccontextmanager
async def _run(
    channel: Channel,
    rq: CGetRQ | CMoveRQ,
    data: bytes,
    op: RetrieveOperation,
) -> AsyncIterator[RetrieveOperation]:
    # The body's exception is re-raised as itself, not wrapped in an ExceptionGroup.
    error: BaseException | None = None
    try:
        async with channel.expect_responses(rq.message_id) as responses:
            async with anyio.create_task_group() as tg:
                await channel.send_message(op.context_id, rq, data)
                tg.start_soon(op._pump, responses)
                try:
                    yield op
                except BaseException as exc:
                    error = exc
                finally:
                    try:
                        await op._finish()
                    finally:
                        tg.cancel_scope.cancel()
    finally:
        op._close()
    if error is not None:
        raise error


@asynccontextmanager
async def get(
    assoc: Association,
    channel: Channel,
    ae: AE,
    query: Query,
    *,
    model: QueryModel | str = QueryModel.STUDY_ROOT,
    level: QueryLevel | str | None = None,
    timeout: float | None,
    cancel_timeout: float,
    directory: Path | None = None,
    storage_options: StorageOptions | None = None,
    priority: Priority = Priority.MEDIUM,
    charset: str | None = None,
) -> AsyncIterator[RetrieveOperation]:
    """C-GET (PS3.4 C.4.3): yields a :class:`RetrieveOperation` (see the module docstring).

    Received files go into ``directory`` (created when missing, kept) or else a temporary
    directory removed when the block ends: copy what you want to keep while iterating.
    Raises before sending: ``ContextNotAccepted`` when the GET SOP class was not accepted.
    """
    qmodel = QueryModel.parse(model)
    sop_class = retrieve_sop_class(qmodel, Service.GET)
    cid, ts, data, _ = _identifier(assoc, query, qmodel, level, sop_class, charset)
    if not any(c.requestor_scp for c in assoc.negotiated.accepted.values()):
        log.warning("%s: no storage context with our SCP role accepted", channel.peer)
    path, temporary = await make_directory(directory, "aiodimse-get-")
    try:
        storage = OperationStorage(ae, path, storage_options)
        router = GetRouter(channel, storage, ae)
        router.install()
        try:
            message_id = channel.next_message_id()
            op = RetrieveOperation(
                channel,
                service=Service.GET,
                message_id=message_id,
                context_id=cid,
                transfer_syntax=ts,
                timeout=timeout,
                cancel_timeout=cancel_timeout,
                directory=path,
            )
            storage.operation = op
            rq = CGetRQ(message_id=message_id, affected_sop_class_uid=sop_class, priority=priority)
            async with _run(channel, rq, data, op):
                yield op
        finally:
            router.uninstall()
    finally:
        if temporary:
            with anyio.CancelScope(shield=True):
                await remove_directory(path)


@asynccontextmanager
async def move(
    assoc: Association,
    channel: Channel,
    ae: AE,
    query: Query,
    *,
    destination: str,
    model: QueryModel | str = QueryModel.STUDY_ROOT,
    level: QueryLevel | str | None = None,
    timeout: float | None,
    cancel_timeout: float,
    coordinator: MoveCoordinator | None = None,
    directory: Path | None = None,
    priority: Priority = Priority.MEDIUM,
    charset: str | None = None,
) -> AsyncIterator[RetrieveOperation]:
    """C-MOVE (PS3.4 C.4.2) to ``destination``; yields a :class:`RetrieveOperation`.

    With a ``coordinator`` whose AE title is ``destination``, the instances the peer sends
    there for this operation are yielded (stored in ``directory`` or a temporary one, see
    :class:`~.move_coordinator.MoveCoordinator`); otherwise only counts and status.
    """
    qmodel = QueryModel.parse(model)
    sop_class = retrieve_sop_class(qmodel, Service.MOVE)
    cid, ts, data, identifier = _identifier(assoc, query, qmodel, level, sop_class, charset)
    destination = destination.strip()
    if not destination or len(destination) > 16:
        raise LocalProtocolError(f"invalid move destination {destination!r} (PS3.5 VR AE)")
    message_id = channel.next_message_id()
    rq = CMoveRQ(
        message_id=message_id,
        affected_sop_class_uid=sop_class,
        priority=priority,
        move_destination=destination,
    )
    ours = coordinator is not None and coordinator.ae_title == destination
    op = RetrieveOperation(
        channel,
        service=Service.MOVE,
        message_id=message_id,
        context_id=cid,
        transfer_syntax=ts,
        timeout=timeout,
        cancel_timeout=cancel_timeout,
        directory=None,
    )
    if not ours:
        async with _run(channel, rq, data, op):
            yield op
        return
    assert coordinator is not None
    async with coordinator.register(
        op, originator=ae.ae_title, identifier=identifier, directory=directory
    ):
        async with _run(channel, rq, data, op):
            yield op
