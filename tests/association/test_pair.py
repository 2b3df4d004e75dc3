"""Two sans-I/O associations talking in memory: the PS3.8 9.2 flows and the ROBUSTNESS cases
13-21 that concern the state machine."""

from __future__ import annotations

import pytest

from aiodimse.association import (
    Association,
    CloseRequested,
    ConnectRequested,
    ProviderAbort,
    Role,
    State,
    TransportClosed,
    negotiate,
)
from aiodimse.config import Limits
from aiodimse.constants import IMPLICIT_VR_LITTLE_ENDIAN
from aiodimse.errors import LocalProtocolError
from aiodimse.pdu import (
    PDV,
    AAbort,
    AAssociateAC,
    AAssociateRJ,
    AAssociateRQ,
    AReleaseRP,
    AReleaseRQ,
    PDataTF,
    PresentationContextAC,
    UserInformation,
)
from aiodimse.pdu.codec import encode_pdu

from .pair import Pair, decode_all, kinds, make_policy, make_rq


def drain(assoc: Association) -> list[object]:
    out = []
    while (ev := assoc.next_event()) is not None:
        out.append(ev)
    return out


def pdata(context_id: int, data: bytes, *, command: bool = True) -> PDataTF:
    return PDataTF(pdvs=(PDV(context_id=context_id, is_command=command, is_last=True, data=data),))


@pytest.mark.parametrize("chunk", [None, 1, 7])
def test_associate_accept(chunk: int | None) -> None:
    pair = Pair(chunk=chunk)
    pair.establish()
    assert pair.req.assoc.state is State.Sta6
    assert pair.acc.assoc.state is State.Sta6
    assert kinds(pair.req.events) == ["ConnectRequested", "AAssociateAC"]
    assert kinds(pair.acc.events) == ["AAssociateRQ"]
    req_n, acc_n = pair.req.assoc.negotiated, pair.acc.assoc.negotiated
    assert req_n is not None and acc_n is not None
    assert req_n.accepted == acc_n.accepted
    assert set(req_n.accepted) == {1, 3}
    # Each side sends with the other's maximum length.
    assert req_n.peer_max_pdu == 32768 and acc_n.peer_max_pdu == 16384
    assert req_n.our_max_pdu == 16384 and acc_n.our_max_pdu == 32768
    assert pair.req.assoc.deadline is None and pair.acc.assoc.deadline is None


def test_associate_reject_then_artim_free_close() -> None:
    pair = Pair()
    rq = make_rq(called="SOMEONE-ELSE")
    pair.req.assoc.send(rq, 0.0)
    pair.pump()
    answer = negotiate(rq, make_policy())
    assert answer == AAssociateRJ(result=1, source=1, reason=7)
    pair.acc.assoc.send(answer, 0.0)
    assert pair.acc.assoc.state is State.Sta13  # AE-8
    assert pair.acc.assoc.deadline == 30.0
    pair.pump()
    assert kinds(pair.req.events) == ["ConnectRequested", "AAssociateRJ", "CloseRequested"]
    assert pair.req.assoc.state is State.Sta1  # AE-4
    # The requestor closed; the acceptor's Sta13 ends with AR-5.
    assert pair.acc.assoc.state is State.Sta1
    assert pair.acc.assoc.deadline is None
    assert kinds(pair.acc.take()) == ["AAssociateRQ", "TransportClosed"]


def test_release_normal() -> None:
    pair = Pair()
    pair.establish()
    pair.req.take(), pair.acc.take()
    pair.req.assoc.send(AReleaseRQ(), 1.0)
    assert pair.req.assoc.state is State.Sta7
    pair.pump()
    assert kinds(pair.acc.take()) == ["AReleaseRQ"]
    assert pair.acc.assoc.state is State.Sta8
    pair.acc.assoc.send(AReleaseRP(), 1.0)
    assert pair.acc.assoc.state is State.Sta13
    pair.pump()
    assert kinds(pair.req.take()) == ["AReleaseRP", "CloseRequested"]
    assert kinds(pair.acc.take()) == ["TransportClosed"]
    assert pair.req.assoc.state is State.Sta1 and pair.acc.assoc.state is State.Sta1


