"""Streaming transcoder between the uncompressed transfer syntaxes (sans-I/O, PS3.5).

Theory of operation
-------------------
A :class:`Transcoder` is fed the bytes of one *data set* (no PS3.10 preamble, no group 0002:
what a C-STORE carries) in chunks of any size, and returns the same data set re-encoded in the
target transfer syntax, chunk by chunk. It walks the data set element by element (PS3.5 7.1)
with an explicit stack of containers (root data set, sequence, item), so nesting costs no
Python recursion and at most ``max_depth`` sequences may be open.

* An element header is parsed once all of it has arrived (8 or 12 bytes; PS3.5 7.1.1-7.1.3).
* A value of at most ``max_buffer`` bytes is handled whole once it has arrived; a longer one
  (Pixel Data, large OB/OW/UN) passes through in the pieces it arrives in, byte-swapped for
  big endian with a carry of at most 7 bytes when a chunk splits a word (PS3.5 7.3). Memory
  is therefore bounded by about twice ``max_buffer`` plus one input chunk (plus, for a
  Deflated source, 1 MiB of inflated data per step), whatever the size of the data set.
* Deflated Explicit VR Little Endian (PS3.5 A.5) is raw deflate (zlib ``wbits=-15``) around
  Explicit VR Little Endian, inflated/deflated incrementally on the way in/out.

Encoding choices (all valid PS3.5 encodings; documented because they differ from the input):

* Every sequence and item whose encoding changes is written with **undefined length** and
  closed by a delimitation item (PS3.5 7.5.1, 7.5.2): element lengths change between
  implicit and explicit VR, and nothing is buffered to measure them.
* Group Length elements (gggg,0000) are **dropped** for the same reason (they are optional
  outside groups 0000 and 0002, PS3.5 7.2); a data set never contains groups 0000/0002.
* Implicit -> explicit: the VR comes from pydicom's dictionary via :mod:`.vr`; private and
  unknown tags become UN, private creators LO, a value over 0xFFFF bytes whose VR has a
  16-bit length field becomes UN (PS3.5 6.2.2). An undefined-length element in implicit VR
  is a sequence (SQ), whatever the dictionary says.
* UN values are never byte-swapped (PS3.5 6.2.2: a UN value is little endian, implicit VR,
  whatever the transfer syntax). Consequently a private numeric element read from Implicit
  VR LE and written as Explicit VR Big Endian keeps its little-endian bytes under VR UN;
  without a dictionary that is the only correct choice.
* A UN element of undefined length holds an implicit VR little endian sequence (PS3.5
  6.2.2); it is read as such and written as an SQ in the target encoding.
* Identical source and target, and Explicit VR LE <-> Deflated, are not walked at all: the
  bytes pass through unchanged (resp. only inflated/deflated), bit-preserving.

Errors (odd or overrunning lengths, unknown explicit VRs, misplaced delimiters, encapsulated
Pixel Data, truncated input, too deep nesting, corrupt deflate data) raise
:class:`TranscodeError` naming the tag and the byte offset in the (inflated) source data set;
nothing is silently repaired.

Output chunks are ``bytes`` or read-only ``memoryview`` slices of ``bytes`` objects: either
our own, or the caller's input when it was given as ``bytes`` (immutable, so never changed
afterwards). Input given as ``bytearray`` or a writable ``memoryview`` is copied first, so
the caller may reuse it as soon as :meth:`Transcoder.feed` returns.
"""

from __future__ import annotations

import enum
import struct
import zlib
from array import array
from dataclasses import dataclass

from ..constants import (
    DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN,
    EXPLICIT_VR_BIG_ENDIAN,
    EXPLICIT_VR_LITTLE_ENDIAN,
    IMPLICIT_VR_LITTLE_ENDIAN,
)
from ..errors import LocalProtocolError
from .vr import LONG_LENGTH_VRS, SHORT_LENGTH_VRS, SWAP_SIZE, DatasetContext, implicit_vr

__all__ = [
    "DEFLATED_EXPLICIT_VR_LE",
    "EXPLICIT_VR_BE",
    "EXPLICIT_VR_LE",
    "IMPLICIT_VR_LE",
    "TranscodeError",
    "Transcoder",
    "can_transcode",
    "transcode_bytes",
]

