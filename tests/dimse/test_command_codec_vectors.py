"""Golden byte vectors for all 23 DIMSE command sets, with pynetdicom as the oracle.

The literal vectors below were produced once by pynetdicom 3.0.4's own encoder
(``DIMSEMessage.primitive_to_message`` + ``dsutils.encode``; implicit VR little endian) and
annotated element by element. Each test checks both directions: our encoder gives exactly
these bytes, our decoder gives exactly the expected message. A second set of tests re-runs
pynetdicom live on our output (decode + ``message_to_primitive``) so the vectors cannot drift.
"""

from __future__ import annotations

from io import BytesIO
from typing import Any

import pytest
from pynetdicom import dimse_messages as pnd_messages
from pynetdicom import dimse_primitives as pnd_primitives
from pynetdicom.dsutils import decode as pnd_decode
from pynetdicom.dsutils import encode as pnd_encode

from aiodimse.dimse.command_codec import decode_command, encode_command
from aiodimse.dimse.messages import (
    DATASET_ABSENT,
    DATASET_PRESENT,
    CCancelRQ,
    CEchoRQ,
    CEchoRSP,
    CFindRQ,
    CFindRSP,
    CGetRQ,
    CGetRSP,
    CMoveRQ,
    CMoveRSP,
    CStoreRQ,
    CStoreRSP,
    DimseMessage,
    NActionRQ,
    NActionRSP,
    NCreateRQ,
    NCreateRSP,
    NDeleteRQ,
    NDeleteRSP,
    NEventReportRQ,
    NEventReportRSP,
    NGetRQ,
    NGetRSP,
    NSetRQ,
    NSetRSP,
    Priority,
)

