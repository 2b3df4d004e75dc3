"""The application entity: our AE title, what we propose and accept, and our limits.

An :class:`AE` opens associations as requestor (:meth:`AE.associate`) and serves them as
acceptor (:meth:`AE.serve`); both directions use the same engine
(:class:`aiodimse.net.channel.Channel`), so dispatch of incoming DIMSE requests does not
depend on who opened the association.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Iterable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

import anyio
import anyio.abc

from ..association.connection import Association as CoreAssociation
from ..association.connection import Role
from ..config import Limits, Timeouts
from ..constants import VERIFICATION_SOP_CLASS
from ..dimse.messages import CEchoRQ, CEchoRSP, DimseMessage, DimseResponse
from ..errors import LocalProtocolError
from ..net.channel import Channel, RequestStarter
from ..net.connect import open_tcp
from ..net.transport import StreamTransport, Transport
from ..pdu import (
    AAssociateRQ,
    AsynchronousOperationsWindow,
    ImplementationClassUID,
    ImplementationVersionName,
    MaximumLength,
    RoleSelection,
    UserInformation,
)
from .association import Association
from .contexts import VERIFICATION, Context, as_contexts, build_requested
from .dispatch import (
    RequestHandler,
    SinkFactory,
    choose_sink,
    dispatch_request,
    handle_echo,
    start_request,
)
from .server import Server
from .ts_strategies import Strategy

if TYPE_CHECKING:
    from .storage_scu import Progress, StoreResult

log = logging.getLogger("aiodimse")

#: Our implementation class UID (PS3.7 D.3.3.2): a UUID-derived UID under 2.25 (PS3.5 B.2).
IMPLEMENTATION_CLASS_UID = "2.25.46659383406600393438746029855972176533"
#: Our implementation version name (PS3.7 D.3.3.2.3, at most 16 characters).
IMPLEMENTATION_VERSION_NAME = "AIODIMSE_010"


@dataclass(frozen=True, slots=True, kw_only=True)
class EchoRequest:
    """A C-ECHO-RQ as a handler sees it (PS3.7 9.1.5)."""

    message_id: int
    calling_ae_title: str
    called_ae_title: str
    peer: str


EchoHandler = Callable[[EchoRequest], Awaitable[int]]


async def _echo_success(request: EchoRequest) -> int:
    return 0x0000


class AE:
    """Our application entity (PS3.7 6.1).

    Parameters
    ----------
    ae_title:
        Our AE title (PS3.5 VR AE: 1-16 characters, no backslash or control characters).
    contexts:
        As acceptor, the abstract syntaxes we support, each with transfer syntaxes in our
        order of preference. Verification is always supported.
    max_associations:
        As acceptor, the most associations at once; over it the answer is A-ASSOCIATE-RJ
        (result 2 transient, source 3, reason 2 "local limit exceeded", PS3.8 9.3.4).
    max_pending_connections:
        Connections that have not yet sent a complete A-ASSOCIATE-RQ are bounded separately
        (they never count against ``max_associations``); over the bound new connections are
        closed at once. ARTIM (``timeouts.acse``) closes the slow ones.
    require_called_aet:
        Reject an A-ASSOCIATE-RQ whose called AE title is not ours (RJ 1/1/7). Off by
        default, as in dcmtk's storescp and pynetdicom.
    require_calling_aets:
        Only these calling AE titles may associate (RJ 1/1/3 otherwise). Off by default.
    tcp_quickack:
        On Linux, acknowledge received segments at once (TCP_QUICKACK re-armed after each
        read). Removes the ~40 ms delayed-ACK stall per message with peers that leave
        Nagle's algorithm on (dcmtk without ``TCP_NODELAY=1``). On by default.
    max_operations_invoked:
        As requestor, the most requests we keep outstanding on one association (PS3.7
        D.3.3.3 Asynchronous Operations Window, proposed in the A-ASSOCIATE-RQ's 53H
        sub-item; the acceptor may lower it, a peer that does not answer it gets one at a
        time). 1 (the default) proposes no window: strictly one at a time. 0 asks for as
        many as the acceptor allows. ``Association.store_many`` pipelines C-STOREs up to
        the agreed number.
    max_operations_performed:
        The most of the peer's requests we perform at once: as acceptor, the most we grant
        when a requestor proposes a window (answered in the A-ASSOCIATE-AC; a requestor
        that proposes none gets 1); as requestor, the sub-operations we accept at once.
        Default :attr:`Limits.max_async_operations` (16); both values are clamped to it.
    """

    def __init__(
        self,
        ae_title: str = "AIODIMSE",
        *,
        contexts: Sequence[Context | str] | None = None,
        limits: Limits | None = None,
        timeouts: Timeouts | None = None,
        max_associations: int = 1000,
        max_pending_connections: int = 1000,
        require_called_aet: bool = False,
        require_calling_aets: Collection[str] | None = None,
        implementation_class_uid: str = IMPLEMENTATION_CLASS_UID,
        implementation_version_name: str | None = IMPLEMENTATION_VERSION_NAME,
        tcp_quickack: bool = True,
        max_operations_invoked: int = 1,
        max_operations_performed: int | None = None,
    ) -> None:
        _check_ae_title(ae_title)
        self.ae_title = ae_title
        self.limits = limits or Limits()
        self.timeouts = timeouts or Timeouts()
        self.supported_contexts: list[Context] = as_contexts(contexts, [])
        if not any(c.abstract_syntax == VERIFICATION_SOP_CLASS for c in self.supported_contexts):
            self.supported_contexts.append(VERIFICATION)
        if max_associations < 1 or max_pending_connections < 1:
            raise LocalProtocolError("max_associations and max_pending_connections must be >= 1")
        self.max_associations = max_associations
        self.max_pending_connections = max_pending_connections
        self.require_called_aet = require_called_aet
        self.require_calling_aets = (
            frozenset(a.strip() for a in require_calling_aets) if require_calling_aets else None
        )
        self.implementation_class_uid = implementation_class_uid
        self.implementation_version_name = implementation_version_name
        self.tcp_quickack = tcp_quickack
        if max_operations_performed is None:
            max_operations_performed = self.limits.max_async_operations
        if not (0 <= max_operations_invoked <= 0xFFFF and 0 <= max_operations_performed <= 0xFFFF):
            raise LocalProtocolError("operations window values must be 0..65535 (PS3.7 D.3.3.3)")
        self.max_operations_invoked = max_operations_invoked
        self.max_operations_performed = max_operations_performed
        #: The C-ECHO handler: returns the status to answer with (default 0x0000 Success).
        self.on_echo: EchoHandler = _echo_success
        #: Services performed for peers, by request class (see services.dispatch).
        self.request_handlers: dict[type[DimseMessage], RequestHandler] = {CEchoRQ: handle_echo}
        #: Where incoming datasets stream, by request class (default: memory).
        self.sink_factories: dict[type[DimseMessage], SinkFactory] = {}
        #: Services that can perform a request without a task, by request class (the
        #: storage SCP's C-STORE; see services.dispatch).
        self.request_starters: dict[type[DimseMessage], RequestStarter] = {}
        #: As acceptor, pick each context's transfer syntax in the requestor's order instead
        #: of ours: True for every SOP class, or a set of SOP classes (AcceptorPolicy).
        self.prefer_requestor_order: bool | frozenset[str] = False
        self._rq_cache: dict[tuple[object, ...], AAssociateRQ] = {}

    # -- requestor -------------------------------------------------------------------------

    def user_information(self, *extra: object) -> UserInformation:
        """Our user information item (PS3.8 9.3.2.3, PS3.7 D.3.3)."""
        items: list[object] = [
            MaximumLength(maximum_length=self.limits.max_pdu_length),
            ImplementationClassUID(uid=self.implementation_class_uid),
        ]
        if self.implementation_version_name:
            items.append(ImplementationVersionName(name=self.implementation_version_name))
        items.extend(extra)
        return UserInformation(sub_items=tuple(items))  # type: ignore[arg-type]

    def _window_proposal(self, invoked: int | None = None) -> list[AsynchronousOperationsWindow]:
        """PS3.7 D.3.3.3.1: our 53H as requestor, only when asking for more than one
        outstanding request (absent means 1/1, what most peers support)."""
        if invoked is None:
            invoked = self.max_operations_invoked
        if invoked == 1:
            return []
        return [
            AsynchronousOperationsWindow(
                max_operations_invoked=invoked,
                max_operations_performed=self.max_operations_performed,
            )
        ]

    def acceptor_window(self) -> tuple[int, int] | None:
        """What we grant as acceptor, in the AC's field order (PS3.7 D.3.3.3.2): (requests
        the requestor may invoke = we perform, sub-operations we invoke)."""
        if self.max_operations_performed == 1 and self.max_operations_invoked == 1:
            return None
        return (self.max_operations_performed, self.max_operations_invoked)

    def associate(
        self,
        host: str,
        port: int,
        *,
        called_ae: str = "ANY-SCP",
        contexts: Sequence[Context | str] | None = None,
        stream: anyio.abc.ByteStream | None = None,
        max_operations_invoked: int | None = None,
    ) -> AbstractAsyncContextManager[Association]:
        """Open an association to ``host:port`` (or over ``stream``, a connection you own).

        ``max_operations_invoked`` overrides the AE's for this association (the window of
        outstanding requests proposed, PS3.7 D.3.3.3).

        Releases it when the block ends normally; aborts it when the block raises or is
        cancelled (from a shielded scope bounded by ``timeouts.abort``).
        """
        return _Associating(self, host, port, called_ae, contexts, stream, max_operations_invoked)

    async def _open_channel(
        self,
        host: str,
        port: int,
        called_ae: str,
        stream: anyio.abc.ByteStream | None,
    ) -> Channel:
        """The connection and the channel over it (the association not yet requested)."""
        peer = f"{called_ae}@{host}:{port}"
        transport: Transport
        if stream is None:
            transport = await open_tcp(host, port, timeout=self.timeouts.connect)
        else:
            transport = StreamTransport(stream)
        core = CoreAssociation(
            Role.REQUESTOR, limits=self.limits, artim_timeout=self.timeouts.acse or 30.0
        )
        channel = Channel(
            transport,
            core,
            limits=self.limits,
            timeouts=self.timeouts,
            peer=peer,
            tcp_quickack=self.tcp_quickack,
        )
        self.configure_channel(channel)
        return channel

    def _association_request(
        self,
        called_ae: str,
        contexts: Sequence[Context | str] | None,
        max_operations_invoked: int | None,
    ) -> AAssociateRQ:
        """Our A-ASSOCIATE-RQ (PS3.8 9.3.2). Built and validated once per distinct request
        and reused (a frozen value): sequential associations skip the UID checks."""
        key: tuple[object, ...] = (
            called_ae,
            None if contexts is None else tuple(contexts),
            max_operations_invoked,
            self.ae_title,
            self.limits.max_pdu_length,
            self.implementation_class_uid,
            self.implementation_version_name,
            self.max_operations_invoked,
            self.max_operations_performed,
        )
        try:
            cached, hashable = self._rq_cache.get(key), True
        except TypeError:  # an unhashable context: build it every time
            cached, hashable = None, False
        if cached is not None:
            return cached
        _check_ae_title(called_ae)
        proposed = as_contexts(contexts, [VERIFICATION])
        rq = AAssociateRQ(
            called_ae_title=called_ae,
            calling_ae_title=self.ae_title,
            presentation_contexts=build_requested(proposed),
            user_information=self.user_information(
                *self._window_proposal(max_operations_invoked), *_role_selections(proposed)
            ),
        )
        if hashable:
            if len(self._rq_cache) >= _RQ_CACHE_SIZE:
                self._rq_cache.pop(next(iter(self._rq_cache)))
            self._rq_cache[key] = rq
        return rq

    def associate_for_files(
        self,
        host: str,
        port: int,
        paths: Iterable[Path | str],
        *,
        called_ae: str = "ANY-SCP",
        recurse: bool = False,
        extra_contexts: Sequence[Context] = (),
        strategy: Strategy = Strategy.AUTO,
    ) -> AbstractAsyncContextManager[Association]:
        """:meth:`associate` proposing what these files need (C-STORE SCU); see
        :func:`aiodimse.services.sending.associate_for_files`."""
        from .sending import associate_for_files

        return associate_for_files(
            self,
            host,
            port,
            paths,
            called_ae=called_ae,
            recurse=recurse,
            extra_contexts=extra_contexts,
            strategy=strategy,
        )

    async def send_files(
        self,
        host: str,
        port: int,
        paths: Iterable[Path | str],
        *,
        called_ae: str = "ANY-SCP",
        recurse: bool = False,
        continue_on_error: bool = True,
        progress: Progress | None = None,
        on_result: Callable[[StoreResult], None] | None = None,
        timeout: float | None = -1.0,
        associations: int = 1,
        window: int | None = None,
        strategy: Strategy = Strategy.AUTO,
        fallback: bool = True,
    ) -> list[StoreResult]:
        """C-STORE files over one association, one result per file; see
        :func:`aiodimse.services.sending.send_files` (``strategy``: the transfer syntax
        proposal strategy, followed by more conservative ones with ``fallback``; they apply
        to this one-association path).

        ``associations=N`` sends over up to N associations at once and ``window=W`` keeps up
        to W requests outstanding on each (PS3.7 D.3.3.3, when the peer grants it); see
        :func:`aiodimse.services.parallel.send_files_parallel`.
        """
        if associations != 1 or window is not None:
            from .parallel import send_files_parallel

            return await send_files_parallel(
                self,
                host,
                port,
                paths,
                called_ae=called_ae,
                associations=associations,
                window=window,
                recurse=recurse,
                continue_on_error=continue_on_error,
                progress=progress,
                on_result=on_result,
                timeout=timeout,
            )
        from .sending import send_files

        return await send_files(
            self,
            host,
            port,
            paths,
            called_ae=called_ae,
            recurse=recurse,
            continue_on_error=continue_on_error,
            progress=progress,
            on_result=on_result,
            timeout=timeout,
            strategy=strategy,
            fallback=fallback,
        )

    # -- acceptor --------------------------------------------------------------------------

    @asynccontextmanager
    async def serve(
        self,
        host: str = "0.0.0.0",
        port: int = 11112,
        *,
        shutdown_timeout: float = 10.0,
        sockets: Sequence[socket.socket] | None = None,
    ) -> AsyncIterator[Server]:
        """Listen on ``host:port`` (port 0 picks a free one; see ``Server.port``).

        Leaving the block stops accepting, gives running associations ``shutdown_timeout``
        seconds to finish, then aborts the rest. ``sockets``: serve on these bound,
        listening sockets instead (see :mod:`aiodimse.net.workers`).
        """
        server = Server(self, shutdown_timeout=shutdown_timeout)
        async with server.listening(host, port, sockets):
            yield server

    def configure_channel(self, channel: Channel) -> None:
        """Route a channel's incoming requests and datasets to this AE's services."""
        channel.on_request = partial(dispatch_request, self)
        channel.sink_factory = partial(choose_sink, self)
        channel.start_request = partial(start_request, self)
        channel.inline_request = self._performs_inline
        channel.inline_response = self._inline_response

    def _inline_response(self, message: DimseMessage) -> DimseResponse | None:
        """The default C-ECHO SCP's answer, given at once (PS3.7 9.3.5.2: the response
        echoes the Affected SOP Class UID); ``None`` for anything else."""
        if not self._performs_inline(message):
            return None
        assert isinstance(message, CEchoRQ)
        return CEchoRSP(
            message_id_being_responded_to=message.message_id,
            affected_sop_class_uid=message.affected_sop_class_uid,
            status=0x0000,
        )

    def _performs_inline(self, message: DimseMessage) -> bool:
        """The default C-ECHO SCP answers at once: the reader performs it (no task)."""
        return (
            type(message) is CEchoRQ
            and self.on_echo is _echo_success
            and self.request_handlers.get(CEchoRQ) is handle_echo
        )


#: Distinct A-ASSOCIATE-RQs an AE keeps built (see ``AE._association_request``).
_RQ_CACHE_SIZE = 32


def _role_selections(contexts: Sequence[Context]) -> list[RoleSelection]:
    """PS3.7 D.3.3.4: one SCP/SCU Role Selection sub-item per SOP class that states a role."""
    items: dict[str, RoleSelection] = {}
    for c in contexts:
        if (c.scu_role is not None or c.scp_role is not None) and c.abstract_syntax not in items:
            items[c.abstract_syntax] = RoleSelection(
                sop_class_uid=c.abstract_syntax,
                # An unstated role keeps its default: SCU yes, SCP no for the requestor.
                scu_role=int(c.scu_role if c.scu_role is not None else True),
                scp_role=int(bool(c.scp_role)),
            )
    return list(items.values())


def _check_ae_title(title: str) -> None:
    """PS3.5 6.2 VR AE: 1-16 characters, no backslash, no control characters, not blank."""
    if not title.strip() or len(title) > 16 or "\\" in title or any(ord(c) < 32 for c in title):
        raise LocalProtocolError(f"invalid AE title {title!r} (PS3.5 VR AE: 1-16 characters)")


@asynccontextmanager
async def _established(ae: AE, channel: Channel, rq: AAssociateRQ) -> AsyncIterator[Association]:
    """The association over ``channel`` (its reader runs): released when the block ends
    normally, aborted when it raises or is cancelled (shielded, bounded by
    ``timeouts.abort``); then the end of the association is awaited, as long."""
    try:
        await channel.associate(rq)
        yield Association(channel, ae)
    except BaseException:
        await _close_association(ae, channel, release=False)
        raise
    else:
        await _close_association(ae, channel, release=True)


async def _close_association(ae: AE, channel: Channel, *, release: bool) -> None:
    """Release (or abort) the association, shielded; then await its end, as long as
    ``timeouts.abort`` allows."""
    try:
        with anyio.CancelScope(shield=True):
            if release:
                await channel.release()
            else:
                await channel.abort()
    finally:
        if not channel.is_closed:
            with anyio.move_on_after(ae.timeouts.abort, shield=True):
                await channel.wait_closed()


@asynccontextmanager
async def _task_group_association(
    ae: AE, channel: Channel, rq: AAssociateRQ
) -> AsyncIterator[Association]:
    """:meth:`AE.associate` off asyncio (trio): the reader runs in a task group."""
    # The body's exception is re-raised as itself, not wrapped in an ExceptionGroup.
    error: BaseException | None = None
    async with anyio.create_task_group() as tg:
        # The reader needs no head start: the A-ASSOCIATE-AC waits in the socket.
        tg.start_soon(channel.run)
        try:
            async with _established(ae, channel, rq) as assoc:
                yield assoc
        except BaseException as exc:
            error = exc
        finally:
            tg.cancel_scope.cancel()
    if error is not None:
        raise error


class _Associating:
    """What :meth:`AE.associate` returns. On asyncio the channel's reader is a plain task
    of ours and the association is set up and ended here directly (what
    :func:`_established` does, without a task group and nested generator context managers
    per association: a short association costs about a millisecond in all, so these
    showed); elsewhere it enters :func:`_task_group_association`."""

    __slots__ = (
        "_ae",
        "_called_ae",
        "_channel",
        "_contexts",
        "_fallback",
        "_host",
        "_port",
        "_reader_error",
        "_stream",
        "_window",
    )

    def __init__(
        self,
        ae: AE,
        host: str,
        port: int,
        called_ae: str,
        contexts: Sequence[Context | str] | None,
        stream: anyio.abc.ByteStream | None,
        window: int | None,
    ) -> None:
        self._ae = ae
        self._host = host
        self._port = port
        self._called_ae = called_ae
        self._contexts = contexts
        self._stream = stream
        self._window = window
        self._channel: Channel | None = None
        self._reader_error: BaseException | None = None
        self._fallback: AbstractAsyncContextManager[Association] | None = None

    async def __aenter__(self) -> Association:
        if self._channel is not None or self._fallback is not None:
            raise RuntimeError("an AE.associate(...) context is entered once")
        ae = self._ae
        rq = ae._association_request(self._called_ae, self._contexts, self._window)
        channel = await ae._open_channel(self._host, self._port, self._called_ae, self._stream)
        if not channel.is_native:
            self._fallback = _task_group_association(ae, channel, rq)
            return await self._fallback.__aenter__()
        self._channel = channel
        if not channel.start_lazily():  # no reader task until one is needed
            channel.start_reader()
        try:
            await channel.associate(rq)
        except BaseException:
            try:
                await _close_association(ae, channel, release=False)
            finally:
                await self._stop_reader()
            raise
        return Association(channel, ae)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        if self._fallback is not None:
            return await self._fallback.__aexit__(exc_type, exc, tb)
        channel = self._channel
        assert channel is not None
        try:
            await _close_association(self._ae, channel, release=exc_type is None)
        finally:
            await self._stop_reader()
        if exc_type is None and self._reader_error is not None:
            raise self._reader_error
        return None

    async def _stop_reader(self) -> None:
        """The channel's reader cancelled if it still runs, and awaited (what it raised is
        kept for ``__aexit__``)."""
        if self._channel is not None:
            self._reader_error = await self._channel.stop()
