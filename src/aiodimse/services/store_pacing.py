"""Pacing a C-STORE's dataset: progress counting and the no-progress deadline, per slice.

:class:`_Paced` hands the dataset to the fragmenter in slices (:func:`slice_size_for`: whole
PDV payloads of the peer's maximum PDU, at least :data:`MIN_SLICE`); each request for the
next slice means the previous one went out, so it counts progress (:class:`_Meter`, at most
every :data:`PROGRESS_INTERVAL` seconds) and re-arms the no-progress deadline (skipped when
within :data:`REARM_SLACK`). Used by :mod:`aiodimse.services.storage_scu` (one instance)
and :mod:`aiodimse.services.store_batch` (a batch's meter; its instances' meters,
:class:`_ItemMeter`, and its no-progress deadline, :class:`_Watchdog`). The source is a
:class:`~aiodimse.net.filesource.DatasetReader` (chunks read into memory), a
:class:`~aiodimse.services.store_regions.RegionReader` (file regions, ``os.sendfile``), a
:class:`~aiodimse.services.storage_convert.ConvertedSource` or ``bytes``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator
from typing import Final, Protocol, TypeAlias

import anyio

from ..constants import PDV_HEADER_LENGTH
from ..dimse.file_region import FileRegion
from ..dimse.fragmenter import resolve_max_pdu_length
from ..net.channel import Channel
from ..net.filesource import DEFAULT_CHUNK_SIZE, DatasetReader
from ..net.waits import Signal
from .storage_convert import ConvertedSource
from .store_regions import RegionReader

__all__ = [
    "MIN_SLICE",
    "PROGRESS_INTERVAL",
    "REARM_SLACK",
    "Progress",
    "loop_clock",
    "read_chunk_size",
    "slice_size_for",
]

log = logging.getLogger("aiodimse.storescu")

#: Seconds between two progress calls while data moves (the last call is never skipped).
PROGRESS_INTERVAL: Final = 0.1
#: Seconds a no-progress deadline may be left unmoved (it then fires at most that early).
REARM_SLACK: Final = 0.05
#: Smallest slice of the dataset between two progress/deadline checks: about one file read,
#: so a chunk read from disk goes through the pacing once, not once per PDU.
MIN_SLICE: Final = 1024 * 1024

#: ``progress(bytes_sent, total)``.
Progress: TypeAlias = Callable[[int, int], None]


def loop_clock() -> Callable[[], float]:
    """``anyio.current_time`` of the running backend, resolved once: on asyncio the loop's
    own ``time`` (what anyio returns there), called without a backend lookup per call."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:  # another backend (trio)
        return anyio.current_time
    return loop.time


class _Event(Protocol):
    """What the batch waits with: ``anyio.Event``, or on asyncio the channel's lighter
    :class:`~aiodimse.net.waits.Signal` (a loop future per wait, no backend lookup)."""

    def set(self) -> object: ...

    async def wait(self) -> object: ...


