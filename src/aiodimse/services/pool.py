"""A pool of associations to one destination: reuse, a size bound, idle expiry, health.

Theory of operation
-------------------
Opening an association costs a TCP handshake and an A-ASSOCIATE round trip (and, on many
PACS, a log line and a licence check). An :class:`AssociationPool` keeps up to
``max_size`` established associations to one ``host:port``/called AE title and lends them
out one borrower at a time::

    async with AssociationPool(ae, "pacs", 104, called_ae="PACS", contexts=ctxs) as pool:
        async with pool.acquire() as assoc:
            await assoc.store_many(paths)

Each association lives in a *holder* task of the pool's task group (an association's
context manager must be entered and left in one task), which releases it when the pool
closes it. While an association is idle in the pool:

* it expires after ``idle_timeout`` seconds (default 15 s: shorter than the idle timeouts
  of common peers, Orthanc's ``DicomScpTimeout`` being 30 s), and is then released by us,
  cleanly, rather than cut off by the peer;
* if the peer closes or aborts it, the association's reader notices at once and the pool
  forgets it (``stats.lost``);
* before it is lent again after ``check_after`` seconds idle, a C-ECHO (PS3.7 9.1.5)
  checks that the peer still answers; one that fails is dropped and another is used.

A borrower that needs presentation contexts the pooled associations did not propose gets a
new association proposing the union of what the pool has seen (PS3.8 9.3.2.2: at most
128), evicting an idle one when the pool is full. A borrower whose block raises gets its
association aborted, never lent again (it may be in the middle of an operation).
"""

from __future__ import annotations

import logging
import math
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import anyio
import anyio.abc

from ..errors import ContextNotAccepted, DicomError, LocalProtocolError
from .association import Association
from .contexts import VERIFICATION, Context, as_contexts

if TYPE_CHECKING:
    from .ae import AE

__all__ = ["AssociationPool", "PoolStats"]

log = logging.getLogger("aiodimse.pool")

#: PS3.8 9.3.2.2: presentation context IDs are the odd numbers 1-255.
MAX_CONTEXTS = 128


@dataclass(frozen=True, slots=True, kw_only=True)
class PoolStats:
    """Counters since the pool opened, and its current size."""

    opened: int
    reused: int
    expired: int
    lost: int
    health_checks: int
    health_failures: int
    evicted: int
    idle: int
    in_use: int


@dataclass(eq=False, slots=True, kw_only=True)
class _Entry:
    contexts: tuple[Context, ...]
    association: Association | None = None
    stop: anyio.Event = field(default_factory=anyio.Event)
    scope: anyio.CancelScope | None = None
    deadline: float = math.inf
    borrowed: bool = True
    abort: bool = False
    idle_since: float = 0.0

    def covers(self, wanted: Sequence[Context]) -> bool:
        return all(c in self.contexts for c in wanted)


