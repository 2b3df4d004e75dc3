"""pynetdicom as an independent oracle, both directions.

* pynetdicom encodes -> we decode to the same field values and re-encode byte-identical;
* we encode (golden vectors and hypothesis values) -> pynetdicom decodes the same values.
"""

from __future__ import annotations

from typing import Any

import pynetdicom.pdu as pn
import pynetdicom.pdu_primitives as pp
import pytest
from hypothesis import given, settings
from pynetdicom.presentation import PresentationContext

from aiodimse.pdu import (
    AAbort,
    AAssociateAC,
    AAssociateRJ,
    AAssociateRQ,
    AReleaseRP,
    AReleaseRQ,
    AsynchronousOperationsWindow,
    ImplementationClassUID,
    ImplementationVersionName,
    MaximumLength,
    PDataTF,
    RoleSelection,
    SOPClassCommonExtendedNegotiation,
    SOPClassExtendedNegotiation,
    UserIdentityAC,
    UserIdentityRQ,
    UserInformationSubItem,
    decode_pdu,
    encode_pdu,
)
from aiodimse.pdu.pdus import PDU
from tests.pdu import strategies as s
from tests.pdu.vectors import PDU_VECTORS

# --- one normal form for both implementations ------------------------------------------------


def _ours_sub(item: UserInformationSubItem) -> tuple[Any, ...]:
    if isinstance(item, MaximumLength):
        return (0x51, item.maximum_length)
    if isinstance(item, ImplementationClassUID):
        return (0x52, item.uid)
    if isinstance(item, AsynchronousOperationsWindow):
        return (0x53, item.max_operations_invoked, item.max_operations_performed)
    if isinstance(item, RoleSelection):
        return (0x54, item.sop_class_uid, item.scu_role, item.scp_role)
    if isinstance(item, ImplementationVersionName):
        return (0x55, item.name)
    if isinstance(item, SOPClassExtendedNegotiation):
        return (0x56, item.sop_class_uid, bytes(item.service_class_application_information))
    if isinstance(item, SOPClassCommonExtendedNegotiation):
        return (
            0x57,
            item.sop_class_uid,
            item.service_class_uid,
            tuple(item.related_general_sop_class_uids),
        )
    if isinstance(item, UserIdentityRQ):
        return (
            0x58,
            item.identity_type,
            item.positive_response_requested,
            bytes(item.primary_field),
            bytes(item.secondary_field),
        )
    assert isinstance(item, UserIdentityAC)
    return (0x59, bytes(item.server_response))


def ours(pdu: PDU) -> tuple[Any, ...]:
    if isinstance(pdu, AAssociateRQ):
        contexts: list[tuple[Any, ...]] = [
            (c.context_id, c.abstract_syntax, tuple(c.transfer_syntaxes))
            for c in pdu.presentation_contexts
        ]
    elif isinstance(pdu, AAssociateAC):
        contexts = [(c.context_id, c.result, c.transfer_syntax) for c in pdu.presentation_contexts]
    if isinstance(pdu, AAssociateRQ | AAssociateAC):
        return (
            type(pdu).__name__,
            pdu.protocol_version,
            pdu.called_ae_title,
            pdu.calling_ae_title,
            pdu.application_context,
            contexts,
            [_ours_sub(i) for i in pdu.user_information.sub_items],
        )
    if isinstance(pdu, AAssociateRJ):
        return ("AAssociateRJ", pdu.result, pdu.source, pdu.reason)
    if isinstance(pdu, PDataTF):
        return (
            "PDataTF",
            [
                (p.context_id, bytes([p.is_command | p.is_last << 1]) + bytes(p.data))
                for p in pdu.pdvs
            ],
        )
    if isinstance(pdu, AAbort):
        return ("AAbort", pdu.source, pdu.reason)
    return (type(pdu).__name__,)


def _their_sub(item: Any) -> tuple[Any, ...]:
    name = type(item).__name__
    if name == "MaximumLengthSubItem":
        return (0x51, item.maximum_length_received)
    if name == "ImplementationClassUIDSubItem":
        return (0x52, str(item.implementation_class_uid))
    if name == "AsynchronousOperationsWindowSubItem":
        return (
            0x53,
            item.maximum_number_operations_invoked,
            item.maximum_number_operations_performed,
        )
    if name == "SCP_SCU_RoleSelectionSubItem":
        return (0x54, str(item.sop_class_uid), item.scu_role, item.scp_role)
    if name == "ImplementationVersionNameSubItem":
        version = item.implementation_version_name
        return (0x55, version.decode() if isinstance(version, bytes) else version)
    if name == "SOPClassExtendedNegotiationSubItem":
        return (0x56, str(item.sop_class_uid), item.service_class_application_information)
    if name == "SOPClassCommonExtendedNegotiationSubItem":
        return (
            0x57,
            str(item.sop_class_uid),
            str(item.service_class_uid),
            tuple(str(u) for u in item.related_general_sop_class_identification),
        )
    if name == "UserIdentitySubItemRQ":
        return (
            0x58,
            item.user_identity_type,
            bool(item.positive_response_requested),
            item.primary_field,
            item.secondary_field or b"",
        )
    assert name == "UserIdentitySubItemAC", name
    return (0x59, item.server_response)


