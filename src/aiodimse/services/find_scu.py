"""C-FIND as SCU, with C-CANCEL (PS3.7 9.1.2, 9.3.2; PS3.4 C.4.1).

Theory of operation
-------------------
:func:`find` sends one C-FIND-RQ and hands the caller a :class:`FindResults`, an async
iterator that yields each pending response's identifier (a pydicom ``Dataset``) as it
arrives. Nothing is collected: the channel queues at most a few responses per operation and
then stops reading the socket, so a slow consumer slows the SCP (TCP backpressure).

The time limit (``Timeouts.find``) applies *between* responses: a C-FIND that produces
matches for an hour is fine as long as each arrives within the limit.

Leaving the ``async with`` block before the final response (``break``, an exception, a
cancel scope, a timeout) sends C-CANCEL-RQ naming our Message ID (PS3.7 9.3.2.3) from a
shielded scope and drains the remaining responses, discarding pending ones, up to the final
one (Cancel 0xFE00, or Success when the SCP finished first; PS3.4 C.4.1.3.2). The drain is
bounded by ``Timeouts.abort`` *between* responses (thousands of pending responses already
on their way may take longer than that in all, and that is progress); a peer that goes
silent without ending the operation is aborted, so a later operation never reads a stale
response.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream
from pydicom.dataset import Dataset

from ..dimse.messages import CCancelRQ, CFindRQ, CFindRSP, Priority
from ..dimse.status import Service, StatusCategory, StatusInfo, status_info
from ..errors import AssociationError, DicomError, DicomTimeoutError
from ..net.channel import Channel, Received
from .qr_models import (
    FindFailed,
    Query,
    QueryLevel,
    QueryModel,
    build_identifier,
    decode_identifier,
    encode_identifier,
)

if TYPE_CHECKING:
    from .association import Association

log = logging.getLogger("aiodimse.find")

#: Identifiers larger than this are decoded in a worker thread (the loop must not stall).
INLINE_DECODE_LIMIT = 64 * 1024


class FindResults:
    """The responses of one C-FIND, as an async iterator of identifiers.

    Iterating yields the identifier of each pending response (0xFF00 and 0xFF01) in order
    and stops after the final response. A final failure raises :class:`FindFailed`.

    Attributes, readable at any time:

    * ``message_id``, ``context_id``: of our C-FIND-RQ.
    * ``count``: identifiers yielded so far.
    * ``optional_keys_unsupported``: the SCP answered 0xFF01 at least once (PS3.4
      C.4.1.1.4: "one or more Optional Keys were not supported").
    * ``status``: the final status with its meaning, once received (else ``None``).
    * ``cancel_sent``: we sent C-CANCEL-RQ for this operation.
    """

    def __init__(
        self,
        channel: Channel,
        responses: MemoryObjectReceiveStream[Received],
        *,
        message_id: int,
        context_id: int,
        transfer_syntax: str,
        timeout: float | None,
        cancel_timeout: float,
    ) -> None:
        self._channel = channel
        self._responses = responses
        self.message_id = message_id
        self.context_id = context_id
        self._transfer_syntax = transfer_syntax
        self._timeout = timeout
        self._cancel_timeout = cancel_timeout
        self.count = 0
        self.optional_keys_unsupported = False
        self.status: StatusInfo | None = None
        self.error_comment: str | None = None
        self.cancel_sent = False

    @property
    def done(self) -> bool:
        """The final response has been received (or the operation can no longer go on)."""
        return self.status is not None

    def __aiter__(self) -> FindResults:
        return self

    async def __anext__(self) -> Dataset:
        while self.status is None:
            received = await self._receive()
            identifier = await self._handle(received, decode=True)
            if identifier is not None:
                self.count += 1
                return identifier
        raise StopAsyncIteration

    async def _receive(self) -> Received:
        try:
            # A response already queued needs no timer (a cancel scope per response costs
            # more than decoding a small identifier); the queue holds at most 64.
            return self._responses.receive_nowait()
        except anyio.WouldBlock:
            pass
        except (anyio.EndOfStream, anyio.ClosedResourceError):
            raise self._channel.error or AssociationError(
                f"{self._channel.peer}: association ended during C-FIND"
            ) from None
        try:
            with anyio.fail_after(self._timeout):
                return await self._responses.receive()
        except TimeoutError:
            raise DicomTimeoutError("a C-FIND response", self._timeout or 0) from None
        except (anyio.EndOfStream, anyio.ClosedResourceError):
            raise self._channel.error or AssociationError(
                f"{self._channel.peer}: association ended during C-FIND"
            ) from None

    async def _handle(self, received: Received, *, decode: bool) -> Dataset | None:
        """Act on one response; returns its identifier when pending and ``decode``."""
        rsp = received.message
        if not isinstance(rsp, CFindRSP):
            raise AssociationError(f"expected C-FIND-RSP, got {type(rsp).__name__}")
        info = status_info(rsp.status, Service.FIND)
        if info.category is StatusCategory.PENDING:
            if rsp.status == 0xFF01 and not self.optional_keys_unsupported:
                self.optional_keys_unsupported = True
                log.warning("%s: C-FIND: %s", self._channel.peer, info.meaning)
            if not decode:
                return None
            if received.dataset is None:
                # PS3.4 C.4.1.1.3.2: a pending response carries an identifier.
                log.warning("%s: pending C-FIND-RSP without identifier", self._channel.peer)
                return None
            return await self._decode(received.dataset)
        # Final response (PS3.7 9.1.2.1.6): success, cancel, failure or (unlisted) warning.
        self.status = info
        self.error_comment = rsp.error_comment
        log.info(
            "%s: C-FIND final status 0x%04X %s after %d matches",
            self._channel.peer,
            info.code,
            info.meaning,
            self.count,
        )
        if info.category is StatusCategory.FAILURE and decode:
            raise FindFailed(info, rsp.error_comment, offending_element=rsp.offending_element)
        return None

    async def _decode(self, data: bytes) -> Dataset:
        if len(data) <= INLINE_DECODE_LIMIT:
            return decode_identifier(data, self._transfer_syntax)
        return await anyio.to_thread.run_sync(decode_identifier, data, self._transfer_syntax)

    async def _cancel_and_drain(self) -> None:
        """C-CANCEL-RQ and wait for the final response, bounded (see module docstring)."""
        channel = self._channel
        if self.status is not None or channel.is_closed or channel.error is not None:
            return  # finished, or the association is gone: nothing to cancel
        with anyio.CancelScope(shield=True):
            try:
                with anyio.fail_after(self._cancel_timeout):
                    # PS3.7 9.3.2.3: C-CANCEL-FIND-RQ names the operation it cancels.
                    await channel.send_message(
                        self.context_id,
                        CCancelRQ(message_id_being_responded_to=self.message_id),
                    )
                self.cancel_sent = True
                log.info("%s: C-CANCEL sent for message %d", channel.peer, self.message_id)
                while self.status is None:
                    try:
                        received = self._responses.receive_nowait()
                    except anyio.WouldBlock:
                        # The bound is on silence, not on the whole drain.
                        with anyio.fail_after(self._cancel_timeout):
                            received = await self._responses.receive()
                    await self._handle(received, decode=False)
            except TimeoutError:
                if not channel.is_closed:
                    log.warning(
                        "%s: no C-FIND response within %g s after C-CANCEL; aborting",
                        channel.peer,
                        self._cancel_timeout,
                    )
                    await channel.abort()
            except (DicomError, anyio.EndOfStream, anyio.ClosedResourceError) as exc:
                log.info("%s: C-FIND not drained: %s", channel.peer, exc)


@asynccontextmanager
async def find(
    assoc: Association,
    channel: Channel,
    query: Query,
    *,
    model: QueryModel | str = QueryModel.STUDY_ROOT,
    level: QueryLevel | str | None = None,
    timeout: float | None,
    cancel_timeout: float,
    priority: Priority = Priority.MEDIUM,
    charset: str | None = None,
) -> AsyncIterator[FindResults]:
    """Send a C-FIND-RQ and yield its :class:`FindResults` (see the module docstring).

    Raises before sending anything: ``ContextNotAccepted`` when no context for the model's
    SOP class was accepted, ``LocalProtocolError`` for an invalid query, model or level.
    """
    qmodel = QueryModel.parse(model)
    qlevel = QueryLevel.parse(level) if level is not None else None
    cid = assoc.context_for(qmodel.sop_class_uid)
    transfer_syntax = assoc.negotiated.accepted[cid].transfer_syntax
    identifier = build_identifier(query, qmodel, qlevel, charset=charset)
    data = encode_identifier(identifier, transfer_syntax)
    message_id = channel.next_message_id()
    rq = CFindRQ(
        message_id=message_id, affected_sop_class_uid=qmodel.sop_class_uid, priority=priority
    )
    async with channel.expect_responses(message_id) as responses:
        results = FindResults(
            channel,
            responses,
            message_id=message_id,
            context_id=cid,
            transfer_syntax=transfer_syntax,
            timeout=timeout,
            cancel_timeout=cancel_timeout,
        )
        await channel.send_message(cid, rq, data)
        try:
            yield results
        finally:
            await results._cancel_and_drain()
