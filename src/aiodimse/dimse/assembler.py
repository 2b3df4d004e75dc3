"""Streaming reassembly of DIMSE messages from incoming PDVs (PS3.8 Annex E, PS3.7 6.3).

Theory of operation
-------------------
The peer sends each message as command fragments followed, when the command says so
(PS3.7 E.1, Command Data Set Type), by dataset fragments; every PDV's message control
header says which kind it carries and whether it is the last one (PS3.8 E.2). The
:class:`MessageAssembler` is a small state machine over PDVs:

=========== ================================= ===================================
state        command PDV                       data PDV
=========== ================================= ===================================
IDLE         start a message (same context)    error: dataset before any command
COMMAND      append (bounded), decode on last  error: data before command complete
DATASET      error: second command             emit :class:`DataFragment`
DISCARD      start a new message               dropped (tail of a malformed message)
=========== ================================= ===================================

Command fragments are joined (bounded by ``Limits.max_command_set_length``) and decoded by
:func:`~aiodimse.dimse.command_codec.decode_command` into :class:`CommandReceived`. Dataset
fragments are **not** joined: each becomes a :class:`DataFragment` whose ``data`` is a view
of the PDV (usually of the PDU decoder's receive buffer); the caller streams them to the sink
of its choice (memory, temporary file). :class:`MessageComplete` ends every message.

Errors. A PDV sequence that breaks PS3.8 Annex E raises :class:`~aiodimse.errors.AssemblyError`
whose ``abort_reason`` goes in the A-ABORT (source 2, PS3.8 9.3.8); after it the association
must be aborted and the assembler refuses further input. The reason codes are chosen as:

* a presentation context ID that is even, out of 1..255 or not accepted, a command set
  over the limit: 6 *invalid-PDU-parameter value* (the field's value is wrong);
* a well-formed PDV arriving where Annex E does not allow it (dataset before command,
  second command, a different context mid-message, data when the command said none):
  5 *unexpected-PDU parameter* (the PDU itself is expected in Sta6, so 2 *unexpected-PDU*,
  which the state machine uses for a PDU type out of place, would mislead);
* a dataset longer than ``max_dataset_length`` (a local resource bound, not a protocol
  violation): 0 *reason-not-specified*.

A command set that arrives whole but cannot be decoded raises :class:`MalformedCommand`
(a :class:`~aiodimse.errors.CommandDecodeError` carrying ``context_id``, ``status``,
``message_id``, ``command_field``): the assembler stays usable and silently drops any
dataset fragments of that message, so the caller may answer with the failure ``status`` when
it is not ``None``, or abort (``abort_reason``) otherwise.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TypeAlias

from ..config import Limits
from ..constants import AbortReason
from ..errors import AssemblyError, CommandDecodeError
from ..pdu import PDV, PDataTF
from .command_codec import decode_command
from .messages import DimseMessage

__all__ = [
    "AssemblerEvent",
    "AssemblerState",
    "CommandReceived",
    "DataFragment",
    "MalformedCommand",
    "MessageAssembler",
    "MessageComplete",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class CommandReceived:
    """A whole command set arrived and decoded (PS3.7 6.3.1)."""

    context_id: int
    message: DimseMessage


@dataclass(frozen=True, slots=True, kw_only=True)
class DataFragment:
    """One dataset fragment, in order; ``last`` is set on the final one (PS3.8 E.2).

    ``data`` is a view into the PDV (typically the receive buffer): copy or write it out
    before the buffer may be reused.
    """

    context_id: int
    data: memoryview
    last: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class MessageComplete:
    """The message on ``context_id`` is complete (command, and dataset if any)."""

    context_id: int


AssemblerEvent: TypeAlias = CommandReceived | DataFragment | MessageComplete


class AssemblerState(enum.Enum):
    """Where the assembler is within the current message."""

    IDLE = "idle"  # between messages
    COMMAND = "command"  # command fragments received, last not yet
    DATASET = "dataset"  # command complete, dataset fragments expected
    DISCARD = "discard"  # dropping the dataset of a malformed command
    ERROR = "error"  # an AssemblyError was raised; the association must be aborted


class MalformedCommand(CommandDecodeError):
    """A complete command set on ``context_id`` failed to decode (wraps the codec's error).

    ``status``/``message_id``/``command_field``/``offending_element`` are those of the
    codec's :class:`~aiodimse.errors.CommandDecodeError`: answer with ``status`` when it is
    not ``None``; otherwise abort with ``abort_reason``.
    """

    def __init__(self, context_id: int, cause: CommandDecodeError) -> None:
        super().__init__(
            f"malformed command set on presentation context {context_id}: {cause}",
            status=cause.status,
            abort_reason=cause.abort_reason,
            command_field=cause.command_field,
            message_id=cause.message_id,
            offending_element=cause.offending_element,
        )
        self.context_id = context_id
        self.cause = cause


def _violation(what: str, reason: AbortReason) -> AssemblyError:
    return AssemblyError(what, abort_reason=reason)


class MessageAssembler:
    """Turns the PDVs of one association's incoming P-DATA-TF PDUs into message events.

    ``accepted_context_ids``: the presentation contexts accepted at negotiation (each odd,
    1..255; PS3.8 9.3.5.1, 7.1.1.13). ``limits.max_command_set_length`` bounds a command set;
    ``max_dataset_length`` (None = no bound) cuts off a dataset that would grow past it, e.g.
    an endless message whose last bit never comes. ``strict_pdu_boundaries`` also rejects a
    P-DATA-TF whose PDVs belong to two messages (PS3.8 E.1 "shall be related to the same
    DICOM message"; off by default, since being lenient there costs nothing).

    Contract: :meth:`receive_pdv` / :meth:`receive_pdata` return events in a valid order
    (``CommandReceived`` [``DataFragment``... last] ``MessageComplete`` per message) or raise
    :class:`~aiodimse.errors.AssemblyError` (then every later call raises it again) or
    :class:`MalformedCommand` (the assembler remains usable).
    """

    __slots__ = (
        "_accepted",
        "_command",
        "_context_id",
        "_dataset_length",
        "_error",
        "_max_command",
        "_max_dataset",
        "_state",
        "_strict",
    )

    def __init__(
        self,
        accepted_context_ids: Iterable[int],
        *,
        limits: Limits | None = None,
        max_dataset_length: int | None = None,
        strict_pdu_boundaries: bool = False,
    ) -> None:
        accepted = frozenset(accepted_context_ids)
        bad = sorted(c for c in accepted if not (1 <= c <= 255 and c % 2 == 1))
        if bad:
            raise ValueError(f"presentation context IDs must be odd 1..255, got {bad}")
        if max_dataset_length is not None and max_dataset_length < 0:
            raise ValueError("max_dataset_length must be >= 0")
        self._accepted = accepted
        self._max_command = (limits or Limits()).max_command_set_length
        self._max_dataset = max_dataset_length
        self._strict = strict_pdu_boundaries
        self._state = AssemblerState.IDLE
        self._context_id = 0
        self._command = bytearray()
        self._dataset_length = 0
        self._error: AssemblyError | None = None

    @property
    def state(self) -> AssemblerState:
        """The current state (see the module docstring's table)."""
        return self._state

    @property
    def context_id(self) -> int | None:
        """The presentation context of the message in progress, if any."""
        return None if self._state is AssemblerState.IDLE else self._context_id

    @property
    def accepted_context_ids(self) -> frozenset[int]:
        return self._accepted

    def receive_pdata(self, pdu: PDataTF) -> list[AssemblerEvent]:
        """Events for every PDV of one P-DATA-TF, in order (see :meth:`receive_pdv`)."""
        events: list[AssemblerEvent] = []
        pdvs = pdu.pdvs
        for index, pdv in enumerate(pdvs):
            if self._strict and index and self._state is AssemblerState.IDLE:
                raise self._fail(
                    "P-DATA-TF holds PDVs of more than one message (PS3.8 E.1)",
                    AbortReason.UNEXPECTED_PDU_PARAMETER,
                )
            events.extend(self.receive_pdv(pdv))
        return events

    def receive_pdv(self, pdv: PDV) -> list[AssemblerEvent]:
        """Events caused by one PDV (PS3.8 9.3.5.1, Annex E); see the class contract."""
        if self._error is not None:
            raise self._error
        cid = pdv.context_id
        # PS3.8 9.3.5.1 Table 9-23: odd 1..255, and one the association accepted (7.1.1.13).
        if cid not in self._accepted:
            raise self._fail(
                f"PDV on presentation context {cid}, which is not an accepted context",
                AbortReason.INVALID_PDU_PARAMETER_VALUE,
            )
        state = self._state
        if state is AssemblerState.DISCARD:
            if not pdv.is_command and cid == self._context_id:
                if pdv.is_last:
                    self._state = AssemblerState.IDLE
                return []
            state = self._state = AssemblerState.IDLE
        if state is not AssemblerState.IDLE and cid != self._context_id:
            # PS3.8 E.1: the same presentation context for every fragment of a message, and
            # no fragment of another message before the current one is complete.
            raise self._fail(
                f"PDV on presentation context {cid} while a message on context "
                f"{self._context_id} is incomplete (PS3.8 E.1: no interleaving)",
                AbortReason.UNEXPECTED_PDU_PARAMETER,
            )
        if pdv.is_command:
            return self._command_pdv(pdv, state)
        return self._data_pdv(pdv, state)

    def _command_pdv(self, pdv: PDV, state: AssemblerState) -> list[AssemblerEvent]:
        if state is AssemblerState.DATASET:
            raise self._fail(
                "command fragment while the previous message's dataset is incomplete (PS3.8 E.1)",
                AbortReason.UNEXPECTED_PDU_PARAMETER,
            )
        if state is AssemblerState.IDLE:
            self._context_id = pdv.context_id
            self._command = bytearray()
            self._state = AssemblerState.COMMAND
        if len(self._command) + len(pdv.data) > self._max_command:
            # Checked before buffering (h2 frame_buffer style).
            raise self._fail(
                f"command set longer than {self._max_command} bytes",
                AbortReason.INVALID_PDU_PARAMETER_VALUE,
            )
        self._command += pdv.data
        if not pdv.is_last:
            return []
        raw = self._command
        self._command = bytearray()
        try:
            message = decode_command(raw)
        except CommandDecodeError as exc:
            # Any dataset of this message is dropped; the caller answers or aborts.
            self._state = AssemblerState.DISCARD
            raise MalformedCommand(pdv.context_id, exc) from exc
        cid = pdv.context_id
        received = CommandReceived(context_id=cid, message=message)
        if message.has_dataset:
            self._state = AssemblerState.DATASET
            self._dataset_length = 0
            return [received]
        self._state = AssemblerState.IDLE
        return [received, MessageComplete(context_id=cid)]

    def _data_pdv(self, pdv: PDV, state: AssemblerState) -> list[AssemblerEvent]:
        if state is AssemblerState.IDLE:
            raise self._fail(
                "dataset fragment without a command announcing a dataset (PS3.8 E.1, "
                "PS3.7 E.1 Command Data Set Type)",
                AbortReason.UNEXPECTED_PDU_PARAMETER,
            )
        if state is AssemblerState.COMMAND:
            raise self._fail(
                "dataset fragment before the command's last fragment (PS3.8 E.1)",
                AbortReason.UNEXPECTED_PDU_PARAMETER,
            )
        data = pdv.data if isinstance(pdv.data, memoryview) else memoryview(pdv.data)
        self._dataset_length += len(data)
        if self._max_dataset is not None and self._dataset_length > self._max_dataset:
            raise self._fail(
                f"dataset longer than max_dataset_length {self._max_dataset}",
                AbortReason.NOT_SPECIFIED,
            )
        cid = pdv.context_id
        fragment = DataFragment(context_id=cid, data=data, last=pdv.is_last)
        if not pdv.is_last:
            return [fragment]
        self._state = AssemblerState.IDLE
        return [fragment, MessageComplete(context_id=cid)]

    def _fail(self, what: str, reason: AbortReason) -> AssemblyError:
        self._state = AssemblerState.ERROR
        self._command = bytearray()
        self._error = _violation(what, reason)
        return self._error