@pytest.mark.parametrize("who", ["req", "acc"])
def test_user_abort(who: str) -> None:
    pair = Pair()
    pair.establish()
    pair.req.take(), pair.acc.take()
    me, peer = (pair.req, pair.acc) if who == "req" else (pair.acc, pair.req)
    me.assoc.send(AAbort(source=0, reason=0), 2.0)
    assert me.assoc.state is State.Sta13  # AA-1
    assert me.assoc.deadline == 32.0
    pair.pump()
    assert peer.take() == [AAbort(source=0, reason=0), CloseRequested()]
    assert kinds(me.take()) == ["TransportClosed"]
    assert me.assoc.state is State.Sta1 and peer.assoc.state is State.Sta1


def test_release_collision_completes_as_release_on_both_sides() -> None:
    """ROBUSTNESS 16: both send A-RELEASE-RQ at once (AR-8, Sta9..Sta12)."""
    pair = Pair()
    pair.establish()
    pair.req.take(), pair.acc.take()
    pair.req.assoc.send(AReleaseRQ(), 1.0)
    pair.acc.assoc.send(AReleaseRQ(), 1.0)
    assert pair.req.assoc.state is State.Sta7 and pair.acc.assoc.state is State.Sta7
    # Cross the two A-RELEASE-RQs.
    to_acc = pair.req.assoc.data_to_send()
    to_req = pair.acc.assoc.data_to_send()
    for part in to_req:
        pair.req.assoc.receive_data(part, 1.0)
    for part in to_acc:
        pair.acc.assoc.receive_data(part, 1.0)
    # Requestor: Sta7 -AR-8-> Sta9 -AR-9 (automatic)-> Sta11. Acceptor: AR-8 -> Sta10.
    assert pair.req.assoc.state is State.Sta11
    assert pair.acc.assoc.state is State.Sta10
    rp_parts = pair.req.assoc.data_to_send()
    assert decode_all(rp_parts) == [AReleaseRP()]
    for part in rp_parts:
        pair.acc.assoc.receive_data(part, 1.0)
    # Acceptor: AR-10 -> Sta12 -AR-4 (automatic)-> Sta13, sending its A-RELEASE-RP.
    assert pair.acc.assoc.state is State.Sta13
    rp = pair.acc.assoc.data_to_send()
    assert decode_all(rp) == [AReleaseRP()]
    for part in rp:
        pair.req.assoc.receive_data(part, 1.0)
    # Requestor: AR-3 -> Sta1, close.
    assert pair.req.assoc.state is State.Sta1
    assert kinds(drain(pair.req.assoc)) == ["AReleaseRP", "CloseRequested"]
    assert kinds(drain(pair.acc.assoc)) == ["AReleaseRP"]
    pair.close()
    assert pair.acc.assoc.state is State.Sta1
    assert kinds(pair.acc.take()) == ["TransportClosed"]


def test_release_collision_through_pump() -> None:
    pair = Pair()
    pair.establish()
    pair.req.take(), pair.acc.take()
    pair.req.assoc.send(AReleaseRQ(), 1.0)
    pair.acc.assoc.send(AReleaseRQ(), 1.0)
    pair.pump()
    assert "AReleaseRQ" not in kinds(pair.req.events) + kinds(pair.acc.events)
    assert "AReleaseRP" in kinds(pair.req.events) and "AReleaseRP" in kinds(pair.acc.events)
    assert pair.req.assoc.state is State.Sta1 and pair.acc.assoc.state is State.Sta1


def test_pdata_both_directions_without_copy() -> None:
    pair = Pair()
    pair.establish()
    pair.req.take(), pair.acc.take()
    payload = bytearray(b"\x01\x02" * 1000)
    view = memoryview(payload)
    msg = pdata(1, view)  # type: ignore[arg-type]
    pair.req.assoc.send(msg, 1.0)
    parts = pair.req.assoc.data_to_send()
    assert any(p is view for p in parts)  # the payload is passed through, not copied
    for p in parts:
        pair.acc.assoc.receive_data(p, 1.0)
    got = pair.acc.take()
    assert len(got) == 1 and isinstance(got[0], PDataTF)
    assert bytes(got[0].pdvs[0].data) == bytes(payload)
    pair.acc.assoc.send(pdata(3, b"dataset", command=False), 1.0)
    pair.pump()
    (back,) = pair.req.take()
    assert isinstance(back, PDataTF)
    assert back.pdvs[0].context_id == 3 and bytes(back.pdvs[0].data) == b"dataset"
    assert not back.pdvs[0].is_command


