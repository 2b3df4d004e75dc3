"""PS3.8 9.2 association state machine and PS3.7 D.3.3 negotiation, without I/O.

* :mod:`.fsm`: Table 9-10 as data (states, events, actions, effects).
* :mod:`.negotiation`: pure functions answering and checking A-ASSOCIATE.
* :mod:`.connection`: :class:`Association`, the sans-I/O object a shell drives.
* :mod:`.events`: what the association tells its user.
"""

from __future__ import annotations

from .connection import Association
from .events import (
    AssociationEvent,
    CloseRequested,
    ConnectRequested,
    ProviderAbort,
    TransportClosed,
)
from .fsm import TABLE, Event, Role, State, state_diagram_mermaid
from .negotiation import (
    AcceptedContext,
    AcceptorPolicy,
    IdentityVerdict,
    Negotiated,
    RejectedContext,
    check_accept,
    negotiate,
    provider_rejection,
)

__all__ = [
    "TABLE",
    "AcceptedContext",
    "AcceptorPolicy",
    "Association",
    "AssociationEvent",
    "CloseRequested",
    "ConnectRequested",
    "Event",
    "IdentityVerdict",
    "Negotiated",
    "ProviderAbort",
    "RejectedContext",
    "Role",
    "State",
    "TransportClosed",
    "check_accept",
    "negotiate",
    "provider_rejection",
    "state_diagram_mermaid",
]