def _event_factory() -> Callable[[], _Event]:
    """How to make the batch's one-shot events: per instance (the spawner waiting for the
    previous request's last byte, a worker waiting for its next job) anyio's cost several
    calls more than :class:`~aiodimse.net.waits.Signal`, which does the same on asyncio."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:  # another backend (trio)
        return anyio.Event
    return Signal


class _Meter:
    """Counts bytes sent and calls ``progress`` at most every PROGRESS_INTERVAL seconds."""

    __slots__ = ("_callback", "_last", "sent", "total")

    def __init__(self, callback: Progress | None, total: int) -> None:
        self._callback = callback
        self.sent = 0
        self.total = total
        self._last = -1e300

    def add(self, n: int) -> None:
        self.sent += n
        if self._callback is not None:
            now = anyio.current_time()
            if now - self._last >= PROGRESS_INTERVAL:
                self._last = now
                self._callback(self.sent, self.total)

    def report(self) -> None:
        """Call ``progress`` now (the end of an instance)."""
        if self._callback is not None:
            self._last = anyio.current_time()
            self._callback(self.sent, self.total)


class _ItemMeter(_Meter):
    """One instance's byte count: forwards progress and total changes to the batch meter
    and marks the moment every byte of the dataset has gone to the transport (the moment
    the next request of a pipeline may start: :meth:`wait_sent_all`)."""

    __slots__ = ("_batch", "_new_event", "_on_progress", "_reported_total", "_sent_all", "_waiter")

    def __init__(
        self,
        batch: _Meter,
        total: int,
        *,
        on_progress: Callable[[], None] | None = None,
        new_event: Callable[[], _Event] = anyio.Event,
    ) -> None:
        super().__init__(None, total)
        self._batch = batch
        self._reported_total = total
        self._on_progress = on_progress
        self._sent_all = False
        # Made only when someone has to wait (most requests are sent before the next one
        # is considered): no event per instance.
        self._waiter: _Event | None = None
        self._new_event = new_event

    def add(self, n: int) -> None:
        self.sent += n
        self.sync_total()
        self._batch.add(n)
        if self._on_progress is not None:
            self._on_progress()
        if self.sent >= self.total:
            self.set_sent_all()

    def set_sent_all(self) -> None:
        """Every byte went out, or the instance ended (idempotent)."""
        self._sent_all = True
        if self._waiter is not None:
            self._waiter.set()

    @property
    def sent_all(self) -> bool:
        return self._sent_all

    async def wait_sent_all(self) -> None:
        if not self._sent_all:
            if self._waiter is None:
                self._waiter = self._new_event()
            await self._waiter.wait()

    def sync_total(self) -> None:
        """Carry a change of this instance's total (re-encoded, encoded) to the batch."""
        if self.total != self._reported_total:
            self._batch.total += self.total - self._reported_total
            self._reported_total = self.total

    def unsent(self) -> int:
        self.sync_total()
        return max(0, self.total - self.sent)


class _Watchdog:
    """The no-progress deadline of a pipelined batch: re-armed by every slice sent and every
    response; when it runs out, the association is aborted (the outstanding requests then
    fail, PS3.8 E.1 leaves nothing else to do with them)."""

    __slots__ = ("armed", "deadline", "fired", "limit", "now", "scope", "slack")

    def __init__(self, limit: float) -> None:
        self.limit = limit
        self.now = loop_clock()
        self.armed = self.now()
        self.deadline = self.armed + limit
        # As store_pacing._Paced: a re-arm this soon after the last one is skipped (moving
        # the deadline reschedules a timer), so it fires at most that early.
        self.slack = min(REARM_SLACK, limit / 100)
        self.scope: anyio.CancelScope | None = None
        self.fired = False

    def rearm(self) -> None:
        now = self.now()
        if now - self.armed < self.slack:
            return
        self.armed = now
        self.deadline = now + self.limit
        if self.scope is not None:
            self.scope.deadline = self.deadline

    async def run(self, channel: Channel) -> None:
        while True:
            with anyio.CancelScope(deadline=self.deadline) as scope:
                self.scope = scope
                await anyio.sleep_forever()
            self.scope = None
            if self.now() >= self.deadline:
                log.warning(
                    "%s: no C-STORE progress for %s s (nothing sent, no answer), aborting",
                    channel.peer,
                    self.limit,
                )
                self.fired = True
                await channel.abort()
                return


def _continues(region: FileRegion, chunk: FileRegion) -> bool:
    """Whether ``chunk`` is the part of ``region``'s file right after it (one region then)."""
    return (
        chunk.fd == region.fd
        and chunk.owner is region.owner
        and chunk.offset == region.offset + region.length
    )


