"""Where an incoming dataset goes while it arrives: the sink protocol and the memory sink.

The channel asks its ``sink_factory`` for a sink when a command announcing a dataset has
arrived, then awaits :meth:`DatasetSink.write` for every fragment, in order, and finally
:meth:`DatasetSink.close` (message complete) or :meth:`DatasetSink.discard` (the
association failed mid-message: remove partial output, ROBUSTNESS 47).

Awaiting ``write`` is the backpressure: a sink with a bounded queue in front of a slow disk
blocks the association's reader, which stops reading the socket, which makes TCP slow the
peer down; memory stays bounded.

A sink may also offer ``close_nowait() -> bool``: close at once when that needs no waiting
(True), else change nothing (False: the channel awaits ``close``). The channel then
delivers a complete message from the transport's read callback, with no trip through the
association's reader task.

``write`` receives a view of the receive buffer; a sink that keeps the data past the call
must keep the view (the decoder never reuses a buffer that has views) or copy it.
A sink never raises from ``write`` for its own I/O trouble: it records the error and
ignores further data, so the association goes on and the service can answer with a
failure status (e.g. 0xA700 out of resources).
"""

from __future__ import annotations

from typing import Protocol

from ..errors import LocalProtocolError


class DatasetSink(Protocol):
    async def write(self, data: memoryview) -> None: ...

    async def close(self) -> None: ...

    async def discard(self) -> None: ...


class DatasetTooLarge(LocalProtocolError):
    """An in-memory dataset passed its bound (``Limits.max_in_memory_dataset``)."""


class MemorySink:
    """Collects a dataset in memory, up to ``limit`` bytes (then records an error)."""

    __slots__ = ("_chunks", "_size", "error", "limit")

    def __init__(self, limit: int) -> None:
        self._chunks: list[bytes] = []
        self._size = 0
        self.limit = limit
        self.error: Exception | None = None

    async def write(self, data: memoryview) -> None:
        if self.error is not None:
            return
        self._size += len(data)
        if self._size > self.limit:
            self.error = DatasetTooLarge(f"dataset larger than {self.limit} bytes in memory")
            self._chunks.clear()
            return
        self._chunks.append(bytes(data))

    async def close(self) -> None:
        return None

    def close_nowait(self) -> bool:
        """:meth:`close` without waiting (nothing to do): True."""
        return True

    async def discard(self) -> None:
        self._chunks.clear()

    @property
    def size(self) -> int:
        return self._size

    def getvalue(self) -> bytes:
        """The dataset bytes (raises the recorded error, if any)."""
        if self.error is not None:
            raise self.error
        return b"".join(self._chunks)
