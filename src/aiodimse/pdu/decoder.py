"""Incremental, bounded PDU decoder (PS3.8 9.3; ROBUSTNESS.md cases 1-12).

Theory of operation
-------------------
Bytes come in through :meth:`PDUDecoder.feed` (copied) or through the zero-copy pair
:meth:`~PDUDecoder.get_buffer` / :meth:`~PDUDecoder.buffer_updated` (the shape of
``asyncio.BufferedProtocol``: the transport reads straight into the decoder's buffer).
:meth:`~PDUDecoder.next_pdu` returns complete PDUs one at a time, or ``None`` when more
bytes are needed.

* The header is judged before anything else: the type byte as soon as it arrives
  (unknown type: reason 1), then the declared length against the type's rules and
  :class:`~aiodimse.config.Limits` (P-DATA-TF above ``max_pdu_length``, A-ASSOCIATE above
  ``max_association_pdu_length``, fixed-size PDUs not 4). Nothing is ever allocated from a
  declared length: memory follows the bytes received.
* P-DATA-TF PDVs are ``memoryview`` slices of the receive buffer. A buffer that may still
  have views is never resized or overwritten: when space runs out, a fresh ``bytearray``
  is allocated and only the unconsumed tail is moved; the old one lives on while views of
  it do. On CPython a buffer that provably has no views left (``PDUDecoder._unshared``) is
  compacted in place instead, which saves the allocation.
* A new buffer holds the unconsumed bytes, room for the rest of a pending PDU whose header
  was accepted (at most the unconsumed bytes or :data:`BUFFER_SIZE`, whichever is larger)
  and one read: memory stays proportional to what the peer actually sent. A pending PDU
  that will not fit is moved as soon as its header is known, while its tail is short, so
  a large PDU is copied at most once, and only partly.
* A P-DATA-TF longer than ``stream_above`` (:data:`STREAM_PDU` by default) is not waited
  for whole: once its header is checked, its PDVs are handed out in pieces as the bytes
  arrive, each piece a :class:`~aiodimse.pdu.pdus.PDataTF` of complete PDVs and at most one
  partial one. A PDV cut into pieces keeps its context ID and command bit; only its final
  piece carries the last-fragment bit of its message control header (PS3.8 E.2), so the
  DIMSE reassembly sees the same fragments, only finer (PS3.8 E.1 allows any split of a
  message into fragments). A piece is at least :data:`PIECE_MIN` bytes (or the rest of its
  PDV) and even-sized. Receive memory then follows the read size, not the PDU length: a peer
  may send a dataset as one PDU of any length we advertised without our buffering (and
  copying) it whole. The length and PDV item checks are those of a whole P-DATA-TF, made as
  the items arrive (an error found late comes after the pieces before it).
* The first error is final: the decoder keeps raising it; later bytes are discarded.
"""

from __future__ import annotations

import struct
import sys

from ..config import Limits
from ..constants import PDU_HEADER_LENGTH, AbortReason, PDUType
from ..errors import LocalProtocolError, PDUDecodeError, PDULengthError
from .decode import ASSOCIATE_FIXED_LENGTH, decode_body, decode_pdata_tf
from .pdus import PDU, PDV, PDataTF

__all__ = [
    "BUFFER_SIZE",
    "PIECE_MIN",
    "READ_SIZE",
    "STREAM_PDU",
    "PDUDecoder",
    "check_header",
    "decode_pdu",
]

#: ``get_buffer`` always offers at least this much writable space.
READ_SIZE = 256 * 1024
#: Minimum size of a buffer allocated by ``get_buffer`` (several reads fill one buffer).
BUFFER_SIZE = 1024 * 1024
#: Minimum size of a buffer allocated by ``feed``.
FEED_BUFFER_SIZE = 64 * 1024
#: A pending PDU up to this size gets only its rest plus :data:`PDU_SLACK` of read space
#: (a thousand associations each midway through a 64 KiB P-DATA-TF must not each hold
#: another full read size); larger PDUs (bulk transfers) keep the caller's read size.
SMALL_PDU = 128 * 1024
#: Read space beyond the rest of a small pending PDU (the start of the next one).
PDU_SLACK = 16 * 1024

