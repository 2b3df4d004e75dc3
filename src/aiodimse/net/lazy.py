"""Running lazily on asyncio: the part of a :class:`~aiodimse.net.channel.Channel` that
works in the transport's read callback.

Theory of operation
-------------------
On asyncio a :class:`~aiodimse.net.transport.SocketTransport` reads in the loop's callback
and hands the bytes to the core at once. :meth:`Lazy._fast_input` then runs the state
machine there and handles whatever needs no waiting: ACSE PDUs, complete command-only
messages, the default C-ECHO answer, requests a service starts without a task, sinks that
take a small dataset at once. What needs waiting is queued, in order, for the reader task.

A channel started with :meth:`Lazy.start_lazily` (the requestor's and the acceptor's, on
asyncio) has no reader task until something needs one: work the callback cannot do, a
deadline to act on (one loop timer stands in for the reader's cancel scope), the peer
closing while something is left to wait for. A short association (associate, C-ECHO,
release) thus never creates, cancels or awaits a task. Its end is handled in the callback
as well when nothing is left (:meth:`Lazy._wind_down_now`).

``TCP_QUICKACK`` is re-armed after a read only while the peer may be waiting for our ACK
(:meth:`Lazy._peer_may_wait`), and not after a bulk read (``BULK_READ``), whose segments
Linux acknowledges by itself.
"""

from __future__ import annotations

import asyncio
import logging
import math
from functools import partial

import anyio

from .channel_state import ChannelState
from .diagnostics import BULK_READ, describe_error, rearm_quickack
from .waits import TaskSet

__all__ = ["Lazy"]

log = logging.getLogger("aiodimse.net")

try:
    from sniffio import thread_local as _sniffio_local
except ImportError:  # pragma: no cover - anyio without sniffio detects asyncio itself
    _sniffio_local = None  # type: ignore[assignment]


async def _reraise(exc: BaseException) -> None:
    raise exc