# Short names for the transfer syntax UIDs of aiodimse.constants (PS3.5 Annex A).
IMPLICIT_VR_LE = IMPLICIT_VR_LITTLE_ENDIAN
EXPLICIT_VR_LE = EXPLICIT_VR_LITTLE_ENDIAN
EXPLICIT_VR_BE = EXPLICIT_VR_BIG_ENDIAN
DEFLATED_EXPLICIT_VR_LE = DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN

_UNDEFINED = 0xFFFFFFFF
_ITEM = 0xFFFEE000
_ITEM_DELIMITER = 0xFFFEE00D
_SEQUENCE_DELIMITER = 0xFFFEE0DD
_PIXEL_DATA = 0x7FE00010
_PIXEL_REPRESENTATION = 0x00280103
_BITS_ALLOCATED = 0x00280100
_LUT_DESCRIPTOR = 0x00283002
_CAPTURED = frozenset({_PIXEL_REPRESENTATION, _BITS_ALLOCATED, _LUT_DESCRIPTOR})
_COALESCE = 16384  # output pieces shorter than this are joined into one bytes chunk
_INFLATE_STEP = 1 << 20  # inflate at most this much per zlib call


class TranscodeError(LocalProtocolError):
    """The data set cannot be transcoded: malformed input or an unsupported encoding.

    ``tag`` is the element at fault (``None`` when the fault is not at an element) and
    ``offset`` its byte offset in the source data set (after inflation for Deflated).
    """

    def __init__(self, message: str, *, tag: int | None = None, offset: int | None = None):
        where = ""
        if tag is not None:
            where += f"({tag >> 16:04X},{tag & 0xFFFF:04X})"
        if offset is not None:
            where += f"{' ' if where else ''}at offset {offset}"
        super().__init__(f"{where}: {message}" if where else message)
        self.tag = tag
        self.offset = offset


class _Encoding(enum.Enum):
    """The three element encodings of the uncompressed transfer syntaxes (PS3.5 Annex A)."""

    IMPLICIT_LE = (False, "<")
    EXPLICIT_LE = (True, "<")
    EXPLICIT_BE = (True, ">")

    def __init__(self, explicit: bool, order: str) -> None:
        self.explicit = explicit
        self.little = order == "<"
        self.tag_length = struct.Struct(order + "HHI")  # implicit element, item, delimiter
        self.short = struct.Struct(order + "HH2sH")  # PS3.5 7.1.2, Table 7.1-2
        self.long = struct.Struct(order + "HH2s2xI")  # PS3.5 7.1.2, Table 7.1-1
        self.u16 = struct.Struct(order + "H")


_BY_UID: dict[str, tuple[_Encoding, bool]] = {
    IMPLICIT_VR_LE: (_Encoding.IMPLICIT_LE, False),
    EXPLICIT_VR_LE: (_Encoding.EXPLICIT_LE, False),
    EXPLICIT_VR_BE: (_Encoding.EXPLICIT_BE, False),
    DEFLATED_EXPLICIT_VR_LE: (_Encoding.EXPLICIT_LE, True),
}


def can_transcode(source_ts: str, target_ts: str) -> bool:
    """True when both UIDs are uncompressed syntaxes this module converts between.

    Implicit VR LE, Explicit VR LE, Explicit VR BE and Deflated Explicit VR LE, in any
    combination, identity included.
    """
    return source_ts in _BY_UID and target_ts in _BY_UID


class _Kind(enum.Enum):
    ROOT = enum.auto()
    SEQUENCE = enum.auto()
    ITEM = enum.auto()


@dataclass(slots=True)
class _Frame:
    """One open container. ``end`` is its source end offset if it has a defined length."""

    kind: _Kind
    tag: int
    src: _Encoding
    dst: _Encoding
    end: int | None
    limit: int | None  # tightest defined end of this frame and its ancestors


class _State(enum.Enum):
    HEADER = enum.auto()
    VALUE = enum.auto()  # streaming a long value


_SWAP_CODES = {array(c).itemsize: c for c in "QLIH"}


def _swapped(data: memoryview | bytes, unit: int) -> memoryview:
    """``data`` with every ``unit``-byte word reversed (PS3.5 7.3); len % unit == 0.

    Returns a byte view of a fresh array: ``array.tobytes`` would cost one more copy (and,
    measured, most of the time).
    """
    words = array(_SWAP_CODES[unit])
    words.frombytes(data)
    words.byteswap()
    return memoryview(words).cast("B")