# UI values are shown with their NUL pad as \0, AE/LO with quotes (space padded).
# fmt: off
PYNETDICOM_VECTORS = {
    "C_ECHO_RQ": bytes.fromhex(
        "0000000004000000"  # (0000,0000) CommandGroupLength UL len 4
        "38000000"  # 56
        "0000020012000000"  # (0000,0002) AffectedSOPClassUID UI len 18
        "312e322e3834302e31303030382e312e3100"  # 1.2.840.10008.1.1\0
        "0000000102000000"  # (0000,0100) CommandField US len 2
        "3000"  # 0x0030
        "0000100102000000"  # (0000,0110) MessageID US len 2
        "0100"  # 0x0001
        "0000000802000000"  # (0000,0800) CommandDataSetType US len 2
        "0101"  # 0x0101
    ),
    "C_ECHO_RSP": bytes.fromhex(
        "0000000004000000"  # (0000,0000) CommandGroupLength UL len 4
        "42000000"  # 66
        "0000020012000000"  # (0000,0002) AffectedSOPClassUID UI len 18
        "312e322e3834302e31303030382e312e3100"  # 1.2.840.10008.1.1\0
        "0000000102000000"  # (0000,0100) CommandField US len 2
        "3080"  # 0x8030
        "0000200102000000"  # (0000,0120) MessageIDBeingRespondedTo US len 2
        "0100"  # 0x0001
        "0000000802000000"  # (0000,0800) CommandDataSetType US len 2
        "0101"  # 0x0101
        "0000000902000000"  # (0000,0900) Status US len 2
        "0000"  # 0x0000
    ),
    "C_STORE_RQ": bytes.fromhex(
        "0000000004000000"  # (0000,0000) CommandGroupLength UL len 4
        "72000000"  # 114
        "000002001a000000"  # (0000,0002) AffectedSOPClassUID UI len 26
        "312e322e3834302e31303030382e352e312e342e312e312e3200"  # 1.2.840.10008.5.1.4.1.1.2\0
        "0000000102000000"  # (0000,0100) CommandField US len 2
        "0100"  # 0x0001
        "0000100102000000"  # (0000,0110) MessageID US len 2
        "0700"  # 0x0007
        "0000000702000000"  # (0000,0700) Priority US len 2
        "0200"  # 0x0002
        "0000000802000000"  # (0000,0800) CommandDataSetType US len 2
        "0100"  # 0x0001
        "0000001008000000"  # (0000,1000) AffectedSOPInstanceUID UI len 8
        "312e322e332e3400"  # 1.2.3.4\0
        "0000301006000000"  # (0000,1030) MoveOriginatorApplicationEntityTitle AE len 6
        "4d4f56455220"  # 'MOVER '
        "0000311002000000"  # (0000,1031) MoveOriginatorMessageID US len 2
        "0300"  # 0x0003
    ),
    "C_STORE_RSP": bytes.fromhex(
        "0000000004000000"  # (0000,0000) CommandGroupLength UL len 4
        "74000000"  # 116
        "000002001a000000"  # (0000,0002) AffectedSOPClassUID UI len 26
        "312e322e3834302e31303030382e352e312e342e312e312e3200"  # 1.2.840.10008.5.1.4.1.1.2\0
        "0000000102000000"  # (0000,0100) CommandField US len 2
        "0180"  # 0x8001
        "0000200102000000"  # (0000,0120) MessageIDBeingRespondedTo US len 2
        "0700"  # 0x0007
        "0000000802000000"  # (0000,0800) CommandDataSetType US len 2
        "0101"  # 0x0101
        "0000000902000000"  # (0000,0900) Status US len 2
        "00a9"  # 0xa900
        "0000010904000000"  # (0000,0901) OffendingElement AT len 4
        "10001000"  # (0010,0010)
        "0000020906000000"  # (0000,0902) ErrorComment LO len 6
        "62616420504e"  # 'bad PN'
        "0000001008000000"  # (0000,1000) AffectedSOPInstanceUID UI len 8
        "312e322e332e3400"  # 1.2.3.4\0
    ),
    "C_FIND_RQ": bytes.fromhex(
        "0000000004000000"  # (0000,0000) CommandGroupLength UL len 4
        "4c000000"  # 76
        "000002001c000000"  # (0000,0002) AffectedSOPClassUID UI len 28
        "312e322e3834302e31303030382e352e312e342e312e322e322e3100"  # 1.2.840.10008.5.1.4.1.2.2.1\0
        "0000000102000000"  # (0000,0100) CommandField US len 2
        "2000"  # 0x0020
        "0000100102000000"  # (0000,0110) MessageID US len 2
        "0200"  # 0x0002
        "0000000702000000"  # (0000,0700) Priority US len 2
        "0100"  # 0x0001
        "0000000802000000"  # (0000,0800) CommandDataSetType US len 2
        "0100"  # 0x0001
    ),
    "C_FIND_RSP": bytes.fromhex(
        "0000000004000000"  # (0000,0000) CommandGroupLength UL len 4
        "4c000000"  # 76
        "000002001c000000"  # (0000,0002) AffectedSOPClassUID UI len 28
        "312e322e3834302e31303030382e352e312e342e312e322e322e3100"  # 1.2.840.10008.5.1.4.1.2.2.1\0
        "0000000102000000"  # (0000,0100) CommandField US len 2
        "2080"  # 0x8020
        "0000200102000000"  # (0000,0120) MessageIDBeingRespondedTo US len 2
        "0200"  # 0x0002
        "0000000802000000"  # (0000,0800) CommandDataSetType US len 2
        "0100"  # 0x0001
        "0000000902000000"  # (0000,0900) Status US len 2
        "00ff"  # 0xff00
    ),
    "C_GET_RQ": bytes.fromhex(
        "0000000004000000"  # (0000,0000) CommandGroupLength UL len 4
        "4c000000"  # 76
        "000002001c000000"  # (0000,0002) AffectedSOPClassUID UI len 28
        "312e322e3834302e31303030382e352e312e342e312e322e322e3300"  # 1.2.840.10008.5.1.4.1.2.2.3\0
        "0000000102000000"  # (0000,0100) CommandField US len 2
        "1000"  # 0x0010
        "0000100102000000"  # (0000,0110) MessageID US len 2
        "0300"  # 0x0003
        "0000000702000000"  # (0000,0700) Priority US len 2
        "0000"  # 0x0000
        "0000000802000000"  # (0000,0800) CommandDataSetType US len 2
        "0100"  # 0x0001
    ),
    "C_GET_RSP": bytes.fromhex(
        "0000000004000000"  # (0000,0000) CommandGroupLength UL len 4
        "74000000"  # 116
        "000002001c000000"  # (0000,0002) AffectedSOPClassUID UI len 28
        "312e322e3834302e31303030382e352e312e342e312e322e322e3300"  # 1.2.840.10008.5.1.4.1.2.2.3\0
        "0000000102000000"  # (0000,0100) CommandField US len 2
        "1080"  # 0x8010
        "0000200102000000"  # (0000,0120) MessageIDBeingRespondedTo US len 2
        "0300"  # 0x0003
        "0000000802000000"  # (0000,0800) CommandDataSetType US len 2
        "0101"  # 0x0101
        "0000000902000000"  # (0000,0900) Status US len 2
        "00ff"  # 0xff00
        "0000201002000000"  # (0000,1020) NumberOfRemainingSuboperations US len 2
        "0500"  # 0x0005
        "0000211002000000"  # (0000,1021) NumberOfCompletedSuboperations US len 2
        "0400"  # 0x0004
        "0000221002000000"  # (0000,1022) NumberOfFailedSuboperations US len 2
        "0100"  # 0x0001
        "0000231002000000"  # (0000,1023) NumberOfWarningSuboperations US len 2
        "0000"  # 0x0000
    ),
    "C_MOVE_RQ": bytes.fromhex(
        "0000000004000000"  # (0000,0000) CommandGroupLength UL len 4
        "5c000000"  # 92
        "000002001c000000"  # (0000,0002) AffectedSOPClassUID UI len 28
        "312e322e3834302e31303030382e352e312e342e312e322e322e3200"  # 1.2.840.10008.5.1.4.1.2.2.2\0
        "0000000102000000"  # (0000,0100) CommandField US len 2
        "2100"  # 0x0021
        "0000100102000000"  # (0000,0110) MessageID US len 2
        "0400"  # 0x0004
        "0000000608000000"  # (0000,0600) MoveDestination AE len 8
        "53544f5245534350"  # 'STORESCP'
        "0000000702000000"  # (0000,0700) Priority US len 2
        "0000"  # 0x0000
        "0000000802000000"  # (0000,0800) CommandDataSetType US len 2
        "0100"  # 0x0001
    ),
    "C_MOVE_RSP": bytes.fromhex(
        "0000000004000000"  # (0000,0000) CommandGroupLength UL len 4
        "74000000"  # 116
        "000002001c000000"  # (0000,0002) AffectedSOPClassUID UI len 28
        "312e322e3834302e31303030382e352e312e342e312e322e322e3200"  # 1.2.840.10008.5.1.4.1.2.2.2\0
        "0000000102000000"  # (0000,0100) CommandField US len 2
        "2180"  # 0x8021
        "0000200102000000"  # (0000,0120) MessageIDBeingRespondedTo US len 2
        "0400"  # 0x0004
        "0000000802000000"  # (0000,0800) CommandDataSetType US len 2
        "0100"  # 0x0001
        "0000000902000000"  # (0000,0900) Status US len 2
        "00b0"  # 0xb000
        "0000201002000000"  # (0000,1020) NumberOfRemainingSuboperations US len 2
        "0000"  # 0x0000
        "0000211002000000"  # (0000,1021) NumberOfCompletedSuboperations US len 2
        "0900"  # 0x0009
        "0000221002000000"  # (0000,1022) NumberOfFailedSuboperations US len 2
        "0200"  # 0x0002
        "0000231002000000"  # (0000,1023) NumberOfWarningSuboperations US len 2
        "0100"  # 0x0001
    ),
    "C_CANCEL_RQ": bytes.fromhex(
        "0000000004000000"  # (0000,0000) CommandGroupLength UL len 4
        "1e000000"  # 30
        "0000000102000000"  # (0000,0100) CommandField US len 2
        "ff0f"  # 0x0fff
        "0000200102000000"  # (0000,0120) MessageIDBeingRespondedTo US len 2
        "0500"  # 0x0005
        "0000000802000000"  # (0000,0800) CommandDataSetType US len 2
        "0101"  # 0x0101
    ),
    "N_EVENT_REPORT_RQ": bytes.fromhex(
        "0000000004000000"  # (0000,0000) CommandGroupLength UL len 4
        "62000000"  # 98
        "0000020014000000"  # (0000,0002) AffectedSOPClassUID UI len 20
        "312e322e3834302e31303030382e312e32302e31"  # '1.2.840.10008.1.20.1'
        "0000000102000000"  # (0000,0100) CommandField US len 2
        "0001"  # 0x0100
        "0000100102000000"  # (0000,0110) MessageID US len 2
        "0a00"  # 0x000a
        "0000000802000000"  # (0000,0800) CommandDataSetType US len 2
        "0100"  # 0x0001
        "0000001016000000"  # (0000,1000) AffectedSOPInstanceUID UI len 22
        "312e322e3834302e31303030382e312e32302e312e31"  # '1.2.840.10008.1.20.1.1'
        "0000021002000000"  # (0000,1002) EventTypeID US len 2
        "0100"  # 0x0001
    ),
    "N_EVENT_REPORT_RSP": bytes.fromhex(
        "0000000004000000"  # (0000,0000) CommandGroupLength UL len 4
        "6c000000"  # 108
        "0000020014000000"  # (0000,0002) AffectedSOPClassUID UI len 20
        "312e322e3834302e31303030382e312e32302e31"  # '1.2.840.10008.1.20.1'
        "0000000102000000"  # (0000,0100) CommandField US len 2
        "0081"  # 0x8100
        "0000200102000000"  # (0000,0120) MessageIDBeingRespondedTo US len 2
        "0a00"  # 0x000a
        "0000000802000000"  # (0000,0800) CommandDataSetType US len 2
        "0101"  # 0x0101
        "0000000902000000"  # (0000,0900) Status US len 2
        "0000"  # 0x0000
        "0000001016000000"  # (0000,1000) AffectedSOPInstanceUID UI len 22
        "312e322e3834302e31303030382e312e32302e312e31"  # '1.2.840.10008.1.20.1.1'
        "0000021002000000"  # (0000,1002) EventTypeID US len 2
        "0100"  # 0x0001
    ),
    "N_GET_RQ": bytes.fromhex(
        "0000000004000000"  # (0000,0000) CommandGroupLength UL len 4
        "6a000000"  # 106
        "0000030016000000"  # (0000,0003) RequestedSOPClassUID UI len 22
        "312e322e3834302e31303030382e352e312e312e3136"  # '1.2.840.10008.5.1.1.16'
        "0000000102000000"  # (0000,0100) CommandField US len 2
        "1001"  # 0x0110
        "0000100102000000"  # (0000,0110) MessageID US len 2
        "0b00"  # 0x000b
        "0000000802000000"  # (0000,0800) CommandDataSetType US len 2
        "0101"  # 0x0101
        "0000011016000000"  # (0000,1001) RequestedSOPInstanceUID UI len 22
        "312e322e3834302e31303030382e352e312e312e3137"  # '1.2.840.10008.5.1.1.17'
        "0000051008000000"  # (0000,1005) AttributeIdentifierList AT len 8
        "1021100010212000"  # (2110,0010), (2110,0020)
    ),
    "N_GET_RSP": bytes.fromhex(
        "0000000004000000"  # (0000,0000) CommandGroupLength UL len 4
        "64000000"  # 100
        "0000020016000000"  # (0000,0002) AffectedSOPClassUID UI len 22
        "312e322e3834302e31303030382e352e312e312e3136"  # '1.2.840.10008.5.1.1.16'
        "0000000102000000"  # (0000,0100) CommandField US len 2
        "1081"  # 0x8110
        "0000200102000000"  # (0000,0120) MessageIDBeingRespondedTo US len 2
        "0b00"  # 0x000b
        "0000000802000000"  # (0000,0800) CommandDataSetType US len 2
        "0100"  # 0x0001
        "0000000902000000"  # (0000,0900) Status US len 2
        "0701"  # 0x0107
        "0000001016000000"  # (0000,1000) AffectedSOPInstanceUID UI len 22
        "312e322e3834302e31303030382e352e312e312e3137"  # '1.2.840.10008.5.1.1.17'
    ),
    "N_SET_RQ": bytes.fromhex(
        "0000000004000000"  # (0000,0000) CommandGroupLength UL len 4
        "50000000"  # 80
        "0000030018000000"  # (0000,0003) RequestedSOPClassUID UI len 24
        "312e322e3834302e31303030382e332e312e322e332e3300"  # 1.2.840.10008.3.1.2.3.3\0
        "0000000102000000"  # (0000,0100) CommandField US len 2
        "2001"  # 0x0120
        "0000100102000000"  # (0000,0110) MessageID US len 2
        "0c00"  # 0x000c
        "0000000802000000"  # (0000,0800) CommandDataSetType US len 2
        "0100"  # 0x0001
        "000001100a000000"  # (0000,1001) RequestedSOPInstanceUID UI len 10
        "312e322e332e342e3500"  # 1.2.3.4.5\0
    ),
    "N_SET_RSP": bytes.fromhex(
        "0000000004000000"  # (0000,0000) CommandGroupLength UL len 4
        "5a000000"  # 90
        "0000020018000000"  # (0000,0002) AffectedSOPClassUID UI len 24
        "312e322e3834302e31303030382e332e312e322e332e3300"  # 1.2.840.10008.3.1.2.3.3\0
        "0000000102000000"  # (0000,0100) CommandField US len 2
        "2081"  # 0x8120
        "0000200102000000"  # (0000,0120) MessageIDBeingRespondedTo US len 2
        "0c00"  # 0x000c
        "0000000802000000"  # (0000,0800) CommandDataSetType US len 2
        "0101"  # 0x0101
        "0000000902000000"  # (0000,0900) Status US len 2
        "1601"  # 0x0116
        "000000100a000000"  # (0000,1000) AffectedSOPInstanceUID UI len 10
        "312e322e332e342e3500"  # 1.2.3.4.5\0
    ),
    "N_ACTION_RQ": bytes.fromhex(
        "0000000004000000"  # (0000,0000) CommandGroupLength UL len 4
        "62000000"  # 98
        "0000030014000000"  # (0000,0003) RequestedSOPClassUID UI len 20
        "312e322e3834302e31303030382e312e32302e31"  # '1.2.840.10008.1.20.1'
        "0000000102000000"  # (0000,0100) CommandField US len 2
        "3001"  # 0x0130
        "0000100102000000"  # (0000,0110) MessageID US len 2
        "0d00"  # 0x000d
        "0000000802000000"  # (0000,0800) CommandDataSetType US len 2
        "0100"  # 0x0001
        "0000011016000000"  # (0000,1001) RequestedSOPInstanceUID UI len 22
        "312e322e3834302e31303030382e312e32302e312e31"  # '1.2.840.10008.1.20.1.1'
        "0000081002000000"  # (0000,1008) ActionTypeID US len 2
        "0100"  # 0x0001
    ),
    "N_ACTION_RSP": bytes.fromhex(
        "0000000004000000"  # (0000,0000) CommandGroupLength UL len 4
        "82000000"  # 130
        "0000020014000000"  # (0000,0002) AffectedSOPClassUID UI len 20
        "312e322e3834302e31303030382e312e32302e31"  # '1.2.840.10008.1.20.1'
        "0000000102000000"  # (0000,0100) CommandField US len 2
        "3081"  # 0x8130
        "0000200102000000"  # (0000,0120) MessageIDBeingRespondedTo US len 2
        "0d00"  # 0x000d
        "0000000802000000"  # (0000,0800) CommandDataSetType US len 2
        "0101"  # 0x0101
        "0000000902000000"  # (0000,0900) Status US len 2
        "1001"  # 0x0110
        "0000020904000000"  # (0000,0902) ErrorComment LO len 4
        "62757379"  # 'busy'
        "0000030902000000"  # (0000,0903) ErrorID US len 2
        "2a00"  # 0x002a
        "0000001016000000"  # (0000,1000) AffectedSOPInstanceUID UI len 22
        "312e322e3834302e31303030382e312e32302e312e31"  # '1.2.840.10008.1.20.1.1'
        "0000081002000000"  # (0000,1008) ActionTypeID US len 2
        "0100"  # 0x0001
    ),
    "N_CREATE_RQ": bytes.fromhex(
        "0000000004000000"  # (0000,0000) CommandGroupLength UL len 4
        "50000000"  # 80
        "0000020018000000"  # (0000,0002) AffectedSOPClassUID UI len 24
        "312e322e3834302e31303030382e332e312e322e332e3300"  # 1.2.840.10008.3.1.2.3.3\0
        "0000000102000000"  # (0000,0100) CommandField US len 2
        "4001"  # 0x0140
        "0000100102000000"  # (0000,0110) MessageID US len 2
        "0e00"  # 0x000e
        "0000000802000000"  # (0000,0800) CommandDataSetType US len 2
        "0100"  # 0x0001
        "000000100a000000"  # (0000,1000) AffectedSOPInstanceUID UI len 10
        "312e322e332e342e3600"  # 1.2.3.4.6\0
    ),
    "N_CREATE_RSP": bytes.fromhex(
        "0000000004000000"  # (0000,0000) CommandGroupLength UL len 4
        "5a000000"  # 90
        "0000020018000000"  # (0000,0002) AffectedSOPClassUID UI len 24
        "312e322e3834302e31303030382e332e312e322e332e3300"  # 1.2.840.10008.3.1.2.3.3\0
        "0000000102000000"  # (0000,0100) CommandField US len 2
        "4081"  # 0x8140
        "0000200102000000"  # (0000,0120) MessageIDBeingRespondedTo US len 2
        "0e00"  # 0x000e
        "0000000802000000"  # (0000,0800) CommandDataSetType US len 2
        "0100"  # 0x0001
        "0000000902000000"  # (0000,0900) Status US len 2
        "0000"  # 0x0000
        "000000100a000000"  # (0000,1000) AffectedSOPInstanceUID UI len 10
        "312e322e332e342e3600"  # 1.2.3.4.6\0
    ),
    "N_DELETE_RQ": bytes.fromhex(
        "0000000004000000"  # (0000,0000) CommandGroupLength UL len 4
        "4e000000"  # 78
        "0000030016000000"  # (0000,0003) RequestedSOPClassUID UI len 22
        "312e322e3834302e31303030382e352e312e312e3100"  # 1.2.840.10008.5.1.1.1\0
        "0000000102000000"  # (0000,0100) CommandField US len 2
        "5001"  # 0x0150
        "0000100102000000"  # (0000,0110) MessageID US len 2
        "0f00"  # 0x000f
        "0000000802000000"  # (0000,0800) CommandDataSetType US len 2
        "0101"  # 0x0101
        "000001100a000000"  # (0000,1001) RequestedSOPInstanceUID UI len 10
        "312e322e332e342e3700"  # 1.2.3.4.7\0
    ),
    "N_DELETE_RSP": bytes.fromhex(
        "0000000004000000"  # (0000,0000) CommandGroupLength UL len 4
        "58000000"  # 88
        "0000020016000000"  # (0000,0002) AffectedSOPClassUID UI len 22
        "312e322e3834302e31303030382e352e312e312e3100"  # 1.2.840.10008.5.1.1.1\0
        "0000000102000000"  # (0000,0100) CommandField US len 2
        "5081"  # 0x8150
        "0000200102000000"  # (0000,0120) MessageIDBeingRespondedTo US len 2
        "0f00"  # 0x000f
        "0000000802000000"  # (0000,0800) CommandDataSetType US len 2
        "0101"  # 0x0101
        "0000000902000000"  # (0000,0900) Status US len 2
        "1201"  # 0x0112
        "000000100a000000"  # (0000,1000) AffectedSOPInstanceUID UI len 10
        "312e322e332e342e3700"  # 1.2.3.4.7\0
    ),
}
# fmt: on

