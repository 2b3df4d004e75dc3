"""A small raw-socket "bad peer" toolkit for association-level robustness tests.

A :class:`RawPeer` is one end of a real TCP connection that speaks PS3.8 by hand: it writes
PDUs built with :func:`aiodimse.pdu.encode_pdu` (or any literal bytes) and reads what comes
back through its own :class:`aiodimse.pdu.PDUDecoder`. It never answers anything by itself,
so a test decides exactly which (possibly wrong) PDU goes on the wire and when.

* :func:`connect` opens a raw peer to a server (the raw peer is the requestor);
* :func:`raw_acceptor` listens on a loopback port and runs a script against each connection
  (the raw peer is the acceptor; aiodimse's SCU connects to it);
* builders: :func:`verification_rq`, :func:`accept_ac`, :func:`command_pdata`,
  :func:`command_of` for the handful of PDUs the tests need.

Every read is bounded (``timeout``); nothing here sleeps or polls.
"""

from __future__ import annotations

import errno
import os
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import anyio
import anyio.abc

from aiodimse.config import Limits
from aiodimse.constants import IMPLICIT_VR_LITTLE_ENDIAN, VERIFICATION_SOP_CLASS
from aiodimse.dimse.command_codec import decode_command, encode_command
from aiodimse.dimse.messages import DimseMessage
from aiodimse.pdu import (
    PDU,
    PDV,
    AAssociateAC,
    AAssociateRQ,
    MaximumLength,
    PDataTF,
    PDUDecoder,
    PresentationContextAC,
    PresentationContextRQ,
    UserInformation,
    encode_pdu,
)

__all__ = [
    "RawPeer",
    "accept_ac",
    "command_of",
    "command_pdata",
    "connect",
    "raw_acceptor",
    "verification_rq",
]

#: A generous decoder limit: the raw peer must be able to read whatever aiodimse sends.
_PEER_LIMITS = Limits(max_pdu_length=4 * 1024 * 1024)
#: Errors that mean "the other end closed or reset the connection".
_CLOSED = (anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError, OSError)


class RawPeer:
    """One raw connection: send PDUs or bytes, receive decoded PDUs, see the close."""

    def __init__(self, stream: anyio.abc.SocketStream) -> None:
        self.stream = stream
        self.decoder = PDUDecoder(_PEER_LIMITS)
        #: True once the other end closed (EOF) or reset the connection.
        self.closed_by_other_end = False

    async def send_pdu(self, pdu: PDU, *, strict: bool = True) -> None:
        await self.stream.send(encode_pdu(pdu, strict=strict))

    async def send_bytes(self, data: bytes) -> None:
        await self.stream.send(data)

    async def receive_pdu(self, timeout: float = 5.0) -> PDU | None:
        """The next whole PDU, or ``None`` if the other end closed first.

        Raises ``TimeoutError`` if neither happens within ``timeout`` seconds.
        """
        with anyio.fail_after(timeout):
            while True:
                pdu = self.decoder.next_pdu()
                if pdu is not None:
                    return pdu
                if self.closed_by_other_end:
                    return None
                try:
                    data = await self.stream.receive(65536)
                except _CLOSED:
                    self.closed_by_other_end = True
                    continue
                self.decoder.feed(data)

    async def receive_all_until_closed(self, timeout: float = 5.0) -> list[PDU]:
        """Every PDU received until the other end closes (``TimeoutError`` if it does not)."""
        pdus: list[PDU] = []
        with anyio.fail_after(timeout):
            while (pdu := await self.receive_pdu(timeout)) is not None:
                pdus.append(pdu)
        return pdus

    async def receive_raw_until_closed(self, timeout: float = 5.0) -> bytes:
        """The exact bytes received until the other end closes (no decoding)."""
        chunks: list[bytes] = []
        with anyio.fail_after(timeout):
            while True:
                try:
                    chunks.append(await self.stream.receive(65536))
                except _CLOSED:
                    self.closed_by_other_end = True
                    return b"".join(chunks)

    async def aclose(self) -> None:
        try:
            await self.stream.aclose()
        except _CLOSED:
            pass

    async def __aenter__(self) -> RawPeer:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


