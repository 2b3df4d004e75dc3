"""A test-only Storage SCP on aiodimse for the C-STORE SCU tests.

It registers its own C-STORE-RQ handler in ``ae.request_handlers`` (independent of the
library's Storage SCP) and records, for every instance, what arrived: the command's UIDs,
the context's transfer syntax, the dataset's length and sha256 (and the bytes unless
``keep_bytes=False``, in which case a hashing sink keeps memory flat).
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

import anyio

import aiodimse
from aiodimse.dimse.messages import CStoreRQ, CStoreRSP, DimseMessage
from aiodimse.net.channel import Channel, Received
from aiodimse.net.filesource import DicomFileInfo
from aiodimse.services.contexts import Context
from aiodimse.services.storage_contexts import propose_contexts
from aiodimse.services.storage_scu import StoreResult


class HashSink:
    """Hashes the dataset as it arrives; keeps nothing. ``delay`` slows each write."""

    def __init__(self, delay: float = 0.0, slow_bytes: int = 0) -> None:
        self.sha = hashlib.sha256()
        self.size = 0
        self.delay = delay
        self.slow_bytes = slow_bytes

    async def write(self, data: memoryview) -> None:
        if self.delay and self.size < self.slow_bytes:
            await anyio.sleep(self.delay)
        self.sha.update(data)
        self.size += len(data)

    async def close(self) -> None:
        return None

    async def discard(self) -> None:
        return None


@dataclass(slots=True, kw_only=True)
class Arrived:
    sop_class_uid: str
    sop_instance_uid: str
    transfer_syntax: str
    length: int
    sha256: str
    data: bytes | None


StatusFor = Callable[[CStoreRQ], Awaitable[tuple[int, str | None]]]


async def _success(rq: CStoreRQ) -> tuple[int, str | None]:
    return 0x0000, None


@dataclass(kw_only=True)
class RecordingSCP:
    """An aiodimse AE that accepts ``contexts`` and records each C-STORE."""

    contexts: Sequence[Context]
    keep_bytes: bool = True
    status_for: StatusFor = _success
    sink_delay: float = 0.0
    slow_bytes: int = 0
    arrived: list[Arrived] = field(default_factory=list)
    max_pdu: int | None = None

    def __post_init__(self) -> None:
        limits = aiodimse.Limits(max_pdu_length=self.max_pdu) if self.max_pdu else None
        self.ae = aiodimse.AE("TESTSCP", contexts=list(self.contexts), limits=limits)
        self.ae.request_handlers[CStoreRQ] = self._handle
        if not self.keep_bytes:
            self.ae.sink_factories[CStoreRQ] = self._sink

    def _sink(self, channel: Channel, context_id: int, message: DimseMessage) -> HashSink:
        return HashSink(self.sink_delay, self.slow_bytes)

    async def _handle(self, ae: aiodimse.AE, channel: Channel, received: Received) -> None:
        rq = received.message
        assert isinstance(rq, CStoreRQ)
        assert channel.negotiated is not None
        ts = channel.negotiated.accepted[received.context_id].transfer_syntax
        if isinstance(received.sink, HashSink):
            length, digest, data = received.sink.size, received.sink.sha.hexdigest(), None
        else:
            data = received.dataset or b""
            length, digest = len(data), hashlib.sha256(data).hexdigest()
        self.arrived.append(
            Arrived(
                sop_class_uid=rq.affected_sop_class_uid,
                sop_instance_uid=rq.affected_sop_instance_uid,
                transfer_syntax=ts,
                length=length,
                sha256=digest,
                data=data,
            )
        )
        status, comment = await self.status_for(rq)
        await channel.send_message(
            received.context_id,
            CStoreRSP(
                message_id_being_responded_to=rq.message_id,
                affected_sop_class_uid=rq.affected_sop_class_uid,
                affected_sop_instance_uid=rq.affected_sop_instance_uid,
                status=status,
                error_comment=comment,
                offending_element=(0x00100010,) if status == 0xA900 else None,
            ),
        )


def contexts_for(sop_classes: Sequence[str], transfer_syntaxes: Sequence[str]) -> list[Context]:
    """Acceptor contexts: every class with the given transfer syntaxes (our preference order)."""
    return [
        Context(abstract_syntax=c, transfer_syntaxes=tuple(transfer_syntaxes))
        for c in dict.fromkeys(sop_classes)
    ]


async def store_many_to(
    scp: RecordingSCP, files: Sequence[DicomFileInfo], *, window: int
) -> list[StoreResult]:
    """``files`` sent with ``store_many`` over one association proposing ``window`` to
    ``scp`` (served for the call); the results."""
    scu = aiodimse.AE("SCU", max_operations_invoked=window)
    async with scp.ae.serve("127.0.0.1", 0) as server:
        async with scu.associate(
            "127.0.0.1", server.port, contexts=propose_contexts(files)
        ) as assoc:
            return await assoc.store_many(files, window=window)
