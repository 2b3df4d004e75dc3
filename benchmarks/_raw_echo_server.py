"""The machine's floor for associate + C-ECHO + release: a minimal asyncio server that
answers with canned PDUs and parses nothing but PDU boundaries.

It is not a DICOM implementation: it sends a fixed A-ASSOCIATE-AC (context 1 accepted,
Implicit VR Little Endian) for any A-ASSOCIATE-RQ, a fixed C-ECHO-RSP (status Success, its
Message ID Being Responded To copied from the request's Message ID) for any P-DATA-TF, and
A-RELEASE-RP for A-RELEASE-RQ. Driven by the raw probe client (``_rawecho.py``), the pair
measures what this machine's loopback, scheduler and asyncio cost per association with no
protocol work on either side: the ceiling any Python pair can approach.

Prints ``PORT <n>`` once it listens; serves until its stdin reaches end of file.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import struct
import sys


def _item(item_type: int, body: bytes) -> bytes:
    return struct.pack(">BBH", item_type, 0, len(body)) + body


def _pdu(pdu_type: int, body: bytes) -> bytes:
    return struct.pack(">BBL", pdu_type, 0, len(body)) + body


def _element(element: int, value: bytes) -> bytes:
    return struct.pack("<HHL", 0x0000, element, len(value)) + value


def associate_ac(called: str, calling: str) -> bytes:
    # PS3.8 Table 9-17: protocol version, reserved, called/calling AE (echoed), 32 reserved.
    fixed = struct.pack(">HH", 1, 0) + called.encode().ljust(16) + calling.encode().ljust(16)
    return _pdu(
        0x02,
        fixed
        + bytes(32)
        + _item(0x10, b"1.2.840.10008.3.1.1.1")
        + _item(0x21, bytes([1, 0, 0, 0]) + _item(0x40, b"1.2.840.10008.1.2"))
        + _item(0x50, _item(0x51, struct.pack(">L", 16384)) + _item(0x52, b"1.2.3.999")),
    )


def echo_rsp(message_id: int = 1) -> bytes:
    body = (
        _element(0x0002, b"1.2.840.10008.1.1\0")
        + _element(0x0100, struct.pack("<H", 0x8030))  # C-ECHO-RSP
        + _element(0x0120, struct.pack("<H", message_id))
        + _element(0x0800, struct.pack("<H", 0x0101))  # no data set
        + _element(0x0900, struct.pack("<H", 0x0000))
    )
    command = _element(0x0000, struct.pack("<L", len(body))) + body
    return _pdu(0x04, struct.pack(">LBB", len(command) + 2, 1, 0x03) + command)


@functools.cache
def _rsp_for(message_id: int) -> bytes:
    """The canned C-ECHO-RSP answering ``message_id``, built once per ID on first use."""
    return echo_rsp(message_id)


def _message_id(pdu: bytes) -> int:
    """Message ID (0000,0110) of the command in a one-PDV P-DATA-TF (1 if not found)."""
    pos = 12  # PDU header 6, PDV length 4, context ID and control header 2
    while pos + 8 <= len(pdu):
        group, element, length = struct.unpack_from("<HHL", pdu, pos)
        if group == 0 and element == 0x0110 and length == 2:
            return int(struct.unpack_from("<H", pdu, pos + 8)[0])
        pos += 8 + length
    return 1


class _Canned(asyncio.Protocol):
    def __init__(self, answers: dict[int, bytes]) -> None:
        self.answers = answers
        self.buffer = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        assert self.transport is not None
        self.buffer += data
        while len(self.buffer) >= 6:
            pdu_type, _, length = struct.unpack_from(">BBL", self.buffer)
            if len(self.buffer) < 6 + length:
                return
            pdu, self.buffer = self.buffer[: 6 + length], self.buffer[6 + length :]
            if pdu_type == 0x04:
                self.transport.write(_rsp_for(_message_id(pdu) or 1))
                continue
            answer = self.answers.get(pdu_type)
            if answer is None:  # anything else: abort (A-ABORT, source 0)
                self.transport.write(_pdu(0x07, bytes(4)))
                self.transport.close()
                return
            self.transport.write(answer)


async def serve(host: str, port: int, aet: str) -> None:
    answers = {0x01: associate_ac(aet, "BENCH"), 0x05: _pdu(0x06, bytes(4))}
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: _Canned(answers), host, port, backlog=1024)
    print(f"PORT {server.sockets[0].getsockname()[1]}", flush=True)
    await loop.run_in_executor(None, sys.stdin.read)
    server.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--aet", default="RAW_SCP")
    parser.add_argument("--max-associations", type=int, default=0, help="ignored")
    args = parser.parse_args(argv)
    asyncio.run(serve(args.host, args.port, args.aet))
    return 0


if __name__ == "__main__":
    sys.exit(main())
