"""The established association as the SCU application uses it.

Every operation we invoke holds one slot of the association's invoke window, sized from the
Asynchronous Operations Window the acceptor granted (PS3.7 D.3.3.3; 1 when it answered
none): tasks that run operations concurrently on one association wait for a free slot, so
the peer never sees more outstanding requests than it agreed to. ``store_many`` pipelines
C-STOREs within the same window.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import TYPE_CHECKING, TypeVar

import anyio

from ..constants import VERIFICATION_SOP_CLASS
from ..dimse.messages import CEchoRQ, CEchoRSP
from ..dimse.status import Service, StatusInfo, status_info
from ..errors import AssociationError, ContextNotAccepted, LocalProtocolError
from ..net.channel import Channel

if TYPE_CHECKING:
    from pathlib import Path

    from ..association.negotiation import Negotiated
    from .ae import AE
    from .find_scu import FindResults
    from .move_coordinator import MoveCoordinator
    from .qr_models import Query, QueryLevel, QueryModel
    from .retrieve_scu import RetrieveOperation
    from .storage_scp import StorageOptions
    from .storage_scu import Progress, StoreItem, StoreResult

_T = TypeVar("_T")


class Association:
    """An established association (either role). Use it inside ``AE.associate(...)``."""

    def __init__(self, channel: Channel, ae: AE) -> None:
        self._channel = channel
        self._ae = ae
        negotiated = channel.negotiated
        window = negotiated.max_operations_invoked if negotiated is not None else 1
        self._window = max(1, window)
        self._invoke_slots = anyio.Semaphore(self._window)
        self._held: dict[int, int] = {}  # task id -> slots it holds

    @property
    def operations_window(self) -> int:
        """How many requests we may have outstanding at once (PS3.7 D.3.3.3: the acceptor's
        Maximum-number-operations-invoked, 1 when it answered no window)."""
        return self.negotiated.max_operations_invoked

    @property
    def is_closed(self) -> bool:
        """The association ended (released, aborted or lost)."""
        return self._channel.is_closed

    async def wait_closed(self) -> None:
        """Return once the association has ended (released, aborted or lost)."""
        await self._channel.wait_closed()

    @asynccontextmanager
    async def _invoking(self, operation: AbstractAsyncContextManager[_T]) -> AsyncIterator[_T]:
        """Hold one invoke-window slot for the whole of ``operation`` (to its last response)."""
        async with self._slot(), operation as value:
            yield value

    def _check_reentry(self) -> int:
        """An operation started inside the block of this task's own operations, which
        already hold the whole window, would wait for itself forever: refuse it."""
        if self._channel.is_native:
            task = id(asyncio.current_task())
        else:
            task = anyio.get_current_task().id
        if self._held.get(task, 0) >= self._window:
            raise LocalProtocolError(
                f"this task already has {self._window} operation(s) outstanding on the "
                "association, the whole negotiated window (PS3.7 D.3.3.3): finish one first, "
                "or use another association"
            )
        return task

    def _slot(self) -> _Slot:
        """Hold one slot of the invoke window (PS3.7 D.3.3.3) while an operation runs:
        ``async with self._slot(): ...``."""
        return _Slot(self)

    @property
    def negotiated(self) -> Negotiated:
        """What was agreed: accepted contexts, maximum lengths, peer implementation."""
        n = self._channel.negotiated
        if n is None:
            raise AssociationError("association is not established")
        return n

    @property
    def peer_max_pdu(self) -> int:
        """The largest P-DATA-TF PDU the peer accepts (0 in its RQ/AC is capped, PS3.8 D.1)."""
        return self.negotiated.peer_max_pdu

    @property
    def is_established(self) -> bool:
        return self._channel.is_established

    def context_for(self, abstract_syntax: str, transfer_syntax: str | None = None) -> int:
        """The ID of an accepted context for ``abstract_syntax`` (and ``transfer_syntax``)."""
        for cid, ctx in sorted(self.negotiated.accepted.items()):
            if ctx.abstract_syntax == abstract_syntax and (
                transfer_syntax is None or ctx.transfer_syntax == transfer_syntax
            ):
                return cid
        raise ContextNotAccepted(
            f"the peer accepted no presentation context for {abstract_syntax}"
            + (f" with {transfer_syntax}" if transfer_syntax else "")
        )

    async def echo(self, *, timeout: float | None = -1.0) -> StatusInfo:
        """C-ECHO (PS3.7 9.1.5): returns the status; raises on timeout or association loss.

        ``timeout`` defaults to the AE's ``timeouts.echo`` (10 s); ``None`` waits forever.
        """
        if timeout is not None and timeout < 0:
            timeout = self._ae.timeouts.echo
        cid = self.context_for(VERIFICATION_SOP_CLASS)
        channel = self._channel
        message_id = channel.next_message_id()
        rq = CEchoRQ(message_id=message_id, affected_sop_class_uid=VERIFICATION_SOP_CLASS)
        async with self._slot():
            received = await channel.request_one(cid, rq, timeout, "the C-ECHO response")
        rsp = received.message
        if not isinstance(rsp, CEchoRSP):
            raise AssociationError(f"expected C-ECHO-RSP, got {type(rsp).__name__}")
        return status_info(rsp.status, Service.VERIFICATION)

    def find(
        self,
        query: Query,
        *,
        model: QueryModel | str = "study",
        level: QueryLevel | str | None = None,
        timeout: float | None = -1.0,
        charset: str | None = None,
    ) -> AbstractAsyncContextManager[FindResults]:
        """C-FIND (PS3.4 C.4.1): ``async with assoc.find(q) as results: async for ds in results``.

        See :mod:`aiodimse.services.find_scu`. ``timeout`` (between responses) defaults to
        the AE's ``timeouts.find``; leaving the block early sends C-CANCEL.
        """
        from .find_scu import find

        if timeout is not None and timeout < 0:
            timeout = self._ae.timeouts.find
        return self._invoking(
            find(
                self,
                self._channel,
                query,
                model=model,
                level=level,
                timeout=timeout,
                cancel_timeout=self._ae.timeouts.abort,
                charset=charset,
            )
        )

    def get(
        self,
        query: Query,
        *,
        model: QueryModel | str = "study",
        level: QueryLevel | str | None = None,
        timeout: float | None = -1.0,
        directory: Path | None = None,
        storage_options: StorageOptions | None = None,
        charset: str | None = None,
    ) -> AbstractAsyncContextManager[RetrieveOperation]:
        """C-GET (PS3.4 C.4.3): ``async with assoc.get(q) as op: async for inst in op``.

        See :mod:`aiodimse.services.retrieve_scu` (propose :func:`~.retrieve_scu.get_contexts`).
        ``timeout`` (between responses) defaults to the AE's ``timeouts.get``.
        """
        from .retrieve_scu import get

        if timeout is not None and timeout < 0:
            timeout = self._ae.timeouts.get
        return self._invoking(
            get(
                self,
                self._channel,
                self._ae,
                query,
                model=model,
                level=level,
                timeout=timeout,
                cancel_timeout=self._ae.timeouts.abort,
                directory=directory,
                storage_options=storage_options,
                charset=charset,
            )
        )

    def move(
        self,
        query: Query,
        *,
        destination: str,
        model: QueryModel | str = "study",
        level: QueryLevel | str | None = None,
        timeout: float | None = -1.0,
        coordinator: MoveCoordinator | None = None,
        directory: Path | None = None,
        charset: str | None = None,
    ) -> AbstractAsyncContextManager[RetrieveOperation]:
        """C-MOVE (PS3.4 C.4.2) to ``destination``; with a ``coordinator`` for our own AE the
        instances are yielded. See :mod:`aiodimse.services.retrieve_scu`.

        ``timeout`` (between responses) defaults to the AE's ``timeouts.move``.
        """
        from .retrieve_scu import move

        if timeout is not None and timeout < 0:
            timeout = self._ae.timeouts.move
        return self._invoking(
            move(
                self,
                self._channel,
                self._ae,
                query,
                destination=destination,
                model=model,
                level=level,
                timeout=timeout,
                cancel_timeout=self._ae.timeouts.abort,
                coordinator=coordinator,
                directory=directory,
                charset=charset,
            )
        )

    async def store(
        self,
        item: StoreItem,
        *,
        progress: Progress | None = None,
        timeout: float | None = -1.0,
        priority: int = 0,
    ) -> StoreResult:
        """C-STORE one file or pydicom Dataset (PS3.7 9.1.1); see :mod:`.storage_scu`.

        ``timeout``: seconds without progress (default ``timeouts.store``).
        """
        from . import storage_scu

        async with self._slot():
            return await storage_scu.store(
                self._channel, self._ae, item, progress=progress, timeout=timeout, priority=priority
            )

    async def store_many(
        self,
        items: Iterable[StoreItem],
        *,
        continue_on_error: bool = True,
        progress: Progress | None = None,
        on_result: Callable[[StoreResult], None] | None = None,
        timeout: float | None = -1.0,
        priority: int = 0,
        window: int | None = None,
    ) -> list[StoreResult]:
        """C-STORE each item, one result per item in input order; see
        :func:`.store_batch.store_many`. Pipelined: up to :attr:`operations_window` requests
        outstanding (``window`` lowers it; 1 = one at a time)."""
        from . import store_batch

        self._check_reentry()
        return await store_batch.store_many(
            self._channel,
            self._ae,
            items,
            continue_on_error=continue_on_error,
            progress=progress,
            on_result=on_result,
            timeout=timeout,
            priority=priority,
            window=window,
            slots=self._invoke_slots,
        )

    async def release(self) -> None:
        """Release now (the context manager also does it on exit)."""
        await self._channel.release()

    async def abort(self) -> None:
        """Abort now (A-ABORT, source service user)."""
        await self._channel.abort()


class _Slot:
    """:meth:`Association._slot`'s context (a class, not a generator: it runs once per
    operation, C-ECHO included)."""

    __slots__ = ("_assoc", "_task")

    def __init__(self, assoc: Association) -> None:
        self._assoc = assoc
        self._task = 0

    async def __aenter__(self) -> None:
        assoc = self._assoc
        task = self._task = assoc._check_reentry()
        slots = assoc._invoke_slots
        try:
            # A free slot is taken without a trip through the event loop (anyio's
            # ``acquire`` yields once even when it need not wait).
            slots.acquire_nowait()
        except anyio.WouldBlock:
            await slots.acquire()
        held = assoc._held
        held[task] = held.get(task, 0) + 1

    async def __aexit__(self, *exc_info: object) -> None:
        assoc = self._assoc
        held = assoc._held
        task = self._task
        left = held[task] - 1
        if left:
            held[task] = left
        else:
            del held[task]
        assoc._invoke_slots.release()
