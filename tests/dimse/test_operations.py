"""OperationTracker and MessageIDAllocator (PS3.7 D.3.3.3, 9.1, Annex C)."""

from __future__ import annotations

import logging
import threading

import pytest

from aiodimse.config import Limits
from aiodimse.dimse.messages import (
    CCancelRQ,
    CEchoRQ,
    CEchoRSP,
    CFindRQ,
    CFindRSP,
    CGetRQ,
    CGetRSP,
    CMoveRQ,
    CMoveRSP,
    CStoreRQ,
    CStoreRSP,
)
from aiodimse.dimse.operations import (
    DEFAULT_MESSAGE_ID_ALLOCATOR,
    STATUS_DUPLICATE_INVOCATION,
    STATUS_RESOURCE_LIMITATION,
    MessageIDAllocator,
    OperationRole,
    OperationsWindowFull,
    OperationTracker,
    SubOperations,
)
from aiodimse.errors import DimseError, LocalProtocolError

VERIFY = "1.2.840.10008.1.1"
FIND = "1.2.840.10008.5.1.4.1.2.1.1"
MOVE = "1.2.840.10008.5.1.4.1.2.1.2"
GET = "1.2.840.10008.5.1.4.1.2.1.3"


def echo(mid: int) -> CEchoRQ:
    return CEchoRQ(message_id=mid, affected_sop_class_uid=VERIFY)


# -- Message IDs -------------------------------------------------------------------------


def test_allocator_counts_from_one() -> None:
    alloc = MessageIDAllocator()
    assert [alloc.allocate() for _ in range(3)] == [1, 2, 3]


def test_allocator_wraps_at_65535_and_never_returns_zero() -> None:
    alloc = MessageIDAllocator(start=65_534)
    assert [alloc.allocate() for _ in range(4)] == [65_534, 65_535, 1, 2]


def test_allocator_skips_ids_in_use() -> None:
    alloc = MessageIDAllocator(start=5)
    assert alloc.allocate(in_use={5, 6, 8}) == 7
    assert alloc.allocate(in_use={5, 6, 8}) == 9


def test_allocator_all_in_use_raises() -> None:
    with pytest.raises(LocalProtocolError):
        MessageIDAllocator().allocate(in_use=range(1, 65_536))


def test_allocator_unique_across_threads() -> None:
    alloc = MessageIDAllocator()
    got: list[int] = []

    def work() -> None:
        ids = [alloc.allocate() for _ in range(5000)]
        got.extend(ids)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(got) == 20_000 and len(set(got)) == 20_000


def test_trackers_sharing_allocator_get_distinct_ids() -> None:
    alloc = MessageIDAllocator()
    a = OperationTracker(max_invoked=0, allocator=alloc)
    b = OperationTracker(max_invoked=0, allocator=alloc)
    ids = [a.next_message_id(), b.next_message_id(), a.next_message_id()]
    assert len(set(ids)) == 3


def test_default_allocator_is_shared() -> None:
    a, b = OperationTracker(), OperationTracker()
    assert isinstance(DEFAULT_MESSAGE_ID_ALLOCATOR, MessageIDAllocator)
    assert a.next_message_id() != b.next_message_id()


def test_next_message_id_skips_outstanding_after_wrap() -> None:
    alloc = MessageIDAllocator(start=65_535)
    tracker = OperationTracker(max_invoked=4, allocator=alloc)
    tracker.start_invoked(echo(1), 1)  # ID 1 outstanding
    assert tracker.next_message_id() == 65_535
    assert tracker.next_message_id() == 2  # 1 is skipped


# -- window ------------------------------------------------------------------------------


def test_window_limits_invocations() -> None:
    tracker = OperationTracker(max_invoked=2)
    tracker.start_invoked(echo(1), 1)
    assert tracker.can_invoke()
    tracker.start_invoked(echo(2), 1)
    assert not tracker.can_invoke()
    with pytest.raises(OperationsWindowFull):
        tracker.start_invoked(echo(3), 1)
    tracker.response_received(CEchoRSP(message_id_being_responded_to=1, status=0))
    assert tracker.can_invoke()


@pytest.mark.parametrize(("asked", "expected"), [(0, 16), (65_535, 16), (1, 1), (7, 7)])
def test_window_zero_and_huge_are_clamped(asked: int, expected: int) -> None:
    tracker = OperationTracker(max_invoked=asked, max_performed=asked, limits=Limits())
    assert tracker.max_invoked == expected and tracker.max_performed == expected


def test_window_invalid_value() -> None:
    with pytest.raises(ValueError):
        OperationTracker(max_invoked=-1)


def test_duplicate_local_message_id_refused() -> None:
    tracker = OperationTracker(max_invoked=4)
    tracker.start_invoked(echo(1), 1)
    with pytest.raises(LocalProtocolError):
        tracker.start_invoked(echo(1), 1)


def test_peer_exceeding_window_gets_resource_limitation() -> None:
    tracker = OperationTracker(max_performed=1)
    tracker.request_received(echo(1), 1)
    with pytest.raises(DimseError) as info:
        tracker.request_received(echo(2), 1)
    assert info.value.status == STATUS_RESOURCE_LIMITATION


def test_peer_duplicate_message_id_gets_duplicate_invocation() -> None:
    tracker = OperationTracker(max_performed=4)
    tracker.request_received(echo(1), 1)
    with pytest.raises(DimseError) as info:
        tracker.request_received(echo(1), 1)
    assert info.value.status == STATUS_DUPLICATE_INVOCATION


# -- responses ---------------------------------------------------------------------------


