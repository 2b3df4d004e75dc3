"""The seven PDUs of PS3.8 9.3 as frozen dataclasses (values only).

Encoding and decoding live in :mod:`aiodimse.pdu.codec`; this module only says what a PDU
*is*. AE titles are kept without their space padding; UIDs without their NUL padding.
``__post_init__`` only checks that a value fits its wire field (so that anything a peer
sends can be represented); the standard's rules are checked by ``encode_pdu``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..constants import APPLICATION_CONTEXT_NAME, PROTOCOL_VERSION
from ..errors import PDUEncodeError
from .items import PresentationContextAC, PresentationContextRQ, UserInformation
from .validate import check_text, check_uint


@dataclass(frozen=True, slots=True, kw_only=True)
class AAssociateRQ:
    """A-ASSOCIATE-RQ, PDU type 01H (PS3.8 9.3.2, Table 9-11)."""

    called_ae_title: str
    calling_ae_title: str
    presentation_contexts: tuple[PresentationContextRQ, ...]
    user_information: UserInformation = field(default_factory=UserInformation)
    application_context: str = APPLICATION_CONTEXT_NAME
    protocol_version: int = PROTOCOL_VERSION

    def __post_init__(self) -> None:
        check_text("called_ae_title", self.called_ae_title, 16)
        check_text("calling_ae_title", self.calling_ae_title, 16)
        check_text("application_context", self.application_context, 0xFFFF)
        check_uint("protocol_version", self.protocol_version, 16)
        if not isinstance(self.presentation_contexts, tuple):
            object.__setattr__(self, "presentation_contexts", tuple(self.presentation_contexts))


@dataclass(frozen=True, slots=True, kw_only=True)
class AAssociateAC:
    """A-ASSOCIATE-AC, PDU type 02H (PS3.8 9.3.3, Table 9-17).

    The called/calling AE title fields are reserved in the AC: sent as received in the RQ
    and not tested on receipt.
    """

    called_ae_title: str
    calling_ae_title: str
    presentation_contexts: tuple[PresentationContextAC, ...]
    user_information: UserInformation = field(default_factory=UserInformation)
    application_context: str = APPLICATION_CONTEXT_NAME
    protocol_version: int = PROTOCOL_VERSION

    def __post_init__(self) -> None:
        check_text("called_ae_title", self.called_ae_title, 16)
        check_text("calling_ae_title", self.calling_ae_title, 16)
        check_text("application_context", self.application_context, 0xFFFF)
        check_uint("protocol_version", self.protocol_version, 16)
        if not isinstance(self.presentation_contexts, tuple):
            object.__setattr__(self, "presentation_contexts", tuple(self.presentation_contexts))


@dataclass(frozen=True, slots=True, kw_only=True)
class AAssociateRJ:
    """A-ASSOCIATE-RJ, PDU type 03H (PS3.8 9.3.4, Table 9-21)."""

    result: int
    source: int
    reason: int

    def __post_init__(self) -> None:
        check_uint("result", self.result, 8)
        check_uint("source", self.source, 8)
        check_uint("reason", self.reason, 8)


@dataclass(frozen=True, slots=True, kw_only=True)
class PDV:
    """One presentation data value item (PS3.8 9.3.5.1 and Annex E.2).

    ``data`` is a view into the receive buffer (decoding) or the caller's payload (encoding);
    copy it with ``bytes(pdv.data)`` to keep it beyond the next read. No ``__post_init__``
    (this is the hot path); the context ID is checked when encoding (odd, 1..255).
    """

    context_id: int
    is_command: bool
    is_last: bool
    data: bytes | memoryview


@dataclass(frozen=True, slots=True, kw_only=True)
class PDataTF:
    """P-DATA-TF, PDU type 04H (PS3.8 9.3.5, Table 9-22): one or more PDVs."""

    pdvs: tuple[PDV, ...]


@dataclass(frozen=True, slots=True)
class AReleaseRQ:
    """A-RELEASE-RQ, PDU type 05H (PS3.8 9.3.6)."""


@dataclass(frozen=True, slots=True)
class AReleaseRP:
    """A-RELEASE-RP, PDU type 06H (PS3.8 9.3.7)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class AAbort:
    """A-ABORT, PDU type 07H (PS3.8 9.3.8, Table 9-26)."""

    source: int
    reason: int = 0

    def __post_init__(self) -> None:
        check_uint("source", self.source, 8)
        check_uint("reason", self.reason, 8)


PDU = AAssociateRQ | AAssociateAC | AAssociateRJ | PDataTF | AReleaseRQ | AReleaseRP | AAbort


def pdata_tf_parts(pdvs: tuple[PDV, ...] | list[PDV]) -> list[bytes | memoryview]:
    """P-DATA-TF as a gather list: small headers as ``bytes``, payloads passed through.

    PS3.8 9.3.5: PDU header (04H, reserved, length), then per PDV item length (4 bytes,
    counting context ID, control header and data), context ID, message control header
    (bit 0: command, bit 1: last fragment, Annex E.2). No payload byte is copied.
    """
    parts: list[bytes | memoryview] = [b""]
    total = 0
    for pdv in pdvs:
        n = len(pdv.data)
        cid = pdv.context_id
        if not (isinstance(cid, int) and 0 < cid < 256 and cid & 1):
            raise PDUEncodeError(f"PDV presentation context ID must be odd in 1..255, got {cid!r}")
        control = (1 if pdv.is_command else 0) | (2 if pdv.is_last else 0)
        parts.append((n + 2).to_bytes(4, "big") + bytes((pdv.context_id, control)))
        parts.append(pdv.data)
        total += 6 + n
    if total > 0xFFFFFFFF:
        raise PDUEncodeError(f"P-DATA-TF of {total} bytes does not fit the PDU length field")
    parts[0] = b"\x04\x00" + total.to_bytes(4, "big")
    return parts
