"""Fragment one DIMSE message into P-DATA-TF PDUs (PS3.8 9.3.5.1, Annex E).

Theory of operation
-------------------
A message is an encoded command set followed by an optional dataset. Each is cut into
fragments; each fragment travels in one PDV item (6-byte header: item length, presentation
context ID, message control header, PS3.8 9.3.5.1 and E.2) and one or more PDVs form a
P-DATA-TF PDU. The peer's Maximum Length (PS3.8 D.1, Table D.1-1) bounds the *PDU-length
field* of every P-DATA-TF we send, i.e. the variable field: the PDV items **including their
6-byte headers**, but not the 6-byte PDU header. A peer maximum of 0 means "no limit"; we
then cap at :attr:`aiodimse.config.Limits.unlimited_pdu_cap`.

Every fragment except possibly the very last one of an odd-length dataset has an even
length (PS3.8 E.1: "each fragment of a message shall consist of an even number of bytes").
So the smallest usable maximum is a PDV header plus 2 bytes of data
(:data:`MIN_PEER_MAX_PDU_LENGTH` = 8); smaller peer maxima raise
:class:`MaxPDULengthTooSmall` instead of ever computing a negative or zero payload size
(pynetdicom #202, ROBUSTNESS 27).

Payload is never copied when it arrives as one buffer: every PDV's ``data`` is a
``memoryview`` slice of the caller's buffer. A dataset arriving as an (async) iterable of
chunks of arbitrary sizes is repacked into full-size PDUs: a chunk that straddles a PDU
boundary is sliced; a chunk of at least ``join_threshold`` bytes becomes its own PDV inside
the PDU (costing a 6-byte header, no copy); runs of smaller chunks are joined into one PDV
(the only payload copy, bounded by ``join_threshold`` per small chunk). Chunks are held by
reference until their PDU is produced: the caller must not mutate a chunk after yielding it
(a reader that reuses one buffer must yield ``bytes(buffer)``).

A chunk may also be a :class:`~aiodimse.dimse.file_region.FileRegion` (bytes of an open
file, never read here): it is sliced like a view and stands alone as PDV payloads, never
joined, so the socket transport can write it with ``os.sendfile``. Regions must have an
even length (PS3.8 E.1: so that every fragment cut from them is even).

By default the command and the dataset go in separate PDUs: PS3.8 E.1 allows them to share
one (all PDVs of a P-DATA-TF must belong to the same message, which they do), but some
peers mis-handle a PDU that holds both, so sharing is opt-in with
``command_and_data_in_one_pdu=True``.

Output: :meth:`Fragmenter.pdus` yields :class:`~aiodimse.pdu.PDataTF` values;
:meth:`Fragmenter.gather` yields the same PDUs as gather lists (``list[bytes | memoryview]``,
see :func:`aiodimse.pdu.pdata_tf_parts`) ready for ``writelines``/``sendmsg`` or
``b"".join``. ``apdus``/``agather`` are the same for an async iterable dataset source. This
module does no I/O: the async variants only iterate what the caller passes in.
"""

from __future__ import annotations

from collections import deque
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator
from typing import Final, TypeAlias, cast

from ..config import Limits
from ..constants import PDV_HEADER_LENGTH
from ..errors import LocalProtocolError
from ..pdu import PDV, PDataTF, pdata_tf_parts
from .command_codec import encode_command
from .file_region import FileRegion
from .messages import DimseMessage

__all__ = [
    "BATCH_BYTES",
    "BATCH_PDUS",
    "DEFAULT_JOIN_THRESHOLD",
    "MAX_PDU_LENGTH_FIELD",
    "MIN_PEER_MAX_PDU_LENGTH",
    "AsyncDatasetSource",
    "Buffer",
    "DatasetSource",
    "Fragmenter",
    "MaxPDULengthTooSmall",
    "resolve_max_pdu_length",
]