def test_pending_keeps_operation_open_final_closes() -> None:
    tracker = OperationTracker(max_invoked=2)
    tracker.start_invoked(CFindRQ(message_id=10, affected_sop_class_uid=FIND), 3)
    for status in (0xFF00, 0xFF01):
        op = tracker.response_received(CFindRSP(message_id_being_responded_to=10, status=status))
        assert op is not None and not op.final
    assert [o.message_id for o in tracker.invoked] == [10]
    op = tracker.response_received(CFindRSP(message_id_being_responded_to=10, status=0))
    assert op is not None and op.final and op.pending_responses == 2 and op.last_status == 0
    assert op.role is OperationRole.INVOKED and op.context_id == 3
    assert tracker.invoked == ()


@pytest.mark.parametrize("status", [0x0000, 0x0001, 0xB000, 0xA700, 0xC000, 0xFE00, 0x0122])
def test_non_pending_statuses_are_final(status: int) -> None:
    tracker = OperationTracker()
    tracker.start_invoked(echo(1), 1)
    op = tracker.response_received(CEchoRSP(message_id_being_responded_to=1, status=status))
    assert op is not None and op.final and tracker.invoked == ()


def test_response_of_wrong_kind_is_ignored(caplog: pytest.LogCaptureFixture) -> None:
    tracker = OperationTracker()
    tracker.start_invoked(echo(1), 1)
    with caplog.at_level(logging.WARNING, logger="aiodimse.dimse"):
        assert (
            tracker.response_received(CStoreRSP(message_id_being_responded_to=1, status=0)) is None
        )
    assert len(tracker.invoked) == 1
    assert "C_ECHO_RQ" in caplog.text


def test_unknown_response_ignored_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    tracker = OperationTracker()
    with caplog.at_level(logging.WARNING, logger="aiodimse.dimse"):
        assert (
            tracker.response_received(CEchoRSP(message_id_being_responded_to=77, status=0)) is None
        )
    assert "77" in caplog.text


def test_get_move_sub_operation_counters() -> None:
    tracker = OperationTracker(max_invoked=2)
    tracker.start_invoked(CGetRQ(message_id=1, affected_sop_class_uid=GET), 1)
    tracker.start_invoked(
        CMoveRQ(message_id=2, affected_sop_class_uid=MOVE, move_destination="DEST"), 1
    )
    op = tracker.response_received(
        CGetRSP(
            message_id_being_responded_to=1,
            status=0xFF00,
            number_of_remaining_sub_operations=3,
            number_of_completed_sub_operations=1,
            number_of_failed_sub_operations=0,
            number_of_warning_sub_operations=0,
        )
    )
    assert op is not None and op.sub_operations == SubOperations(
        remaining=3, completed=1, failed=0, warning=0
    )
    assert tracker.get_invoked(1) == op
    op = tracker.response_received(
        CMoveRSP(
            message_id_being_responded_to=2,
            status=0xB000,
            number_of_completed_sub_operations=2,
            number_of_failed_sub_operations=1,
            number_of_warning_sub_operations=0,
        )
    )
    assert op is not None and op.final
    assert op.sub_operations == SubOperations(remaining=None, completed=2, failed=1, warning=0)


# -- cancels -----------------------------------------------------------------------------


def test_cancel_from_peer_marks_performed_find() -> None:
    tracker = OperationTracker(max_performed=2)
    tracker.request_received(CFindRQ(message_id=5, affected_sop_class_uid=FIND), 1)
    op = tracker.cancel_received(CCancelRQ(message_id_being_responded_to=5))
    assert op is not None and op.cancel_requested
    assert tracker.get_performed(5) == op
    closed = tracker.response_sent(CFindRSP(message_id_being_responded_to=5, status=0xFE00))
    assert closed is not None and closed.final and tracker.performed == ()


def test_cancel_for_non_cancellable_or_unknown_is_ignored(
    caplog: pytest.LogCaptureFixture,
) -> None:
    tracker = OperationTracker(max_performed=2)
    tracker.request_received(
        CStoreRQ(message_id=6, affected_sop_class_uid="1.2", affected_sop_instance_uid="1.3"), 1
    )
    with caplog.at_level(logging.WARNING, logger="aiodimse.dimse"):
        assert tracker.cancel_received(CCancelRQ(message_id_being_responded_to=6)) is None
        assert tracker.cancel_received(CCancelRQ(message_id_being_responded_to=60)) is None
    op = tracker.get_performed(6)
    assert op is not None and not op.cancel_requested
    assert caplog.text.count("ignoring C-CANCEL-RQ") == 2


def test_cancel_sent_marks_invoked() -> None:
    tracker = OperationTracker()
    tracker.start_invoked(CFindRQ(message_id=3, affected_sop_class_uid=FIND), 1)
    op = tracker.cancel_sent(3)
    assert op is not None and op.cancel_requested
    assert tracker.cancel_sent(4) is None


def test_response_sent_pending_then_final_and_unknown() -> None:
    tracker = OperationTracker(max_performed=2)
    tracker.request_received(CFindRQ(message_id=8, affected_sop_class_uid=FIND), 1)
    op = tracker.response_sent(CFindRSP(message_id_being_responded_to=8, status=0xFF00))
    assert op is not None and not op.final and len(tracker.performed) == 1
    assert tracker.response_sent(CFindRSP(message_id_being_responded_to=9, status=0)) is None
    tracker.response_sent(CFindRSP(message_id_being_responded_to=8, status=0))
    assert len(tracker.performed) == 0


def test_clear_returns_outstanding() -> None:
    tracker = OperationTracker(max_invoked=2, max_performed=2)
    tracker.start_invoked(echo(1), 1)
    tracker.request_received(echo(1), 1)
    left = tracker.clear()
    assert {o.role for o in left} == {OperationRole.INVOKED, OperationRole.PERFORMED}
    assert tracker.invoked == () and tracker.performed == ()
