"""C-GET and C-MOVE as SCP: the Query/Retrieve framework's retrieve half (PS3.4 C.4.2, C.4.3).

Theory of operation
-------------------
The user supplies a *backend*: ``backend(identifier, model, level)`` returning an async
iterator of the instances to send, each a PS3.10 file (``Path``/``str``) or a pydicom
``Dataset`` (an async generator function is the natural shape; an object with a
``retrieve`` method works too). The library performs the sub-operations:

* **C-GET** (PS3.4 C.4.3): a C-STORE-RQ per instance back over the *same* association, only
  over presentation contexts whose SCP role the requestor took by SCP/SCU Role Selection
  (PS3.7 D.3.3.4; :meth:`RetrieveSCP.install` accepts that role for the storage SOP
  classes). An instance no such context fits is a failed sub-operation.
* **C-MOVE** (PS3.4 C.4.2): the Move Destination (0000,0600) is looked up in
  ``move_destinations`` (AE title -> host, port; unknown: 0xA801). A *new* association to
  it, our AE as requestor, proposes what the instances need; each C-STORE-RQ carries Move
  Originator AE Title and Message ID (PS3.7 9.1.1.1). An association the destination
  refuses fails every sub-operation: 0xA702.

The backend's iterator is drained first (the number of sub-operations must be known for
the Number of Remaining Sub-operations, PS3.7 9.3.3.2 / 9.3.4.2); files are probed off the
loop, then sent one at a time. After each sub-operation but the last a Pending response
with the counts goes back (a slow requestor slows the sub-operations: backpressure). The
final status (PS3.4 C.4.2.1.4, C.4.3.1.4): 0x0000 when all completed; 0xB000 when some
failed or had warnings; 0xA702 when all failed; 0xFE00 after C-CANCEL (checked between
sub-operations: a C-STORE being sent is finished, never cut). Unless Success, the final
response carries an identifier with Failed SOP Instance UID List (0008,0058).

Backend failures: :class:`~aiodimse.services.qr_models.FindFailed` chooses the status (e.g.
0xA701, 0xC000); any other exception is 0xC001 (``MemoryError``: 0xA701, as is an
identifier too large to hold). An undecodable identifier is 0xC000, a missing or invalid
Query/Retrieve Level 0xA900; a pending response the requestor does not read within
``Timeouts.get``/``Timeouts.move`` aborts the association. When the requestor's association ends the
handler stops: nothing more can be sent.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Final, Protocol, TypeAlias

import anyio
import anyio.lowlevel
from pydicom.dataset import Dataset

from ..dimse.messages import CGetRQ, CGetRSP, CMoveRQ, CMoveRSP, DimseMessage
from ..dimse.status import StatusCategory
from ..errors import AssociationError, DicomError, DicomTimeoutError
from ..net.channel import Channel, Received
from ..net.filesource import DicomFileError, DicomFileInfo, probe_files
from ..net.sinks import DatasetSink, MemorySink
from .contexts import Context
from .find_scp import DEFAULT_MAX_IDENTIFIER
from .qr_models import (
    STATUS_BACKEND_FAILED,
    STATUS_CANCEL,
    STATUS_IDENTIFIER_DOES_NOT_MATCH,
    STATUS_PENDING,
    STATUS_SUCCESS,
    FindFailed,
    IdentifierError,
    QueryLevel,
    QueryModel,
    decode_identifier,
    encode_identifier,
)
from .storage_contexts import propose_contexts
from .storage_scp import ACCEPTED_TRANSFER_SYNTAXES, STORAGE_SOP_CLASSES
from .storage_scu import DatasetInstance, StoreResult, store

if TYPE_CHECKING:
    from ..association.negotiation import AcceptedContext
    from .ae import AE

__all__ = [
    "GET_SOP_CLASSES",
    "MOVE_SOP_CLASSES",
    "STATUS_MOVE_DESTINATION_UNKNOWN",
    "STATUS_SUBOPERATIONS_FAILED",
    "STATUS_SUBOPERATIONS_WARNING",
    "STATUS_UNABLE_TO_CALCULATE",
    "MoveDestination",
    "RetrieveBackend",
    "RetrieveItem",
    "RetrieveSCP",
    "enable_retrieve",
]

log = logging.getLogger("aiodimse.retrieve")

#: PS3.4 C.4.2.1.4 / C.4.3.1.4 statuses.
STATUS_UNABLE_TO_CALCULATE: Final = 0xA701  # Refused: unable to calculate number of matches
STATUS_SUBOPERATIONS_FAILED: Final = 0xA702  # Refused: unable to perform sub-operations
STATUS_MOVE_DESTINATION_UNKNOWN: Final = 0xA801
STATUS_SUBOPERATIONS_WARNING: Final = 0xB000  # one or more failures or warnings
_STATUS_UNSUPPORTED_SOP_CLASS: Final = 0x0122  # PS3.7 C.5.2
_COMMENT_MAX: Final = 64  # PS3.5 VR LO

#: Retrieve SOP classes by information model (PS3.4 C.6.1, C.6.2; UIDs PS3.6 A.1).
GET_SOP_CLASSES: Final[Mapping[QueryModel, str]] = {
    QueryModel.PATIENT_ROOT: "1.2.840.10008.5.1.4.1.2.1.3",
    QueryModel.STUDY_ROOT: "1.2.840.10008.5.1.4.1.2.2.3",
}
MOVE_SOP_CLASSES: Final[Mapping[QueryModel, str]] = {
    QueryModel.PATIENT_ROOT: "1.2.840.10008.5.1.4.1.2.1.2",
    QueryModel.STUDY_ROOT: "1.2.840.10008.5.1.4.1.2.2.2",
}

#: What a retrieve backend yields: a PS3.10 file or a pydicom Dataset.
RetrieveItem: TypeAlias = Path | str | Dataset
RetrieveBackend = Callable[
    [Dataset, QueryModel, QueryLevel],
    "AsyncIterator[RetrieveItem] | Awaitable[AsyncIterator[RetrieveItem]]",
]


class RetrieveBackendObject(Protocol):
    """A backend as an object with a ``retrieve`` method of the :data:`RetrieveBackend` shape."""

    def retrieve(
        self, identifier: Dataset, model: QueryModel, level: QueryLevel
    ) -> AsyncIterator[RetrieveItem] | Awaitable[AsyncIterator[RetrieveItem]]: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class MoveDestination:
    """Where a C-MOVE Move Destination AE title is found."""

    host: str
    port: int


_Instance: TypeAlias = DicomFileInfo | DatasetInstance


@dataclass(slots=True)
class _Counts:
    """Sub-operation counts (PS3.7 9.3.3.2) and the failed SOP Instance UIDs."""

    remaining: int = 0
    completed: int = 0
    failed: int = 0
    warning: int = 0
    failed_uids: list[str] | None = None

    def fail(self, uid: str) -> None:
        self.remaining -= 1
        self.failed += 1
        if uid:
            assert self.failed_uids is not None
            self.failed_uids.append(uid)

    def final_status(self) -> int:
        # PS3.4 C.4.2.1.4, C.4.3.1.4.
        if self.failed and not self.completed and not self.warning:
            return STATUS_SUBOPERATIONS_FAILED
        if self.failed or self.warning:
            return STATUS_SUBOPERATIONS_WARNING
        return STATUS_SUCCESS


def _comment(text: str) -> str | None:
    text = " ".join(text.split()).encode("ascii", "replace").decode("ascii")
    return text[:_COMMENT_MAX] or None


class _Refused(Exception):
    """A retrieve refused before any sub-operation: the final status and comment."""

    def __init__(self, status: int, comment: str | None = None) -> None:
        super().__init__(comment or f"0x{status:04X}")
        self.status = status
        self.comment = comment


class RetrieveSCP:
    """The C-GET and C-MOVE SCP service: install it on an AE before ``AE.serve()``.

    ``backend`` is a :data:`RetrieveBackend` callable or an object with a ``retrieve``
    method. ``get``/``move`` choose the services; ``move_destinations`` maps a Move
    Destination AE title to a :class:`MoveDestination` (or ``(host, port)``) and may be a
    dict the application updates later. For C-GET the storage SOP classes in
    ``storage_sop_classes`` are accepted with the requestor as SCP (``transfer_syntaxes``
    in our order of preference).
    """

    def __init__(
        self,
        backend: RetrieveBackend | RetrieveBackendObject,
        *,
        models: Iterable[QueryModel] = (QueryModel.PATIENT_ROOT, QueryModel.STUDY_ROOT),
        get: bool = True,
        move: bool = True,
        move_destinations: Mapping[str, MoveDestination | tuple[str, int]] | None = None,
        storage_sop_classes: Iterable[str] = STORAGE_SOP_CLASSES,
        transfer_syntaxes: tuple[str, ...] = ACCEPTED_TRANSFER_SYNTAXES,
        max_identifier: int = DEFAULT_MAX_IDENTIFIER,
        store_timeout: float | None = -1.0,
    ) -> None:
        method = getattr(backend, "retrieve", None)
        self._backend: RetrieveBackend = method if callable(method) else backend  # type: ignore[assignment]
        self.models = tuple(m for m in models if m in GET_SOP_CLASSES)
        self.get = get
        self.move = move
        self.move_destinations: Mapping[str, MoveDestination | tuple[str, int]] = (
            move_destinations if move_destinations is not None else {}
        )
        self.storage_sop_classes = tuple(storage_sop_classes)
        self.transfer_syntaxes = transfer_syntaxes
        self.max_identifier = max_identifier
        self.store_timeout = store_timeout
        #: Totals, for tests and metrics.
        self.operations = 0
        self.cancelled = 0

    # -- set-up ----------------------------------------------------------------------------

    def install(self, ae: AE) -> RetrieveSCP:
        """Register the handlers and contexts on ``ae`` (call before ``ae.serve()``).

        For C-GET, storage SOP classes already supported keep their transfer syntaxes and
        gain acceptance of the requestor's SCP role; missing ones are added.
        """
        wanted: list[str] = []
        if self.get:
            wanted += [GET_SOP_CLASSES[m] for m in self.models]
            ae.request_handlers[CGetRQ] = self.handle
            ae.sink_factories[CGetRQ] = self.sink
        if self.move:
            wanted += [MOVE_SOP_CLASSES[m] for m in self.models]
            ae.request_handlers[CMoveRQ] = self.handle
            ae.sink_factories[CMoveRQ] = self.sink
        have = {c.abstract_syntax for c in ae.supported_contexts}
        for uid in wanted:
            if uid not in have:
                ae.supported_contexts.append(Context(abstract_syntax=uid))
        if self.get:
            # PS3.7 D.3.3.4: accept both roles for storage classes (the C-GET requestor
            # proposes SCP; a plain C-STORE SCU proposes nothing or SCU).
            roles = set(self.storage_sop_classes)
            for n, ctx in enumerate(ae.supported_contexts):
                if ctx.abstract_syntax in roles:
                    ae.supported_contexts[n] = replace(ctx, scu_role=True, scp_role=True)
                    roles.discard(ctx.abstract_syntax)
            for uid in self.storage_sop_classes:
                if uid in roles:
                    ae.supported_contexts.append(
                        Context(
                            abstract_syntax=uid,
                            transfer_syntaxes=self.transfer_syntaxes,
                            scu_role=True,
                            scp_role=True,
                        )
                    )
        return self

    def sink(self, channel: Channel, context_id: int, message: DimseMessage) -> DatasetSink:
        """Register the C-CANCEL event as the command arrives; identifier in memory."""
        if isinstance(message, CGetRQ | CMoveRQ):
            channel.cancellations.setdefault(message.message_id, anyio.Event())
        return MemorySink(self.max_identifier)

    # -- one operation ---------------------------------------------------------------------

    async def handle(self, ae: AE, channel: Channel, received: Received) -> None:
        """Perform one C-GET or C-MOVE (request handler)."""
        msg = received.message
        assert isinstance(msg, CGetRQ | CMoveRQ)
        mid = msg.message_id
        cancel = channel.cancellations.setdefault(mid, anyio.Event())
        self.operations += 1
        try:
            await self._perform(ae, channel, received, msg, cancel)
        except DicomError as exc:
            log.info("%s: %s ended with the association: %s", channel.peer, _name(msg), exc)
        finally:
            if channel.cancellations.get(mid) is cancel:
                del channel.cancellations[mid]

    async def _perform(
        self,
        ae: AE,
        channel: Channel,
        received: Received,
        msg: CGetRQ | CMoveRQ,
        cancel: anyio.Event,
    ) -> None:
        counts = _Counts(failed_uids=[])
        try:
            model, level, identifier = self._parse(channel, received, msg)
            destination: MoveDestination | None = None
            if isinstance(msg, CMoveRQ):
                destination = self._destination(msg.move_destination)
            items = await self._collect(identifier, model, level, cancel)
        except _Refused as exc:
            await self._final(channel, received, msg, exc.status, counts, exc.comment)
            return
        if cancel.is_set():
            await self._final(channel, received, msg, STATUS_CANCEL, counts, None)
            return
        counts.remaining = len(items)
        usable: list[_Instance] = []
        for item in items:
            if isinstance(item, DicomFileError):
                log.warning("%s: %s: cannot send %s", channel.peer, _name(msg), item)
                counts.fail("")
            else:
                usable.append(item)
        comment: str | None = None
        if isinstance(msg, CGetRQ):
            ok = await self._run(ae, channel, received, msg, counts, usable, cancel, channel, None)
            if not ok:
                return  # the requestor's association is gone
        else:
            assert destination is not None
            comment = await self._move(ae, channel, received, msg, destination, counts, usable)
            if comment is None and not channel.is_established:
                return
        if cancel.is_set() and counts.remaining:
            self.cancelled += 1
            status = STATUS_CANCEL
        else:
            for inst in usable[len(usable) - counts.remaining :]:
                counts.fail(inst.sop_instance_uid)  # never sent (destination lost)
            status = counts.final_status()
        await self._final(channel, received, msg, status, counts, comment)

    def _parse(
        self, channel: Channel, received: Received, msg: CGetRQ | CMoveRQ
    ) -> tuple[QueryModel, QueryLevel, Dataset]:
        negotiated = channel.negotiated
        assert negotiated is not None
        table = GET_SOP_CLASSES if isinstance(msg, CGetRQ) else MOVE_SOP_CLASSES
        model = next((m for m in self.models if table[m] == msg.affected_sop_class_uid), None)
        if model is None:
            raise _Refused(_STATUS_UNSUPPORTED_SOP_CLASS, f"SOP Class {msg.affected_sop_class_uid}")
        accepted = negotiated.accepted[received.context_id]
        if accepted.abstract_syntax != msg.affected_sop_class_uid:
            raise _Refused(STATUS_IDENTIFIER_DOES_NOT_MATCH, "SOP Class differs from the context")
        if received.dataset is None:
            raise _Refused(STATUS_UNABLE_TO_CALCULATE, "identifier missing or too large")
        try:
            identifier = decode_identifier(received.dataset, accepted.transfer_syntax)
        except IdentifierError as exc:
            raise _Refused(exc.status, str(exc)) from None
        # PS3.4 C.4.2.1.4.1 / C.4.3.1.3.1: the identifier carries Query/Retrieve Level.
        text = str(identifier.get("QueryRetrieveLevel", "") or "").strip()
        try:
            level = QueryLevel.parse(text)
        except DicomError:
            raise _Refused(
                STATUS_IDENTIFIER_DOES_NOT_MATCH, f"invalid Query/Retrieve Level {text!r}"
            ) from None
        if level not in model.levels:
            raise _Refused(STATUS_IDENTIFIER_DOES_NOT_MATCH, f"no {level.value} level")
        return model, level, identifier

    def _destination(self, aet: str) -> MoveDestination:
        found = self.move_destinations.get(aet.strip())
        if found is None:
            # PS3.4 C.4.2.1.4: Refused, Move Destination unknown.
            raise _Refused(STATUS_MOVE_DESTINATION_UNKNOWN, f"unknown destination {aet!r}")
        if isinstance(found, MoveDestination):
            return found
        return MoveDestination(host=found[0], port=int(found[1]))

    async def _collect(
        self, identifier: Dataset, model: QueryModel, level: QueryLevel, cancel: anyio.Event
    ) -> list[_Instance | DicomFileError]:
        """Drain the backend (C-CANCEL interrupts it), then probe the files off the loop."""
        raw: list[RetrieveItem] = []
        iterator: AsyncIterator[RetrieveItem] | None = None
        error: Exception | None = None
        try:
            with anyio.CancelScope() as scope:
                async with anyio.create_task_group() as tg:

                    async def watch() -> None:
                        await cancel.wait()
                        scope.cancel()

                    tg.start_soon(watch)
                    try:
                        made = self._backend(identifier, model, level)
                        if inspect.isawaitable(made):
                            made = await made
                        iterator = made.__aiter__()
                        async for item in iterator:
                            raw.append(item)
                    except Exception as exc:  # judged below, outside the task group
                        error = exc
                    finally:
                        tg.cancel_scope.cancel()
        finally:
            aclose = getattr(iterator, "aclose", None)
            if aclose is not None:
                with anyio.CancelScope(shield=True), anyio.move_on_after(5.0):
                    try:
                        await aclose()
                    except Exception:
                        log.exception("closing the retrieve backend iterator raised")
        if isinstance(error, FindFailed):
            raise _Refused(error.status.code, error.error_comment)
        if isinstance(error, MemoryError):
            raise _Refused(STATUS_UNABLE_TO_CALCULATE, "out of memory")
        if error is not None:
            log.error("retrieve backend raised", exc_info=error)
            raise _Refused(STATUS_BACKEND_FAILED, f"{type(error).__name__}: {error}")
        paths = [Path(i) for i in raw if isinstance(i, str | Path)]
        probed = iter(await probe_files(paths))
        out: list[_Instance | DicomFileError] = []
        for item in raw:
            if isinstance(item, str | Path):
                out.append(next(probed))
            elif isinstance(item, Dataset):
                try:
                    out.append(DatasetInstance.from_dataset(item))
                except DicomError as exc:
                    out.append(DicomFileError("<dataset>", str(exc)))
            else:
                out.append(DicomFileError("<item>", f"not a path or Dataset: {type(item)}"))
        return out

    async def _move(
        self,
        ae: AE,
        channel: Channel,
        received: Received,
        msg: CMoveRQ,
        destination: MoveDestination,
        counts: _Counts,
        items: list[_Instance],
    ) -> str | None:
        """Sub-operations over a new association; a comment when it could not be opened."""
        if not items:
            return None
        aet = msg.move_destination.strip()
        cancel = channel.cancellations.get(msg.message_id, anyio.Event())
        try:
            contexts = propose_contexts(items)
            async with ae.associate(
                destination.host, destination.port, called_ae=aet, contexts=contexts
            ) as assoc:
                await self._run(
                    ae,
                    channel,
                    received,
                    msg,
                    counts,
                    items,
                    cancel,
                    assoc._channel,  # the sub-operations go over the new association
                    _originator(channel, msg),
                )
        except DicomError as exc:
            if not channel.is_established:
                raise
            if counts.completed or counts.failed or counts.warning:
                log.warning("%s: C-MOVE to %s ended early: %s", channel.peer, aet, exc)
                return None
            log.warning("%s: C-MOVE: cannot associate with %s: %s", channel.peer, aet, exc)
            return f"association with {aet} failed"
        return None

    async def _run(
        self,
        ae: AE,
        channel: Channel,
        received: Received,
        msg: CGetRQ | CMoveRQ,
        counts: _Counts,
        items: list[_Instance],
        cancel: anyio.Event,
        store_channel: Channel,
        originator: tuple[str, int] | None,
    ) -> bool:
        """Send the instances; ``False`` when the requestor's association ended."""
        usable = _requestor_is_scp if store_channel is channel else None
        for n, inst in enumerate(items):
            if cancel.is_set():
                return True
            result: StoreResult | None = None
            try:
                result = await store(
                    store_channel,
                    ae,
                    inst,
                    timeout=self.store_timeout,
                    move_originator=originator,
                    usable=usable,
                )
            except AssociationError:
                if store_channel is channel:
                    return False
                raise
            except DicomError as exc:
                if store_channel.is_closed:
                    if store_channel is channel:
                        return False
                    raise
                log.warning(
                    "%s: sub-operation for %s: %s", channel.peer, inst.sop_instance_uid, exc
                )
            if result is not None and result.category is StatusCategory.SUCCESS:
                counts.remaining -= 1
                counts.completed += 1
            elif result is not None and result.category is StatusCategory.WARNING:
                counts.remaining -= 1
                counts.warning += 1
            else:
                counts.fail(inst.sop_instance_uid)
            if n + 1 < len(items):
                await self._pending(channel, received, msg, counts)
                # Let the reader run so that a C-CANCEL is seen before the next sub-operation.
                await anyio.lowlevel.checkpoint()
        return True

    async def _pending(
        self, channel: Channel, received: Received, msg: CGetRQ | CMoveRQ, counts: _Counts
    ) -> None:
        rsp_cls = CGetRSP if isinstance(msg, CGetRQ) else CMoveRSP
        # A requestor that reads nothing for Timeouts.get/move is aborted (a message half
        # sent cannot be taken back), as the C-FIND SCP does.
        limit = channel.timeouts.get if isinstance(msg, CGetRQ) else channel.timeouts.move
        with anyio.move_on_after(limit) as scope:
            await channel.send_message(
                received.context_id,
                rsp_cls(
                    message_id_being_responded_to=msg.message_id,
                    affected_sop_class_uid=msg.affected_sop_class_uid,
                    status=STATUS_PENDING,
                    number_of_remaining_sub_operations=counts.remaining,
                    number_of_completed_sub_operations=counts.completed,
                    number_of_failed_sub_operations=counts.failed,
                    number_of_warning_sub_operations=counts.warning,
                ),
            )
        if scope.cancelled_caught:
            log.warning("%s: peer read no %s response for %s s", channel.peer, _name(msg), limit)
            await channel.abort()
            raise DicomTimeoutError(f"the peer to read a {_name(msg)} response", limit or 0)

    async def _final(
        self,
        channel: Channel,
        received: Received,
        msg: CGetRQ | CMoveRQ,
        status: int,
        counts: _Counts,
        comment: str | None,
    ) -> None:
        rsp_cls = CGetRSP if isinstance(msg, CGetRQ) else CMoveRSP
        data: bytes | None = None
        if status != STATUS_SUCCESS and counts.failed_uids:
            # PS3.4 C.4.2.1.3.2 / C.4.3.1.3.2: Failed SOP Instance UID List on Cancel,
            # Failure or Warning.
            ds = Dataset()
            ds.FailedSOPInstanceUIDList = list(counts.failed_uids)
            negotiated = channel.negotiated
            assert negotiated is not None
            ts = negotiated.accepted[received.context_id].transfer_syntax
            data = encode_identifier(ds, ts)
        sub_ops = status in (STATUS_CANCEL, STATUS_SUCCESS) or status >= 0xA000
        log.info("%s: %s %d final status 0x%04X", channel.peer, _name(msg), msg.message_id, status)
        await channel.send_message(
            received.context_id,
            rsp_cls(
                message_id_being_responded_to=msg.message_id,
                affected_sop_class_uid=msg.affected_sop_class_uid,
                status=status,
                error_comment=_comment(comment) if comment else None,
                command_data_set_type=0x0001 if data is not None else 0x0101,
                # PS3.7 Tables 9.3-7, 9.3-10: remaining only while pending or on Cancel.
                number_of_remaining_sub_operations=(
                    counts.remaining if status == STATUS_CANCEL else None
                ),
                number_of_completed_sub_operations=counts.completed if sub_ops else None,
                number_of_failed_sub_operations=counts.failed if sub_ops else None,
                number_of_warning_sub_operations=counts.warning if sub_ops else None,
            ),
            data,
        )