CT = "1.2.840.10008.5.1.4.1.1.2"
FIND = "1.2.840.10008.5.1.4.1.2.2.1"
GET = "1.2.840.10008.5.1.4.1.2.2.3"
MOVE = "1.2.840.10008.5.1.4.1.2.2.2"
COMMIT = "1.2.840.10008.1.20.1"
COMMIT_INST = "1.2.840.10008.1.20.1.1"
PRINTER = "1.2.840.10008.5.1.1.16"
PRINTER_INST = "1.2.840.10008.5.1.1.17"
MPPS = "1.2.840.10008.3.1.2.3.3"

EXPECTED: dict[str, DimseMessage] = {
    "C_ECHO_RQ": CEchoRQ(message_id=1, affected_sop_class_uid="1.2.840.10008.1.1"),
    "C_ECHO_RSP": CEchoRSP(
        message_id_being_responded_to=1, affected_sop_class_uid="1.2.840.10008.1.1", status=0
    ),
    "C_STORE_RQ": CStoreRQ(
        message_id=7,
        affected_sop_class_uid=CT,
        affected_sop_instance_uid="1.2.3.4",
        priority=Priority.LOW,
        move_originator_application_entity_title="MOVER",
        move_originator_message_id=3,
    ),
    "C_STORE_RSP": CStoreRSP(
        message_id_being_responded_to=7,
        affected_sop_class_uid=CT,
        affected_sop_instance_uid="1.2.3.4",
        status=0xA900,
        offending_element=(0x00100010,),
        error_comment="bad PN",
    ),
    "C_FIND_RQ": CFindRQ(message_id=2, affected_sop_class_uid=FIND, priority=Priority.HIGH),
    "C_FIND_RSP": CFindRSP(
        message_id_being_responded_to=2,
        affected_sop_class_uid=FIND,
        status=0xFF00,
        command_data_set_type=DATASET_PRESENT,
    ),
    "C_GET_RQ": CGetRQ(message_id=3, affected_sop_class_uid=GET, priority=Priority.MEDIUM),
    "C_GET_RSP": CGetRSP(
        message_id_being_responded_to=3,
        affected_sop_class_uid=GET,
        status=0xFF00,
        number_of_remaining_sub_operations=5,
        number_of_completed_sub_operations=4,
        number_of_failed_sub_operations=1,
        number_of_warning_sub_operations=0,
    ),
    "C_MOVE_RQ": CMoveRQ(message_id=4, affected_sop_class_uid=MOVE, move_destination="STORESCP"),
    "C_MOVE_RSP": CMoveRSP(
        message_id_being_responded_to=4,
        affected_sop_class_uid=MOVE,
        status=0xB000,
        command_data_set_type=DATASET_PRESENT,
        number_of_remaining_sub_operations=0,
        number_of_completed_sub_operations=9,
        number_of_failed_sub_operations=2,
        number_of_warning_sub_operations=1,
    ),
    "C_CANCEL_RQ": CCancelRQ(message_id_being_responded_to=5),
    "N_EVENT_REPORT_RQ": NEventReportRQ(
        message_id=10,
        affected_sop_class_uid=COMMIT,
        affected_sop_instance_uid=COMMIT_INST,
        event_type_id=1,
        command_data_set_type=DATASET_PRESENT,
    ),
    "N_EVENT_REPORT_RSP": NEventReportRSP(
        message_id_being_responded_to=10,
        affected_sop_class_uid=COMMIT,
        affected_sop_instance_uid=COMMIT_INST,
        event_type_id=1,
        status=0,
    ),
    "N_GET_RQ": NGetRQ(
        message_id=11,
        requested_sop_class_uid=PRINTER,
        requested_sop_instance_uid=PRINTER_INST,
        attribute_identifier_list=(0x21100010, 0x21100020),
    ),
    "N_GET_RSP": NGetRSP(
        message_id_being_responded_to=11,
        affected_sop_class_uid=PRINTER,
        affected_sop_instance_uid=PRINTER_INST,
        status=0x0107,
        command_data_set_type=DATASET_PRESENT,
    ),
    "N_SET_RQ": NSetRQ(
        message_id=12, requested_sop_class_uid=MPPS, requested_sop_instance_uid="1.2.3.4.5"
    ),
    "N_SET_RSP": NSetRSP(
        message_id_being_responded_to=12,
        affected_sop_class_uid=MPPS,
        affected_sop_instance_uid="1.2.3.4.5",
        status=0x0116,
    ),
    "N_ACTION_RQ": NActionRQ(
        message_id=13,
        requested_sop_class_uid=COMMIT,
        requested_sop_instance_uid=COMMIT_INST,
        action_type_id=1,
        command_data_set_type=DATASET_PRESENT,
    ),
    "N_ACTION_RSP": NActionRSP(
        message_id_being_responded_to=13,
        affected_sop_class_uid=COMMIT,
        affected_sop_instance_uid=COMMIT_INST,
        action_type_id=1,
        status=0x0110,
        error_comment="busy",
        error_id=42,
    ),
    "N_CREATE_RQ": NCreateRQ(
        message_id=14,
        affected_sop_class_uid=MPPS,
        affected_sop_instance_uid="1.2.3.4.6",
        command_data_set_type=DATASET_PRESENT,
    ),
    "N_CREATE_RSP": NCreateRSP(
        message_id_being_responded_to=14,
        affected_sop_class_uid=MPPS,
        affected_sop_instance_uid="1.2.3.4.6",
        status=0,
        command_data_set_type=DATASET_PRESENT,
    ),
    "N_DELETE_RQ": NDeleteRQ(
        message_id=15,
        requested_sop_class_uid="1.2.840.10008.5.1.1.1",
        requested_sop_instance_uid="1.2.3.4.7",
    ),
    "N_DELETE_RSP": NDeleteRSP(
        message_id_being_responded_to=15,
        affected_sop_class_uid="1.2.840.10008.5.1.1.1",
        affected_sop_instance_uid="1.2.3.4.7",
        status=0x0112,
    ),
}