class _Output:
    """Collects output pieces, joining small ones so callers get few, large chunks."""

    __slots__ = ("chunks", "small")

    def __init__(self) -> None:
        self.chunks: list[bytes | memoryview] = []
        self.small = bytearray()

    def add(self, piece: bytes | memoryview) -> None:
        if len(piece) < _COALESCE:
            self.small += piece
            return
        if self.small:
            self.chunks.append(bytes(self.small))
            self.small.clear()
        self.chunks.append(piece)

    def take(self) -> list[bytes | memoryview]:
        if self.small:
            self.chunks.append(bytes(self.small))
            self.small.clear()
        chunks, self.chunks = self.chunks, []
        return chunks


class Transcoder:
    """Re-encode one data set from ``source_ts`` to ``target_ts``, incrementally.

    Feed the source bytes with :meth:`feed` (any chunking), then call :meth:`finish` once.
    Each call returns the output chunks ready so far; their concatenation is the data set
    in the target syntax. See the module docstring for the encoding choices and the memory
    bound. ``max_depth`` limits sequence nesting (ROBUSTNESS 28); ``max_inflated``, if set,
    limits the inflated size of a Deflated source (ROBUSTNESS 30): the output of one
    :meth:`feed` holds everything its input inflates to, so feed a Deflated source in
    modest chunks. After a :class:`TranscodeError` the transcoder is unusable and the output
    already returned is not a valid data set (abandon the transfer).
    """

    def __init__(
        self,
        source_ts: str,
        target_ts: str,
        *,
        max_buffer: int = 1 << 20,
        max_depth: int = 64,
        max_inflated: int | None = None,
    ) -> None:
        if not can_transcode(source_ts, target_ts):
            raise TranscodeError(f"cannot transcode from {source_ts!r} to {target_ts!r}")
        if max_buffer < 64:
            raise ValueError("max_buffer must be at least 64 bytes")
        self._src, self._inflate = _BY_UID[source_ts]
        self._dst, self._deflate = _BY_UID[target_ts]
        self._passthrough = self._src is self._dst
        self._identity = source_ts == target_ts
        self._max_buffer = max_buffer
        self._max_depth = max_depth
        self._max_inflated = max_inflated
        self._inflater = zlib.decompressobj(-zlib.MAX_WBITS) if self._inflate else None
        self._deflater = zlib.compressobj(wbits=-zlib.MAX_WBITS) if self._deflate else None
        self._inflated = 0
        self._trailer = b""
        self._deflated = 0
        self._finished = False
        self._failed = False
        # Walker state.
        self._out = _Output()
        self._pending = bytearray()
        self._need = 0
        self._offset = 0  # source offset of the next unparsed byte
        self._state = _State.HEADER
        self._stack = [
            _Frame(kind=_Kind.ROOT, tag=0, src=self._src, dst=self._dst, end=None, limit=None)
        ]
        self._contexts = [DatasetContext()]
        self._depth = 0
        self._value_tag = 0
        self._value_left = 0
        self._value_unit = 1
        self._value_drop = False
        self._carry = b""

    # ------------------------------------------------------------------ public API

    def feed(self, data: bytes | memoryview) -> list[bytes | memoryview]:
        """Take the next source bytes; return the output chunks ready now (maybe none)."""
        self._check_usable()
        if not isinstance(data, bytes):
            data = bytes(data)  # never alias memory the caller may reuse
        if self._identity:
            return [data] if data else []
        try:
            if self._inflater is not None:
                self._feed_inflated(data)
            else:
                self._feed_plain(data)
            return self._emit(self._out.take())
        except BaseException:
            self._failed = True
            raise

    def finish(self) -> list[bytes | memoryview]:
        """Flush; raise :class:`TranscodeError` if the input ended mid-element or mid-sequence."""
        self._check_usable()
        self._finished = True
        if self._identity:
            return []
        try:
            if self._inflater is not None:
                self._finish_inflate()
            if not self._passthrough:
                self._check_complete()
            chunks = self._emit(self._out.take())
            if self._deflater is not None:
                tail = self._deflater.flush()
                self._deflated += len(tail)
                if self._deflated % 2:
                    tail += b"\x00"  # keep the value even (PS3.5 7.1.1), as pydicom does
                if tail:
                    chunks.append(tail)
            return chunks
        except BaseException:
            self._failed = True
            raise

    # ------------------------------------------------------------------ plumbing

    def _check_usable(self) -> None:
        if self._failed:
            raise TranscodeError("transcoder already failed")
        if self._finished:
            raise TranscodeError("transcoder already finished")

    def _emit(self, chunks: list[bytes | memoryview]) -> list[bytes | memoryview]:
        if self._deflater is None:
            return chunks
        out: list[bytes | memoryview] = []
        for chunk in chunks:
            packed = self._deflater.compress(chunk)
            if packed:
                self._deflated += len(packed)
                out.append(packed)
        return out

    def _feed_inflated(self, data: bytes) -> None:
        inflater = self._inflater
        assert inflater is not None  # only called for a Deflated source
        pending = data
        ended_before = inflater.eof
        while pending and not inflater.eof:
            try:
                piece = inflater.decompress(pending, _INFLATE_STEP)
            except zlib.error as exc:
                raise TranscodeError(f"corrupt deflate data: {exc}", offset=self._offset) from exc
            pending = inflater.unconsumed_tail
            if piece:
                self._inflated += len(piece)
                if self._max_inflated is not None and self._inflated > self._max_inflated:
                    raise TranscodeError(
                        f"inflated data set exceeds {self._max_inflated} bytes",
                        offset=self._offset,
                    )
                self._feed_plain(piece)
        if inflater.eof:
            # PS3.5 A.5: nothing follows the deflate stream but an optional pad byte.
            self._trailer += data if ended_before else inflater.unused_data
            if len(self._trailer) > 1 or self._trailer.strip(b"\x00"):
                raise TranscodeError(
                    "data after the end of the deflate stream", offset=self._offset
                )

    def _finish_inflate(self) -> None:
        inflater = self._inflater
        assert inflater is not None
        try:
            rest = inflater.flush()
        except zlib.error as exc:
            raise TranscodeError(f"corrupt deflate data: {exc}", offset=self._offset) from exc
        if rest:
            self._inflated += len(rest)
            self._feed_plain(rest)
        if not inflater.eof:
            raise TranscodeError("deflate stream truncated", offset=self._offset)

    def _feed_plain(self, data: bytes) -> None:
        if self._passthrough:
            if data:
                self._out.add(data)
            return
        if self._pending:
            self._pending += data
            if len(self._pending) < self._need:
                return
            data = bytes(self._pending)
            self._pending.clear()
        view = memoryview(data)
        used = self._walk(view)
        if used < len(view):
            self._pending += view[used:]

    def _check_complete(self) -> None:
        if self._state is _State.VALUE:
            raise TranscodeError(
                f"input ended inside the value, {self._value_left} bytes missing",
                tag=self._value_tag,
                offset=self._offset,
            )
        if self._pending:
            raise TranscodeError(
                f"input ended inside an element ({len(self._pending)} bytes left over)",
                offset=self._offset,
            )
        self._close_ended()
        if len(self._stack) > 1:
            top = self._stack[-1]
            what = "item" if top.kind is _Kind.ITEM else "sequence"
            raise TranscodeError(
                f"input ended inside an undefined-length {what}", tag=top.tag, offset=self._offset
            )

    # ------------------------------------------------------------------ the walker

    def _walk(self, view: memoryview) -> int:
        """Consume as much of ``view`` as possible; return how many bytes were used."""
        pos = 0
        size = len(view)
        out = self._out
        while True:
            if self._state is _State.VALUE:
                take = min(self._value_left, size - pos)
                if take == 0:
                    return pos
                self._stream_value(view[pos : pos + take])
                pos += take
                self._offset += take
                self._value_left -= take
                if self._value_left:
                    return pos
                self._state = _State.HEADER
                self._close_ended()
                continue
            avail = size - pos
            if avail < 8:
                self._need = 8
                return pos
            frame = self._stack[-1]
            src = frame.src
            group, element, length = src.tag_length.unpack_from(view, pos)
            tag = group << 16 | element
            if group == 0xFFFE:
                self._delimiter(tag, length, frame)
                pos += 8
                self._offset += 8
                self._close_ended()
                continue
            if frame.kind is _Kind.SEQUENCE:
                raise TranscodeError(
                    "element found where an item or sequence delimiter was expected",
                    tag=tag,
                    offset=self._offset,
                )
            if src.explicit:
                vr = bytes(view[pos + 4 : pos + 6])
                if vr in SHORT_LENGTH_VRS:
                    length = src.short.unpack_from(view, pos)[3]
                    header = 8
                elif vr in LONG_LENGTH_VRS:
                    if avail < 12:
                        self._need = 12
                        return pos
                    length = src.long.unpack_from(view, pos)[3]
                    header = 12
                else:
                    raise TranscodeError(
                        f"unknown explicit VR {vr!r}", tag=tag, offset=self._offset
                    )
            else:
                header = 8
                vr = b"" if length == _UNDEFINED else implicit_vr(tag, length, self._contexts)
            if length == _UNDEFINED:
                self._open_sequence(tag, vr, frame)
                pos += header
                self._offset += header
                continue
            self._check_value(tag, length, frame, header)
            if vr == b"SQ":
                self._offset += header
                pos += header
                self._open_defined_sequence(tag, length, frame)
                self._close_ended()
                continue
            whole = length <= self._max_buffer
            if whole and avail < header + length:
                self._need = header + length
                return pos
            start = pos + header
            self._offset += header
            unit, drop = self._write_header(tag, vr, length, frame)
            if whole:
                value = view[start : start + length]
                if tag in _CAPTURED and length >= 2:
                    self._capture(tag, value, src)
                if not drop:
                    out.add(_swapped(value, unit) if unit > 1 else value)
                pos = start + length
                self._offset += length
                self._close_ended()
                continue
            self._state = _State.VALUE
            self._value_tag = tag
            self._value_left = length
            self._value_unit = unit
            self._value_drop = drop
            self._carry = b""
            pos = start

    def _check_value(self, tag: int, length: int, frame: _Frame, header: int) -> None:
        # PS3.5 7.1.1: value lengths are even.
        if length & 1:
            raise TranscodeError(f"odd value length {length}", tag=tag, offset=self._offset)
        end = self._offset + header + length
        if frame.limit is not None and end > frame.limit:
            raise TranscodeError(
                f"value length {length} runs past the end of its enclosing item or sequence",
                tag=tag,
                offset=self._offset,
            )

    def _write_header(self, tag: int, vr: bytes, length: int, frame: _Frame) -> tuple[int, bool]:
        """Write the target element header; return (swap unit, drop value)."""
        src, dst = frame.src, frame.dst
        if tag & 0xFFFF == 0:
            return 1, True  # PS3.5 7.2: Group Length is optional; ours would be stale
        if dst.explicit:
            if vr in LONG_LENGTH_VRS:
                self._out.add(dst.long.pack(tag >> 16, tag & 0xFFFF, vr, length))
            else:
                self._out.add(dst.short.pack(tag >> 16, tag & 0xFFFF, vr, length))
        else:
            self._out.add(dst.tag_length.pack(tag >> 16, tag & 0xFFFF, length))
        unit = SWAP_SIZE.get(vr, 1) if src.little != dst.little else 1
        if unit > 1 and length % unit:
            raise TranscodeError(
                f"value length {length} is not a multiple of {unit} for VR {vr.decode()}",
                tag=tag,
                offset=self._offset,
            )
        return unit, False

    def _capture(self, tag: int, value: memoryview, src: _Encoding) -> None:
        first = int(src.u16.unpack_from(value, 0)[0])
        ctx = self._contexts[-1]
        if tag == _PIXEL_REPRESENTATION:
            ctx.pixel_representation = first
        elif tag == _BITS_ALLOCATED:
            ctx.bits_allocated = first
        else:
            ctx.lut_entries = first

    def _stream_value(self, piece: memoryview) -> None:
        if self._value_drop:
            return
        unit = self._value_unit
        if unit == 1:
            self._out.add(piece)
            return
        if self._carry:
            missing = unit - len(self._carry)
            if len(piece) < missing:
                self._carry += bytes(piece)
                return
            self._out.add(_swapped(self._carry + bytes(piece[:missing]), unit))
            piece = piece[missing:]
        whole = len(piece) - len(piece) % unit
        if whole:
            self._out.add(_swapped(piece[:whole], unit))
        self._carry = bytes(piece[whole:])

    # ------------------------------------------------------------------ containers

    def _push(self, frame: _Frame) -> None:
        if frame.kind is _Kind.SEQUENCE:
            self._depth += 1
            if self._depth > self._max_depth:
                raise TranscodeError(
                    f"sequences nested deeper than {self._max_depth}",
                    tag=frame.tag,
                    offset=self._offset,
                )
        else:
            self._contexts.append(DatasetContext())
        self._stack.append(frame)

    def _pop(self) -> None:
        frame = self._stack.pop()
        if frame.kind is _Kind.SEQUENCE:
            self._depth -= 1
            delimiter = _SEQUENCE_DELIMITER
        else:
            self._contexts.pop()
            delimiter = _ITEM_DELIMITER
        # PS3.5 7.5.1/7.5.2: delimitation items use the tag-and-length form of the syntax.
        self._out.add(frame.dst.tag_length.pack(0xFFFE, delimiter & 0xFFFF, 0))

    def _close_ended(self) -> None:
        """Close every defined-length container whose last byte has been consumed."""
        stack = self._stack
        while stack[-1].end is not None and stack[-1].end == self._offset:
            self._pop()

    def _open_sequence(self, tag: int, vr: bytes, frame: _Frame) -> None:
        """An undefined-length element: a sequence (PS3.5 7.5.1), or a UN holding one."""
        if tag == _PIXEL_DATA:
            raise TranscodeError(
                "encapsulated (compressed) Pixel Data cannot be transcoded here",
                tag=tag,
                offset=self._offset,
            )
        src, dst = frame.src, frame.dst
        if vr and vr not in (b"SQ", b"UN"):
            raise TranscodeError(
                f"undefined length on VR {vr.decode()}", tag=tag, offset=self._offset
            )
        # PS3.5 6.2.2: the value of an undefined-length UN is a sequence in implicit VR LE.
        # It is written as what it is, an SQ in the target encoding, which every reader
        # understands (some, pydicom among them, would parse a UN's content in the outer
        # syntax instead of implicit VR LE).
        content_src = _Encoding.IMPLICIT_LE if vr == b"UN" else src
        if dst.explicit:
            self._out.add(dst.long.pack(tag >> 16, tag & 0xFFFF, b"SQ", _UNDEFINED))
        else:
            self._out.add(dst.tag_length.pack(tag >> 16, tag & 0xFFFF, _UNDEFINED))
        self._push(
            _Frame(
                kind=_Kind.SEQUENCE,
                tag=tag,
                src=content_src,
                dst=dst,
                end=None,
                limit=frame.limit,
            )
        )

    def _open_defined_sequence(self, tag: int, length: int, frame: _Frame) -> None:
        dst = frame.dst
        if dst.explicit:
            self._out.add(dst.long.pack(tag >> 16, tag & 0xFFFF, b"SQ", _UNDEFINED))
        else:
            self._out.add(dst.tag_length.pack(tag >> 16, tag & 0xFFFF, _UNDEFINED))
        end = self._offset + length
        self._push(_Frame(kind=_Kind.SEQUENCE, tag=tag, src=frame.src, dst=dst, end=end, limit=end))

    def _delimiter(self, tag: int, length: int, frame: _Frame) -> None:
        """An item or delimitation item header (PS3.5 7.5)."""
        offset = self._offset
        if frame.limit is not None and offset + 8 > frame.limit:
            raise TranscodeError("item runs past the end of its sequence", tag=tag, offset=offset)
        if tag == _ITEM:
            if frame.kind is not _Kind.SEQUENCE:
                raise TranscodeError("item outside a sequence", tag=tag, offset=offset)
            self._out.add(frame.dst.tag_length.pack(0xFFFE, 0xE000, _UNDEFINED))
            if length == _UNDEFINED:
                end = None
                limit = frame.limit
            else:
                if length & 1:
                    raise TranscodeError(f"odd item length {length}", tag=tag, offset=offset)
                end = offset + 8 + length
                if frame.limit is not None and end > frame.limit:
                    raise TranscodeError(
                        f"item length {length} runs past the end of its sequence",
                        tag=tag,
                        offset=offset,
                    )
                limit = end
            self._push(
                _Frame(kind=_Kind.ITEM, tag=tag, src=frame.src, dst=frame.dst, end=end, limit=limit)
            )
            return
        if tag == _ITEM_DELIMITER:
            expected = frame.kind is _Kind.ITEM and frame.end is None
        elif tag == _SEQUENCE_DELIMITER:
            expected = frame.kind is _Kind.SEQUENCE and frame.end is None
        else:
            raise TranscodeError("unknown item tag", tag=tag, offset=offset)
        if not expected:
            raise TranscodeError("unexpected delimitation item", tag=tag, offset=offset)
        if length != 0:
            raise TranscodeError(
                f"delimitation item with length {length} (must be 0)", tag=tag, offset=offset
            )
        self._pop()


def transcode_bytes(data: bytes | memoryview, source_ts: str, target_ts: str) -> bytes:
    """Transcode a whole data set held in memory (see :class:`Transcoder`)."""
    transcoder = Transcoder(source_ts, target_ts, max_buffer=max(64, len(data)))
    chunks = transcoder.feed(data)
    chunks += transcoder.finish()
    return b"".join(chunks)
