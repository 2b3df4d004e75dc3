"""A minimal asyncio Verification SCU written for the benchmarks only: the *probe* client.

It encodes the four PDUs a C-ECHO association needs by hand (PS3.8 9.3: A-ASSOCIATE-RQ,
P-DATA-TF, A-RELEASE-RQ; PS3.7 9.3.5 C-ECHO-RQ in Implicit VR Little Endian) and checks the
replies just enough to count successes. It is not part of aiodimse and not a general DICOM
client; it exists so the concurrent-association case can exercise the *servers* (and measure
their memory) even while aiodimse's own client cannot be used, and as a lower bound on client
overhead.
"""

from __future__ import annotations

import asyncio
import struct

APPLICATION_CONTEXT = b"1.2.840.10008.3.1.1.1"  # PS3.7 A.2.1
VERIFICATION = b"1.2.840.10008.1.1"
IMPLICIT_VR_LE = b"1.2.840.10008.1.2"
IMPLEMENTATION_UID = b"2.25.271828182845904523536028747135266249"
MAX_PDU_LENGTH = 16384
MAX_ACCEPTED_PDU = 1 << 20  # refuse larger replies: the probe never needs them


class ProbeError(Exception):
    """The peer rejected, aborted or answered something the probe does not expect."""


def _item(item_type: int, body: bytes) -> bytes:
    return struct.pack(">BBH", item_type, 0, len(body)) + body


def _pdu(pdu_type: int, body: bytes) -> bytes:
    return struct.pack(">BBL", pdu_type, 0, len(body)) + body


def associate_rq(calling: str, called: str) -> bytes:
    """A-ASSOCIATE-RQ (PS3.8 9.3.2) proposing Verification with Implicit VR LE as context 1."""
    ae = [name.encode("ascii").ljust(16)[:16] for name in (called, calling)]
    fixed = struct.pack(">HH", 1, 0) + ae[0] + ae[1] + bytes(32)
    context = _item(
        0x20, bytes([1, 0, 0, 0]) + _item(0x30, VERIFICATION) + _item(0x40, IMPLICIT_VR_LE)
    )
    user = _item(
        0x50, _item(0x51, struct.pack(">L", MAX_PDU_LENGTH)) + _item(0x52, IMPLEMENTATION_UID)
    )
    return _pdu(0x01, fixed + _item(0x10, APPLICATION_CONTEXT) + context + user)


def _element(element: int, value: bytes) -> bytes:
    return struct.pack("<HHL", 0x0000, element, len(value)) + value


def echo_rq(message_id: int) -> bytes:
    """P-DATA-TF carrying one C-ECHO-RQ command set (PS3.7 9.3.5.1) on context 1."""
    uid = VERIFICATION + (b"\0" if len(VERIFICATION) % 2 else b"")
    body = (
        _element(0x0002, uid)
        + _element(0x0100, struct.pack("<H", 0x0030))
        + _element(0x0110, struct.pack("<H", message_id))
        + _element(0x0800, struct.pack("<H", 0x0101))
    )
    command = _element(0x0000, struct.pack("<L", len(body))) + body
    # PDV: length, context ID 1, message control header 0x03 = command, last fragment.
    return _pdu(0x04, struct.pack(">LBB", len(command) + 2, 1, 0x03) + command)


RELEASE_RQ = _pdu(0x05, bytes(4))


async def _read_pdu(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    header = await reader.readexactly(6)
    pdu_type, _, length = struct.unpack(">BBL", header)
    if length > MAX_ACCEPTED_PDU:
        raise ProbeError(f"PDU type {pdu_type:#x} declares {length} bytes")
    return pdu_type, await reader.readexactly(length)


def _context_accepted(body: bytes) -> bool:
    pos = 68  # fixed A-ASSOCIATE-AC fields (PS3.8 Table 9-17)
    while pos + 4 <= len(body):
        item_type, _, length = struct.unpack_from(">BBH", body, pos)
        if item_type == 0x21 and length >= 4:
            return body[pos + 4] == 1 and body[pos + 6] == 0  # context 1, result acceptance
        pos += 4 + length
    return False


def _status(command: bytes) -> int | None:
    pos = 0
    while pos + 8 <= len(command):
        group, element, length = struct.unpack_from("<HHL", command, pos)
        if group == 0x0000 and element == 0x0900 and length == 2:
            return int(struct.unpack_from("<H", command, pos + 8)[0])
        pos += 8 + length
    return None


async def _read_response(reader: asyncio.StreamReader) -> int:
    command = b""
    for _ in range(64):  # bounded: an echo response is one or a few PDVs
        pdu_type, body = await _read_pdu(reader)
        if pdu_type != 0x04:
            raise ProbeError(f"expected P-DATA-TF, got PDU type {pdu_type:#x}")
        pos = 0
        while pos + 6 <= len(body):
            length, _, control = struct.unpack_from(">LBB", body, pos)
            command += body[pos + 6 : pos + 4 + length]
            pos += 4 + length
            if control & 0x03 == 0x03:  # command, last fragment
                status = _status(command)
                if status is None:
                    raise ProbeError("C-ECHO-RSP without a status")
                return status
    raise ProbeError("C-ECHO-RSP not complete after 64 PDUs")


async def echo_association(
    port: int, *, echoes: int, calling: str = "BENCH", called: str = "ANY-SCP"
) -> int:
    """Associate, send ``echoes`` C-ECHOs, release. Returns how many returned status 0x0000."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(associate_rq(calling, called))
        pdu_type, body = await _read_pdu(reader)
        if pdu_type != 0x02 or not _context_accepted(body):
            raise ProbeError(f"association not accepted (PDU type {pdu_type:#x})")
        ok = 0
        for message_id in range(1, echoes + 1):
            writer.write(echo_rq(message_id))
            if await _read_response(reader) == 0:
                ok += 1
        writer.write(RELEASE_RQ)
        pdu_type, _ = await _read_pdu(reader)
        if pdu_type != 0x06:
            raise ProbeError(f"expected A-RELEASE-RP, got PDU type {pdu_type:#x}")
        return ok
    finally:
        writer.close()
        try:
            await writer.wait_closed()
        except OSError:
            pass
