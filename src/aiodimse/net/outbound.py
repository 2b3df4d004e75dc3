"""DIMSE messages going out: the part of a :class:`~aiodimse.net.channel.Channel` that
sends them and waits for the responses to our requests.

A message is encoded (PS3.7 6.3: command set, then the dataset) and fragmented to the peer's
maximum PDU length (PS3.8 9.3.5, Annex E); one message's PDVs are never interleaved with
another's (PS3.8 E.1), so messages go out one at a time under a lock. A command-only
message (C-ECHO, C-STORE-RSP, a final response) is queued as its one P-DATA-TF straight
from the core when it fits. A request registers for its responses before it is sent;
a response timeout aborts the association and names what was awaited (PS3.7: the
association is the only way to stop an operation the peer ignores).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterable, AsyncIterator, Callable
from contextlib import asynccontextmanager

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream

from ..dimse.command_codec import encode_command
from ..dimse.messages import DimseMessage, DimseRequest
from ..dimse.operations import DEFAULT_MESSAGE_ID_ALLOCATOR
from ..errors import AssociationAborted, AssociationError, DicomTimeoutError, NetworkError
from ..pdu import PDataTF
from .channel_state import ChannelState, OutgoingDataset
from .inbound import Received
from .waits import acquire, expire, fail_after

__all__ = ["Outbound"]

log = logging.getLogger("aiodimse.net")

#: At most this many command-only messages wait for one write at the loop's next turn
#: (:meth:`Outbound._defer_flush`): the window's responses, not a handler's stream.
DEFER_MAX = 64


class Outbound(ChannelState):
    """DIMSE out (see the module docstring); mixed into :class:`~aiodimse.net.channel.Channel`."""

    @asynccontextmanager
    async def expect_responses(
        self, message_id: int
    ) -> AsyncIterator[MemoryObjectReceiveStream[Received]]:
        """Register interest in responses to ``message_id`` (before sending the request)."""
        send, receive = anyio.create_memory_object_stream[Received](64)
        self._waiters[message_id] = send
        self._busy_changed(+1)
        try:
            yield receive
        finally:
            self._busy_changed(-1)
            if self._waiters.get(message_id) is send:
                del self._waiters[message_id]
            send.close()
            receive.close()

    async def request_one(
        self,
        context_id: int,
        message: DimseRequest,
        timeout: float | None,
        what: str,
        *,
        dataset: OutgoingDataset = None,
        on_sent: Callable[[], None] | None = None,
    ) -> Received:
        """Send a request that has exactly one response (C-ECHO, C-STORE) with its
        ``dataset`` (as :meth:`send_message`), call ``on_sent``, and return the response;
        a timeout aborts the association and names ``what``. On asyncio the response is
        handed over through a future (no response stream)."""
        message_id = message.message_id
        if not self._native:
            async with self.expect_responses(message_id) as responses:
                await self.send_message(context_id, message, dataset)
                if on_sent is not None:
                    on_sent()
                return await self.next_response(responses, timeout, what)
        fut = await self.send_request(context_id, message, dataset)
        try:
            if on_sent is not None:
                on_sent()
            handle = None if timeout is None else fut.get_loop().call_later(timeout, expire, fut)
            try:
                received = await fut
            except TimeoutError:
                await self.abort()
                raise DicomTimeoutError(what, timeout or 0) from None
            finally:
                if handle is not None:
                    handle.cancel()
        finally:
            self.request_done(message_id, fut)
        if received is None:
            raise self.error or AssociationAborted(
                f"{self.peer}: association ended while waiting for {what}"
            )
        return received

    async def send_request(
        self, context_id: int, message: DimseRequest, dataset: OutgoingDataset = None
    ) -> asyncio.Future[Received | None]:
        """Send a request that has exactly one response (as :meth:`send_message`) without
        waiting for the response (asyncio only): the returned future gets it, or ``None``
        when the association ends first (:attr:`error` says why). The request counts as
        outstanding until :meth:`request_done`, which the caller must call once it has the
        answer or gives up on it (not when this raises: the request is then forgotten)."""
        assert self._native, "send_request is for asyncio channels (request_one elsewhere)"
        message_id = message.message_id
        fut: asyncio.Future[Received | None] = asyncio.get_running_loop().create_future()
        self._once[message_id] = fut
        self._busy_changed(+1)
        try:
            await self.send_message(context_id, message, dataset)
        except BaseException:
            self.request_done(message_id, fut)
            raise
        return fut

    def request_done(self, message_id: int, fut: asyncio.Future[Received | None]) -> None:
        """The end of a request sent by :meth:`send_request` (answered or given up)."""
        self._busy_changed(-1)
        if self._once.get(message_id) is fut:
            del self._once[message_id]

    async def next_response(
        self, responses: MemoryObjectReceiveStream[Received], timeout: float | None, what: str
    ) -> Received:
        """Wait for the next response; a timeout aborts the association and names ``what``."""
        try:
            try:
                return responses.receive_nowait()
            except anyio.WouldBlock:
                pass
            async with fail_after(self._native, timeout):
                return await responses.receive()
        except TimeoutError:
            await self.abort()
            raise DicomTimeoutError(what, timeout or 0) from None
        except (anyio.EndOfStream, anyio.ClosedResourceError):
            raise self.error or AssociationAborted(
                f"{self.peer}: association ended while waiting for {what}"
            ) from None

    async def send_message(
        self,
        context_id: int,
        message: DimseMessage,
        dataset: OutgoingDataset = None,
    ) -> None:
        """Send a DIMSE message (PS3.7) fragmented to the peer's maximum PDU length.

        ``dataset`` may be an async iterable of chunks (e.g. a file read off the loop): it is
        pulled one chunk at a time while the PDUs go out, never joined. If it raises, the
        message is left incomplete on the wire: the caller must abort the association.
        """
        if self.negotiated is None or self._closed.is_set():
            raise self.error or AssociationError("association is not established")
        if self._debug:
            log.debug("%s: sending %r", self.peer, message)
        assert self._fragmenter is not None
        command = encode_command(message)
        # PS3.8 E.1: one message's PDVs are never interleaved with another's.
        lock = self._message_lock
        await acquire(lock)  # uncontended: no trip through the event loop
        try:
            if dataset is None:
                self._send_command_set(context_id, command)
                if not self._defer_flush():
                    await self._flush()
                return
            if isinstance(dataset, AsyncIterable):
                # Streamed (large) datasets: one write per PDU keeps what is held in memory
                # to one PDU's worth (grouping them measured ~2 MiB more at the peak).
                pdus = self._fragmenter.apdus(context_id, command, dataset)
                try:
                    async for pdata in pdus:
                        self._send_data_pdu(pdata)
                        await self._flush()
                finally:
                    # An async generator: close it now, not when it is garbage collected.
                    aclose = getattr(pdus, "aclose", None)
                    if aclose is not None:
                        await aclose()
                return
            # A message in memory (a command, a small dataset): its PDUs in gathered writes
            # (one write for a 64 KiB instance instead of one per PDU).
            for group in self._fragmenter.batches(context_id, command, dataset):
                for pdata in group:
                    self._send_data_pdu(pdata)
                await self._flush()
        finally:
            lock.release()

    def _defer_flush(self) -> bool:
        """While several requests we perform are in flight (a window, PS3.7 D.3.3.3), their
        responses are written together: a command-only message queued now goes out with
        whatever else becomes ready in this turn of the event loop, in one write at the
        next turn, not in a write of its own. True: deferred (on asyncio only)."""
        slots = self._perform_slots
        if self._send_nowait is None or slots is None or self._performs - slots.value < 2:
            return False  # not our socket on asyncio (no write without waiting), or no window
        if self._deferred_flush is None:
            loop = asyncio.get_running_loop()
            self._deferred_flush = loop.call_soon(self._write_deferred)
            self._deferred = 0
        elif self._deferred >= DEFER_MAX:
            return False  # a handler sending many without waiting: write (and yield) now
        self._deferred += 1
        return True

    def _write_deferred(self) -> None:
        self._deferred_flush = None
        if self._closed.is_set():
            return  # what the association sent last was written by its end
        self._write_or_flush_soon()

    def _write_or_flush_soon(self) -> None:
        if not self._flush_nowait() and not self._closed.is_set():
            # The socket took part of it, or another task is sending: make sure a flush
            # follows (it writes what is left, in order).
            group = self._task_group
            if group is not None:
                group.start_soon(self._flush_or_fail)

    async def _flush_or_fail(self) -> None:
        try:
            await self._flush()
        except NetworkError as exc:  # nobody waits for this write: the association ends
            self._fail(exc)
            self._closed.set()

    def respond_nowait(self, context_id: int, message: DimseMessage) -> bool:
        """:meth:`send_message` of a command-only message (a response) from a loop callback,
        for a request performed without a task (see
        :data:`~aiodimse.net.inbound.RequestStarter`): True when it was queued and its
        write started (written with the other responses of this loop turn when several
        requests are in flight); False, nothing done, where that needs waiting (another
        message is being sent, a transport that cannot write without waiting, the
        association ended): await :meth:`send_message` then."""
        if (
            self._send_nowait is None
            or self._message_lock.locked()
            or self._closed.is_set()
            or self.error is not None
        ):
            return False
        self._send_message_now(context_id, message)
        if not self._defer_flush():
            self._write_or_flush_soon()
        return True

    def _send_message_now(self, context_id: int, message: DimseMessage) -> None:
        """Queue a command-only message (no waiting; the caller flushes). Only while no
        other message is being sent (PS3.8 E.1: never interleaved)."""
        if self._debug:
            log.debug("%s: sending %r", self.peer, message)
        self._send_command_set(context_id, encode_command(message))

    def _send_command_set(self, context_id: int, command: bytes) -> None:
        """Queue a command-only message's encoded command set: one PDU straight from the
        core when it fits (the usual case), else fragmented."""
        self._check_not_ended()
        if self._debug or not self._core.send_command_set(context_id, command):
            assert self._fragmenter is not None
            for pdata in self._fragmenter.pdus(context_id, command, None):
                self._send_data_pdu(pdata)

    def _send_data_pdu(self, pdata: PDataTF) -> None:
        self._check_not_ended()
        self._send_pdu(pdata, self._now())

    def _check_not_ended(self) -> None:
        # The association may end while a long message goes out (the reader saw the peer
        # close or abort): report that, not the core's "cannot send in Sta1".
        if self._closed.is_set() or self.error is not None:
            raise self.error or AssociationError(f"{self.peer}: association ended")

    def next_message_id(self) -> int:
        """A Message ID unique in this process while outstanding (PS3.7 9.3.1.1)."""
        if self._once:
            return DEFAULT_MESSAGE_ID_ALLOCATOR.allocate(self._waiters.keys() | self._once.keys())
        return DEFAULT_MESSAGE_ID_ALLOCATOR.allocate(self._waiters)