class AssociationPool:
    """Associations to one destination, lent one borrower at a time (see the module doc).

    ``contexts`` are proposed on every association (Verification is always added, for the
    health check); :meth:`acquire` may ask for more. ``max_size`` bounds the associations
    open at once (borrowed, idle or being opened); a borrower waits for one when the pool is
    full and none can be reused or evicted. ``idle_timeout``: an idle association is
    released after this many seconds (``None``: never). ``check_after``: an association idle
    at least this long is checked with a C-ECHO (``check_timeout``, default
    ``ae.timeouts.echo``) before it is lent (``None``: never checked).
    ``max_operations_invoked``: the window proposed (PS3.7 D.3.3.3; default the AE's).
    """

    def __init__(
        self,
        ae: AE,
        host: str,
        port: int,
        *,
        called_ae: str = "ANY-SCP",
        contexts: Sequence[Context | str] = (),
        max_size: int = 4,
        idle_timeout: float | None = 15.0,
        check_after: float | None = 5.0,
        check_timeout: float | None = None,
        max_operations_invoked: int | None = None,
    ) -> None:
        if max_size < 1:
            raise LocalProtocolError("max_size must be at least 1")
        self.ae = ae
        self.host = host
        self.port = port
        self.called_ae = called_ae
        self.max_size = max_size
        self.idle_timeout = idle_timeout
        self.check_after = check_after
        self.check_timeout = check_timeout if check_timeout is not None else ae.timeouts.echo
        self.max_operations_invoked = max_operations_invoked
        self._known: list[Context] = _merge([VERIFICATION], as_contexts(contexts, []))
        self._entries: set[_Entry] = set()
        self._idle: list[_Entry] = []  # most recently returned last
        self._changed = anyio.Event()
        self._tg: anyio.abc.TaskGroup | None = None
        self._stack: AsyncExitStack | None = None
        self._closed = False
        self._counts = dict.fromkeys(
            ("opened", "reused", "expired", "lost", "health_checks", "health_failures", "evicted"),
            0,
        )

    # -- lifetime ------------------------------------------------------------------------

    async def __aenter__(self) -> AssociationPool:
        if self._stack is not None:
            raise LocalProtocolError("the pool is already open")
        stack = AsyncExitStack()
        self._tg = await stack.enter_async_context(anyio.create_task_group())
        self._stack = stack
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Release every association (borrowed ones too) and wait for them to close."""
        if self._stack is None:
            return
        self._closed = True
        for entry in list(self._entries):
            entry.stop.set()
        self._notify()
        stack, self._stack = self._stack, None
        # The holders release (each bounded by the AE's timeouts); the task group waits.
        await stack.aclose()
        self._tg = None

    @property
    def stats(self) -> PoolStats:
        idle = len(self._idle)
        return PoolStats(**self._counts, idle=idle, in_use=len(self._entries) - idle)

    # -- borrowing -----------------------------------------------------------------------

    @asynccontextmanager
    async def acquire(self, contexts: Sequence[Context | str] = ()) -> AsyncIterator[Association]:
        """Borrow an established association proposing at least ``contexts`` (and the
        pool's). Raises as :meth:`AE.associate` when a new one cannot be opened.

        It returns to the pool when the block ends; when the block raises (or the
        association ended meanwhile) it is aborted/dropped instead.
        """
        entry = await self._checkout(as_contexts(contexts, []))
        assert entry.association is not None
        ok = False
        try:
            yield entry.association
            ok = True
        finally:
            self._checkin(entry, ok=ok)

    async def _checkout(self, wanted: list[Context]) -> _Entry:
        while True:
            if self._closed or self._tg is None:
                raise LocalProtocolError("the association pool is not open")
            entry = self._take_idle(wanted)
            if entry is not None:
                try:
                    usable = await self._usable(entry)
                except BaseException:  # cancelled during the health check: never lent
                    entry.abort = True
                    self._drop(entry)
                    raise
                if usable:
                    self._counts["reused"] += 1
                    return entry
                continue
            if len(self._entries) < self.max_size:
                return await self._open(wanted)
            if self._idle:
                # Full, and no idle association proposes what this borrower needs: replace
                # the one idle longest by one proposing the union.
                victim = self._idle.pop(0)
                self._counts["evicted"] += 1
                self._drop(victim)
                return await self._open(wanted)
            changed = self._changed
            await changed.wait()

    def _take_idle(self, wanted: list[Context]) -> _Entry | None:
        for entry in reversed(self._idle):  # the most recently used first: fewer stay warm
            if entry.covers(wanted):
                self._idle.remove(entry)
                entry.borrowed = True
                entry.deadline = math.inf
                if entry.scope is not None:
                    entry.scope.deadline = math.inf
                return entry
        return None

    async def _usable(self, entry: _Entry) -> bool:
        assoc = entry.association
        assert assoc is not None
        if assoc.is_closed or entry.stop.is_set():
            self._counts["lost"] += 1
            self._drop(entry)
            return False
        idle_for = anyio.current_time() - entry.idle_since
        if self.check_after is None or idle_for < self.check_after:
            return True
        self._counts["health_checks"] += 1
        try:
            status = await assoc.echo(timeout=self.check_timeout)
            healthy = status.code == 0x0000
        except ContextNotAccepted:
            healthy = not assoc.is_closed  # the peer refused Verification: trust the socket
        except DicomError as exc:
            log.info("%s:%d: pooled association failed its C-ECHO: %s", self.host, self.port, exc)
            healthy = False
        if not healthy:
            self._counts["health_failures"] += 1
            entry.abort = True
            self._drop(entry)
        return healthy

    async def _open(self, wanted: list[Context]) -> _Entry:
        assert self._tg is not None
        contexts = _merge(self._known, wanted)
        if len(contexts) > MAX_CONTEXTS:
            contexts = _merge([VERIFICATION], wanted)
        else:
            self._known = contexts
        entry = _Entry(contexts=tuple(contexts))
        self._entries.add(entry)  # counts against max_size while it opens
        try:
            await self._tg.start(self._hold, entry)
        except BaseException:
            self._forget(entry)
            raise
        self._counts["opened"] += 1
        return entry

    def _checkin(self, entry: _Entry, *, ok: bool) -> None:
        entry.borrowed = False
        assoc = entry.association
        if not ok or assoc is None or assoc.is_closed or self._closed or entry.stop.is_set():
            entry.abort = not ok
            self._drop(entry)
            return
        now = anyio.current_time()
        entry.idle_since = now
        entry.deadline = now + self.idle_timeout if self.idle_timeout is not None else math.inf
        if entry.scope is not None:
            entry.scope.deadline = entry.deadline
        self._idle.append(entry)
        self._notify()

    # -- the holder task of one association ----------------------------------------------

    async def _hold(
        self, entry: _Entry, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        started = False
        try:
            async with self.ae.associate(
                self.host,
                self.port,
                called_ae=self.called_ae,
                contexts=list(entry.contexts),
                max_operations_invoked=self.max_operations_invoked,
            ) as assoc:
                entry.association = assoc
                started = True
                task_status.started()
                await self._watch(entry, assoc)
                if entry.abort and not assoc.is_closed:
                    await assoc.abort()
        except Exception as exc:
            if not started:
                raise
            # The pool's task group must outlive one association's trouble.
            log.info("%s:%d: pooled association ended: %s", self.host, self.port, exc)
        finally:
            self._forget(entry)

    async def _watch(self, entry: _Entry, assoc: Association) -> None:
        """Wait until the pool drops the association, it expires idle, or it ends."""

        async def closed() -> None:
            await assoc.wait_closed()
            entry.stop.set()

        async with anyio.create_task_group() as tg:
            tg.start_soon(closed)
            while not entry.stop.is_set():
                with anyio.CancelScope(deadline=entry.deadline) as scope:
                    entry.scope = scope
                    await entry.stop.wait()
                entry.scope = None
                if scope.cancelled_caught and not entry.borrowed and entry in self._idle:
                    if anyio.current_time() >= entry.deadline:
                        self._idle.remove(entry)
                        self._counts["expired"] += 1
                        log.debug("%s:%d: idle association expired", self.host, self.port)
                        break
            if assoc.is_closed and not entry.borrowed and entry in self._idle:
                self._counts["lost"] += 1  # the peer closed or aborted it while idle
            tg.cancel_scope.cancel()

    # -- bookkeeping ---------------------------------------------------------------------

    def _drop(self, entry: _Entry) -> None:
        """Close ``entry`` (its holder releases or aborts it) and stop lending it."""
        if entry in self._idle:
            self._idle.remove(entry)
        entry.stop.set()

    def _forget(self, entry: _Entry) -> None:
        self._entries.discard(entry)
        if entry in self._idle:
            self._idle.remove(entry)
        self._notify()

    def _notify(self) -> None:
        self._changed.set()
        self._changed = anyio.Event()


def _merge(base: Sequence[Context], extra: Sequence[Context]) -> list[Context]:
    merged = list(base)
    for c in extra:
        if c not in merged:
            merged.append(c)
    return merged
