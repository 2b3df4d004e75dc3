"""What a :class:`~aiodimse.net.channel.Channel` waits with on asyncio: lighter stand-ins
for anyio's primitives where a short association pays for every call (an event with a
deadline on one loop timer, a lock taken without a trip through the loop, plain tasks
cancelled through anyio cancel scopes), and :class:`fail_after` choosing between the two.
Elsewhere (trio) the channel uses anyio's own.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Awaitable, Callable, Coroutine
from contextlib import AbstractAsyncContextManager, AbstractContextManager
from types import TracebackType
from typing import Any

import anyio

log = logging.getLogger("aiodimse.net")

__all__ = ["Signal", "TaskSet", "acquire", "expire", "fail_after"]


class Signal:
    """A one-way event for a channel on asyncio (set once, never cleared): what
    ``asyncio.Event`` does, plus :meth:`wait_for` with a deadline on one loop timer (no
    ``asyncio.timeout`` per wait). Set from loop callbacks as well as from tasks."""

    __slots__ = ("_set", "_waiters")

    def __init__(self) -> None:
        self._set = False
        self._waiters: list[asyncio.Future[bool]] = []

    def is_set(self) -> bool:
        return self._set

    def set(self) -> None:
        if self._set:
            return
        self._set = True
        waiters, self._waiters = self._waiters, []
        for fut in waiters:
            if not fut.done():
                fut.set_result(True)

    async def wait(self) -> None:
        await self.wait_for(None)

    async def wait_for(self, seconds: float | None) -> bool:
        """Wait until set (True) or for ``seconds`` (False; ``None``: no limit)."""
        if self._set:
            return True
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[bool] = loop.create_future()
        self._waiters.append(fut)
        handle = None if seconds is None else loop.call_later(seconds, _time_out, fut)
        try:
            return await fut
        finally:
            if handle is not None:
                handle.cancel()
            if not self._set:  # timed out or cancelled: forget it
                self._waiters.remove(fut)


def _time_out(fut: asyncio.Future[bool]) -> None:
    if not fut.done():
        fut.set_result(False)


def expire(fut: asyncio.Future[Any]) -> None:
    if not fut.done():
        fut.set_exception(TimeoutError())


async def acquire(lock: anyio.Lock | asyncio.Lock) -> None:
    """Take ``lock``; an uncontended lock is taken without a trip through the event loop
    (asyncio's does that by itself, anyio's through ``acquire_nowait``)."""
    if isinstance(lock, asyncio.Lock):
        await lock.acquire()
        return
    try:
        lock.acquire_nowait()
    except anyio.WouldBlock:
        await lock.acquire()


class fail_after:
    """``async with fail_after(native, seconds)``: ``anyio.fail_after``, or on asyncio
    (Python 3.11+) the loop's own, lighter ``asyncio.timeout``. Both raise
    :class:`TimeoutError`; anyio's cancel scopes around either still apply."""

    __slots__ = ("_async", "_sync")

    def __init__(self, native: bool, seconds: float | None) -> None:
        self._async: AbstractAsyncContextManager[object] | None = None
        self._sync: AbstractContextManager[object] | None = None
        if sys.version_info >= (3, 11) and native:
            self._async = asyncio.timeout(None if seconds is None else seconds)
        else:
            self._sync = anyio.fail_after(seconds)

    async def __aenter__(self) -> None:
        if self._async is not None:
            await self._async.__aenter__()
        else:
            assert self._sync is not None
            self._sync.__enter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        if self._async is not None:
            return await self._async.__aexit__(exc_type, exc, tb)
        assert self._sync is not None
        return self._sync.__exit__(exc_type, exc, tb)