async def connect(port: int, host: str = "127.0.0.1", *, rcvbuf: int | None = None) -> RawPeer:
    """A raw requestor connected to ``host:port``.

    ``rcvbuf`` sets SO_RCVBUF before connecting (a small TCP window: a peer that does not
    read soon stops the other end's sends).
    """
    if rcvbuf is None:
        return RawPeer(await anyio.connect_tcp(host, port))
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        sock.setblocking(False)
        err = sock.connect_ex((host, port))
        if err not in (0, errno.EINPROGRESS, errno.EWOULDBLOCK, 10035):  # 10035: Windows
            raise OSError(err, os.strerror(err))
        with anyio.fail_after(5):
            await anyio.wait_writable(sock)
        err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if err:
            raise OSError(err, os.strerror(err))
        stream = await anyio.abc.SocketStream.from_socket(sock)
    except BaseException:
        sock.close()
        raise
    return RawPeer(stream)


PeerScript = Callable[[RawPeer], Awaitable[None]]


@asynccontextmanager
async def raw_acceptor(script: PeerScript) -> AsyncIterator[int]:
    """Listen on a loopback port (yielded); run ``script`` on each accepted connection.

    The connection is closed when the script returns (or fails: its exception propagates
    out of the ``async with``). Leaving the block stops listening and cancels the scripts
    still running.
    """
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    port = listener.extra(anyio.abc.SocketAttribute.local_port)

    async def handle(stream: anyio.abc.SocketStream) -> None:
        async with RawPeer(stream) as peer:
            await script(peer)

    async with listener, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, handle)
        try:
            yield port
        finally:
            tg.cancel_scope.cancel()


# -- builders ----------------------------------------------------------------------------------


def verification_rq(
    called: str = "SCP", calling: str = "RAW", *, context_id: int = 1, max_pdu: int = 16384
) -> AAssociateRQ:
    """A valid A-ASSOCIATE-RQ proposing Verification with Implicit VR Little Endian."""
    return AAssociateRQ(
        called_ae_title=called,
        calling_ae_title=calling,
        presentation_contexts=(
            PresentationContextRQ(
                context_id=context_id,
                abstract_syntax=VERIFICATION_SOP_CLASS,
                transfer_syntaxes=(IMPLICIT_VR_LITTLE_ENDIAN,),
            ),
        ),
        user_information=UserInformation(sub_items=(MaximumLength(maximum_length=max_pdu),)),
    )


def accept_ac(
    rq: AAssociateRQ,
    *,
    contexts: tuple[PresentationContextAC, ...] | None = None,
    max_pdu: int = 16384,
) -> AAssociateAC:
    """An A-ASSOCIATE-AC answering ``rq``.

    By default every proposed context is accepted with its first transfer syntax; pass
    ``contexts`` to answer anything at all (e.g. a context ID that was never proposed).
    """
    if contexts is None:
        contexts = tuple(
            PresentationContextAC(
                context_id=pc.context_id, result=0, transfer_syntax=pc.transfer_syntaxes[0]
            )
            for pc in rq.presentation_contexts
        )
    return AAssociateAC(
        called_ae_title=rq.called_ae_title,
        calling_ae_title=rq.calling_ae_title,
        presentation_contexts=contexts,
        user_information=UserInformation(sub_items=(MaximumLength(maximum_length=max_pdu),)),
    )


def command_pdata(context_id: int, message: DimseMessage) -> PDataTF:
    """A P-DATA-TF carrying ``message``'s whole command set in one last-fragment PDV."""
    return PDataTF(
        pdvs=(
            PDV(
                context_id=context_id,
                is_command=True,
                is_last=True,
                data=encode_command(message),
            ),
        )
    )


def command_of(pdu: PDU | None) -> DimseMessage:
    """The DIMSE command carried by a one-PDV, last-fragment command P-DATA-TF."""
    assert isinstance(pdu, PDataTF), f"expected P-DATA-TF, got {pdu!r}"
    assert len(pdu.pdvs) == 1, pdu
    pdv = pdu.pdvs[0]
    assert pdv.is_command and pdv.is_last, pdv
    return decode_command(bytes(pdv.data))