#: A P-DATA-TF longer than this is handed out in pieces while it arrives (module docstring).
STREAM_PDU = 256 * 1024
#: The smallest piece of a PDV handed out before the rest of it arrived.
PIECE_MIN = 64 * 1024

#: Receive buffers of this size that finished decoders gave back (:meth:`PDUDecoder.recycle`)
#: are kept, up to :data:`POOL_MAX`, for the next decoders: a short association then
#: allocates (and the system zeroes and maps) no fresh buffer. ``list.append``/``pop`` are
#: atomic, so decoders in several threads may share it.
POOLED_SIZE = 64 * 1024
POOL_MAX = 64
_POOL: list[bytearray] = []

_HEADER = struct.Struct(">BBI")
_PDV_HEADER = struct.Struct(">IBB")
#: Message control header bit 1: the last fragment of the command or dataset (PS3.8 E.2).
_LAST = 0x02
_P_DATA_TF = PDUType.P_DATA_TF
_FIXED_FOUR = frozenset(
    {PDUType.A_ASSOCIATE_RJ, PDUType.A_RELEASE_RQ, PDUType.A_RELEASE_RP, PDUType.A_ABORT}
)
_ASSOCIATE = frozenset({PDUType.A_ASSOCIATE_RQ, PDUType.A_ASSOCIATE_AC})
_DEFAULT_LIMITS = Limits()
_CPYTHON = sys.implementation.name == "cpython"


def _unrecognized(pdu_type: int) -> PDUDecodeError:
    # PS3.8 9.3.1 / Table 9-26 reason 1 (ROBUSTNESS.md case 4: HTTP, TLS, garbage).
    return PDUDecodeError(
        f"unrecognized PDU type 0x{pdu_type:02X}", abort_reason=AbortReason.UNRECOGNIZED_PDU
    )


def check_header(pdu_type: int, length: int, limits: Limits) -> None:
    """Raise if a PDU header (type, declared length) must be refused before its body.

    PS3.8 9.3.1 types 01H-07H; 9.3.4/9.3.6-9.3.8 fixed length 4; P-DATA-TF at most the
    Maximum Length we advertised (PS3.8 D.1) and room for one PDV item; A-ASSOCIATE-RQ/AC
    at least their 68 fixed bytes and at most ``limits.max_association_pdu_length``.
    """
    if pdu_type == _P_DATA_TF:
        if length > limits.max_pdu_length:
            raise PDULengthError(
                f"P-DATA-TF length {length} exceeds our maximum {limits.max_pdu_length}",
                abort_reason=AbortReason.INVALID_PDU_PARAMETER_VALUE,
            )
        if length < 6:
            raise PDULengthError(
                f"P-DATA-TF length {length} cannot hold a PDV item",
                abort_reason=AbortReason.INVALID_PDU_PARAMETER_VALUE,
            )
    elif pdu_type in _ASSOCIATE:
        if length > limits.max_association_pdu_length:
            raise PDULengthError(
                f"A-ASSOCIATE PDU length {length} exceeds the limit "
                f"{limits.max_association_pdu_length}",
                abort_reason=AbortReason.INVALID_PDU_PARAMETER_VALUE,
            )
        if length < ASSOCIATE_FIXED_LENGTH:
            raise PDULengthError(
                f"A-ASSOCIATE PDU length {length} is shorter than its fixed fields",
                abort_reason=AbortReason.INVALID_PDU_PARAMETER_VALUE,
            )
    elif pdu_type in _FIXED_FOUR:
        if length != 4:
            raise PDULengthError(
                f"PDU type 0x{pdu_type:02X} must have length 4, not {length}",
                abort_reason=AbortReason.INVALID_PDU_PARAMETER_VALUE,
            )
    else:
        raise _unrecognized(pdu_type)


