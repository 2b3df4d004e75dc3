"""A picky old PACS in front of a real SCP: a TCP proxy that judges the A-ASSOCIATE-RQ.

When the request proposes more than ``max_contexts`` presentation contexts the proxy, like
some old PACS, answers A-ASSOCIATE-RJ (result 1, source 1, reason 1 "no reason given"),
A-ABORT (source 2, reason 0) or just closes the connection (``mode``); with ``truncate`` it
instead forwards only the first ``max_contexts`` contexts, so the SCP's A-ASSOCIATE-AC
leaves the others unanswered (PS3.8 9.3.3: the requestor counts them as rejected). A
request within the limit goes through unchanged and the proxy relays bytes both ways.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
import anyio.abc
from anyio.abc import SocketAttribute
from anyio.streams.buffered import BufferedByteReceiveStream

from aiodimse.pdu import AAbort, AAssociateRJ, AAssociateRQ, decode_pdu, encode_pdu


class Mode(enum.Enum):
    REJECT = "reject"
    ABORT = "abort"
    CLOSE = "close"
    TRUNCATE = "truncate"


@dataclasses.dataclass
class Choosy:
    port: int
    #: Number of presentation contexts in each A-ASSOCIATE-RQ seen, in order.
    seen: list[int] = dataclasses.field(default_factory=list)


async def _relay(src: anyio.abc.ByteReceiveStream, dst: anyio.abc.ByteSendStream) -> None:
    try:
        async for data in src:
            await dst.send(data)
    except (anyio.BrokenResourceError, anyio.ClosedResourceError, anyio.EndOfStream):
        pass
    finally:
        await dst.aclose()


@asynccontextmanager
async def choosy_proxy(target_port: int, *, max_contexts: int, mode: Mode) -> AsyncIterator[Choosy]:
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    info = Choosy(port=listener.extra(SocketAttribute.local_port))

    async def handle(client: anyio.abc.SocketStream) -> None:
        async with client:
            reader = BufferedByteReceiveStream(client)
            header = await reader.receive_exactly(6)
            body = await reader.receive_exactly(int.from_bytes(header[2:6], "big"))
            rq = decode_pdu(header + body)
            assert isinstance(rq, AAssociateRQ)
            n = len(rq.presentation_contexts)
            info.seen.append(n)
            data = header + body
            if n > max_contexts:
                if mode is Mode.REJECT:
                    await client.send(encode_pdu(AAssociateRJ(result=1, source=1, reason=1)))
                    return
                if mode is Mode.ABORT:
                    await client.send(encode_pdu(AAbort(source=2, reason=0)))
                    return
                if mode is Mode.CLOSE:
                    return
                rq = dataclasses.replace(
                    rq, presentation_contexts=rq.presentation_contexts[:max_contexts]
                )
                data = encode_pdu(rq)
            async with await anyio.connect_tcp("127.0.0.1", target_port) as upstream:
                await upstream.send(data)
                async with anyio.create_task_group() as tg:
                    tg.start_soon(_relay, upstream, client)
                    tg.start_soon(_relay, reader, upstream)

    async with listener, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, handle)
        yield info
        tg.cancel_scope.cancel()