def test_pdata_after_our_release_request_is_delivered() -> None:
    """ROBUSTNESS 15: in Sta7 the peer's P-DATA is still indicated (AR-6)."""
    pair = Pair()
    pair.establish()
    pair.req.take(), pair.acc.take()
    pair.req.assoc.send(AReleaseRQ(), 1.0)
    pair.pump()
    assert pair.acc.assoc.state is State.Sta8
    pair.acc.assoc.send(pdata(1, b"late response"), 1.0)  # AR-7
    pair.acc.assoc.send(AReleaseRP(), 1.0)
    pair.pump()
    events = pair.req.take()
    assert kinds(events) == ["PDataTF", "AReleaseRP", "CloseRequested"]


def test_peer_never_answers_release_then_abort_and_artim() -> None:
    """ROBUSTNESS 17: the shell's release timeout aborts; ARTIM closes if the peer stays."""
    pair = Pair(artim_timeout=5.0)
    pair.establish()
    req = pair.req.assoc
    req.send(AReleaseRQ(), 10.0)
    req.data_to_send()  # the peer never sees it and never answers
    assert req.state is State.Sta7 and req.deadline is None
    req.send(AAbort(source=0, reason=0), 40.0)  # the shell's release timeout fired
    assert decode_all(req.data_to_send()) == [AAbort(source=0, reason=0)]
    assert req.state is State.Sta13 and req.deadline == 45.0
    req.handle_timeout(44.9)
    assert req.state is State.Sta13
    req.handle_timeout(45.0)  # Evt18 -> AA-2
    assert req.state is State.Sta1 and req.deadline is None and req.wants_close
    # Since the association was established: no indication but the close request.
    assert kinds(pair.req.take()) == ["ConnectRequested", "AAssociateAC", "CloseRequested"]


def test_artim_in_sta2_connection_then_silence() -> None:
    """ROBUSTNESS 18: TCP accepted, no A-ASSOCIATE-RQ: AE-5 starts ARTIM, AA-2 closes."""
    acc = Association(Role.ACCEPTOR, artim_timeout=10.0)
    acc.transport_connected(100.0)
    assert acc.state is State.Sta2 and acc.deadline == 110.0
    acc.receive_data(b"\x01\x00", 105.0)  # half a header, then silence
    acc.handle_timeout(109.0)
    assert acc.state is State.Sta2
    acc.handle_timeout(110.0)
    assert acc.state is State.Sta1 and acc.wants_close
    assert acc.next_event() == CloseRequested() and acc.next_event() is None
    assert acc.data_to_send() == []
    acc.transport_closed(110.5)  # the shell closed it: nothing more happens
    assert acc.next_event() is None and acc.state is State.Sta1


@pytest.mark.parametrize("ending", ["reject", "release", "abort"])
def test_artim_in_sta13_when_peer_does_not_close(ending: str) -> None:
    """ROBUSTNESS 19: after RJ / RELEASE-RP / ABORT, ARTIM closes a peer that stays."""
    pair = Pair(artim_timeout=3.0)
    if ending == "reject":
        rq = make_rq(called="NOBODY")
        pair.req.assoc.send(rq, 0.0)
        pair.pump()
        pair.acc.assoc.send(negotiate(rq, make_policy()), 1.0)
    else:
        pair.establish()
        if ending == "release":
            pair.req.assoc.send(AReleaseRQ(), 0.0)
            pair.pump()
            pair.acc.assoc.send(AReleaseRP(), 1.0)
        else:
            pair.acc.assoc.send(AAbort(source=0, reason=0), 1.0)
    acc = pair.acc.assoc
    assert acc.state is State.Sta13 and acc.deadline == 4.0
    acc.data_to_send()  # written, but the peer neither answers nor closes
    acc.handle_timeout(4.0)
    assert acc.state is State.Sta1 and acc.wants_close and acc.deadline is None


def test_associate_rq_on_established_association_is_aa8() -> None:
    """ROBUSTNESS 14: A-ASSOCIATE-RQ in Sta6 -> AA-8: A-ABORT(2, 2), Sta13, ARTIM."""
    pair = Pair()
    pair.establish()
    pair.acc.take()
    acc = pair.acc.assoc
    acc.receive_data(encode_pdu(make_rq()), 5.0)
    assert acc.state is State.Sta13 and acc.deadline == 35.0
    assert decode_all(acc.data_to_send()) == [AAbort(source=2, reason=2)]
    (event,) = pair.acc.take()
    assert isinstance(event, ProviderAbort) and event.reason == 2 and not event.received
    # Sta13: another RQ is answered by AA-7, a P-DATA is ignored (AA-6).
    acc.receive_data(encode_pdu(pdata(1, b"x")), 6.0)
    assert acc.data_to_send() == [] and acc.state is State.Sta13