Buffer: TypeAlias = bytes | bytearray | memoryview
#: A dataset as one buffer or as an iterable of chunks (any sizes, possibly empty).
DatasetSource: TypeAlias = Buffer | Iterable[Buffer]
#: A dataset as an async iterable of chunks.
AsyncDatasetSource: TypeAlias = AsyncIterable[Buffer]

#: PS3.8 9.3.5.1 + E.1: a PDV header and one even-length fragment of at least 2 bytes.
MIN_PEER_MAX_PDU_LENGTH: Final = PDV_HEADER_LENGTH + 2

#: PS3.8 9.3.5: the PDU-length field is 4 bytes, unsigned.
MAX_PDU_LENGTH_FIELD: Final = 0xFFFFFFFF

#: :meth:`Fragmenter.batches` groups up to this many bytes of PDUs for one write ...
BATCH_BYTES: Final = 256 * 1024
#: ... and at most this many PDUs (3 buffers each: a gathered write stays well under the
#: usual 1024-buffer limit of ``sendmsg``).
BATCH_PDUS: Final = 256

#: Chunks at least this long become their own PDV (no copy); shorter ones are joined.
#: Measured (benchmarks/bench_fragment.py, CPython 3.11): a PDV costs ~1 us of Python work
#: while copying 16 KiB costs less, so joining 4 KiB chunks runs 1.7-2.7x faster than one PDV
#: each, and saves 6 wire bytes per chunk; 64 KiB file reads still pass through uncopied.
DEFAULT_JOIN_THRESHOLD: Final = 16 * 1024


class MaxPDULengthTooSmall(LocalProtocolError):
    """The peer's maximum PDU length cannot carry a PDV header plus 2 bytes of data.

    ``peer_max_pdu_length`` is the value advertised (PS3.8 D.1); ``minimum`` is
    :data:`MIN_PEER_MAX_PDU_LENGTH`. Nothing can be sent on such an association: the caller
    should abort it (or refuse it during negotiation).
    """

    def __init__(self, peer_max_pdu_length: int, minimum: int = MIN_PEER_MAX_PDU_LENGTH):
        super().__init__(
            f"peer maximum PDU length {peer_max_pdu_length} cannot carry a PDV "
            f"(needs at least {minimum}: {PDV_HEADER_LENGTH}-byte PDV header + 2 data bytes)"
        )
        self.peer_max_pdu_length = peer_max_pdu_length
        self.minimum = minimum


def resolve_max_pdu_length(peer_max_pdu_length: int, limits: Limits | None = None) -> int:
    """The PDU-length bound to send with, given the peer's advertised maximum (PS3.8 D.1).

    0 ("no maximum length is specified") becomes ``limits.unlimited_pdu_cap``; a value above
    the 32-bit field is clamped; a value below :data:`MIN_PEER_MAX_PDU_LENGTH` (or negative)
    raises :class:`MaxPDULengthTooSmall`.
    """
    if peer_max_pdu_length == 0:
        cap = (limits or Limits()).unlimited_pdu_cap
        return max(MIN_PEER_MAX_PDU_LENGTH, min(cap, MAX_PDU_LENGTH_FIELD))
    if peer_max_pdu_length < MIN_PEER_MAX_PDU_LENGTH:
        raise MaxPDULengthTooSmall(peer_max_pdu_length)
    return min(peer_max_pdu_length, MAX_PDU_LENGTH_FIELD)


def _as_view(buf: Buffer) -> memoryview:
    view = memoryview(buf)
    if view.ndim != 1 or view.itemsize != 1:
        view = view.cast("B")
    return view


def _check_context_id(context_id: int) -> None:
    # PS3.8 9.3.5.1, Table 9-23: presentation context IDs are odd integers 1..255.
    if not (1 <= context_id <= 255 and context_id % 2 == 1):
        raise LocalProtocolError(f"presentation context ID {context_id} is not odd 1..255")


