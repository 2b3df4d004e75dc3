"""C-FIND as SCP: a Query/Retrieve (and Worklist) framework around a user backend.

Theory of operation
-------------------
The user supplies a *backend*: ``backend(identifier, model, level)`` returning an async
iterator of matches (an async generator function is the natural shape; a coroutine
returning an async iterator works too). Each match is a pydicom ``Dataset`` (sent as
Pending 0xFF00) or a :class:`PendingMatch` (to send 0xFF01, "optional keys not
supported"). The library does the protocol (PS3.4 C.4.1.2, PS3.7 9.1.2):

* one pending C-FIND-RSP per match, sent *before* the next match is pulled: a slow peer
  slows the backend (the send waits on TCP), and memory holds one match at a time;
* Success 0x0000 when the iterator ends;
* C-CANCEL (PS3.7 9.3.2.3): the backend's pending ``__anext__`` is cancelled at once (or
  the iterator closed right after the response being sent), then the final response is
  Cancel 0xFE00 and nothing else is sent;
* failures with an Error Comment (PS3.7 C.4): the backend raises :class:`FindFailed` to
  pick the status (0xA700, 0xA900, 0xCxxx); any other exception is 0xC001 (0xA700 for
  ``MemoryError``); an identifier we cannot decode is 0xC000, a missing or invalid
  Query/Retrieve Level 0xA900;
* the association ending (peer abort, reset): the handler is cancelled with the
  association's task group and the iterator is closed; nothing more is produced;
* a peer that reads nothing for ``Timeouts.find`` while we send a response is aborted.

The Event the channel sets on C-CANCEL is registered as soon as the C-FIND-RQ command
arrives (by the sink factory, before the identifier's P-DATA), so a C-CANCEL that follows
the request immediately is never missed.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import anyio
import anyio.lowlevel
from pydicom.dataset import Dataset

from ..dimse.messages import CFindRQ, CFindRSP, DimseMessage
from ..errors import DicomError, DicomTimeoutError
from ..net.channel import Channel, Received
from ..net.sinks import DatasetSink, MemorySink
from .qr_models import (
    STATUS_BACKEND_FAILED,
    STATUS_CANCEL,
    STATUS_IDENTIFIER_DOES_NOT_MATCH,
    STATUS_OUT_OF_RESOURCES,
    STATUS_PENDING,
    STATUS_PENDING_WARNING,
    STATUS_SUCCESS,
    FindFailed,
    IdentifierError,
    QueryLevel,
    QueryModel,
    apply_charset,
    decode_identifier,
    encode_identifier,
)

if TYPE_CHECKING:
    from .ae import AE

log = logging.getLogger("aiodimse.find")

#: Largest C-FIND identifier we accept in memory (a query is a few hundred bytes).
DEFAULT_MAX_IDENTIFIER = 1024 * 1024
#: PS3.5 6.2 VR LO: Error Comment (0000,0902) holds at most 64 characters.
_COMMENT_MAX = 64


@dataclass(frozen=True, slots=True, kw_only=True)
class PendingMatch:
    """A match sent with Pending 0xFF01 ("optional keys not supported", PS3.4 C.4.1.1.4)."""

    identifier: Dataset
    optional_keys_unsupported: bool = True


Match = Dataset | PendingMatch
#: ``backend(identifier, model, level)``: level is ``None`` for Modality Worklist.
FindBackend = Callable[
    [Dataset, QueryModel, "QueryLevel | None"],
    "AsyncIterator[Match] | Awaitable[AsyncIterator[Match]]",
]


class FindBackendObject(Protocol):
    """A backend as an object with a ``find`` method of the :data:`FindBackend` shape."""

    def find(
        self, identifier: Dataset, model: QueryModel, level: QueryLevel | None
    ) -> AsyncIterator[Match] | Awaitable[AsyncIterator[Match]]: ...


def _comment(text: str) -> str | None:
    text = " ".join(text.split())  # PS3.5 VR LO: no control characters
    text = text.encode("ascii", "replace").decode("ascii")  # command sets are ASCII
    return text[:_COMMENT_MAX] or None


class QueryRetrieveSCP:
    """The C-FIND SCP service: install it on an AE before ``AE.serve()``.

    ``backend`` is a :data:`FindBackend` callable or an object with a ``find`` method.
    ``models`` are the information models served (their FIND SOP classes are added to the
    AE's supported contexts). ``max_identifier`` bounds the identifier held in memory.
    """

    def __init__(
        self,
        backend: FindBackend | FindBackendObject,
        *,
        models: Iterable[QueryModel] = tuple(QueryModel),
        max_identifier: int = DEFAULT_MAX_IDENTIFIER,
    ) -> None:
        find = getattr(backend, "find", None)
        self._backend: FindBackend = find if callable(find) else backend  # type: ignore[assignment]
        self.models = tuple(models)
        self.max_identifier = max_identifier
        #: Totals, for tests and metrics.
        self.operations = 0
        self.cancelled = 0

    def install(self, ae: AE) -> None:
        """Register the C-FIND handler and the models' contexts on ``ae``."""
        have = {c.abstract_syntax for c in ae.supported_contexts}
        for model in self.models:
            if model.sop_class_uid not in have:
                ae.supported_contexts.append(model.context())
        ae.request_handlers[CFindRQ] = self.handle
        ae.sink_factories[CFindRQ] = self.sink

    # -- the channel's hooks -------------------------------------------------------------

    def sink(self, channel: Channel, context_id: int, message: DimseMessage) -> DatasetSink:
        """Register the C-CANCEL event as the command arrives; identifier in memory."""
        if isinstance(message, CFindRQ):
            channel.cancellations.setdefault(message.message_id, anyio.Event())
        return MemorySink(self.max_identifier)

    async def handle(self, ae: AE, channel: Channel, received: Received) -> None:
        """Perform one C-FIND (request handler for ``ae.request_handlers[CFindRQ]``)."""
        msg = received.message
        assert isinstance(msg, CFindRQ)
        mid = msg.message_id
        cancel = channel.cancellations.setdefault(mid, anyio.Event())
        self.operations += 1
        try:
            outcome = await self._perform(channel, received, msg, cancel)
            if outcome is None:
                return
            status, comment = outcome
            if status == STATUS_CANCEL:
                self.cancelled += 1
            log.info("%s: C-FIND %d final status 0x%04X", channel.peer, mid, status)
            await channel.send_message(
                received.context_id,
                CFindRSP(
                    message_id_being_responded_to=mid,
                    affected_sop_class_uid=msg.affected_sop_class_uid,
                    status=status,
                    error_comment=_comment(comment) if comment else None,
                ),
            )
        finally:
            if channel.cancellations.get(mid) is cancel:
                del channel.cancellations[mid]

    async def _perform(
        self, channel: Channel, received: Received, msg: CFindRQ, cancel: anyio.Event
    ) -> tuple[int, str | None] | None:
        """The final (status, error comment); ``None`` when the association was lost."""
        negotiated = channel.negotiated
        assert negotiated is not None  # requests arrive on established associations only
        accepted = negotiated.accepted[received.context_id]
        model = QueryModel.from_sop_class(msg.affected_sop_class_uid)
        if model is None or model not in self.models:
            return 0x0122, f"SOP Class {msg.affected_sop_class_uid} not supported"  # PS3.7 C.5
        if accepted.abstract_syntax != msg.affected_sop_class_uid:
            return STATUS_IDENTIFIER_DOES_NOT_MATCH, "SOP Class differs from the context"
        if received.dataset is None:
            return STATUS_OUT_OF_RESOURCES, "identifier missing or too large"
        ts = accepted.transfer_syntax
        try:
            identifier = decode_identifier(received.dataset, ts)
        except IdentifierError as exc:
            return exc.status, str(exc)
        level: QueryLevel | None = None
        if model is not QueryModel.MODALITY_WORKLIST:
            # PS3.4 C.4.1.1.3.1: the Q/R identifier carries Query/Retrieve Level.
            text = str(identifier.get("QueryRetrieveLevel", "") or "").strip()
            if not text:
                return STATUS_IDENTIFIER_DOES_NOT_MATCH, "Query/Retrieve Level missing"
            try:
                level = QueryLevel.parse(text)
            except DicomError:
                return STATUS_IDENTIFIER_DOES_NOT_MATCH, f"invalid Query/Retrieve Level {text}"
            if level not in model.levels:
                return STATUS_IDENTIFIER_DOES_NOT_MATCH, f"no {level.value} level in {model.name}"
        if cancel.is_set():
            return STATUS_CANCEL, None
        return await self._stream(channel, received, msg, identifier, model, level, ts, cancel)

    async def _stream(
        self,
        channel: Channel,
        received: Received,
        msg: CFindRQ,
        identifier: Dataset,
        model: QueryModel,
        level: QueryLevel | None,
        ts: str,
        cancel: anyio.Event,
    ) -> tuple[int, str | None] | None:
        """Pull a match, send it, repeat; C-CANCEL interrupts the pull (module docstring)."""
        result: tuple[int, str | None] | None = (STATUS_SUCCESS, None)
        iterator: AsyncIterator[Match] | None = None
        pull: anyio.CancelScope | None = None

        async def watch_cancel() -> None:
            await cancel.wait()
            if pull is not None:
                pull.cancel()

        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(watch_cancel)
                try:
                    made = self._backend(identifier, model, level)
                    if inspect.isawaitable(made):
                        made = await made
                    iterator = made.__aiter__()
                    while not cancel.is_set():
                        with anyio.CancelScope() as pull:
                            try:
                                match = await iterator.__anext__()
                            except StopAsyncIteration:
                                pull = None
                                break
                        pull = None
                        if cancel.is_set():
                            break
                        await self._send_match(channel, received, msg, match, level, ts)
                        # A send into a socket with room completes without yielding; let
                        # the reader run so that a C-CANCEL is seen within one response.
                        await anyio.lowlevel.checkpoint()
                    if cancel.is_set():
                        result = (STATUS_CANCEL, None)
                except FindFailed as exc:
                    result = (exc.status.code, exc.error_comment)
                except IdentifierError as exc:
                    log.error("%s: C-FIND match not encodable: %s", channel.peer, exc)
                    result = (STATUS_BACKEND_FAILED, str(exc))
                except DicomError as exc:
                    # The association failed: nothing more can be sent.
                    log.info("%s: C-FIND ended with the association: %s", channel.peer, exc)
                    result = None
                except MemoryError:
                    result = (STATUS_OUT_OF_RESOURCES, "out of memory")
                except Exception as exc:
                    log.exception("%s: C-FIND backend raised", channel.peer)
                    result = (STATUS_BACKEND_FAILED, f"{type(exc).__name__}: {exc}")
                finally:
                    tg.cancel_scope.cancel()
        finally:
            await _close(iterator)
        return result

    async def _send_match(
        self,
        channel: Channel,
        received: Received,
        msg: CFindRQ,
        match: Match,
        level: QueryLevel | None,
        ts: str,
    ) -> None:
        status = STATUS_PENDING
        if isinstance(match, PendingMatch):
            if match.optional_keys_unsupported:
                status = STATUS_PENDING_WARNING
            ds = match.identifier
        else:
            ds = match
        if not isinstance(ds, Dataset):
            raise TypeError(f"a C-FIND backend yields Datasets, got {type(ds).__name__}")
        if level is not None and "QueryRetrieveLevel" not in ds:
            # PS3.4 C.4.1.1.3.2: responses carry the Query/Retrieve Level.
            ds.QueryRetrieveLevel = level.value
        apply_charset(ds)
        data = encode_identifier(ds, ts)
        # Backpressure has a limit: a peer that reads nothing for Timeouts.find is aborted
        # (a half-sent message cannot be taken back, so abort is the only way out).
        limit = channel.timeouts.find
        with anyio.move_on_after(limit) as scope:
            await channel.send_message(
                received.context_id,
                CFindRSP(
                    message_id_being_responded_to=msg.message_id,
                    affected_sop_class_uid=msg.affected_sop_class_uid,
                    status=status,
                    command_data_set_type=0x0001,
                ),
                data,
            )
        if scope.cancelled_caught:
            log.warning("%s: peer read no C-FIND response for %s s; aborting", channel.peer, limit)
            await channel.abort()
            raise DicomTimeoutError("the peer to read a C-FIND response", limit or 0)


async def _close(iterator: AsyncIterator[Match] | None) -> None:
    """Close the backend's iterator (runs its ``finally``), even while being cancelled."""
    aclose = getattr(iterator, "aclose", None)
    if aclose is None:
        return
    with anyio.CancelScope(shield=True), anyio.move_on_after(5.0):
        try:
            await aclose()
        except Exception:
            log.exception("closing the C-FIND backend iterator raised")


def enable_find(
    ae: AE,
    backend: FindBackend | FindBackendObject,
    *,
    models: Iterable[QueryModel] = tuple(QueryModel),
    max_identifier: int = DEFAULT_MAX_IDENTIFIER,
) -> QueryRetrieveSCP:
    """Serve C-FIND on ``ae`` with ``backend`` (call before ``ae.serve()``)."""
    scp = QueryRetrieveSCP(backend, models=models, max_identifier=max_identifier)
    scp.install(ae)
    return scp