def test_ac_accepting_unproposed_context_is_aborted() -> None:
    """ROBUSTNESS 20: never established; A-ABORT(2, 6)."""
    req = Association(Role.REQUESTOR)
    rq = make_rq()
    req.send(rq, 0.0)
    req.transport_connected(0.0)
    req.data_to_send()
    ac = AAssociateAC(
        called_ae_title="STORESCP",
        calling_ae_title="STORESCU",
        presentation_contexts=(
            PresentationContextAC(
                context_id=5, result=0, transfer_syntax=IMPLICIT_VR_LITTLE_ENDIAN
            ),
        ),
        user_information=rq.user_information,
    )
    req.receive_data(encode_pdu(ac), 1.0)
    assert req.state is State.Sta13 and req.negotiated is None
    assert decode_all(req.data_to_send()) == [AAbort(source=2, reason=6)]
    events = [req.next_event() for _ in range(2)]
    assert isinstance(events[1], ProviderAbort) and events[1].reason == 6
    assert not any(isinstance(e, AAssociateAC) for e in events)


def test_ac_with_transfer_syntax_not_offered_is_aborted() -> None:
    req = Association(Role.REQUESTOR)
    rq = make_rq()
    req.send(rq, 0.0)
    req.transport_connected(0.0)
    req.data_to_send()
    ac = AAssociateAC(
        called_ae_title="STORESCP",
        calling_ae_title="STORESCU",
        presentation_contexts=(
            PresentationContextAC(context_id=1, result=0, transfer_syntax="1.2.840.10008.1.2.2"),
        ),
        user_information=rq.user_information,
    )
    req.receive_data(encode_pdu(ac), 1.0)
    assert req.state is State.Sta13
    assert decode_all(req.data_to_send()) == [AAbort(source=2, reason=6)]


def test_protocol_version_without_bit0_is_rejected_by_the_provider() -> None:
    """ROBUSTNESS 12 / PS3.8 9.3.2: AE-6 'not acceptable' -> RJ(1, 2, 2), Sta13, ARTIM."""
    acc = Association(Role.ACCEPTOR)
    acc.transport_connected(0.0)
    acc.receive_data(encode_pdu(make_rq(protocol_version=2), strict=False), 1.0)
    assert acc.state is State.Sta13 and acc.deadline == 31.0
    assert decode_all(acc.data_to_send()) == [AAssociateRJ(result=1, source=2, reason=2)]
    assert acc.next_event() is None  # the user never saw it


@pytest.mark.parametrize(
    "garbage",
    [
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
        b"\x16\x03\x01\x02\x00\x01",
        b"\x04\x00\xff\xff\xff\xff",
    ],
)
def test_garbage_in_sta2_is_aa1(garbage: bytes) -> None:
    acc = Association(Role.ACCEPTOR)
    acc.transport_connected(0.0)
    acc.receive_data(garbage, 1.0)
    assert acc.state is State.Sta13
    assert decode_all(acc.data_to_send()) == [AAbort(source=0, reason=0)]  # AA-1
    acc.receive_data(encode_pdu(make_rq()), 2.0)  # nothing more is decoded
    assert acc.data_to_send() == [] and acc.next_event() is None


def test_garbage_when_established_is_aa8_with_decoder_reason() -> None:
    pair = Pair()
    pair.establish()
    pair.acc.take()
    acc = pair.acc.assoc
    acc.receive_data(b"\x09\x00\x00\x00\x00\x04abcd", 1.0)  # unknown PDU type
    assert acc.state is State.Sta13
    (abort,) = decode_all(acc.data_to_send())
    assert isinstance(abort, AAbort) and abort.source == 2 and abort.reason == 1
    (event,) = pair.acc.take()
    assert isinstance(event, ProviderAbort) and event.reason == 1


