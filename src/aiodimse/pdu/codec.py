"""The PDU codec in one import: encoder, incremental decoder, one-shot decoder.

* :func:`encode_pdu` (:mod:`.encode`): PDU value -> wire bytes, strict by default.
* :class:`PDUDecoder` (:mod:`.decoder`): incremental, bounded, zero-copy for P-DATA-TF.
* :func:`decode_pdu`: exactly one whole PDU from bytes; :func:`decode_item` one sub-item.
* :func:`encode_item`: one user information sub-item.
* :func:`pdu_type_name`: the PS3.8 name of a PDU value, for logs.
"""

from __future__ import annotations

from .decode import decode_item
from .decoder import PDUDecoder, check_header, decode_pdu
from .encode import encode_item, encode_pdu
from .pdus import (
    PDU,
    AAbort,
    AAssociateAC,
    AAssociateRJ,
    AAssociateRQ,
    AReleaseRP,
    AReleaseRQ,
    PDataTF,
)

__all__ = [
    "PDUDecoder",
    "check_header",
    "decode_item",
    "decode_pdu",
    "encode_item",
    "encode_pdu",
    "pdu_type_name",
]

_NAMES: dict[type, str] = {
    AAssociateRQ: "A-ASSOCIATE-RQ",
    AAssociateAC: "A-ASSOCIATE-AC",
    AAssociateRJ: "A-ASSOCIATE-RJ",
    PDataTF: "P-DATA-TF",
    AReleaseRQ: "A-RELEASE-RQ",
    AReleaseRP: "A-RELEASE-RP",
    AAbort: "A-ABORT",
}


def pdu_type_name(pdu: PDU) -> str:
    """PS3.8 9.3 name of ``pdu``'s type, e.g. ``"A-ASSOCIATE-RQ"``."""
    return _NAMES[type(pdu)]
