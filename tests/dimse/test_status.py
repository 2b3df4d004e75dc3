"""DIMSE status categories and meanings (PS3.7 Annex C, PS3.4 B.2.3 and C.4)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aiodimse.dimse.messages import CommandField
from aiodimse.dimse.status import (
    Service,
    StatusCategory,
    StatusInfo,
    category_of,
    service_for_command,
    status_info,
)

S, W, P, C, F = (
    StatusCategory.SUCCESS,
    StatusCategory.WARNING,
    StatusCategory.PENDING,
    StatusCategory.CANCEL,
    StatusCategory.FAILURE,
)


def test_0107_and_0116_are_warnings_among_01xx_failures() -> None:
    assert status_info(0x0107).category is W
    assert status_info(0x0107).meaning == "Attribute list error"
    assert status_info(0x0116).category is W
    assert status_info(0x0116).meaning == "Attribute value out of range"
    for neighbour in (0x0106, 0x0108, 0x0115, 0x0117):
        assert status_info(neighbour).category is F


@pytest.mark.parametrize(
    ("code", "category"),
    [
        (0x0000, S),
        (0x0001, W),
        (0xB000, W),
        (0xBFFF, W),
        (0xFE00, C),
        (0xFF00, P),
        (0xFF01, P),
        (0xA700, F),
        (0xAFFF, F),
        (0xC000, F),
        (0xCFFF, F),
        (0x0100, F),
        (0x0199, F),
        (0x0200, F),
        (0x02FF, F),
    ],
)
def test_annex_c_class_rule(code: int, category: StatusCategory) -> None:
    assert category_of(code) is category
    assert status_info(code).category is category
    for service in Service:
        assert status_info(code, service).category is category


@pytest.mark.parametrize("code", [0x0002, 0x00FF, 0x0300, 0x9000, 0xD000, 0xEFFF, 0xFE01, 0xFF02])
def test_codes_outside_annex_c_are_failures(code: int) -> None:
    info = status_info(code)
    assert info.category is F
    assert "Unknown status" in info.meaning


@pytest.mark.parametrize(
    ("code", "meaning"),
    [
        (0x0105, "No such attribute"),
        (0x0106, "Invalid attribute value"),
        (0x0110, "Processing failure"),
        (0x0111, "Duplicate SOP Instance"),
        (0x0112, "No such SOP Instance"),
        (0x0113, "No such event type"),
        (0x0114, "No such argument"),
        (0x0115, "Invalid argument value"),
        (0x0117, "Invalid object instance"),
        (0x0118, "No such SOP Class"),
        (0x0119, "Class-instance conflict"),
        (0x0120, "Missing attribute"),
        (0x0121, "Missing attribute value"),
        (0x0122, "Refused: SOP Class not supported"),
        (0x0123, "No such action type"),
        (0x0124, "Refused: not authorized"),
        (0x0210, "Duplicate invocation"),
        (0x0211, "Unrecognized operation"),
        (0x0212, "Mistyped argument"),
        (0x0213, "Resource limitation"),
    ],
)
def test_general_failures(code: int, meaning: str) -> None:
    for service in (None, *Service):
        info = status_info(code, service)
        assert info == StatusInfo(code=code, meaning=meaning, category=F)


@pytest.mark.parametrize(
    ("code", "category", "words"),
    [
        (0xA700, F, "out of resources"),
        (0xA7FF, F, "out of resources"),
        (0xA900, F, "does not match SOP Class"),
        (0xA9AB, F, "does not match SOP Class"),
        (0xC123, F, "cannot understand"),
        (0xB000, W, "coercion"),
        (0xB006, W, "elements discarded"),
        (0xB007, W, "does not match SOP Class"),
    ],
)
def test_storage_statuses(code: int, category: StatusCategory, words: str) -> None:
    info = status_info(code, Service.STORAGE)
    assert info.category is category
    assert words in info.meaning
    assert info.code == code


@pytest.mark.parametrize(
    ("code", "category", "words"),
    [
        (0xA700, F, "out of resources"),
        (0xA900, F, "identifier does not match"),
        (0xC001, F, "unable to process"),
        (0xFE00, C, "cancel"),
        (0xFF00, P, "optional keys supported"),
        (0xFF01, P, "optional keys were not supported"),
        (0x0000, S, "matching is complete"),
    ],
)
def test_find_statuses(code: int, category: StatusCategory, words: str) -> None:
    info = status_info(code, Service.FIND)
    assert info.category is category
    assert words in info.meaning


@pytest.mark.parametrize("service", [Service.MOVE, Service.GET])
@pytest.mark.parametrize(
    ("code", "category", "words"),
    [
        (0xA701, F, "unable to calculate number of matches"),
        (0xA702, F, "unable to perform sub-operations"),
        (0xA900, F, "identifier does not match"),
        (0xCFFF, F, "unable to process"),
        (0xFE00, C, "terminated due to cancel"),
        (0xB000, W, "one or more failures"),
        (0xFF00, P, "sub-operations are continuing"),
        (0x0000, S, "no failures"),
    ],
)
def test_retrieve_statuses(
    service: Service, code: int, category: StatusCategory, words: str
) -> None:
    info = status_info(code, service)
    assert info.category is category
    assert words in info.meaning


def test_move_destination_unknown_only_for_move() -> None:
    assert "move destination unknown" in status_info(0xA801, Service.MOVE).meaning
    other = status_info(0xA801, Service.GET)
    assert other.category is F
    assert "move destination" not in other.meaning


def test_service_specific_meaning_does_not_leak() -> None:
    # 0xA700 means "out of resources" for storage, but nothing general without a service.
    assert status_info(0xA700).meaning == "Failure (Axxx, service specific)"
    assert status_info(0xB000).meaning == "Warning (Bxxx, service specific)"
    assert status_info(0xB000, Service.VERIFICATION).category is W


@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=0, max_value=0xFFFF), st.sampled_from([None, *Service]))
def test_table_never_contradicts_annex_c_class_rule(code: int, service: Service | None) -> None:
    info = status_info(code, service)
    assert info.code == code
    assert info.category is category_of(code)
    assert info.meaning


@pytest.mark.parametrize("bad", [-1, 0x10000, "0"])
def test_status_info_rejects_non_us(bad: object) -> None:
    with pytest.raises(ValueError):
        status_info(bad)  # type: ignore[arg-type]


def test_service_for_command() -> None:
    assert service_for_command(CommandField.C_STORE_RSP) is Service.STORAGE
    assert service_for_command(CommandField.C_FIND_RQ) is Service.FIND
    assert service_for_command(0x8021) is Service.MOVE
    assert service_for_command(CommandField.C_GET_RSP) is Service.GET
    assert service_for_command(CommandField.C_ECHO_RSP) is Service.VERIFICATION
    assert service_for_command(CommandField.N_ACTION_RSP) is Service.N_ACTION
    assert service_for_command(CommandField.C_CANCEL_RQ) is None


def test_status_info_properties() -> None:
    assert status_info(0).is_success
    assert status_info(0xC000).is_failure
    assert not status_info(0xFF00).is_failure