NAMES = sorted(PYNETDICOM_VECTORS)


def test_every_message_type_has_a_vector() -> None:
    from aiodimse.dimse.messages import MESSAGE_CLASSES

    assert {type(m) for m in EXPECTED.values()} == set(MESSAGE_CLASSES.values())
    assert set(EXPECTED) == set(PYNETDICOM_VECTORS)


@pytest.mark.parametrize("name", NAMES)
def test_encode_matches_golden_vector(name: str) -> None:
    assert encode_command(EXPECTED[name]) == PYNETDICOM_VECTORS[name]


@pytest.mark.parametrize("name", NAMES)
def test_decode_golden_vector(name: str) -> None:
    decoded = decode_command(PYNETDICOM_VECTORS[name])
    assert decoded == EXPECTED[name]
    assert type(decoded) is type(EXPECTED[name])


@pytest.mark.parametrize("name", NAMES)
def test_decode_golden_vector_from_memoryview_and_bytearray(name: str) -> None:
    raw = PYNETDICOM_VECTORS[name]
    assert decode_command(memoryview(raw)) == EXPECTED[name]
    assert decode_command(bytearray(raw)) == EXPECTED[name]
    # A view into a larger buffer (as the assembler may hand us) decodes the same.
    assert decode_command(memoryview(b"junk" + raw + b"junk")[4:-4]) == EXPECTED[name]