def _name(msg: DimseMessage) -> str:
    return "C-GET" if isinstance(msg, CGetRQ) else "C-MOVE"


def _requestor_is_scp(ctx: AcceptedContext) -> bool:
    return ctx.requestor_scp


def _originator(channel: Channel, msg: CMoveRQ) -> tuple[str, int]:
    rq = channel.request
    return ((rq.calling_ae_title.strip() if rq else "") or "UNKNOWN", msg.message_id)


def enable_retrieve(
    ae: AE,
    backend: RetrieveBackend | RetrieveBackendObject,
    *,
    models: Iterable[QueryModel] = (QueryModel.PATIENT_ROOT, QueryModel.STUDY_ROOT),
    get: bool = True,
    move: bool = True,
    move_destinations: Mapping[str, MoveDestination | tuple[str, int]] | None = None,
    storage_sop_classes: Iterable[str] = STORAGE_SOP_CLASSES,
) -> RetrieveSCP:
    """Serve C-GET and/or C-MOVE on ``ae`` with ``backend`` (call before ``ae.serve()``)."""
    scp = RetrieveSCP(
        backend,
        models=models,
        get=get,
        move=move,
        move_destinations=move_destinations,
        storage_sop_classes=storage_sop_classes,
    )
    return scp.install(ae)