def test_pdata_on_unaccepted_context_is_aborted() -> None:
    pair = Pair()
    pair.establish()
    pair.acc.take()
    acc = pair.acc.assoc
    acc.receive_data(encode_pdu(pdata(7, b"x")), 1.0)
    assert acc.state is State.Sta13
    assert decode_all(acc.data_to_send()) == [AAbort(source=2, reason=6)]


def test_pdata_longer_than_our_maximum_is_aborted() -> None:
    """ROBUSTNESS 2: the decoder enforces what we advertised."""
    limits = Limits(max_pdu_length=4096)
    pair = Pair(limits=limits)
    pair.establish(
        make_rq(max_pdu=4096),
        make_policy(user_information=UserInformation(), limits=limits),
    )
    acc = pair.acc.assoc
    acc.receive_data(encode_pdu(pdata(1, bytes(5000))), 1.0)
    assert acc.state is State.Sta13
    (abort,) = decode_all(acc.data_to_send())
    assert isinstance(abort, AAbort) and (abort.source, abort.reason) == (2, 6)


def test_transport_lost_mid_association() -> None:
    pair = Pair()
    pair.establish()
    pair.req.take()
    pair.req.assoc.transport_closed(3.0)
    events = pair.req.take()
    assert isinstance(events[0], ProviderAbort) and not events[0].received  # AA-4
    assert events[1:] == [TransportClosed()]
    assert pair.req.assoc.state is State.Sta1


def test_peer_provider_abort_is_a_p_abort() -> None:
    pair = Pair()
    pair.establish()
    pair.req.take()
    pair.req.assoc.receive_data(encode_pdu(AAbort(source=2, reason=4)), 1.0)
    ev = pair.req.take()
    assert ev == [
        ProviderAbort(reason=4, received=True, detail="A-ABORT from the peer's service provider"),
        CloseRequested(),
    ]


def test_zero_copy_receive_path() -> None:
    pair = Pair()
    rq = make_rq()
    pair.req.assoc.send(rq, 0.0)
    pair.req.assoc.next_event()
    acc = pair.acc.assoc
    acc.transport_connected(0.0)
    pair.req.assoc.transport_connected(0.0)
    data = b"".join(bytes(p) for p in pair.req.assoc.data_to_send())
    for i in range(0, len(data), 10):
        piece = data[i : i + 10]
        buf = acc.get_buffer(len(piece))
        buf[: len(piece)] = piece
        acc.buffer_updated(len(piece), 0.0)
    assert acc.state is State.Sta3 and acc.next_event() == rq


def test_local_misuse_raises_and_changes_nothing() -> None:
    req = Association(Role.REQUESTOR)
    with pytest.raises(LocalProtocolError):
        req.send(pdata(1, b"x"), 0.0)  # Evt9 in Sta1
    with pytest.raises(LocalProtocolError):
        req.send(AReleaseRQ(), 0.0)
    with pytest.raises(LocalProtocolError):
        req.transport_connected(0.0)  # Evt2 only in Sta4
    with pytest.raises(LocalProtocolError):
        req.send("not a PDU", 0.0)  # type: ignore[arg-type]
    assert req.state is State.Sta1 and req.data_to_send() == [] and req.next_event() is None
    acc = Association(Role.ACCEPTOR)
    with pytest.raises(LocalProtocolError):
        acc.send(make_rq(), 0.0)  # an acceptor cannot request

    pair = Pair()
    pair.establish()
    with pytest.raises(LocalProtocolError):
        pair.req.assoc.send(pdata(5, b"x"), 0.0)  # context never proposed
    with pytest.raises(LocalProtocolError):
        pair.req.assoc.send(pdata(1, bytes(40000)), 0.0)  # over the peer's 32768
    with pytest.raises(LocalProtocolError):
        pair.req.assoc.send(PDataTF(pdvs=()), 0.0)
    with pytest.raises(LocalProtocolError):
        pair.req.assoc.send(make_rq(), 0.0)  # Evt1 in Sta6
    assert pair.req.assoc.state is State.Sta6 and pair.req.assoc.data_to_send() == []


def test_acceptor_ac_must_answer_the_rq() -> None:
    pair = Pair()
    rq = make_rq()
    pair.req.assoc.send(rq, 0.0)
    pair.pump()
    bad = AAssociateAC(
        called_ae_title="STORESCP",
        calling_ae_title="STORESCU",
        presentation_contexts=(
            PresentationContextAC(
                context_id=9, result=0, transfer_syntax=IMPLICIT_VR_LITTLE_ENDIAN
            ),
        ),
        user_information=make_policy().user_information,
    )
    with pytest.raises(LocalProtocolError):
        pair.acc.assoc.send(bad, 0.0)
    assert pair.acc.assoc.state is State.Sta3