def _check_dataset_agrees(message: DimseMessage, has_dataset: bool) -> None:
    # PS3.7 E.1: Command Data Set Type 0101H means no dataset; any other value means one.
    if message.has_dataset != has_dataset:
        raise LocalProtocolError(
            f"{type(message).__name__} says has_dataset={message.has_dataset} but a dataset "
            f"was {'given' if has_dataset else 'not given'}"
        )


class _Packer:
    """Packs one stream (command or dataset) of pieces into PDUs of at most ``max_len``.

    ``lead`` PDVs (e.g. the command's last fragment) start the first PDU. A PDU is only
    built while more bytes are queued than it can hold, so the last fragment (which carries
    the last-fragment bit) is always built by :meth:`finish`.
    """

    __slots__ = (
        "_context_id",
        "_is_command",
        "_join",
        "_lead",
        "_lead_size",
        "_max",
        "_queue",
        "_queued",
    )

    def __init__(
        self,
        context_id: int,
        max_len: int,
        *,
        is_command: bool,
        join_threshold: int,
        lead: list[PDV] | None = None,
    ) -> None:
        self._context_id = context_id
        self._max = max_len
        self._is_command = is_command
        self._join = join_threshold
        self._lead: list[PDV] = lead or []
        self._lead_size = sum(PDV_HEADER_LENGTH + len(p.data) for p in self._lead)
        self._queue: deque[memoryview | FileRegion] = deque()
        self._queued = 0

    def _room(self) -> int:
        return self._max - self._lead_size

    def push(self, chunk: Buffer | FileRegion) -> Iterator[PDataTF]:
        view: memoryview | FileRegion
        if isinstance(chunk, FileRegion):
            view = chunk
            if len(view) % 2:
                # PS3.8 E.1: fragments cut from it could not all be even.
                raise LocalProtocolError(f"a file region must have an even length: {chunk}")
        else:
            view = memoryview(chunk)
            if view.itemsize != 1 or view.ndim != 1:
                view = view.cast("B")
        size = len(view)
        if not size:
            return
        self._queue.append(view)
        self._queued += size
        # Strictly more than the room: at least one byte remains for a later PDU.
        while self._queued > self._max - self._lead_size:
            yield self._build(final=False)

    def finish(self) -> Iterator[PDataTF]:
        """The remaining PDUs; the last PDV carries the last-fragment bit (PS3.8 E.2)."""
        if not self._queue:
            # Nothing was pushed (empty stream): one empty last fragment ends it.
            if self._lead and self._room() < PDV_HEADER_LENGTH:
                yield self._take_lead()
            self._lead.append(self._pdv(b"", last=True))
            self._lead_size += PDV_HEADER_LENGTH
            yield self._take_lead()
            return
        while self._queue:
            yield self._build(final=True)

    def _pdv(self, data: bytes | memoryview | FileRegion, *, last: bool) -> PDV:
        # A FileRegion payload is passed through as it is: the PDU encoder only takes its
        # length, the socket transport writes it (aiodimse.net.sendfile).
        return PDV(
            context_id=self._context_id,
            is_command=self._is_command,
            is_last=last,
            data=cast("bytes | memoryview", data),
        )

    def _take_lead(self) -> PDataTF:
        pdu = PDataTF(pdvs=tuple(self._lead))
        self._lead = []
        self._lead_size = 0
        return pdu

    def _build(self, *, final: bool) -> PDataTF:
        """One PDU from the queue head; only the absolute end of a final stream is odd."""
        queue = self._queue
        pdvs = self._lead
        room = self._room()
        join = self._join
        while queue and room >= MIN_PEER_MAX_PDU_LENGTH:
            avail = (room - PDV_HEADER_LENGTH) & ~1  # PS3.8 E.1: even fragments
            head = queue[0]
            size = len(head)
            data: memoryview | FileRegion
            if size >= avail:
                # The PDU ends inside (or right after) this chunk: slice, no copy.
                if size == avail:
                    queue.popleft()
                    data = head
                else:
                    queue[0] = head[avail:]
                    data = head[:avail]
            elif (
                (size >= join and size >= 2)
                or type(head) is FileRegion  # even (push checked), never joined
                or (final and len(queue) == 1)
                or (size % 2 == 0 and len(queue) > 1 and len(queue[1]) >= join)
            ):
                # Big enough to stand alone, the tail, or an even chunk before a big one.
                take = size if size % 2 == 0 or (final and len(queue) == 1) else size - 1
                if take == size:
                    queue.popleft()
                else:
                    queue[0] = head[take:]
                data = head[:take] if take != size else head
            else:
                data = self._join_small(avail)
            self._queued -= len(data)
            room -= PDV_HEADER_LENGTH + len(data)
            pdvs.append(self._pdv(data, last=final and not queue))
        self._lead = []
        self._lead_size = 0
        return PDataTF(pdvs=tuple(pdvs))

    def _join_small(self, avail: int) -> memoryview:
        """Join a run of small chunks (starting at the queue head) into one even fragment."""
        queue = self._queue
        join = self._join
        parts: list[memoryview] = []
        total = 0
        while queue and total < avail:
            head = queue[0]
            size = len(head)
            if isinstance(head, FileRegion):
                # Never joined (its bytes are not in memory); it stands alone next.
                if total % 2:
                    raise LocalProtocolError(
                        "an odd run of small chunks before a file region cannot be made even"
                    )
                break
            if size >= join and total:
                if total % 2:
                    # Keep the fragment even: borrow one byte of the big chunk.
                    parts.append(head[:1])
                    total += 1
                    if size == 1:
                        queue.popleft()
                    else:
                        queue[0] = head[1:]
                break
            need = avail - total
            if size <= need:
                parts.append(head)
                total += size
                queue.popleft()
            else:
                parts.append(head[:need])
                total += need
                queue[0] = head[need:]
        # One allocation and one copy of the run.
        return memoryview(b"".join(parts))


