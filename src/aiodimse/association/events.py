"""What an :class:`~aiodimse.association.connection.Association` tells its user.

The received PDUs are themselves the indications and confirmations of PS3.8 7.x:

=====================  =============================================================
event                  meaning (PS3.8 service primitive)
=====================  =============================================================
``AAssociateRQ``       A-ASSOCIATE indication (acceptor, Sta3: answer with AC or RJ)
``AAssociateAC``       A-ASSOCIATE confirmation, accepted (requestor, now Sta6)
``AAssociateRJ``       A-ASSOCIATE confirmation, rejected (requestor, now Sta1)
``PDataTF``            P-DATA indication
``AReleaseRQ``         A-RELEASE indication (answer with ``AReleaseRP``)
``AReleaseRP``         A-RELEASE confirmation: the release is complete
``AAbort``             A-ABORT indication (the peer's *service user* aborted)
:class:`ProviderAbort` A-P-ABORT indication (provider abort, either side, or lost transport)
=====================  =============================================================

plus three events about the transport, which the standard leaves to the implementation:
:class:`ConnectRequested` (AE-1: open the transport now), :class:`CloseRequested` (close the
transport now) and :class:`TransportClosed` (the transport is gone; the association object is
back in Sta1).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..pdu.pdus import (
    AAbort,
    AAssociateAC,
    AAssociateRJ,
    AAssociateRQ,
    AReleaseRP,
    AReleaseRQ,
    PDataTF,
)


@dataclass(frozen=True, slots=True, kw_only=True)
class ProviderAbort:
    """A-P-ABORT indication (PS3.8 7.4): the association ended abnormally, not by the user.

    * ``reason``: the PS3.8 Table 9-26 reason (0 when the transport was lost).
    * ``received``: ``True`` when the peer sent an A-ABORT with source 2 (AA-3);
      ``False`` when *we* detected the fault and sent A-ABORT(2, ``reason``) (AA-8, AA-7)
      or the transport connection closed under us (AA-4).
    * ``detail``: human-readable words for logs.
    """

    reason: int
    received: bool
    detail: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ConnectRequested:
    """AE-1: the shell must open the transport connection, then call ``transport_connected``
    (or ``transport_closed`` if it fails)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class CloseRequested:
    """The state machine closed the transport (AE-4, AR-3, AA-2, AA-3): the shell must flush
    ``data_to_send()`` and then close the connection."""


@dataclass(frozen=True, slots=True, kw_only=True)
class TransportClosed:
    """The transport is closed (Evt17 was processed); this connection is finished."""


AssociationEvent = (
    AAssociateRQ
    | AAssociateAC
    | AAssociateRJ
    | PDataTF
    | AReleaseRQ
    | AReleaseRP
    | AAbort
    | ProviderAbort
    | ConnectRequested
    | CloseRequested
    | TransportClosed
)

__all__ = [
    "AssociationEvent",
    "CloseRequested",
    "ConnectRequested",
    "ProviderAbort",
    "TransportClosed",
]