class TaskSet:
    """The handler tasks of one channel on asyncio (what an anyio task group does for it
    elsewhere, without a task group's cost per association): started with
    :meth:`start_soon`, or for the requests the channel performs with :meth:`perform`;
    cancelled and awaited when the association ends. ``peer`` names the association in
    the log line of a task that failed.

    :meth:`perform` runs each job in a *worker*: a task that, its job done, waits for the
    next one instead of ending, so a stream of requests (pipelined C-STOREs, ten C-STOREs
    per association) pays for one task and one cancel scope per worker, not per request.
    A waiting worker does not count as running; the set's cancellation ends it.

    Work done without a task (a request performed by loop callbacks, see
    :meth:`hold`) counts as running too: the association's end waits for it."""

    __slots__ = ("_cancelled", "_held", "_idle", "_peer", "_scopes", "_tasks", "_unheld")

    def __init__(self, peer: str) -> None:
        self._peer = peer
        self._tasks: set[asyncio.Task[None]] = set()
        self._scopes: set[anyio.CancelScope] = set()
        self._cancelled = False
        #: Workers waiting for a job: each waits on its future here.
        self._idle: list[asyncio.Future[Callable[[], Awaitable[None]] | None]] = []
        #: Work held by :meth:`hold` and not yet released; its end wakes ``_unheld``.
        self._held = 0
        self._unheld: asyncio.Future[None] | None = None

    def start_soon(self, func: Callable[..., Coroutine[Any, Any, None]], *args: object) -> None:
        self._start(self._run(func(*args)))

    def perform(self, job: Callable[[], Awaitable[None]]) -> None:
        """Run ``job()`` soon in a waiting worker, or in a new one."""
        idle = self._idle
        while idle:
            fut = idle.pop()
            if not fut.done():
                fut.set_result(job)
                return
        self._start(self._work(job))

    def _start(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    async def _run(self, coro: Coroutine[Any, Any, None]) -> None:
        # Cancelled through an anyio scope, as a task group would: shielded sections of the
        # handler (finishing a stored instance after its response went out) still finish.
        with anyio.CancelScope() as scope:
            if self._cancelled:  # cancelled before it started
                scope.cancel()
            self._scopes.add(scope)
            try:
                await coro
            finally:
                self._scopes.discard(scope)

    async def _work(self, job: Callable[[], Awaitable[None]] | None) -> None:
        """A worker: ``job``, then each job :meth:`perform` hands it, under one anyio
        cancel scope (see :meth:`_run`); ends when the set is cancelled."""
        loop = asyncio.get_running_loop()
        with anyio.CancelScope() as scope:
            if self._cancelled:
                scope.cancel()
            self._scopes.add(scope)
            try:
                while job is not None:
                    await job()
                    if self._cancelled:
                        return
                    fut: asyncio.Future[Callable[[], Awaitable[None]] | None]
                    fut = loop.create_future()
                    self._idle.append(fut)
                    try:
                        job = await fut
                    finally:
                        if fut in self._idle:  # cancelled while waiting
                            self._idle.remove(fut)
            finally:
                self._scopes.discard(scope)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("%s: a task of the association failed", self._peer, exc_info=task.exception())

    def hold(self) -> None:
        """Count work going on outside the set's tasks (loop callbacks performing a
        request) until :meth:`unhold`: it cannot be cancelled, only waited for."""
        self._held += 1

    def unhold(self) -> None:
        """The end of work counted by :meth:`hold`."""
        self._held -= 1
        if not self._held and self._unheld is not None and not self._unheld.done():
            self._unheld.set_result(None)

    def running(self) -> bool:
        """Whether a task of the set has work left (a waiting worker has none), or work
        counted by :meth:`hold` goes on."""
        return len(self._tasks) > len(self._idle) or self._held > 0

    def cancel(self) -> bool:
        """Cancel what still runs (and end the waiting workers); True when there is
        something to wait for."""
        self._cancelled = True
        for scope in self._scopes:
            scope.cancel()
        idle, self._idle = self._idle, []
        for fut in idle:  # let them end at once (their scope's cancellation would too)
            if not fut.done():
                fut.set_result(None)
        return bool(self._tasks) or self._held > 0

    async def wait(self) -> None:
        while self._tasks:
            await asyncio.wait(set(self._tasks))
        while self._held:
            self._unheld = asyncio.get_running_loop().create_future()
            await self._unheld