class PDUDecoder:
    """Turn a byte stream from the peer into PDUs, incrementally and within ``limits``.

    Contract: for any bytes in any split, :meth:`next_pdu` returns PDUs, ``None`` (needs
    more bytes) or raises :class:`~aiodimse.errors.PDUDecodeError` (with ``abort_source``
    and ``abort_reason`` for the A-ABORT); after an error it raises the same error again.
    P-DATA-TF PDV data are read-only-by-convention views into the receive buffer, valid for
    as long as the caller keeps them.
    """

    __slots__ = (
        "_allocations",
        "_buf",
        "_end",
        "_error",
        "_limits",
        "_pdv_cid",
        "_pdv_control",
        "_pdv_left",
        "_pending",
        "_scratch",
        "_start",
        "_stream_above",
        "_stream_left",
        "_streamed",
        "_view",
    )

    def __init__(self, limits: Limits = _DEFAULT_LIMITS, *, stream_above: int = STREAM_PDU) -> None:
        """``stream_above``: a P-DATA-TF with a longer body is handed out in pieces (see the
        module docstring); at least :data:`PIECE_MIN`."""
        if stream_above < PIECE_MIN:
            raise ValueError(f"stream_above must be at least {PIECE_MIN}")
        self._limits = limits
        self._stream_above = stream_above
        # A P-DATA-TF being handed out in pieces: body bytes not yet handed out (0: none),
        # bytes of it handed out so far, and the PDV in progress (data bytes left, 0 when
        # an item header comes next; its context ID and message control header).
        self._stream_left = 0
        self._streamed = 0
        self._pdv_left = 0
        self._pdv_cid = 0
        self._pdv_control = 0
        self._buf = bytearray()
        self._view = memoryview(self._buf)
        self._start = 0  # first unconsumed byte
        self._end = 0  # first free byte
        self._pending = 0  # total size of the PDU being received, once its header is known
        self._error: PDUDecodeError | None = None
        self._scratch: bytearray | None = None
        self._allocations = 0

    # -- introspection ---------------------------------------------------------------

    @property
    def limits(self) -> Limits:
        return self._limits

    @property
    def buffered_bytes(self) -> int:
        """Bytes received and not yet returned as PDUs, counting those of a P-DATA-TF being
        handed out in pieces (its header and the pieces so far) until its last piece: the
        same number as if the PDU were waited for whole."""
        return self._end - self._start + self._streamed

    @property
    def buffer_capacity(self) -> int:
        """Size of the buffer the decoder currently holds (older buffers may live on)."""
        return len(self._buf)

    @property
    def buffers_allocated(self) -> int:
        """How many receive buffers this decoder has allocated so far."""
        return self._allocations

    @property
    def error(self) -> PDUDecodeError | None:
        """The error that stopped the decoder, if any."""
        return self._error

    # -- input -----------------------------------------------------------------------

    def _reallocate(self, want: int, minimum: int) -> None:
        """Make ``want`` free bytes after the unconsumed tail, moving the tail to the front.

        The tail moves into a fresh buffer, unless the current one is large enough and
        provably has no views left (:meth:`_unshared`), in which case it is compacted in
        place and no memory is allocated.
        """
        start, end = self._start, self._end
        tail = end - start
        # Room for the rest of the pending PDU (its header is known and within the limits),
        # but never more than what we hold or one BUFFER_SIZE beyond it: memory follows
        # the bytes received, never the declared length.
        growth = min(max(0, self._pending - tail), max(tail, BUFFER_SIZE))
        size = max(tail + growth + want, minimum)
        if len(self._buf) >= size and self._unshared():
            buf = self._buf
            buf[:tail] = buf[start:end]  # the right side is a copy: no overlap issue
        else:
            new = _POOL.pop() if size <= POOLED_SIZE and _POOL else bytearray(size)
            self._allocations += 1
            new[:tail] = self._view[start:end]
            self._buf = new
            self._view = memoryview(new)
        self._start = 0
        self._end = tail

    def _unshared(self) -> bool:
        """True if no view of the current buffer exists any more (then it may be reused).

        CPython counts the exports of a bytearray and refuses to resize one that has any:
        after dropping our own view, a one-byte shrink fails with ``BufferError`` exactly
        when a PDV (or a ``get_buffer`` view) still refers to the buffer. When it succeeds
        it is undone at once (O(1), the allocation is kept). Elsewhere we never reuse.
        Our own view is made again either way.
        """
        if not _CPYTHON or not self._buf:
            return False
        self._view.release()
        buf = self._buf
        try:
            last = buf.pop()
        except BufferError:
            return False
        else:
            buf.append(last)
            return True
        finally:
            self._view = memoryview(buf)

    def recycle(self) -> None:
        """The connection is over: give the receive buffer back for other decoders when no
        view of it is left (nothing handed out can see it change), and hold none. Decoding
        may go on afterwards (a fresh buffer is allocated then)."""
        buf = self._buf
        if len(buf) != POOLED_SIZE or len(_POOL) >= POOL_MAX or self.buffered_bytes:
            return
        if not self._unshared():
            return
        self._view.release()
        self._buf = bytearray()
        self._view = memoryview(self._buf)
        self._start = self._end = 0
        _POOL.append(buf)

    def feed(self, data: bytes | bytearray | memoryview) -> None:
        """Append a copy of ``data`` to the stream (ignored once the decoder has failed)."""
        n = len(data)
        if n == 0 or self._error is not None:
            return
        if len(self._buf) - self._end < n:
            self._reallocate(n, max(FEED_BUFFER_SIZE, 2 * n))
        self._buf[self._end : self._end + n] = data
        self._end += n

    def get_buffer(self, sizehint: int = -1) -> memoryview:
        """Writable space in the decoder's buffer: at least ``sizehint`` bytes when it is
        positive (the caller sizes its reads, e.g. small for many idle connections and
        larger for bulk transfers), else at least :data:`READ_SIZE`; while a small PDU is
        pending (:data:`SMALL_PDU`), at least its rest plus :data:`PDU_SLACK` instead.

        Like ``asyncio.BufferedProtocol.get_buffer``: write received bytes into it, then
        call :meth:`buffer_updated` with their count.
        """
        want = sizehint if sizehint > 0 else READ_SIZE
        minimum = want if sizehint > 0 else BUFFER_SIZE
        rest = self._pending - (self._end - self._start)
        small = sizehint > 0 and rest > 0 and self._pending <= SMALL_PDU and not self._stream_left
        if small:
            # Memory follows what is on its way (see SMALL_PDU); the view may be shorter
            # than ``sizehint``: callers read at most ``len(view)`` bytes.
            want = min(want, rest + PDU_SLACK)
        if self._error is not None:
            if self._scratch is None or len(self._scratch) < want:
                self._scratch = bytearray(want)
            return memoryview(self._scratch)
        if self._start == self._end and self._end and self._unshared():
            # Everything received was consumed and no view of it is left: read from the
            # front again instead of allocating (the common case for short messages).
            self._start = self._end = 0
        free = len(self._buf) - self._end
        if free < want or (
            # The pending PDU will not fit here: move it now, while its tail is short.
            self._start + self._pending > len(self._buf) and self._start > 0
        ):
            if small:  # the PDU's rest is made room for as growth: add only the slack
                self._reallocate(PDU_SLACK, PDU_SLACK)
            else:
                self._reallocate(want, minimum)
        return self._view[self._end :]

    def buffer_updated(self, nbytes: int) -> None:
        """Commit ``nbytes`` written at the start of the last :meth:`get_buffer` view."""
        if self._error is not None:
            return
        if not 0 <= nbytes <= len(self._buf) - self._end:
            raise LocalProtocolError(f"buffer_updated({nbytes}) exceeds the buffer given out")
        self._end += nbytes

    # -- output ----------------------------------------------------------------------

    def next_pdu(self) -> PDU | None:
        """The next complete PDU, or ``None`` if more bytes are needed.

        Raises :class:`~aiodimse.errors.PDUDecodeError` (or its subclass
        :class:`~aiodimse.errors.PDULengthError`) for invalid input, then forever after.
        """
        if self._error is not None:
            raise self._error
        if self._stream_left:
            try:
                return self._next_piece()
            except PDUDecodeError as exc:
                self._fail(exc)
                raise
        start = self._start
        available = self._end - start
        if available == 0:
            return None
        buf = self._buf
        try:
            if available < PDU_HEADER_LENGTH:
                if not 1 <= buf[start] <= 7:
                    raise _unrecognized(buf[start])
                return None
            pdu_type, _reserved, length = _HEADER.unpack_from(buf, start)
            check_header(pdu_type, length, self._limits)
            total = PDU_HEADER_LENGTH + length
            if available < total:
                if pdu_type == _P_DATA_TF and length > self._stream_above:
                    # A long P-DATA-TF: hand out its PDVs while they arrive.
                    self._start = start + PDU_HEADER_LENGTH
                    self._stream_left = length
                    self._streamed = PDU_HEADER_LENGTH
                    return self._next_piece()
                self._pending = total
                return None
            self._pending = 0
            self._start = start + total
            body = start + PDU_HEADER_LENGTH
            if pdu_type == _P_DATA_TF:
                return decode_pdata_tf(buf, self._view, body, start + total)
            return decode_body(pdu_type, bytes(self._view[body : start + total]))
        except PDUDecodeError as exc:
            self._fail(exc)
            raise

    def _next_piece(self) -> PDataTF | None:
        """The PDVs (whole or in part) of the streamed P-DATA-TF that are here, or ``None``.

        Each PDV item is checked as in a whole P-DATA-TF (PS3.8 9.3.5.1: an item length of
        at least 2 that stays within the PDU; ROBUSTNESS.md case 6). A partial PDV is handed
        out once :data:`PIECE_MIN` of it is here, cut to an even length, without its
        last-fragment bit (PS3.8 E.2: only the final piece may carry it).
        """
        buf, view = self._buf, self._view
        pos, end, left = self._start, self._end, self._stream_left
        rest = self._pdv_left
        pdvs: list[PDV] = []
        while left:
            if rest == 0:  # a PDV item header comes next
                if left < 6:
                    raise PDULengthError(
                        "truncated PDV item header in P-DATA-TF",
                        abort_reason=AbortReason.INVALID_PDU_PARAMETER_VALUE,
                    )
                if end - pos < 6:
                    break
                length, cid, control = _PDV_HEADER.unpack_from(buf, pos)
                if length < 2 or length > left - 4:
                    raise PDULengthError(
                        f"PDV item length {length} is below 2 or overruns the P-DATA-TF",
                        abort_reason=AbortReason.INVALID_PDU_PARAMETER_VALUE,
                    )
                pos += 6
                left -= 6
                rest = length - 2
                self._pdv_cid, self._pdv_control = cid, control
                if rest == 0:  # an empty PDV: whole at once
                    pdvs.append(self._pdv(control, view[pos:pos]))
                    continue
            take = min(rest, end - pos)
            control = self._pdv_control
            if take < rest:  # part of this PDV is still on its way
                take -= take & 1
                if take < PIECE_MIN:
                    break
                control &= ~_LAST
            pdvs.append(self._pdv(control, view[pos : pos + take]))
            pos += take
            left -= take
            rest -= take
            if rest:
                break
        self._pdv_left = rest
        self._stream_left = left
        if left:
            self._streamed += pos - self._start
            # Bytes needed at _start before the next piece can go (get_buffer makes room).
            self._pending = 6 if rest == 0 else min(rest, PIECE_MIN)
        else:
            self._streamed = self._pending = 0
        self._start = pos
        return PDataTF(pdvs=tuple(pdvs)) if pdvs else None

    def _pdv(self, control: int, data: memoryview) -> PDV:
        return PDV(
            context_id=self._pdv_cid,
            is_command=control & 1 == 1,
            is_last=control & _LAST == _LAST,
            data=data,
        )

    def _fail(self, exc: PDUDecodeError) -> None:
        self._stream_left = self._streamed = self._pdv_left = 0
        self._error = exc
        # Drop what is buffered; views already handed out keep their buffer alive.
        self._buf = bytearray()
        self._view = memoryview(self._buf)
        self._start = self._end = self._pending = 0


def decode_pdu(data: bytes | bytearray | memoryview, limits: Limits = _DEFAULT_LIMITS) -> PDU:
    """Decode exactly one whole PDU from ``data`` (header included).

    Raises :class:`~aiodimse.errors.PDUDecodeError` if ``data`` is invalid, incomplete or
    has bytes after the PDU.
    """
    decoder = PDUDecoder(limits)
    decoder.feed(data)
    pdu = decoder.next_pdu()
    if pdu is None:
        raise PDULengthError("incomplete PDU", abort_reason=AbortReason.INVALID_PDU_PARAMETER_VALUE)
    if decoder.buffered_bytes:
        raise PDULengthError(
            f"{decoder.buffered_bytes} bytes after the PDU",
            abort_reason=AbortReason.INVALID_PDU_PARAMETER_VALUE,
        )
    return pdu