class Fragmenter:
    """Cuts DIMSE messages into P-DATA-TF PDUs for one association direction.

    ``peer_max_pdu_length`` is the Maximum Length the peer advertised (PS3.8 D.1; 0 = no
    limit, capped by ``limits.unlimited_pdu_cap``). Raises :class:`MaxPDULengthTooSmall` when
    it is below :data:`MIN_PEER_MAX_PDU_LENGTH`. Invariants of every PDU produced:

    * its PDU-length (sum of ``6 + len(pdv.data)``) is at most :attr:`max_pdu_length`;
    * all its PDVs belong to one message and one presentation context (PS3.8 E.1);
    * every fragment has an even length except the last of an odd-length dataset;
    * the command's last fragment and the dataset's last fragment carry the last bit.

    The object holds no per-message state; it can be shared by concurrent senders as long as
    each message's PDUs are sent without interleaving (PS3.8 E.1).
    """

    __slots__ = ("_command_and_data", "_join", "_max")

    def __init__(
        self,
        peer_max_pdu_length: int,
        *,
        limits: Limits | None = None,
        command_and_data_in_one_pdu: bool = False,
        join_threshold: int = DEFAULT_JOIN_THRESHOLD,
    ) -> None:
        self._max = resolve_max_pdu_length(peer_max_pdu_length, limits)
        self._command_and_data = command_and_data_in_one_pdu
        if join_threshold < 1:
            raise ValueError("join_threshold must be at least 1")
        self._join = join_threshold

    @property
    def max_pdu_length(self) -> int:
        """The bound on every PDU-length field we produce (after 0 -> cap)."""
        return self._max

    @property
    def command_and_data_in_one_pdu(self) -> bool:
        """Whether the command's last fragment may share a PDU with the first data ones."""
        return self._command_and_data

    def _command_pdus(
        self, context_id: int, command: Buffer, has_dataset: bool
    ) -> tuple[list[PDataTF], list[PDV]]:
        """Command PDUs, and the PDVs of the last one when it may take dataset PDVs too."""
        _check_context_id(context_id)
        if isinstance(command, bytes) and 0 < len(command) <= self._max - PDV_HEADER_LENGTH:
            # The usual case: the whole command set is one (last) fragment (PS3.8 E.2).
            pdv = PDV(context_id=context_id, is_command=True, is_last=True, data=command)
            if has_dataset and self._command_and_data:
                return [], [pdv]
            return [PDataTF(pdvs=(pdv,))], []
        cmd = _as_view(command)
        if not cmd:
            raise LocalProtocolError("an encoded command set cannot be empty (PS3.7 6.3)")
        packer = _Packer(context_id, self._max, is_command=True, join_threshold=self._join)
        pdus = list(packer.push(cmd))
        pdus.extend(packer.finish())
        if has_dataset and self._command_and_data:
            return pdus[:-1], list(pdus[-1].pdvs)
        return pdus, []

    def _data_packer(self, context_id: int, lead: list[PDV]) -> _Packer:
        return _Packer(
            context_id, self._max, is_command=False, join_threshold=self._join, lead=lead
        )

    def pdus(
        self, context_id: int, command: Buffer, dataset: DatasetSource | None = None
    ) -> Iterator[PDataTF]:
        """P-DATA-TF PDUs for one message: ``command`` (encoded command set) + ``dataset``.

        ``dataset`` is ``None`` (no dataset: the command must say CommandDataSetType 0101H),
        one buffer (sliced, never copied) or an iterable of chunks (lazily consumed). The
        generator is lazy: the caller sends each PDU before asking for the next one.
        """
        first, lead = self._command_pdus(context_id, command, dataset is not None)
        yield from first
        if dataset is None:
            return
        if isinstance(dataset, bytes | bytearray | memoryview):
            view = _as_view(dataset)
            if not lead and 0 < len(view) <= self._max - PDV_HEADER_LENGTH:
                # The whole dataset in one PDU: one last fragment (PS3.8 E.2), no packing.
                yield PDataTF(
                    pdvs=(PDV(context_id=context_id, is_command=False, is_last=True, data=view),)
                )
                return
            packer = self._data_packer(context_id, lead)
            yield from packer.push(view)
        else:
            packer = self._data_packer(context_id, lead)
            for chunk in dataset:
                yield from packer.push(chunk)
        yield from packer.finish()

    async def apdus(
        self,
        context_id: int,
        command: Buffer,
        dataset: AsyncDatasetSource | DatasetSource | None = None,
    ) -> AsyncIterator[PDataTF]:
        """:meth:`pdus` for a dataset that may be an async iterable of chunks."""
        if not isinstance(dataset, AsyncIterable):
            for pdu in self.pdus(context_id, command, dataset):
                yield pdu
            return
        first, lead = self._command_pdus(context_id, command, True)
        for pdu in first:
            yield pdu
        packer = self._data_packer(context_id, lead)
        async for chunk in dataset:
            for pdu in packer.push(chunk):
                yield pdu
        for pdu in packer.finish():
            yield pdu

    def batches(
        self, context_id: int, command: Buffer, dataset: DatasetSource | None = None
    ) -> Iterator[list[PDataTF]]:
        """:meth:`pdus` in groups to be written at once (one gathered write each): up to
        :data:`BATCH_BYTES` of PDUs and at most :data:`BATCH_PDUS` PDUs per group."""
        room = self._max - PDV_HEADER_LENGTH
        if (
            type(command) is bytes
            and type(dataset) is bytes
            and 0 < len(command) < BATCH_BYTES
            and len(command) <= room
            and 0 < len(dataset) <= room
            and not self._command_and_data
        ):
            # The usual small message (a C-STORE of a dataset read into memory): the command
            # PDU and one data PDU, each one last fragment (PS3.8 E.2), in one group: what
            # the general path below gives, without its generators.
            _check_context_id(context_id)
            yield [
                PDataTF(
                    pdvs=(PDV(context_id=context_id, is_command=True, is_last=True, data=command),)
                ),
                PDataTF(
                    pdvs=(
                        PDV(
                            context_id=context_id,
                            is_command=False,
                            is_last=True,
                            data=memoryview(dataset),
                        ),
                    )
                ),
            ]
            return
        batch: list[PDataTF] = []
        size = 0
        for pdu in self.pdus(context_id, command, dataset):
            batch.append(pdu)
            size += sum(PDV_HEADER_LENGTH + len(p.data) for p in pdu.pdvs)
            if size >= BATCH_BYTES or len(batch) >= BATCH_PDUS:
                yield batch
                batch, size = [], 0
        if batch:
            yield batch

    async def abatches(
        self,
        context_id: int,
        command: Buffer,
        dataset: AsyncDatasetSource | DatasetSource | None = None,
    ) -> AsyncIterator[list[PDataTF]]:
        """:meth:`apdus` in groups to be written at once (one gathered write each).

        A group holds the PDUs that are ready before the source must be awaited again: the
        command's PDUs wait for the first data PDU (a small message goes out in one write),
        then each chunk's complete PDUs form a group (split at :data:`BATCH_PDUS`), and the
        last group ends the message. A plain dataset is grouped as by :meth:`batches`.
        Memory: a group refers to at most one chunk of the caller's buffers.
        """
        if not isinstance(dataset, AsyncIterable):
            for group in self.batches(context_id, command, dataset):
                yield group
            return
        first, lead = self._command_pdus(context_id, command, True)
        batch = first
        packer = self._data_packer(context_id, lead)
        async for chunk in dataset:
            grew = False
            for pdu in packer.push(chunk):
                batch.append(pdu)
                grew = True
                if len(batch) >= BATCH_PDUS:
                    yield batch
                    batch = []
            if grew and batch:
                yield batch
                batch = []
        batch.extend(packer.finish())
        yield batch

    def message_pdus(
        self,
        context_id: int,
        message: DimseMessage,
        dataset: DatasetSource | None = None,
    ) -> Iterator[PDataTF]:
        """:meth:`pdus` for a message object: encodes it and checks the dataset agrees.

        Raises :class:`~aiodimse.errors.LocalProtocolError` when ``message.has_dataset``
        (PS3.7 E.1 Command Data Set Type) and ``dataset is not None`` disagree.
        """
        _check_dataset_agrees(message, dataset is not None)
        return self.pdus(context_id, encode_command(message), dataset)

    def amessage_pdus(
        self,
        context_id: int,
        message: DimseMessage,
        dataset: AsyncDatasetSource | DatasetSource | None = None,
    ) -> AsyncIterator[PDataTF]:
        """:meth:`apdus` for a message object (see :meth:`message_pdus`)."""
        _check_dataset_agrees(message, dataset is not None)
        return self.apdus(context_id, encode_command(message), dataset)

    def gather(
        self, context_id: int, command: Buffer, dataset: DatasetSource | None = None
    ) -> Iterator[list[bytes | memoryview]]:
        """:meth:`pdus` as gather lists (PDU header, then per PDV header + payload view)."""
        for pdu in self.pdus(context_id, command, dataset):
            yield pdata_tf_parts(pdu.pdvs)

    async def agather(
        self,
        context_id: int,
        command: Buffer,
        dataset: AsyncDatasetSource | DatasetSource | None = None,
    ) -> AsyncIterator[list[bytes | memoryview]]:
        """:meth:`apdus` as gather lists."""
        async for pdu in self.apdus(context_id, command, dataset):
            yield pdata_tf_parts(pdu.pdvs)