@pytest.mark.parametrize("name", NAMES)
def test_has_dataset_matches_vector(name: str) -> None:
    cdst = int.from_bytes(
        PYNETDICOM_VECTORS[name].split(bytes.fromhex("0000000802000000"))[1][:2], "little"
    )
    assert decode_command(PYNETDICOM_VECTORS[name]).has_dataset is (cdst != DATASET_ABSENT)


# ------------------------------------------------------------- live pynetdicom cross-check

# Our field name -> pynetdicom primitive attribute / pydicom keyword.
KEYWORDS = {
    "affected_sop_class_uid": "AffectedSOPClassUID",
    "requested_sop_class_uid": "RequestedSOPClassUID",
    "message_id": "MessageID",
    "message_id_being_responded_to": "MessageIDBeingRespondedTo",
    "move_destination": "MoveDestination",
    "priority": "Priority",
    "command_data_set_type": "CommandDataSetType",
    "status": "Status",
    "offending_element": "OffendingElement",
    "error_comment": "ErrorComment",
    "error_id": "ErrorID",
    "affected_sop_instance_uid": "AffectedSOPInstanceUID",
    "requested_sop_instance_uid": "RequestedSOPInstanceUID",
    "event_type_id": "EventTypeID",
    "attribute_identifier_list": "AttributeIdentifierList",
    "action_type_id": "ActionTypeID",
    "number_of_remaining_sub_operations": "NumberOfRemainingSuboperations",
    "number_of_completed_sub_operations": "NumberOfCompletedSuboperations",
    "number_of_failed_sub_operations": "NumberOfFailedSuboperations",
    "number_of_warning_sub_operations": "NumberOfWarningSuboperations",
    "move_originator_application_entity_title": "MoveOriginatorApplicationEntityTitle",
    "move_originator_message_id": "MoveOriginatorMessageID",
}


