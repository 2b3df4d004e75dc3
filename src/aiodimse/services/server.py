"""The acceptor: a TCP listener that runs one :class:`Channel` per connection.

Admission (PS3.8 9.3.4 and ROBUSTNESS 21/39):

* A connection that has not yet sent a complete A-ASSOCIATE-RQ is *pending*. Pending
  connections are bounded by ``AE.max_pending_connections`` (over it a new connection is
  closed at once) and never count against ``AE.max_associations``; ARTIM
  (``timeouts.acse``) closes a pending connection that is too slow.
* Over ``AE.max_associations`` established associations, the answer is A-ASSOCIATE-RJ
  result 2 (transient), source 3, reason 2 "local limit exceeded": never a silent drop.

Shutdown: leaving :meth:`Server.listening` stops accepting, lets running associations
finish for ``shutdown_timeout`` seconds, then aborts the rest.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import sys
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from functools import partial
from typing import TYPE_CHECKING

import anyio
import anyio.abc

from ..association.connection import Association as CoreAssociation
from ..association.connection import Role
from ..association.negotiation import AcceptorPolicy, negotiate
from ..net.channel import Channel
from ..net.connect import configure_socket, socket_transport
from ..net.loop import asyncio_loop
from ..net.transport import SocketTransport, Transport, listen_sockets
from ..pdu import AAssociateAC, AAssociateRJ, AAssociateRQ

if TYPE_CHECKING:
    from .ae import AE

log = logging.getLogger("aiodimse.server")

#: Linux copies a listening socket's TCP_NODELAY and keepalive settings to the sockets it
#: accepts, so they are set once on the listener there (five system calls fewer per
#: connection); other systems get them per accepted socket.
_ACCEPTED_INHERIT = sys.platform.startswith("linux")


class Server:
    """A listening acceptor. Obtain one from ``AE.serve(...)``."""

    def __init__(self, ae: AE, *, shutdown_timeout: float = 10.0) -> None:
        self.ae = ae
        self.shutdown_timeout = shutdown_timeout
        self.port = 0
        self.host = ""
        self.pending = 0
        self.active = 0
        self.total_associations = 0
        self.total_rejected = 0
        self._channels: set[Channel] = set()
        #: Set when the last connection ends, while shutdown waits for that (else None).
        self._all_closed: anyio.Event | None = None
        self._tg: anyio.abc.TaskGroup | None = None
        #: On asyncio: the tasks of connections accepted by a loop callback that could not
        #: run on their read callbacks (see :meth:`_start`).
        self._native_tasks: set[asyncio.Task[None]] = set()

    def policy(self) -> AcceptorPolicy:
        ae = self.ae
        return AcceptorPolicy(
            ae_title=ae.ae_title if ae.require_called_aet else None,
            calling_ae_titles=ae.require_calling_aets,
            supported={
                c.abstract_syntax: tuple(c.transfer_syntaxes) for c in ae.supported_contexts
            },
            scp_roles={
                c.abstract_syntax: (bool(c.scu_role), bool(c.scp_role))
                for c in ae.supported_contexts
                if c.scu_role is not None or c.scp_role is not None
            },
            user_information=ae.user_information(),
            # PS3.7 D.3.3.3: granted only to a requestor that proposes a window.
            async_operations_window=ae.acceptor_window(),
            limits=ae.limits,
            prefer_requestor_order=ae.prefer_requestor_order,
        )

    @asynccontextmanager
    async def listening(
        self, host: str, port: int, sockets: Sequence[socket.socket] | None = None
    ) -> AsyncIterator[Server]:
        """Serve on ``host:port``, or on ``sockets`` already bound and listening (a worker
        process of ``storescp --workers``); those are set non-blocking and closed here."""
        if sockets is not None:
            sockets = list(sockets)
            for sock in sockets:
                sock.setblocking(False)
        else:
            sockets = listen_sockets(host, port)
        if _ACCEPTED_INHERIT:
            for sock in sockets:
                configure_socket(sock)
        self.host, self.port = sockets[0].getsockname()[:2]
        log.info("%s listening on %s:%d", self.ae.ae_title, self.host, self.port)
        self._policy = self.policy()
        error: BaseException | None = None
        async with anyio.create_task_group() as connections:
            native = self._accept_natively(sockets)
            async with anyio.create_task_group() as acceptor:
                if not native:
                    for sock in sockets:
                        acceptor.start_soon(self._accept_loop, sock, connections)
                try:
                    yield self
                except BaseException as exc:  # re-raised below, unwrapped
                    error = exc
                finally:
                    acceptor.cancel_scope.cancel()
            with anyio.CancelScope(shield=True):
                for sock in sockets:
                    if native:
                        asyncio.get_running_loop().remove_reader(sock.fileno())
                    else:
                        anyio.notify_closing(sock)
                    sock.close()
                # Graceful shutdown: running associations get shutdown_timeout to finish.
                if self._channels:
                    self._all_closed = anyio.Event()
                    with anyio.move_on_after(self.shutdown_timeout):
                        await self._all_closed.wait()
                # Whatever is still running is aborted, all at once (each abort is bounded by
                # Timeouts.abort), so shutdown takes shutdown_timeout + one abort at most.
                async with anyio.create_task_group() as aborts:
                    for ch in list(self._channels):
                        aborts.start_soon(_abort_and_stop, ch)
                # The plain tasks of the native accept path: what an abort left running
                # is cancelled and awaited, as the task group does for the others.
                tasks = set(self._native_tasks)
                for task in tasks:
                    task.cancel()
                if tasks:
                    await asyncio.wait(tasks)
            connections.cancel_scope.cancel()
        if error is not None:
            raise error

    def _accept_natively(self, sockets: Sequence[socket.socket]) -> bool:
        """On asyncio, accept from a loop callback (the listener stays registered) and run
        each connection on its socket's read callback (:meth:`_start`): no wait/unregister
        per accept, no task group spawn, and no task per connection until it needs one (a
        short association costs well under a millisecond in all, so these showed). False
        elsewhere (trio; Windows' proactor loop has no add_reader)."""
        loop = asyncio_loop()
        if loop is None:
            return False
        try:
            for sock in sockets:
                loop.add_reader(sock.fileno(), self._on_acceptable, loop, sock)
        except NotImplementedError:
            for sock in sockets:
                try:
                    loop.remove_reader(sock.fileno())
                except NotImplementedError:
                    pass
            return False
        return True

    def _on_acceptable(self, loop: asyncio.AbstractEventLoop, listener: socket.socket) -> None:
        """Loop callback: accept everything queued; each connection runs on its socket's
        read callback (:meth:`_start`), with a task only when it needs one."""
        while True:
            try:
                sock, addr = listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # e.g. EMFILE: pause accepting, keep serving the others
                log.error("accept failed: %s", exc)
                loop.remove_reader(listener.fileno())
                loop.call_later(0.1, self._resume_accepting, loop, listener, listener.fileno())
                return
            try:
                self._start(loop, sock, addr)
            except Exception as exc:  # one connection ends, logged; the server goes on
                log.error("connection handler failed: %r", exc, exc_info=exc)

    def _start(self, loop: asyncio.AbstractEventLoop, sock: socket.socket, addr: object) -> None:
        """The native path's start of a connection, in the accept callback: its channel
        reads in its socket's callback at once (a waiting A-ASSOCIATE-RQ is answered here)
        and has a reader task only when something needs one (a handler that waits, a
        timer that expired: :meth:`Channel.start_lazily`). A short association (associate,
        C-ECHO, release) never has a task. Where that is not possible, a plain task per
        connection (:meth:`_serve`)."""
        if not self._admit(sock):
            return
        try:
            connection = self._open(SocketTransport(sock, loop), addr, loop)
        except OSError as exc:  # the peer left before the connection could be used
            self._drop(sock, addr, exc)
            return
        except BaseException:
            self._drop(sock, addr)
            raise
        channel = connection.channel
        channel.on_finished = partial(self._finished, connection)
        if channel.start_lazily(at_once=True):
            return
        channel.on_finished = None
        task = loop.create_task(self._serve(connection))
        self._native_tasks.add(task)
        task.add_done_callback(self._native_done)

    def _resume_accepting(
        self, loop: asyncio.AbstractEventLoop, listener: socket.socket, fd: int
    ) -> None:
        if listener.fileno() == fd:  # not closed meanwhile (shutdown)
            loop.add_reader(fd, self._on_acceptable, loop, listener)

    def _native_done(self, task: asyncio.Task[None]) -> None:
        self._native_tasks.discard(task)
        if not task.cancelled() and (exc := task.exception()) is not None:
            # The task group would have ended the server; here one connection ends.
            log.error("connection handler failed: %r", exc, exc_info=exc)

    async def _accept_loop(self, listener: socket.socket, connections: anyio.abc.TaskGroup) -> None:
        while True:
            await anyio.wait_readable(listener)
            while True:  # accept everything queued before waiting again
                try:
                    sock, addr = listener.accept()
                except (BlockingIOError, InterruptedError):
                    break
                except OSError as exc:  # e.g. EMFILE: keep serving the others
                    log.error("accept failed: %s", exc)
                    await anyio.sleep(0.1)
                    break
                connections.start_soon(self._handle_logged, sock, addr)

    async def _handle_logged(self, sock: socket.socket, addr: object) -> None:
        """The anyio accept loop's task per connection: a handler that fails ends its own
        connection only, logged (as :meth:`_native_done` does for the native path)."""
        try:
            await self._handle(sock, addr)
        except Exception as exc:
            log.error("connection handler failed: %r", exc, exc_info=exc)

    async def _handle(self, sock: socket.socket, addr: object) -> None:
        """Serve one accepted connection (the anyio accept loop's path: trio, loops that
        cannot watch sockets)."""
        if not self._admit(sock):
            return
        try:
            connection = self._open(await socket_transport(sock), addr)
        except OSError as exc:  # the peer left before the connection could be used
            self._drop(sock, addr, exc)
            return
        except BaseException:
            self._drop(sock, addr)
            raise
        await self._serve(connection)

    def _admit(self, sock: socket.socket) -> bool:
        """A new connection counts as pending from here (before any wait, so the bound
        holds while it waits); over the bound it is closed at once (False)."""
        if self.pending >= self.ae.max_pending_connections:
            log.warning("too many connections awaiting A-ASSOCIATE-RQ; closing a new one")
            sock.close()
            return False
        if not _ACCEPTED_INHERIT:
            configure_socket(sock)
        self.pending += 1
        return True

    def _drop(self, sock: socket.socket, addr: object, error: OSError | None = None) -> None:
        """A connection admitted but not set up: no longer pending, closed."""
        self.pending -= 1
        sock.close()
        if error is not None:
            log.info("connection from %s closed before use: %s", addr, error)

    def _open(
        self,
        transport: Transport,
        addr: object,
        loop: asyncio.AbstractEventLoop | None = None,
    ) -> _Connection:
        """The channel of a new connection, counted as pending, its ARTIM running
        (``loop``: see :class:`Channel`)."""
        peer = f"{addr[0]}:{addr[1]}" if isinstance(addr, tuple) else str(addr)
        ae = self.ae
        core = CoreAssociation(
            Role.ACCEPTOR, limits=ae.limits, artim_timeout=ae.timeouts.acse or 30.0
        )
        channel = Channel(
            transport,
            core,
            limits=ae.limits,
            timeouts=ae.timeouts,
            peer=peer,
            tcp_quickack=ae.tcp_quickack,
            loop=loop,
        )
        connection = _Connection(self, channel, peer)
        channel.decide_association = connection.decide  # answered in the read callback
        channel.on_associate = connection.on_associate
        ae.configure_channel(channel)
        # PS3.8 9.2.1 (AE-5): the transport connection is up, ARTIM starts.
        core.transport_connected(channel.now())
        self._channels.add(channel)  # last: from here on _serve removes it
        return connection

    async def _serve(self, connection: _Connection) -> None:
        try:
            await connection.channel.run()
        finally:
            self._finished(connection)

    def _finished(self, connection: _Connection) -> None:
        """A connection's channel has ended: it no longer counts (called once per channel)."""
        self._channels.discard(connection.channel)
        if not self._channels and self._all_closed is not None:
            self._all_closed.set()
        if connection.pending:
            connection.pending = False
            self.pending -= 1
        if connection.active:
            connection.active = False
            self.active -= 1


async def _abort_and_stop(channel: Channel) -> None:
    """Shutdown's end of a running association: A-ABORT; a channel running without a task
    of the server's (``on_finished``) is then stopped here (its reader, if it has one,
    cancelled and awaited)."""
    owned_here = channel.on_finished is not None
    await channel.abort()
    if owned_here:
        await channel.stop()


class _Connection:
    """The acceptor's bookkeeping for one connection: pending until its A-ASSOCIATE-RQ is
    answered, then active while accepted."""

    __slots__ = ("active", "channel", "peer", "pending", "server")

    def __init__(self, server: Server, channel: Channel, peer: str) -> None:
        self.server = server
        self.channel = channel
        self.peer = peer
        self.pending = True
        self.active = False

    def decide(self, rq: AAssociateRQ) -> AAssociateAC | AAssociateRJ:
        server = self.server
        ae = server.ae
        self.pending = False
        server.pending -= 1
        # PS3.8 9.3.4 / ROBUSTNESS 21: over the limit, RJ transient, source 3, reason 2.
        answer = negotiate(
            rq, server._policy, local_limit_exceeded=server.active >= ae.max_associations
        )
        if isinstance(answer, AAssociateAC):
            server.active += 1
            server.total_associations += 1
            self.active = True
            self.channel.peer = f"{rq.calling_ae_title}@{self.peer}"
        else:
            server.total_rejected += 1
            log.info(
                "%s: rejected A-ASSOCIATE-RQ from %s: result %d source %d reason %d",
                ae.ae_title,
                self.peer,
                answer.result,
                answer.source,
                answer.reason,
            )
        return answer

    async def on_associate(self, rq: AAssociateRQ) -> AAssociateAC | AAssociateRJ:
        return self.decide(rq)