class _Paced:
    """The dataset in slices; each request for the next slice means the previous one went
    out (the fragmenter pulls lazily), so it counts progress and re-arms the deadline.

    Contiguous file regions of one file (a :class:`RegionReader` yields them a read chunk
    at a time) are merged up to the slice, so a peer taking PDUs larger than a read chunk
    gets one region, one PDV and one ``sendfile`` per PDU.
    """

    __slots__ = (
        "_armed",
        "_converted",
        "_estimate",
        "_handed",
        "_held",
        "_pending",
        "_scope",
        "_size",
        "_slack",
        "_source",
        "_timeout",
        "_view",
        "meter",
        "sent",
    )

    def __init__(
        self,
        source: DatasetReader | RegionReader | ConvertedSource | bytes,
        *,
        slice_size: int,
        scope: anyio.CancelScope | None,
        timeout: float | None,
        meter: _Meter,
        planned: int = 0,
        armed: float = -1e300,
    ) -> None:
        """``planned``: what ``meter.total`` counts for it; ``armed``: ``scope``'s last arming
        (``scope`` is the deadline re-armed per slice: needed with a ``timeout`` only)."""
        self._source = source
        self._view: memoryview | FileRegion = (
            memoryview(source) if isinstance(source, bytes) else memoryview(b"")
        )
        self._size = slice_size
        self._scope = scope
        self._timeout = timeout
        # Moving a deadline reschedules a timer: a re-arm within 1 % of the timeout (at most
        # REARM_SLACK) of the last one is skipped, so the deadline fires at most that early.
        self._slack = min(REARM_SLACK, timeout / 100) if timeout is not None else 0.0
        self._armed = armed
        self._handed = 0
        self._pending = 0
        self._held: bytes | FileRegion | None = None  # read ahead by a merge, not merged
        self.meter = meter
        self.sent = 0
        self._estimate = planned
        self._converted = isinstance(source, ConvertedSource)

    def rearm(self) -> None:
        if self._timeout is not None and self._scope is not None:
            now = anyio.current_time()
            if now - self._armed >= self._slack:
                self._armed = now
                self._scope.deadline = now + self._timeout

    def _reestimate(self) -> None:
        # A converted length is known only at the end: keep the meter's total estimated.
        if self._converted:
            assert isinstance(self._source, ConvertedSource)
            estimate = self._source.estimate
            self.meter.total += estimate - self._estimate
            self._estimate = estimate

    def settle(self) -> None:
        """The last slice went out too (progress: count it, re-arm the deadline)."""
        if self._converted:
            self._reestimate()
        if self._pending:
            self.sent += self._pending
            self.meter.add(self._pending)
            self._pending = 0
            self.rearm()

    def whole(self) -> bytes | Iterator[memoryview]:
        """A ``bytes`` source as a plain (not async) dataset, no event-loop trip per slice:
        itself when it is one slice, else its slices, each counted when the next is asked
        for (:meth:`settle` counts the last)."""
        assert isinstance(self._source, bytes)
        if len(self._source) <= self._size:
            self._pending = len(self._source)
            return self._source
        return self._slices()

    def _slices(self) -> Iterator[memoryview]:
        assert isinstance(self._source, bytes)
        view = memoryview(self._source)
        for start in range(0, len(view), self._size):
            self.settle()
            piece = view[start : start + self._size]
            self._pending = len(piece)
            yield piece

    def regions(self) -> Iterator[memoryview | FileRegion]:
        """A :class:`RegionReader` source as a plain (not async) dataset: the same slices as
        the async iteration, each counted when the next is asked for (:meth:`settle` counts
        the last). Handing out regions never waits, so the sender may gather a message's
        PDUs (the command with the first data PDU, the short last PDU) in fewer writes."""
        source = self._source
        assert isinstance(source, RegionReader)
        size = self._size
        empty = memoryview(b"")
        piece: memoryview | FileRegion
        while True:
            self.settle()
            view = self._view
            if type(view) is not FileRegion and not view:
                chunk, self._held = self._held, None
                if chunk is None:
                    try:
                        chunk = source.__next__()
                    except StopIteration:
                        return
                    self.rearm()
                view = chunk if isinstance(chunk, FileRegion) else memoryview(chunk)
            # End on a slice boundary of the whole dataset (chunks need not be multiples).
            n = size - self._handed % size
            if type(view) is FileRegion:
                if view.length < n:
                    view = self._merge_now(source, view, n)
                if view.length <= n:  # the usual case: one region, one slice
                    piece, self._view = view, empty
                else:
                    piece, self._view = view[:n], view[n:]
                got = piece.length
            else:
                piece, self._view = view[:n], view[n:]
                got = len(piece)
            self._pending = got
            self._handed += got
            yield piece

    def _merge_now(self, source: RegionReader, region: FileRegion, n: int) -> FileRegion:
        """:meth:`_merge` for :meth:`regions` (no waiting: the chunks come from ``source``)."""
        while region.length < n:
            try:
                chunk = source.__next__()
            except StopIteration:
                break
            self.rearm()
            if not isinstance(chunk, FileRegion) or not _continues(region, chunk):
                self._held = chunk
                break
            region = FileRegion(
                region.fd, region.offset, region.length + chunk.length, region.owner
            )
        return region

    def __aiter__(self) -> _Paced:
        return self

    async def _chunk(self) -> bytes | FileRegion:
        held, self._held = self._held, None
        if held is not None:
            return held
        assert not isinstance(self._source, bytes)
        chunk = await self._source.__anext__()
        self._reestimate()
        self.rearm()
        return chunk

    async def _merge(self, region: FileRegion, n: int) -> FileRegion:
        """``region`` extended by the next chunks while they continue it in its file, up to
        ``n`` bytes (the next chunk that does not is held for later)."""
        while len(region) < n:
            try:
                chunk = await self._chunk()
            except StopAsyncIteration:
                break
            if not isinstance(chunk, FileRegion) or not _continues(region, chunk):
                self._held = chunk
                break
            region = FileRegion(
                region.fd, region.offset, region.length + chunk.length, region.owner
            )
        return region

    async def __anext__(self) -> memoryview | FileRegion:
        self.settle()
        if not self._view:
            if isinstance(self._source, bytes):
                raise StopAsyncIteration
            chunk = await self._chunk()
            self._view = chunk if isinstance(chunk, FileRegion) else memoryview(chunk)
        # End on a slice boundary of the whole dataset (chunks need not be multiples).
        n = self._size - self._handed % self._size
        if isinstance(self._view, FileRegion) and len(self._view) < n:
            self._view = await self._merge(self._view, n)
        piece = self._view[:n]
        self._view = self._view[n:]
        self._pending = len(piece)
        self._handed += len(piece)
        return piece


