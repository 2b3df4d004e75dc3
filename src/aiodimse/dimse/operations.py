"""Bookkeeping of outstanding DIMSE operations on one association (PS3.7 D.3.3.3, 9.1, 10.1).

Pure state, no I/O: the upper layer tells the :class:`OperationTracker` what it sends and
receives; the tracker answers which operation a response or C-CANCEL belongs to, whether the
asynchronous operations window has room, and keeps C-GET/C-MOVE sub-operation counters.

* **Invoked** operations are requests *we* sent; they close on the final (non-pending)
  response whose Message ID Being Responded To (0000,0120) names them (PS3.7 9.3, 10.3).
* **Performed** operations are requests the *peer* sent; they close when we send the final
  response. A C-CANCEL-RQ from the peer marks a performed C-FIND/C-GET/C-MOVE as cancelled
  (PS3.7 9.3.2.3, 9.3.3.3, 9.3.4.3); the performer answers it with status Cancel (FE00).
* Pending statuses FF00/FF01 keep an operation open (PS3.7 Annex C); any other status is
  final.
* Responses and C-CANCELs for Message IDs that are not outstanding are logged on the
  ``aiodimse.dimse`` logger and ignored (ROBUSTNESS 26); they never raise.

The window (PS3.7 D.3.3.3: maximum number of operations invoked / performed; 0 means
unlimited) is clamped to ``Limits.max_async_operations`` (ROBUSTNESS 42). Without the
Asynchronous Operations Window sub-item both are 1 (synchronous operation, PS3.7 D.3.3.3.1).

Message IDs come from a :class:`MessageIDAllocator`. Message IDs must identify a request
among those outstanding on the association (PS3.7 9.1.1.1.1, 10.1.1.1.1); sharing one
allocator process-wide additionally makes IDs unique across associations for some 65,535
requests, which helps when reading logs of several associations. Pass one explicitly or use
:data:`DEFAULT_MESSAGE_ID_ALLOCATOR`, the documented process-wide default.
"""

from __future__ import annotations

import enum
import itertools
import logging
from collections.abc import Container
from dataclasses import dataclass, replace
from typing import Final

from ..config import Limits
from ..errors import DimseError, LocalProtocolError
from .messages import (
    CCancelRQ,
    CGetRSP,
    CMoveRSP,
    CommandField,
    DimseRequest,
    DimseResponse,
)
from .status import StatusCategory, category_of

__all__ = [
    "DEFAULT_MESSAGE_ID_ALLOCATOR",
    "STATUS_DUPLICATE_INVOCATION",
    "STATUS_RESOURCE_LIMITATION",
    "MessageIDAllocator",
    "Operation",
    "OperationRole",
    "OperationTracker",
    "OperationsWindowFull",
    "SubOperations",
]

_log = logging.getLogger("aiodimse.dimse")

#: PS3.7 C.5 (general status 0210H): the Message ID is allocated to another operation.
STATUS_DUPLICATE_INVOCATION: Final = 0x0210
#: PS3.7 C.5 (general status 0213H): not performed due to resource limitation.
STATUS_RESOURCE_LIMITATION: Final = 0x0213

#: PS3.7 9.3.2.3, 9.3.3.3, 9.3.4.3: the operations C-CANCEL applies to.
_CANCELLABLE: Final = frozenset(
    {CommandField.C_FIND_RQ, CommandField.C_GET_RQ, CommandField.C_MOVE_RQ}
)

_MAX_MESSAGE_ID: Final = 0xFFFF


class MessageIDAllocator:
    """Hands out Message IDs 1..65535 in order, wrapping, skipping IDs still in use.

    :meth:`allocate` is safe to call from several threads of one process (it only calls
    ``next()`` on an :func:`itertools.count`, which is atomic in CPython), so one instance
    may be shared process-wide; IDs are then unique across associations until they wrap.
    """

    __slots__ = ("_counter",)

    def __init__(self, start: int = 1) -> None:
        if not 1 <= start <= _MAX_MESSAGE_ID:
            raise ValueError("start must be in 1..65535")
        self._counter = itertools.count(start - 1)

    def allocate(self, in_use: Container[int] = ()) -> int:
        """The next ID (uint16, never 0) not in ``in_use``.

        Raises :class:`~aiodimse.errors.LocalProtocolError` if every ID is in use.
        """
        for _ in range(_MAX_MESSAGE_ID):
            message_id = next(self._counter) % _MAX_MESSAGE_ID + 1
            if message_id not in in_use:
                return message_id
        raise LocalProtocolError("all 65,535 Message IDs are in use")


