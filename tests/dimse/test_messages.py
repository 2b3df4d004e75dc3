"""DIMSE message value classes: one per command, fields and M/U/C usage as PS3.7 says."""

from __future__ import annotations

import dataclasses

import pytest

from aiodimse.dimse.messages import (
    DATASET_ABSENT,
    DATASET_PRESENT,
    MESSAGE_CLASSES,
    CCancelRQ,
    CEchoRQ,
    CEchoRSP,
    CFindRQ,
    CFindRSP,
    CGetRQ,
    CGetRSP,
    CMoveRQ,
    CMoveRSP,
    CommandField,
    CStoreRQ,
    CStoreRSP,
    DimseMessage,
    DimseRequest,
    DimseResponse,
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

RSP_MANDATORY = {"message_id_being_responded_to", "status"}
RSP_STATUS_FIELDS = {"offending_element", "error_comment", "error_id"}

# Mandatory (M) fields without a default, and the U/C fields, per PS3.7 9.1/9.3 and 10.1/10.3.
# Command Data Set Type (M everywhere) and Priority (M in C-STORE/FIND/GET/MOVE-RQ) have
# defaults for convenience; decoding still requires them (see test_command_codec.py).
USAGE: dict[type[DimseMessage], tuple[set[str], set[str]]] = {
    CEchoRQ: ({"message_id", "affected_sop_class_uid"}, set()),
    CEchoRSP: (RSP_MANDATORY, {"affected_sop_class_uid"} | RSP_STATUS_FIELDS),
    CStoreRQ: (
        {"message_id", "affected_sop_class_uid", "affected_sop_instance_uid"},
        {"move_originator_application_entity_title", "move_originator_message_id"},
    ),
    CStoreRSP: (
        RSP_MANDATORY,
        {"affected_sop_class_uid", "affected_sop_instance_uid"} | RSP_STATUS_FIELDS,
    ),
    CFindRQ: ({"message_id", "affected_sop_class_uid"}, set()),
    CFindRSP: (RSP_MANDATORY, {"affected_sop_class_uid"} | RSP_STATUS_FIELDS),
    CGetRQ: ({"message_id", "affected_sop_class_uid"}, set()),
    CMoveRQ: ({"message_id", "affected_sop_class_uid", "move_destination"}, set()),
    CCancelRQ: ({"message_id_being_responded_to"}, set()),
    NEventReportRQ: (
        {"message_id", "affected_sop_class_uid", "affected_sop_instance_uid", "event_type_id"},
        set(),
    ),
    NEventReportRSP: (
        RSP_MANDATORY,
        {"affected_sop_class_uid", "affected_sop_instance_uid", "event_type_id"}
        | RSP_STATUS_FIELDS,
    ),
    NGetRQ: (
        {"message_id", "requested_sop_class_uid", "requested_sop_instance_uid"},
        {"attribute_identifier_list"},
    ),
    NSetRQ: ({"message_id", "requested_sop_class_uid", "requested_sop_instance_uid"}, set()),
    NActionRQ: (
        {"message_id", "requested_sop_class_uid", "requested_sop_instance_uid", "action_type_id"},
        set(),
    ),
    NActionRSP: (
        RSP_MANDATORY,
        {"affected_sop_class_uid", "affected_sop_instance_uid", "action_type_id"}
        | RSP_STATUS_FIELDS,
    ),
    NCreateRQ: ({"message_id", "affected_sop_class_uid"}, {"affected_sop_instance_uid"}),
    NDeleteRQ: ({"message_id", "requested_sop_class_uid", "requested_sop_instance_uid"}, set()),
}
_SUB_OPS = {
    "number_of_remaining_sub_operations",
    "number_of_completed_sub_operations",
    "number_of_failed_sub_operations",
    "number_of_warning_sub_operations",
}
USAGE[CGetRSP] = (RSP_MANDATORY, {"affected_sop_class_uid"} | _SUB_OPS | RSP_STATUS_FIELDS)
USAGE[CMoveRSP] = USAGE[CGetRSP]
_N_RSP_OPTIONAL = {"affected_sop_class_uid", "affected_sop_instance_uid"} | RSP_STATUS_FIELDS
USAGE[NGetRSP] = (RSP_MANDATORY, _N_RSP_OPTIONAL | {"attribute_identifier_list"})
USAGE[NSetRSP] = USAGE[NGetRSP]
USAGE[NCreateRSP] = USAGE[NGetRSP]  # PS3.7 C.4.2: Attribute Identifier List with 0x0107
USAGE[NDeleteRSP] = (RSP_MANDATORY, _N_RSP_OPTIONAL)

WITH_DATASET_BY_DEFAULT = {CStoreRQ, CFindRQ, CGetRQ, CMoveRQ, NSetRQ}


def test_one_class_per_command_field() -> None:
    assert set(MESSAGE_CLASSES) == set(CommandField)
    assert len(set(MESSAGE_CLASSES.values())) == 23
    for field, cls in MESSAGE_CLASSES.items():
        assert cls.command_field is field
    assert set(USAGE) == set(MESSAGE_CLASSES.values())


def test_command_field_values_per_ps3_7_e1() -> None:
    assert int(CommandField.C_STORE_RQ) == 0x0001
    assert int(CommandField.C_ECHO_RSP) == 0x8030
    assert int(CommandField.C_CANCEL_RQ) == 0x0FFF
    assert int(CommandField.N_DELETE_RSP) == 0x8150
    for field in CommandField:
        if field is not CommandField.C_CANCEL_RQ:
            partner = field ^ 0x8000
            assert partner in set(CommandField), f"{field.name} has no RQ/RSP partner"
    assert (Priority.LOW, Priority.MEDIUM, Priority.HIGH) == (2, 0, 1)


@pytest.mark.parametrize("cls", list(USAGE), ids=lambda c: c.__name__)
def test_mandatory_and_optional_fields(cls: type[DimseMessage]) -> None:
    mandatory, optional = USAGE[cls]
    fields = {f.name: f for f in dataclasses.fields(cls)}
    required = {n for n, f in fields.items() if f.default is dataclasses.MISSING}
    optional_here = {n for n, f in fields.items() if f.default is None}
    assert required == mandatory
    assert optional_here == optional
    defaulted = set(fields) - required - optional_here
    assert defaulted <= {"command_data_set_type", "priority"}
    assert "command_data_set_type" in fields


@pytest.mark.parametrize("cls", list(USAGE), ids=lambda c: c.__name__)
def test_default_dataset_presence(cls: type[DimseMessage]) -> None:
    default = next(f.default for f in dataclasses.fields(cls) if f.name == "command_data_set_type")
    expected = DATASET_PRESENT if cls in WITH_DATASET_BY_DEFAULT else DATASET_ABSENT
    assert default == expected


def test_request_response_hierarchy() -> None:
    for field, cls in MESSAGE_CLASSES.items():
        if field & 0x8000:
            assert issubclass(cls, DimseResponse)
        elif field is CommandField.C_CANCEL_RQ:
            assert not issubclass(cls, DimseRequest | DimseResponse)
        else:
            assert issubclass(cls, DimseRequest)


def test_values_are_frozen_slotted_keyword_only_and_hashable() -> None:
    echo = CEchoRQ(message_id=1, affected_sop_class_uid="1.2.840.10008.1.1")
    with pytest.raises(dataclasses.FrozenInstanceError):
        echo.message_id = 2  # type: ignore[misc]
    assert not hasattr(echo, "__dict__")
    with pytest.raises(TypeError):
        CEchoRQ(1, "1.2.840.10008.1.1")  # type: ignore[call-arg, arg-type]
    assert len({echo, CEchoRQ(message_id=1, affected_sop_class_uid="1.2.840.10008.1.1")}) == 1


def test_has_dataset_and_is_response() -> None:
    rsp = CFindRSP(message_id_being_responded_to=1, status=0xFF00, command_data_set_type=0xFEFE)
    assert rsp.has_dataset
    assert rsp.is_response
    final = CFindRSP(message_id_being_responded_to=1, status=0)
    assert not final.has_dataset
    store = CStoreRQ(message_id=1, affected_sop_class_uid="1.2", affected_sop_instance_uid="3")
    assert store.has_dataset
    assert not store.is_response
    assert store.priority == Priority.MEDIUM


@pytest.mark.parametrize(
    "kwargs",
    [
        {"message_id": -1},
        {"message_id": 0x10000},
        {"message_id": "1"},
        {"affected_sop_class_uid": ""},
        {"affected_sop_class_uid": b"1.2"},
        {"command_data_set_type": 0x10000},
    ],
)
def test_construction_checks_types_and_ranges(kwargs: dict[str, object]) -> None:
    base: dict[str, object] = {"message_id": 1, "affected_sop_class_uid": "1.2"}
    base.update(kwargs)
    with pytest.raises(ValueError):
        CEchoRQ(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", [(), (0x1_0000_0000,), (-1,), [0x00100010]])
def test_tag_lists_are_checked(bad: object) -> None:
    with pytest.raises(ValueError):
        CStoreRSP(message_id_being_responded_to=1, status=0xA900, offending_element=bad)  # type: ignore[arg-type]


def test_boundaries_are_accepted() -> None:
    CGetRSP(
        message_id_being_responded_to=0xFFFF,
        status=0xFFFF,
        number_of_remaining_sub_operations=0,
        number_of_completed_sub_operations=0xFFFF,
        offending_element=(0, 0xFFFFFFFF),
    )


def test_response_class_for() -> None:
    from aiodimse.dimse.messages import response_class_for

    assert response_class_for(CEchoRQ) is CEchoRSP
    assert response_class_for(CStoreRQ) is CStoreRSP
    assert response_class_for(NActionRQ) is NActionRSP
    assert response_class_for(CCancelRQ) is None
    assert response_class_for(CFindRSP) is None
    for field, cls in MESSAGE_CLASSES.items():
        rsp = response_class_for(cls)
        if rsp is not None:
            assert rsp.command_field == field | 0x8000
            rsp(message_id_being_responded_to=1, status=0x0211)  # constructible the same way