def slice_size_for(channel: Channel, peer_max_pdu: int) -> int:
    """Bytes per slice: whole PDV payloads of the peer's maximum PDU (PS3.8 9.3.5.1: a PDV
    has a 6-byte header; E.1: fragments are even), at least :data:`MIN_SLICE`, so that
    slices end where PDUs do and each PDU carries one PDV."""
    limit = resolve_max_pdu_length(peer_max_pdu, channel.limits)
    payload = max(2, (limit - PDV_HEADER_LENGTH) & ~1)
    return payload * max(1, -(-MIN_SLICE // payload))


def read_chunk_size(slice_size: int) -> int:
    """Bytes per file read: about :data:`~aiodimse.net.filesource.DEFAULT_CHUNK_SIZE`, a
    whole number of slices, so that chunks too end where PDUs do; but never more than
    ``DEFAULT_CHUNK_SIZE`` when a slice is larger (a peer taking PDUs of several MiB): what
    is read into memory per chunk, the read-ahead's head and the size above which a file
    goes as regions (``os.sendfile``) do not grow with the peer's maximum PDU; such a PDU
    then carries several chunks as PDVs."""
    if slice_size > DEFAULT_CHUNK_SIZE:
        return DEFAULT_CHUNK_SIZE
    return slice_size * max(1, round(DEFAULT_CHUNK_SIZE / slice_size))