class Lazy(ChannelState):
    """The read-callback side of a channel (see the module docstring); mixed into
    :class:`~aiodimse.net.channel.Channel`."""

    def _wind_down_now(self) -> bool:
        """:meth:`_wind_down` without waiting, for a channel running lazily with no reader:
        possible when no partial message, no handler task and no unsent bytes are left
        (the connection then closes at once). False (nothing done) otherwise: the reader
        must do it."""
        group = self._task_group
        if self._incoming is not None or self._stash:
            return False
        if isinstance(group, TaskSet) and group.running():
            return False
        close_now = getattr(self._transport, "close_now", None)
        if close_now is None or not close_now():
            return False
        self._lazy = False
        if isinstance(group, TaskSet):
            group.cancel()  # workers waiting for a request end
        self._finish()
        self._ended()
        return True

    def start_lazily(self, *, at_once: bool = False) -> bool:
        """On asyncio, instead of running :meth:`run` as a task from the start: the
        transport's read callback feeds the fast path (:meth:`_fast_input`), and the
        reader task is started only when something needs it (work the fast path cannot
        do, a timer to run, the peer closing). A short association (associate, C-ECHO,
        release) then never has a reader task. End it with :meth:`stop`. False (nothing
        changed) where this is not possible: run :meth:`run` as usual then."""
        read_ahead = getattr(self._transport, "read_ahead", None)
        if not self._native or read_ahead is None:
            return False
        self._task_group = TaskSet(self.peer)
        self._lazy = True  # before any read: what arrives at once is handled lazily
        if not read_ahead(self._core, self.start_reader, at_once=at_once):
            self._task_group = None
            self._lazy = False
            return False
        if self._lazy:  # the timers (ARTIM from the start, as acceptor) on the loop's clock
            self._arm_lazy_timer()
        return True

    def _arm_lazy_timer(self) -> None:
        """While lazy: make sure a loop timer fires by :meth:`_deadline` (one timer, moved
        only when the deadline comes earlier; one that fires early is set again)."""
        d = self._deadline()
        handle = self._lazy_timer
        if d == math.inf:
            if handle is not None:  # nothing to time: let the channel go when it ends
                self._cancel_lazy_timer()
            return
        if handle is not None:
            if handle.when() <= d:
                return
            handle.cancel()
        self._lazy_timer = asyncio.get_running_loop().call_at(d, self._on_lazy_timer)

    def _cancel_lazy_timer(self) -> None:
        handle, self._lazy_timer = self._lazy_timer, None
        if handle is not None:
            handle.cancel()

    def _on_lazy_timer(self) -> None:
        self._lazy_timer = None
        if not self._lazy or self._closed.is_set():
            return
        if self._now() < self._deadline():
            self._arm_lazy_timer()  # moved later meanwhile
            return
        # A deadline passed (ARTIM, a partial PDU's, network idleness): the reader finds
        # it so at once and acts as it always does.
        self.start_reader()

    def start_reader(self) -> None:
        """On asyncio: run :meth:`run` as a task of the channel's own (at once, or when
        :meth:`start_lazily` finds it needed); end it with :meth:`stop`."""
        if self._reader is None:
            self._lazy = False
            self._cancel_lazy_timer()
            self._reader = asyncio.get_running_loop().create_task(self.run())
            if self.on_finished is not None:  # no owner awaits it: report what it raised
                self._reader.add_done_callback(self._reader_done)

    def _reader_done(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and (exc := task.exception()) is not None:
            log.error("%s: the association's reader failed: %r", self.peer, exc, exc_info=exc)

    async def stop(self) -> BaseException | None:
        """After :meth:`start_reader` or :meth:`start_lazily`: end the channel's work
        (cancel and await the reader if it was started, else wind down here); returns what
        the reader raised."""
        reader = self._reader
        self._cancel_lazy_timer()
        if reader is None:
            if self._wind_down_now():  # the common end: nothing left to wait for
                return None
            self._lazy = False
            group = self._task_group
            assert isinstance(group, TaskSet)
            await self._wind_down(group)
            return None
        with anyio.CancelScope(shield=True):
            if not reader.done():
                reader.cancel()
            await asyncio.wait({reader})
        return None if reader.cancelled() else reader.exception()

    def _fast_input(self) -> bool:
        """Called by the transport's read callback (asyncio) after new bytes arrived while
        the reader waits: run the state machine and handle what needs no waiting (ACSE
        PDUs, complete command-only messages, the inline C-ECHO answer) right there, with
        no trip through the reader task. Returns False when the reader must take over
        (what it cannot do here is queued in ``_stash``, in order)."""
        if self._closed.is_set() or self._stash:
            return False
        now = self._now()
        core = self._core
        # anyio finds its backend through sniffio, which sees no task in a loop callback:
        # say it here (anyio calls that need no task, e.g. Event.set, then work).
        local = _sniffio_local
        previous = local.name if local is not None else None
        if local is not None:
            local.name = "asyncio"
        try:
            core.process_received(now)
            while (ev := core.next_event()) is not None:
                if not self._dispatch_now(ev, now):
                    self._stash.append(partial(self._dispatch, ev, now))
                    return False
                if not self._flush_nowait() or self._stash:
                    return False
                if self._closed.is_set():
                    # Without a reader (start_lazily) nothing is left for one: the owner
                    # closes the connection (stop()), or with no owner waiting
                    # (on_finished) it is closed here; else the reader sees it and ends.
                    if not self._lazy:
                        return False
                    return self.on_finished is None or self._wind_down_now()
            if not self._flush_nowait():  # what the core answered by itself (AR-9...)
                return False
        except Exception as exc:  # raised in the reader, as if it had done the work
            self._stash.append(partial(_reraise, exc))
            return False
        finally:
            if local is not None:
                local.name = previous
        buffered = core.buffered_bytes
        if (
            self._quickack_sock is not None
            and getattr(self._transport, "last_read", 0) < BULK_READ
            and self._peer_may_wait(buffered)
        ):
            rearm_quickack(self._quickack_sock)
        self._rearm_idle(now)
        self._rearm_pdu(now, buffered)
        timer = self._timer
        if timer is not None:
            self._retime(timer)
        elif self._lazy:
            self._arm_lazy_timer()
        return True

    def _fast_eof(self, error: OSError | None) -> bool:
        """Called by the transport's read callback when the peer closed the connection (or
        it broke: ``error``) while the channel runs lazily: with no owner waiting
        (``on_finished``) the end is handled here when nothing needs waiting for. False:
        the reader must handle it (nothing done then)."""
        if not self._lazy or self.on_finished is None or self._stash or self._closed.is_set():
            return False
        group = self._task_group
        if self._incoming is not None or (isinstance(group, TaskSet) and group.running()):
            return False
        local = _sniffio_local
        previous = local.name if local is not None else None
        if local is not None:
            local.name = "asyncio"
        try:
            why = "peer closed the connection"
            if error is not None:
                why = f"connection broken: {describe_error(error)}"
            self._lost(why)
            if not self._wind_down_now():  # the reader finds the channel closed and ends
                self.start_reader()
        finally:
            if local is not None:
                local.name = previous
        return True

    def _peer_may_wait(self, buffered: int) -> bool:
        """Whether the peer may be waiting for our ACK: a sender with Nagle on holds its
        next small write until its last one is acknowledged, and Linux delays our ACK by up
        to 40 ms. That matters while part of a PDU or message is here or more responses are
        due; otherwise it is our turn to write, and what we write carries the ACK (so the
        fast path spares a ``setsockopt`` and a bare ACK segment per message)."""
        if buffered or self._incoming is not None or self._waiters:  # core.buffered_bytes
            return True
        answered = 0
        for fut in self._once.values():
            answered += fut.done()
        return self._busy > answered