def test_rq_with_unlimited_maximum_is_refused_locally() -> None:
    req = Association(Role.REQUESTOR)
    with pytest.raises(LocalProtocolError):
        req.send(make_rq(max_pdu=0), 0.0)  # we would have to accept any PDU size


def test_transport_connect_failure() -> None:
    req = Association(Role.REQUESTOR)
    req.send(make_rq(), 0.0)
    assert req.state is State.Sta4 and req.wants_transport_open
    assert req.next_event() == ConnectRequested()
    req.transport_closed(1.0)  # connect failed: AA-4
    assert req.state is State.Sta1 and not req.wants_transport_open
    assert isinstance(req.next_event(), ProviderAbort)
    assert req.next_event() == TransportClosed()


def test_abort_before_connected() -> None:
    req = Association(Role.REQUESTOR)
    req.send(make_rq(), 0.0)
    req.send(AAbort(source=0, reason=0), 0.5)  # Evt15 in Sta4 -> AA-2
    assert req.state is State.Sta1 and req.wants_close and req.data_to_send() == []


def test_reuse_after_close() -> None:
    pair = Pair()
    pair.establish()
    pair.req.assoc.send(AAbort(source=0, reason=0), 1.0)
    pair.pump()
    assert pair.req.assoc.state is State.Sta1 and pair.acc.assoc.state is State.Sta1
    pair.req.take(), pair.acc.take()
    pair.establish()
    assert pair.req.assoc.state is State.Sta6 and pair.acc.assoc.state is State.Sta6


def test_received_rq_is_the_request() -> None:
    pair = Pair()
    rq = make_rq()
    pair.req.assoc.send(rq, 0.0)
    pair.pump()
    assert pair.acc.assoc.request == rq == pair.req.assoc.request
    assert isinstance(pair.acc.events[0], AAssociateRQ)


def test_pdus_behind_an_rq_wait_for_the_users_answer() -> None:
    """Pausing in Sta3: the user's A-ASSOCIATE response is never refused because later bytes
    of the same read already changed the state; those bytes are processed after it."""
    acc = Association(Role.ACCEPTOR)
    acc.transport_connected(0.0)
    rq = make_rq()
    acc.receive_data(encode_pdu(rq) + encode_pdu(rq), 1.0)  # a second RQ right behind
    assert acc.state is State.Sta3 and acc.next_event() == rq
    acc.send(negotiate(rq, make_policy()), 2.0)
    # AC went out, then the second RQ was processed in Sta6: AA-8, A-ABORT(2, 2).
    sent = decode_all(acc.data_to_send())
    assert isinstance(sent[0], AAssociateAC) and sent[1:] == [AAbort(source=2, reason=2)]
    assert acc.state is State.Sta13


def test_pausing_is_bounded() -> None:
    acc = Association(Role.ACCEPTOR)
    acc.transport_connected(0.0)
    acc.receive_data(encode_pdu(make_rq()), 1.0)
    assert acc.state is State.Sta3
    flood = encode_pdu(pdata(1, bytes(60000)))
    acc.receive_data(flood, 1.0)
    assert acc.state is State.Sta3  # still waiting: 60 kB is within the bound
    acc.receive_data(flood, 1.0)  # more than 64 KiB buffered: processed now (AA-8 in Sta3)
    assert acc.state is State.Sta13
    assert decode_all(acc.data_to_send()) == [AAbort(source=2, reason=2)]


def test_release_indication_pauses_until_answered() -> None:
    pair = Pair()
    pair.establish()
    pair.acc.take()
    acc = pair.acc.assoc
    acc.receive_data(encode_pdu(AReleaseRQ()) + encode_pdu(AAbort(source=0, reason=0)), 1.0)
    assert acc.state is State.Sta8 and kinds(pair.acc.take()) == ["AReleaseRQ"]
    acc.send(AReleaseRP(), 2.0)  # accepted; then the A-ABORT is processed in Sta13 (AA-2)
    assert acc.state is State.Sta1 and acc.wants_close
    assert decode_all(acc.data_to_send()) == [AReleaseRP()]
