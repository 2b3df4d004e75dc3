"""One exception hierarchy for aiodimse.

Two kinds of protocol error, as in h11 (``_util.py``):

* :class:`LocalProtocolError`: *we* (the caller of this library) asked for something the
  protocol does not allow: an invalid AE title, sending P-DATA before the association is
  established. Nothing goes on the wire because of it; fix the calling code.
* :class:`RemoteProtocolError`: the *peer* broke the protocol. It carries what the standard
  says must go on the wire in answer: an A-ABORT (source, reason, PS3.8 9.3.8) or, while the
  association is being negotiated, an A-ASSOCIATE-RJ (result, source, reason, PS3.8 9.3.4).

Transport and timeout errors raised by the I/O layer derive from :class:`DicomError` too.
"""

from __future__ import annotations

from .constants import AbortReason, AbortSource


class DicomError(Exception):
    """Base class of every exception aiodimse raises on purpose.

    ``retryable`` says whether trying the same operation again can help: true for network
    faults, transient rejections and timeouts; false for permanent rejections, refused
    presentation contexts and local misuse. Applications build their retry policy on it.
    """

    retryable: bool = False


class LocalProtocolError(DicomError):
    """The local application misused the API or asked for something invalid."""


class RemoteProtocolError(DicomError):
    """The peer violated the protocol; ``abort_source``/``abort_reason`` go in the A-ABORT.

    ``reject`` is set (result, source, reason) when the right answer is an A-ASSOCIATE-RJ
    rather than an A-ABORT (PS3.8 9.3.4, e.g. protocol version without bit 0).
    """

    def __init__(
        self,
        message: str,
        *,
        abort_source: AbortSource = AbortSource.SERVICE_PROVIDER,
        abort_reason: AbortReason = AbortReason.NOT_SPECIFIED,
        reject: tuple[int, int, int] | None = None,
    ) -> None:
        super().__init__(message)
        self.abort_source = abort_source
        self.abort_reason = abort_reason
        self.reject = reject


class PDUDecodeError(RemoteProtocolError):
    """Bytes from the peer are not a valid PDU (PS3.8 9.3)."""


class PDULengthError(PDUDecodeError):
    """A declared PDU or item length is invalid or exceeds the configured limit."""


class AssociationError(DicomError):
    """An association could not be established or ended abnormally."""


class AssociationRejected(AssociationError):
    """The peer answered A-ASSOCIATE-RJ; ``result``, ``source``, ``reason`` as in PS3.8 9.3.4."""

    def __init__(self, result: int, source: int, reason: int) -> None:
        from .constants import reject_reason_text

        kind = "permanently" if result == 1 else "transiently"
        super().__init__(
            f"association rejected {kind}: {reject_reason_text(source, reason)} "
            f"(result {result}, source {source}, reason {reason})"
        )
        self.result = result
        self.source = source
        self.reason = reason
        # PS3.8 9.3.4: result 2 is "rejected-transient"; source 3 reason 1/2 are load related.
        self.retryable = result == 2


class AssociationAborted(AssociationError):
    """The association was aborted (A-ABORT received or sent, or A-P-ABORT).

    Retrying can help: a new association may succeed.
    """

    retryable = True

    def __init__(self, message: str, *, source: int | None = None, reason: int | None = None):
        super().__init__(message)
        self.source = source
        self.reason = reason


class DimseError(RemoteProtocolError):
    """A DIMSE message from the peer is malformed (PS3.7, PS3.8 Annex E).

    ``status`` is the DIMSE failure status to answer with when the message can still be
    answered (e.g. 0xC000-class for a command that cannot be understood); otherwise the
    association is aborted with ``abort_reason``.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        abort_reason: AbortReason = AbortReason.INVALID_PDU_PARAMETER_VALUE,
    ) -> None:
        super().__init__(message, abort_reason=abort_reason)
        self.status = status


class CommandDecodeError(DimseError):
    """A command set (group 0000) cannot be decoded or lacks a required field (PS3.7 E.1).

    When ``status`` is set the request can still be answered: ``command_field`` and
    ``message_id`` identify it, and ``offending_element`` lists the tags at fault (the
    Offending Element (0000,0901) of the failure response, PS3.7 C.5). When ``status`` is
    ``None`` the command cannot be answered and the association should be aborted.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        abort_reason: AbortReason = AbortReason.INVALID_PDU_PARAMETER_VALUE,
        command_field: int | None = None,
        message_id: int | None = None,
        offending_element: tuple[int, ...] = (),
    ) -> None:
        super().__init__(message, status=status, abort_reason=abort_reason)
        self.command_field = command_field
        self.message_id = message_id
        self.offending_element = offending_element


class AssemblyError(DimseError):
    """PDV sequence breaks PS3.8 Annex E (order, interleaving, context, size bound)."""


class NetworkError(AssociationError):
    """The transport failed: connection refused, reset by peer, unreachable, closed early.

    Retrying can help (a network fault is usually transient).
    """

    retryable = True


class DicomTimeoutError(AssociationError, TimeoutError):
    """A timer ran out; ``timer`` names it (e.g. ``"C-ECHO response"``, ``"ACSE"``).

    The association has been aborted. Retrying can help.
    """

    retryable = True

    def __init__(self, timer: str, seconds: float) -> None:
        super().__init__(f"timed out after {seconds:g} s waiting for {timer}")
        self.timer = timer
        self.seconds = seconds


class ContextNotAccepted(LocalProtocolError):
    """No accepted presentation context can carry this request (nothing was sent)."""


class PDUEncodeError(LocalProtocolError, ValueError):
    """A PDU or item value cannot be put on the wire (PS3.8 9.3, PS3.5 VR AE/UI rules).

    Raised at construction for values that do not fit their wire field at all, and by
    ``encode_pdu`` for values the standard forbids (invalid UID, AE title, context ID ...).
    """
