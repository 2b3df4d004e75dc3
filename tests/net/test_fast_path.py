"""The asyncio fast path: bytes handled in the transport's read callback (issue 9/4).

* ``SocketTransport.write_nowait`` never loses or reorders bytes when the socket is full;
* C-ECHOs answered by the default Verification SCP do not wake the association's reader;
* A-ASSOCIATE PDUs, negotiation and acceptance checks are remembered for identical input,
  and the memories stay bounded.
"""

from __future__ import annotations

import socket

import anyio
import pytest

import aiodimse
from aiodimse.association import negotiation
from aiodimse.net.channel import Channel
from aiodimse.net.transport import SocketTransport
from aiodimse.pdu import decode
from aiodimse.pdu.codec import encode_pdu
from tests.net.badpeer import accept_ac, verification_rq

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # the fast path exists on asyncio only


async def test_write_nowait_keeps_every_byte_in_order_when_the_socket_is_full() -> None:
    a, b = socket.socketpair()
    a.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    b.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    transport = SocketTransport(a)
    sent = bytearray()
    all_out = True
    for i in range(200):  # far more than both buffers hold
        chunk = bytes([i % 251]) * 1000
        sent += chunk
        all_out = transport.write_nowait([chunk[:10], chunk[10:]]) and all_out
    assert not all_out and transport.has_backlog()
    tail = b"tail" * 100
    sent += tail
    received = bytearray()

    async def drain() -> None:
        b.setblocking(False)
        while len(received) < len(sent):
            await anyio.wait_readable(b)
            received.extend(b.recv(65536))

    async with anyio.create_task_group() as tg:
        tg.start_soon(drain)
        await transport.send([tail])  # writes the backlog first, then this
    assert not transport.has_backlog()
    assert bytes(received) == bytes(sent)
    await transport.aclose()
    b.close()


@pytest.mark.fd_callbacks  # asserts the loop-callback path itself
async def test_echoes_answered_without_waking_the_reader(monkeypatch: pytest.MonkeyPatch) -> None:
    pumps = {"acceptor": 0}
    original = Channel._pump

    async def counting_pump(self: Channel, now: float) -> None:
        if self.on_associate is not None:  # the acceptor's channel
            pumps["acceptor"] += 1
        await original(self, now)

    monkeypatch.setattr(Channel, "_pump", counting_pump)
    server = aiodimse.AE("SCP")
    async with server.serve("127.0.0.1", 0) as listener:
        counts = []
        for echoes in (1, 40):
            pumps["acceptor"] = 0
            async with aiodimse.AE("SCU").associate(
                "127.0.0.1", listener.port, called_ae="SCP"
            ) as assoc:
                for _ in range(echoes):
                    assert (await assoc.echo()).code == 0
            await anyio.sleep(0.05)  # the acceptor sees the close
            counts.append(pumps["acceptor"])
    # The reader runs for the end of the association, not once per C-ECHO.
    assert counts[1] == counts[0], counts
    assert counts[0] <= 3, counts


def test_identical_associate_bytes_decode_to_the_same_frozen_pdu() -> None:
    body = encode_pdu(verification_rq())[6:]
    first = decode.decode_body(0x01, body)
    assert decode.decode_body(0x01, bytes(body)) is first
    other = encode_pdu(verification_rq(calling="OTHER"))[6:]
    assert decode.decode_body(0x01, other) is not first
    assert decode.decode_body(0x01, other).calling_ae_title == "OTHER"  # type: ignore[union-attr]
    for i in range(100):
        decode.decode_body(0x01, encode_pdu(verification_rq(calling=f"AE{i}"))[6:])
    assert len(decode._ASSOCIATE_PDUS) <= 64


def test_negotiation_and_acceptance_are_remembered_for_the_same_objects() -> None:
    from aiodimse.services.server import Server

    ae = aiodimse.AE("SCP")

    policy = Server(ae).policy()
    rq = verification_rq(called="SCP")
    first = negotiation.negotiate(rq, policy)
    assert negotiation.negotiate(rq, policy) is first
    # Over the association limit the answer differs (and is not taken from the memory).
    rejected = negotiation.negotiate(rq, policy, local_limit_exceeded=True)
    assert rejected is not first and rejected.result == 2  # type: ignore[union-attr]
    ac = accept_ac(rq)
    agreed = negotiation.check_accept(rq, ac, ae.limits)
    assert negotiation.check_accept(rq, ac, ae.limits) is agreed
    # An equal but distinct AC is checked again (identity, not equality, is the key).
    assert negotiation.check_accept(rq, accept_ac(rq), ae.limits) == agreed