def theirs(wire: bytes) -> tuple[Any, ...]:
    kind = wire[0]
    if kind in (1, 2):
        if kind == 1:
            rq = pn.A_ASSOCIATE_RQ()
            rq.decode(wire)
            contexts: list[tuple[Any, ...]] = [
                (c.context_id, str(c.abstract_syntax), tuple(str(t) for t in c.transfer_syntax))
                for c in rq.presentation_context
            ]
            called, calling = rq.called_ae_title, rq.calling_ae_title
            version, app, info = (
                rq.protocol_version,
                rq.application_context_name,
                rq.user_information,
            )
        else:
            ac = pn.A_ASSOCIATE_AC()
            ac.decode(wire)
            contexts = [
                (
                    c.context_id,
                    c.result_reason,
                    None if c.transfer_syntax is None else str(c.transfer_syntax),
                )
                for c in ac.presentation_context
            ]
            called, calling = ac.reserved_aet, ac.reserved_aec
            version, app, info = (
                ac.protocol_version,
                ac.application_context_name,
                ac.user_information,
            )
        return (
            "AAssociateRQ" if kind == 1 else "AAssociateAC",
            version,
            called,
            calling,
            str(app),
            contexts,
            [_their_sub(i) for i in (info.user_data if info else [])],
        )
    if kind == 3:
        rj = pn.A_ASSOCIATE_RJ()
        rj.decode(wire)
        return ("AAssociateRJ", rj.result, rj.source, rj.reason_diagnostic)
    if kind == 4:
        pd = pn.P_DATA_TF()
        pd.decode(wire)
        return (
            "PDataTF",
            [
                (i.presentation_context_id, i.presentation_data_value)
                for i in pd.presentation_data_value_items
            ],
        )
    if kind == 5:
        pn.A_RELEASE_RQ().decode(wire)
        return ("AReleaseRQ",)
    if kind == 6:
        pn.A_RELEASE_RP().decode(wire)
        return ("AReleaseRP",)
    ab = pn.A_ABORT_RQ()
    ab.decode(wire)
    return ("AAbort", ab.source, ab.reason_diagnostic)


# --- pynetdicom encodes, we decode ------------------------------------------------------------


def _user_information(for_rq: bool) -> list[Any]:
    ml = pp.MaximumLengthNotification()
    ml.maximum_length_received = 16382
    ic = pp.ImplementationClassUIDNotification()
    ic.implementation_class_uid = "1.2.826.0.1.3680043.9.3811.3.0.4"
    aw = pp.AsynchronousOperationsWindowNegotiation()
    aw.maximum_number_operations_invoked = 3
    aw.maximum_number_operations_performed = 2
    roles = []
    for uid, scu, scp in [
        ("1.2.840.10008.5.1.4.1.1.2", True, False),
        ("1.2.840.10008.1.1", True, True),
    ]:
        rs = pp.SCP_SCU_RoleSelectionNegotiation()
        rs.sop_class_uid = uid
        rs.scu_role = scu
        rs.scp_role = scp
        roles.append(rs)
    iv = pp.ImplementationVersionNameNotification()
    iv.implementation_version_name = "PYNETDICOM_304"
    en = pp.SOPClassExtendedNegotiation()
    en.sop_class_uid = "1.2.840.10008.5.1.4.1.2.1.1"
    en.service_class_application_information = b"\x01\x01"
    items = [ml, ic, aw, *roles, iv, en]
    if for_rq:
        ce = pp.SOPClassCommonExtendedNegotiation()
        ce.sop_class_uid = "1.2.840.10008.5.1.4.1.1.88.40"
        ce.service_class_uid = "1.2.840.10008.4.2"
        ce.related_general_sop_class_identification = ["1.2.840.10008.5.1.4.1.1.88.22", "1.2.3"]
        ui = pp.UserIdentityNegotiation()
        ui.user_identity_type = 2
        ui.positive_response_requested = True
        ui.primary_field = b"user"
        ui.secondary_field = b"secret"
        items += [ce, ui]
    else:
        ui = pp.UserIdentityNegotiation()
        ui.server_response = b"token-123"
        items.append(ui)
    return items


