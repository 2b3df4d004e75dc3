"""Two sans-I/O associations wired together in memory (like h11's ConnectionPair).

``Pair`` plays the transport: it connects the acceptor when the requestor asks (AE-1), moves
bytes both ways, and closes both ends when either asks to close. It never answers for the
user: tests decide what each side sends. Events are recorded per side in ``events``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from aiodimse.association import (
    AcceptorPolicy,
    Association,
    AssociationEvent,
    CloseRequested,
    ConnectRequested,
    Role,
)
from aiodimse.config import Limits
from aiodimse.constants import (
    EXPLICIT_VR_LITTLE_ENDIAN,
    IMPLICIT_VR_LITTLE_ENDIAN,
    VERIFICATION_SOP_CLASS,
)
from aiodimse.pdu import (
    PDU,
    AAssociateRQ,
    ImplementationClassUID,
    MaximumLength,
    PresentationContextRQ,
    UserInformation,
    UserInformationSubItem,
)
from aiodimse.pdu.codec import PDUDecoder

CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
IMPL_UID = "1.2.826.0.1.3680043.9.7433.1.1"


def make_rq(
    contexts: Sequence[tuple[int, str, Sequence[str]]] = (
        (1, VERIFICATION_SOP_CLASS, (IMPLICIT_VR_LITTLE_ENDIAN,)),
        (3, CT_IMAGE_STORAGE, (EXPLICIT_VR_LITTLE_ENDIAN, IMPLICIT_VR_LITTLE_ENDIAN)),
    ),
    *,
    called: str = "STORESCP",
    calling: str = "STORESCU",
    max_pdu: int = 16384,
    extra: Iterable[UserInformationSubItem] = (),
    protocol_version: int = 1,
) -> AAssociateRQ:
    return AAssociateRQ(
        called_ae_title=called,
        calling_ae_title=calling,
        presentation_contexts=tuple(
            PresentationContextRQ(context_id=cid, abstract_syntax=a, transfer_syntaxes=tuple(ts))
            for cid, a, ts in contexts
        ),
        user_information=UserInformation(
            sub_items=(
                MaximumLength(maximum_length=max_pdu),
                ImplementationClassUID(uid=IMPL_UID),
                *extra,
            )
        ),
        protocol_version=protocol_version,
    )


def make_policy(**kw: object) -> AcceptorPolicy:
    defaults: dict[str, object] = {
        "ae_title": "STORESCP",
        "supported": {
            VERIFICATION_SOP_CLASS: (IMPLICIT_VR_LITTLE_ENDIAN,),
            CT_IMAGE_STORAGE: (EXPLICIT_VR_LITTLE_ENDIAN, IMPLICIT_VR_LITTLE_ENDIAN),
        },
        "user_information": UserInformation(
            sub_items=(MaximumLength(maximum_length=32768), ImplementationClassUID(uid=IMPL_UID))
        ),
    }
    defaults.update(kw)
    return AcceptorPolicy(**defaults)  # type: ignore[arg-type]


def decode_all(parts: Iterable[bytes | memoryview], limits: Limits | None = None) -> list[PDU]:
    """Decode a byte stream completely (raises if anything is invalid or left over)."""
    dec = PDUDecoder(limits or Limits(max_pdu_length=1 << 24))
    for p in parts:
        dec.feed(p)
    out = []
    while (pdu := dec.next_pdu()) is not None:
        out.append(pdu)
    assert dec.buffered_bytes == 0, "trailing bytes"
    return out


@dataclass
class Side:
    assoc: Association
    events: list[AssociationEvent] = field(default_factory=list)
    sent: list[PDU] = field(default_factory=list)

    def take(self) -> list[AssociationEvent]:
        """Recorded events plus any not yet collected from the association (drained)."""
        while (ev := self.assoc.next_event()) is not None:
            self.events.append(ev)
        out, self.events = self.events, []
        return out


class Pair:
    """A requestor and an acceptor joined by an in-memory transport."""

    def __init__(
        self,
        *,
        limits: Limits | None = None,
        artim_timeout: float = 30.0,
        chunk: int | None = None,
    ) -> None:
        limits = limits or Limits()
        self.now = 0.0
        self.chunk = chunk  # deliver bytes in pieces of this size (None: as written)
        self.req = Side(Association(Role.REQUESTOR, limits=limits, artim_timeout=artim_timeout))
        self.acc = Side(Association(Role.ACCEPTOR, limits=limits, artim_timeout=artim_timeout))
        self.connected = False
        self.closed = False

    def _deliver(self, src: Side, dst: Side) -> bool:
        parts = src.assoc.data_to_send()
        if not parts:
            return False
        src.sent.extend(decode_all(parts))
        data = b"".join(bytes(p) for p in parts)
        if not self.connected or self.closed:
            return True  # nowhere to go
        step = self.chunk or len(data)
        for i in range(0, len(data), step):
            dst.assoc.receive_data(data[i : i + step], self.now)
        return True

    def _collect(self, side: Side) -> bool:
        moved = False
        while (ev := side.assoc.next_event()) is not None:
            moved = True
            side.events.append(ev)
            if isinstance(ev, ConnectRequested):
                # The acceptor's listener accepts first (Evt5), then the requestor's connect
                # completes (Evt2).
                self.connected = True
                self.closed = False
                self.acc.assoc.transport_connected(self.now)
                self.req.assoc.transport_connected(self.now)
        return moved

    def pump(self, rounds: int = 50) -> None:
        """Move bytes and transport events until nothing changes."""
        for _ in range(rounds):
            moved = self._collect(self.req) | self._collect(self.acc)
            moved |= self._deliver(self.req, self.acc) | self._deliver(self.acc, self.req)
            moved |= self._collect(self.req) | self._collect(self.acc)
            closing = [s for s in (self.req, self.acc) if s.assoc.wants_close]
            if closing and self.connected and not self.closed:
                self.close()
                moved = True
            if not moved:
                return
        raise AssertionError("pump did not settle")

    def close(self) -> None:
        """The transport closes under both ends (after what was written was delivered)."""
        self._deliver(self.req, self.acc)
        self._deliver(self.acc, self.req)
        self.closed = True
        self.req.assoc.transport_closed(self.now)
        self.acc.assoc.transport_closed(self.now)
        self._collect(self.req)
        self._collect(self.acc)

    def establish(
        self, rq: AAssociateRQ | None = None, policy: AcceptorPolicy | None = None
    ) -> None:
        """Requestor sends ``rq``; acceptor answers it with :func:`negotiate` under ``policy``."""
        from aiodimse.association import negotiate

        rq = rq or make_rq()
        self.req.assoc.send(rq, self.now)
        self.pump()
        got = [e for e in self.acc.events if isinstance(e, AAssociateRQ)]
        assert got == [rq]
        self.acc.assoc.send(negotiate(rq, policy or make_policy()), self.now)
        self.pump()


def kinds(events: Iterable[object]) -> list[str]:
    return [type(e).__name__ for e in events]


__all__ = ["CloseRequested", "Pair", "Side", "decode_all", "kinds", "make_policy", "make_rq"]
