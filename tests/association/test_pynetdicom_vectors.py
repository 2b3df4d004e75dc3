"""An independent peer's bytes: pynetdicom's encoded A-ASSOCIATE-RQ test vectors go into our
acceptor, and pynetdicom decodes what we answer (an oracle we did not write)."""

from __future__ import annotations

import pytest

from aiodimse.association import AcceptorPolicy, Association, Role, State, negotiate
from aiodimse.pdu import AAssociateAC, AAssociateRQ

from .pair import decode_all

vectors = pytest.importorskip("pynetdicom.tests.encoded_pdu_items")
pdu_mod = pytest.importorskip("pynetdicom.pdu")

NAMES = [
    "a_associate_rq",
    "a_associate_rq_user_async",
    "a_associate_rq_role",
    "a_associate_rq_user_id_user_pass",
    "a_associate_rq_user_id_ext_neg",
    "a_associate_rq_called",
    "a_associate_rq_calling",
]


@pytest.mark.parametrize("name", NAMES)
def test_acceptor_answers_pynetdicom_request(name: str) -> None:
    data: bytes = getattr(vectors, name)
    acc = Association(Role.ACCEPTOR)
    acc.transport_connected(0.0)
    for i in range(len(data)):  # byte by byte
        acc.receive_data(data[i : i + 1], 0.0)
    assert acc.state is State.Sta3
    rq = acc.next_event()
    assert isinstance(rq, AAssociateRQ)
    policy = AcceptorPolicy(
        supported={pc.abstract_syntax: pc.transfer_syntaxes for pc in rq.presentation_contexts},
        scp_roles={r.sop_class_uid: (True, True) for r in rq.user_information.role_selections},
        async_operations_window=(3, 3),
    )
    answer = negotiate(rq, policy)
    assert isinstance(answer, AAssociateAC)
    acc.send(answer, 0.0)
    assert acc.state is State.Sta6
    wire = b"".join(bytes(p) for p in acc.data_to_send())
    assert decode_all([wire]) == [answer]
    theirs = pdu_mod.A_ASSOCIATE_AC()
    theirs.decode(wire)
    assert {i.context_id: i.result for i in theirs.presentation_context} == {
        pc.context_id: 0 for pc in rq.presentation_contexts
    }
    assert theirs.user_information.maximum_length == 4 * 1024 * 1024  # DEFAULT_MAX_PDU


def test_their_mislabelled_vector_is_an_ac_and_gets_aa1() -> None:
    """``a_associate_rq_com_ext_neg`` starts with 02H: an A-ASSOCIATE-AC in Sta2 -> AA-1."""
    from aiodimse.pdu import AAbort

    data: bytes = vectors.a_associate_rq_com_ext_neg
    assert data[0] == 0x02
    acc = Association(Role.ACCEPTOR)
    acc.transport_connected(0.0)
    acc.receive_data(data, 0.0)
    assert acc.state is State.Sta13
    assert decode_all(acc.data_to_send()) == [AAbort(source=0, reason=0)]