def _pynetdicom_rq() -> bytes:
    prim = pp.A_ASSOCIATE()
    prim.application_context_name = "1.2.840.10008.3.1.1.1"
    prim.calling_ae_title = "STORESCU"
    prim.called_ae_title = "ORTHANC"
    syntaxes = [
        ("1.2.840.10008.1.1", ["1.2.840.10008.1.2"]),
        ("1.2.840.10008.5.1.4.1.1.2", ["1.2.840.10008.1.2", "1.2.840.10008.1.2.1"]),
        ("1.2.840.10008.5.1.4.1.1.4", ["1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.1.99"]),
    ]
    for i, (abstract, transfer) in enumerate(syntaxes):
        pc = PresentationContext()
        pc.context_id = 2 * i + 1
        pc.abstract_syntax = abstract
        pc.transfer_syntax = list(transfer)
        prim.presentation_context_definition_list.append(pc)
    prim.user_information = _user_information(for_rq=True)
    pdu = pn.A_ASSOCIATE_RQ()
    pdu.from_primitive(prim)
    return bytes(pdu.encode())


def _pynetdicom_ac() -> bytes:
    prim = pp.A_ASSOCIATE()
    prim.application_context_name = "1.2.840.10008.3.1.1.1"
    prim.calling_ae_title = "STORESCU"
    prim.called_ae_title = "ORTHANC"
    prim.result = 0
    for cid, result, ts in [
        (1, 0, "1.2.840.10008.1.2"),
        (3, 0, "1.2.840.10008.1.2.1"),
        (5, 4, None),
    ]:
        pc = PresentationContext()
        pc.context_id = cid
        pc.abstract_syntax = "1.2.840.10008.1.1"
        pc.transfer_syntax = [ts] if ts else ["1.2.840.10008.1.2"]
        pc.result = result
        prim.presentation_context_definition_results_list.append(pc)
    prim.user_information = _user_information(for_rq=False)
    pdu = pn.A_ASSOCIATE_AC()
    pdu.from_primitive(prim)
    return bytes(pdu.encode())


def _pynetdicom_simple() -> list[bytes]:
    rj_prim = pp.A_ASSOCIATE()
    rj_prim.result = 2
    rj_prim.result_source = 3
    rj_prim.diagnostic = 2
    rj = pn.A_ASSOCIATE_RJ()
    rj.from_primitive(rj_prim)
    pd_prim = pp.P_DATA()
    # pynetdicom wants [ID, PDV] lists at run time though its annotation says tuples.
    pd_prim.presentation_data_value_list = [
        [1, b"\x03" + b"command"],  # type: ignore[list-item]
        [3, b"\x02" + bytes(1000)],  # type: ignore[list-item]
    ]
    pd = pn.P_DATA_TF()
    pd.from_primitive(pd_prim)
    ab_prim = pp.A_ABORT()
    ab_prim.abort_source = 0
    ab = pn.A_ABORT_RQ()
    ab.from_primitive(ab_prim)
    ab2 = pn.A_ABORT_RQ()
    ab2.source, ab2.reason_diagnostic = 2, 2
    return [bytes(x.encode()) for x in (rj, pd, pn.A_RELEASE_RQ(), pn.A_RELEASE_RP(), ab, ab2)]


PYNETDICOM_WIRES = [_pynetdicom_rq(), _pynetdicom_ac(), *_pynetdicom_simple()]


@pytest.mark.parametrize("wire", PYNETDICOM_WIRES, ids=lambda w: f"type{w[0]:02x}")
def test_pynetdicom_bytes_decode_to_the_same_values(wire: bytes) -> None:
    pdu = decode_pdu(wire)
    assert ours(pdu) == theirs(wire)
    assert encode_pdu(pdu) == wire


def test_pynetdicom_rq_covers_every_sub_item_it_supports() -> None:
    pdu = decode_pdu(PYNETDICOM_WIRES[0])
    assert isinstance(pdu, AAssociateRQ)
    assert len(pdu.presentation_contexts) == 3
    kinds = {type(i) for i in pdu.user_information.sub_items}
    assert kinds == {
        MaximumLength,
        ImplementationClassUID,
        AsynchronousOperationsWindow,
        RoleSelection,
        ImplementationVersionName,
        SOPClassExtendedNegotiation,
        SOPClassCommonExtendedNegotiation,
        UserIdentityRQ,
    }
    ac = decode_pdu(PYNETDICOM_WIRES[1])
    assert isinstance(ac, AAssociateAC)
    assert ac.user_information.user_identity_ac == UserIdentityAC(server_response=b"token-123")
    assert ac.presentation_contexts[2].result == 4


# --- we encode, pynetdicom decodes ------------------------------------------------------------


@pytest.mark.parametrize(("name", "wire", "value"), PDU_VECTORS, ids=[v[0] for v in PDU_VECTORS])
def test_golden_vectors_decode_the_same_in_pynetdicom(name: str, wire: bytes, value: PDU) -> None:
    assert theirs(encode_pdu(value)) == ours(value)


@settings(max_examples=60, deadline=None)
@given(s.pdus)
def test_our_encoding_decodes_the_same_in_pynetdicom(pdu: PDU) -> None:
    assert theirs(encode_pdu(pdu)) == ours(pdu)


def test_release_pdus_are_distinct() -> None:
    assert theirs(encode_pdu(AReleaseRQ())) == ("AReleaseRQ",)
    assert theirs(encode_pdu(AReleaseRP())) == ("AReleaseRP",)