#: The process-wide default allocator used when an :class:`OperationTracker` is given none.
#: It is the one piece of shared state of this module, by design (see the module docstring).
DEFAULT_MESSAGE_ID_ALLOCATOR: Final = MessageIDAllocator()


class OperationRole(enum.Enum):
    """Who sent the request (PS3.7 D.3.3.3 terms)."""

    INVOKED = "invoked"  # we sent the request; the peer performs it
    PERFORMED = "performed"  # the peer sent the request; we perform it


class OperationsWindowFull(LocalProtocolError):
    """Invoking another operation would exceed the negotiated window (PS3.7 D.3.3.3)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class SubOperations:
    """C-GET/C-MOVE sub-operation counts from the latest response (PS3.7 9.3.3.2, 9.3.4.2).

    Each is ``None`` when the response did not carry it (they are conditional).
    """

    remaining: int | None = None
    completed: int | None = None
    failed: int | None = None
    warning: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Operation:
    """A snapshot of one operation; the tracker replaces it as responses flow.

    ``final`` is set on the snapshot returned for the response that closed it.
    """

    message_id: int
    context_id: int
    command_field: CommandField
    role: OperationRole
    cancel_requested: bool = False
    pending_responses: int = 0
    last_status: int | None = None
    sub_operations: SubOperations | None = None
    final: bool = False


def _is_pending(status: int) -> bool:
    # PS3.7 Annex C: Pending is FF00/FF01 only; everything else ends the operation.
    return category_of(status) is StatusCategory.PENDING


def _clamp_window(value: int, cap: int) -> int:
    # PS3.7 D.3.3.3: 0 = unlimited; we support at most ``cap`` (ROBUSTNESS 42).
    if value < 0 or value > 0xFFFF:
        raise ValueError(f"window value {value} is not an unsigned 16-bit integer")
    return cap if value == 0 else min(value, cap)


class OperationTracker:
    """Outstanding invoked and performed operations of one association.

    ``max_invoked``/``max_performed`` are the negotiated window (PS3.7 D.3.3.3: the number of
    outstanding requests *we* may invoke, and that we agreed to perform for the peer); 0 means
    unlimited; both are clamped to ``limits.max_async_operations``.
    """

    __slots__ = ("_allocator", "_invoked", "_max_invoked", "_max_performed", "_performed")

    def __init__(
        self,
        *,
        max_invoked: int = 1,
        max_performed: int = 1,
        limits: Limits | None = None,
        allocator: MessageIDAllocator | None = None,
    ) -> None:
        cap = (limits or Limits()).max_async_operations
        self._max_invoked = _clamp_window(max_invoked, cap)
        self._max_performed = _clamp_window(max_performed, cap)
        self._allocator = allocator or DEFAULT_MESSAGE_ID_ALLOCATOR
        self._invoked: dict[int, Operation] = {}
        self._performed: dict[int, Operation] = {}

    # -- introspection ------------------------------------------------------------------

    @property
    def max_invoked(self) -> int:
        return self._max_invoked

    @property
    def max_performed(self) -> int:
        return self._max_performed

    @property
    def invoked(self) -> tuple[Operation, ...]:
        """Outstanding operations we invoked, oldest first."""
        return tuple(self._invoked.values())

    @property
    def performed(self) -> tuple[Operation, ...]:
        """Outstanding operations the peer invoked, oldest first."""
        return tuple(self._performed.values())

    def get_invoked(self, message_id: int) -> Operation | None:
        return self._invoked.get(message_id)

    def get_performed(self, message_id: int) -> Operation | None:
        return self._performed.get(message_id)

    def can_invoke(self) -> bool:
        """True when one more request fits in the window (PS3.7 D.3.3.3)."""
        return len(self._invoked) < self._max_invoked

    def can_perform(self) -> bool:
        """True when the peer may have one more outstanding request."""
        return len(self._performed) < self._max_performed

    # -- our requests -------------------------------------------------------------------

    def next_message_id(self) -> int:
        """A Message ID from the allocator that no outstanding invoked operation uses."""
        return self._allocator.allocate(self._invoked)

    def start_invoked(self, request: DimseRequest, context_id: int) -> Operation:
        """Record a request we are about to send.

        Raises :class:`OperationsWindowFull` when :meth:`can_invoke` is false and
        :class:`~aiodimse.errors.LocalProtocolError` when its Message ID is outstanding.
        """
        if not self.can_invoke():
            raise OperationsWindowFull(
                f"{len(self._invoked)} operations outstanding, window is {self._max_invoked}"
            )
        if request.message_id in self._invoked:
            raise LocalProtocolError(f"Message ID {request.message_id} is already outstanding")
        op = Operation(
            message_id=request.message_id,
            context_id=context_id,
            command_field=request.command_field,
            role=OperationRole.INVOKED,
        )
        self._invoked[request.message_id] = op
        return op

    def response_received(self, response: DimseResponse) -> Operation | None:
        """Match a response from the peer; ``None`` (logged) if it answers nothing we sent.

        Returns the updated snapshot; ``final`` is set (and the operation removed) unless
        the status is pending. Sub-operation counters are taken from C-GET/C-MOVE responses.
        """
        mid = response.message_id_being_responded_to
        op = self._invoked.get(mid)
        if op is None or response.command_field != op.command_field | 0x8000:
            _log.warning(
                "ignoring %s for Message ID %d: no such outstanding request%s",
                response.command_field.name,
                mid,
                "" if op is None else f" (outstanding one is {op.command_field.name})",
            )
            return None
        op = self._update(op, response)
        if op.final:
            del self._invoked[mid]
        else:
            self._invoked[mid] = op
        return op

    def cancel_sent(self, message_id: int) -> Operation | None:
        """Record that we sent C-CANCEL-RQ for ``message_id``; ``None`` if not outstanding."""
        op = self._invoked.get(message_id)
        if op is None:
            return None
        op = self._invoked[message_id] = replace(op, cancel_requested=True)
        return op

    # -- the peer's requests ------------------------------------------------------------

    def request_received(self, request: DimseRequest, context_id: int) -> Operation:
        """Record a request from the peer that we will perform.

        Raises :class:`~aiodimse.errors.DimseError` with ``status`` set, to be answered
        with a failure response for that request: 0x0210 Duplicate invocation when its
        Message ID is outstanding (PS3.7 C.5); 0x0213 Resource limitation when the peer
        exceeds the window it negotiated (PS3.7 D.3.3.3, C.5).
        """
        mid = request.message_id
        if mid in self._performed:
            raise DimseError(
                f"Message ID {mid} is already outstanding", status=STATUS_DUPLICATE_INVOCATION
            )
        if not self.can_perform():
            raise DimseError(
                f"peer exceeded the operations window ({self._max_performed} outstanding)",
                status=STATUS_RESOURCE_LIMITATION,
            )
        op = Operation(
            message_id=mid,
            context_id=context_id,
            command_field=request.command_field,
            role=OperationRole.PERFORMED,
        )
        self._performed[mid] = op
        return op

    def cancel_received(self, cancel: CCancelRQ) -> Operation | None:
        """Match a C-CANCEL-RQ from the peer; ``None`` (logged) if nothing to cancel."""
        mid = cancel.message_id_being_responded_to
        op = self._performed.get(mid)
        if op is None or op.command_field not in _CANCELLABLE:
            _log.warning(
                "ignoring C-CANCEL-RQ for Message ID %d: no outstanding C-FIND/C-GET/C-MOVE",
                mid,
            )
            return None
        op = self._performed[mid] = replace(op, cancel_requested=True)
        return op

    def response_sent(self, response: DimseResponse) -> Operation | None:
        """Record a response we sent; a final one closes the operation.

        Returns ``None`` (logged) when it answers no outstanding request of the peer.
        """
        mid = response.message_id_being_responded_to
        op = self._performed.get(mid)
        if op is None:
            _log.warning(
                "sent %s for Message ID %d, not outstanding", response.command_field.name, mid
            )
            return None
        op = self._update(op, response)
        if op.final:
            del self._performed[mid]
        else:
            self._performed[mid] = op
        return op

    def clear(self) -> tuple[Operation, ...]:
        """Forget everything (association ended); returns what was still outstanding."""
        left = (*self._invoked.values(), *self._performed.values())
        self._invoked.clear()
        self._performed.clear()
        return left

    @staticmethod
    def _update(op: Operation, response: DimseResponse) -> Operation:
        pending = _is_pending(response.status)
        subs = op.sub_operations
        if isinstance(response, CGetRSP | CMoveRSP):
            subs = SubOperations(
                remaining=response.number_of_remaining_sub_operations,
                completed=response.number_of_completed_sub_operations,
                failed=response.number_of_failed_sub_operations,
                warning=response.number_of_warning_sub_operations,
            )
        return replace(
            op,
            pending_responses=op.pending_responses + (1 if pending else 0),
            last_status=response.status,
            sub_operations=subs,
            final=not pending,
        )