def pynetdicom_view(raw: bytes, name: str) -> dict[str, Any]:
    """Decode ``raw`` with pynetdicom and return its primitive's command values by our names."""
    ds = pnd_decode(BytesIO(raw), True, True)
    msg = getattr(pnd_messages, name)()
    msg.command_set = ds
    prim = msg.message_to_primitive()
    out: dict[str, Any] = {}
    for ours, theirs in KEYWORDS.items():
        if theirs in ds:
            value = getattr(prim, theirs, None)
            if value is None:
                value = ds[theirs].value
            if ours in ("offending_element", "attribute_identifier_list"):
                value = tuple(int(t) for t in (value if isinstance(value, list) else [value]))
            elif isinstance(value, str):
                value = value.strip()
            out[ours] = value
    return out


def our_view(message: DimseMessage) -> dict[str, Any]:
    import dataclasses

    return {
        f.name: getattr(message, f.name)
        for f in dataclasses.fields(message)
        if getattr(message, f.name) is not None
    }


@pytest.mark.parametrize("name", NAMES)
def test_pynetdicom_decodes_our_encoding(name: str) -> None:
    message = EXPECTED[name]
    assert pynetdicom_view(encode_command(message), name) == our_view(message)


@pytest.mark.parametrize("name", NAMES)
def test_pynetdicom_reencodes_our_encoding_identically(name: str) -> None:
    """pynetdicom's dataset writer, fed our bytes, writes back the very same bytes."""
    raw = encode_command(EXPECTED[name])
    assert pnd_encode(pnd_decode(BytesIO(raw), True, True), True, True) == raw


def test_pynetdicom_primitive_path_for_c_store_rq() -> None:
    """The full pynetdicom primitive -> message path agrees with our C-STORE-RQ."""
    prim = pnd_primitives.C_STORE()
    prim.MessageID = 7
    prim.AffectedSOPClassUID = CT
    prim.AffectedSOPInstanceUID = "1.2.3.4"
    prim.Priority = 2
    prim.MoveOriginatorApplicationEntityTitle = "MOVER"
    prim.MoveOriginatorMessageID = 3
    prim.DataSet = BytesIO(b"\x08\x00\x05\x00\x00\x00\x00\x00")
    msg = pnd_messages.C_STORE_RQ()
    msg.primitive_to_message(prim)
    assert pnd_encode(msg.command_set, True, True) == encode_command(EXPECTED["C_STORE_RQ"])
