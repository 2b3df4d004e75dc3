"""A PS3.10 file's dataset as a stream of chunks read off the event loop.

Theory of operation
-------------------
A C-STORE SCU sends the *dataset* of a PS3.10 file: the bytes after the 128-byte preamble,
``DICM`` and the File Meta Information (group 0002, always Explicit VR Little Endian,
PS3.10 7.1). Those bytes are already encoded in the file's transfer syntax, so when the
association's presentation context uses that transfer syntax they go to the peer unchanged
(bit-preserving, deflated datasets included: PS3.5 A.5 deflates on the network too).

:func:`read_file_info` (blocking; :func:`probe_file` runs it in a worker thread) parses the
file meta with a small bounded parser of its own (it needs the exact byte offset where the
dataset starts) and reads the dataset's own SOP Class and Instance UIDs (0008,0016/0018)
with pydicom, stopping right after them: pixel data is never read. The dataset's values win
over a stale file meta; each disagreement becomes a warning in :attr:`DicomFileInfo.warnings`.

:class:`DatasetReader` then yields the dataset in chunks of ``chunk_size`` (1 MiB by
default), each read by a worker thread under a :class:`anyio.CapacityLimiter` (by default
:func:`file_io_limiter`, one per event loop), so the loop never waits on the disk and at
most one chunk per reader is in memory. Before the first byte it checks that the file still
has the size and modification time that were probed, and every read must return the bytes
expected: a file that changes while it is being sent raises :class:`FileChanged` (the
caller must then abort the association: a partial message cannot be taken back).
"""

from __future__ import annotations

import io
import logging
import os
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import BinaryIO, Final

import anyio
import anyio.abc
from anyio.lowlevel import RunVar
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from ..constants import (
    DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN,
    EXPLICIT_VR_BIG_ENDIAN,
    IMPLICIT_VR_LITTLE_ENDIAN,
)
from ..errors import DicomError

__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "DatasetReader",
    "DicomFileError",
    "DicomFileInfo",
    "FileChanged",
    "NotDicomFile",
    "Prefetched",
    "PreparedFiles",
    "expand_paths",
    "file_io_limiter",
    "prefetch_datasets",
    "prepare_files",
    "probe_file",
    "probe_files",
    "read_file_info",
]

log = logging.getLogger("aiodimse.filesource")

#: Bytes per disk read. Large reads keep the thread hops rare (one per MiB).
DEFAULT_CHUNK_SIZE: Final = 1 << 20
#: Worker threads reading files at once per event loop (the default limiter's size): enough
#: to keep a disk busy for several associations, few enough to leave anyio's default
#: thread pool (40) to everything else.
FILE_IO_THREADS: Final = 4
#: Cap on the File Meta Information group (it holds a few UIDs; garbage never makes us read
#: more than this).
MAX_FILE_META_LENGTH: Final = 64 * 1024
#: PS3.10 7.1: 128-byte preamble, then the 4-byte prefix "DICM".
_PREAMBLE: Final = 128
_PREFIX: Final = b"DICM"
#: For a deflated dataset: compressed bytes read, and inflated bytes examined, at most.
_DEFLATE_PROBE_IN: Final = 1 << 20
_DEFLATE_PROBE_OUT: Final = 4 << 20

_TS_TAG: Final = 0x00020010
_MS_CLASS_TAG: Final = 0x00020002
_MS_INSTANCE_TAG: Final = 0x00020003
_SOP_CLASS_TAG: Final = 0x00080016
_SOP_INSTANCE_TAG: Final = 0x00080018

# PS3.5 7.1.2: explicit VRs with a 2-byte reserved field and a 4-byte length.
_LONG_VRS: Final = frozenset(
    {b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR", b"UT", b"UV"}
)

_IMPLICIT_LE: Final = IMPLICIT_VR_LITTLE_ENDIAN
_EXPLICIT_BE: Final = EXPLICIT_VR_BIG_ENDIAN
_DEFLATED: Final = (DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN, "1.2.840.10008.1.2.8.1")

_limiter: RunVar[anyio.CapacityLimiter] = RunVar("aiodimse_file_io_limiter")


def file_io_limiter() -> anyio.CapacityLimiter:
    """The event loop's limiter for file reads (:data:`FILE_IO_THREADS` tokens)."""
    try:
        return _limiter.get()
    except LookupError:
        limiter = anyio.CapacityLimiter(FILE_IO_THREADS)
        _limiter.set(limiter)
        return limiter


class DicomFileError(DicomError):
    """A file cannot be sent as it is: unreadable, malformed, or not DICOM. ``path`` says which."""

    def __init__(self, path: Path | str, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = Path(path)
        self.reason = message


class NotDicomFile(DicomFileError):
    """No PS3.10 header (128-byte preamble and ``DICM``), or no File Meta Information."""


class FileChanged(DicomFileError):
    """The file changed (size, time or content length) after it was examined."""


@dataclass(frozen=True, slots=True, kw_only=True)
class DicomFileInfo:
    """What a C-STORE needs to know about a PS3.10 file, read without its pixel data.

    ``sop_class_uid``/``sop_instance_uid`` are the dataset's own (0008,0016/0018), falling
    back on the file meta's Media Storage values only when the dataset lacks them;
    ``warnings`` says so, and names every disagreement between the two (a stale file meta).
    The dataset is bytes ``dataset_offset`` to the end of the file, encoded in
    ``transfer_syntax_uid`` (for a deflated transfer syntax: the deflated bytes).
    """

    path: Path
    file_size: int
    mtime_ns: int
    dataset_offset: int
    transfer_syntax_uid: str
    sop_class_uid: str
    sop_instance_uid: str
    media_storage_sop_class_uid: str | None = None
    media_storage_sop_instance_uid: str | None = None
    warnings: tuple[str, ...] = ()

    @property
    def dataset_length(self) -> int:
        """Bytes of the dataset as stored (what goes on the wire unchanged)."""
        return self.file_size - self.dataset_offset


def _uid_text(raw: bytes) -> str:
    # PS3.5 9.1: UIDs are padded to even length with a trailing NUL; be lenient with spaces.
    return raw.rstrip(b"\x00 ").lstrip(b" ").decode("ascii", errors="replace")


def parse_file_meta(head: bytes) -> tuple[dict[int, bytes], int]:
    """Parse group 0002 from the start of a PS3.10 file: (values by tag, dataset offset).

    ``head`` is the file's first bytes (enough to hold the whole group). Elements are
    walked one by one (the group length (0002,0000) is not trusted: some writers get it
    wrong) until the first tag outside group 0002. PS3.10 7.1 says the group is Explicit VR
    Little Endian; a group written in implicit VR by a broken writer is read as such.
    Raises ValueError when ``head`` is not a PS3.10 file or the group does not fit.
    """
    if len(head) < _PREAMBLE + 4 or head[_PREAMBLE : _PREAMBLE + 4] != _PREFIX:
        raise ValueError("not a DICOM file (no 'DICM' after a 128-byte preamble)")
    pos = _PREAMBLE + 4
    values: dict[int, bytes] = {}
    end = len(head)
    while True:
        if pos + 4 > end:
            if pos == end and values:
                return values, pos  # a file that holds only its meta
            raise ValueError("file meta information is truncated or too long")
        group = int.from_bytes(head[pos : pos + 2], "little")
        if group != 0x0002:
            if not values:
                raise ValueError("no file meta information (group 0002) after 'DICM'")
            return values, pos
        tag = (group << 16) | int.from_bytes(head[pos + 2 : pos + 4], "little")
        vr = head[pos + 4 : pos + 6]
        if len(vr) == 2 and vr.isalpha() and vr.isupper():
            if vr in _LONG_VRS:
                length = int.from_bytes(head[pos + 8 : pos + 12], "little")
                value_at = pos + 12
            else:
                length = int.from_bytes(head[pos + 6 : pos + 8], "little")
                value_at = pos + 8
        else:  # implicit VR: 4-byte length right after the tag
            length = int.from_bytes(head[pos + 4 : pos + 8], "little")
            value_at = pos + 8
        if length == 0xFFFFFFFF or value_at + length > end:
            raise ValueError(f"file meta element ({tag >> 16:04X},{tag & 0xFFFF:04X}) overruns")
        values[tag] = head[value_at : value_at + length]
        pos = value_at + length


def _dataset_uids(fp: BinaryIO, transfer_syntax: str) -> tuple[bytes | None, bytes | None]:
    """The raw (0008,0016) and (0008,0018) values of the dataset at ``fp``'s position."""
    from pydicom.dataelem import RawDataElement
    from pydicom.filereader import read_dataset

    implicit = transfer_syntax == _IMPLICIT_LE
    little = transfer_syntax != _EXPLICIT_BE

    def past_uids(tag: int, vr: str | None, length: int) -> bool:
        # Called with each element's header, before its value is read.
        if tag in (_SOP_CLASS_TAG, _SOP_INSTANCE_TAG) and 64 < length < 0xFFFFFFFF:
            # PS3.5 9.1: a UID has at most 64 characters; never read a corrupt length.
            raise ValueError(f"({tag >> 16:04X},{tag & 0xFFFF:04X}) has length {length}")
        return tag > _SOP_INSTANCE_TAG

    # Only the two UIDs are read; any other defined-length value is skipped with a seek, so a
    # corrupt length never makes us read (or allocate) more than the file holds.
    ds = read_dataset(
        fp,
        implicit,
        little,
        stop_when=past_uids,
        specific_tags=[_SOP_CLASS_TAG, _SOP_INSTANCE_TAG],
    )
    found: list[bytes | None] = []
    for tag in (_SOP_CLASS_TAG, _SOP_INSTANCE_TAG):
        if tag not in ds:
            found.append(None)
            continue
        elem = ds.get_item(tag)
        # Raw bytes, not pydicom's converted value: no validation warnings, no charset.
        value = elem.value if isinstance(elem, RawDataElement) else str(elem.value).encode()
        found.append(value if isinstance(value, bytes) else None)
    return found[0], found[1]


def read_file_info(path: Path | str) -> DicomFileInfo:
    """Examine a PS3.10 file (blocking; see :func:`probe_file`). Never reads pixel data.

    Raises :class:`NotDicomFile` without a PS3.10 header, :class:`DicomFileError` when the
    transfer syntax or the SOP Class/Instance UIDs cannot be found or the file cannot be
    read.
    """
    path = Path(path)
    try:
        with path.open("rb") as fp:
            st = os.fstat(fp.fileno())
            head = fp.read(_PREAMBLE + 4 + MAX_FILE_META_LENGTH)
            try:
                meta, offset = parse_file_meta(head)
            except ValueError as exc:
                raise NotDicomFile(path, str(exc)) from None
            ts_raw = meta.get(_TS_TAG)
            if not ts_raw or not _uid_text(ts_raw):
                raise DicomFileError(path, "file meta has no Transfer Syntax UID (0002,0010)")
            ts = _uid_text(ts_raw)
            fp.seek(offset)
            try:
                if ts in _DEFLATED:
                    # PS3.5 A.5: the whole dataset is deflated (raw deflate, no header).
                    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
                    prefix = inflater.decompress(fp.read(_DEFLATE_PROBE_IN), _DEFLATE_PROBE_OUT)
                    raw_class, raw_instance = _dataset_uids(io.BytesIO(prefix), ts)
                else:
                    raw_class, raw_instance = _dataset_uids(fp, ts)
            except zlib.error as exc:
                raise DicomFileError(path, f"cannot inflate the deflated dataset: {exc}") from None
            except OSError:
                raise
            except Exception as exc:  # pydicom raises many kinds on malformed input
                raise DicomFileError(path, f"cannot parse the dataset: {exc}") from None
    except OSError as exc:
        raise DicomFileError(path, f"cannot read: {exc.strerror or exc}") from None
    ms_class = _uid_text(meta[_MS_CLASS_TAG]) if meta.get(_MS_CLASS_TAG) else None
    ms_instance = _uid_text(meta[_MS_INSTANCE_TAG]) if meta.get(_MS_INSTANCE_TAG) else None
    warnings: list[str] = []
    sop_class = _choose(
        "SOP Class UID", raw_class, ms_class, "Media Storage SOP Class UID", warnings, path
    )
    sop_instance = _choose(
        "SOP Instance UID",
        raw_instance,
        ms_instance,
        "Media Storage SOP Instance UID",
        warnings,
        path,
    )
    for w in warnings:
        log.warning("%s: %s", path, w)
    return DicomFileInfo(
        path=path,
        file_size=st.st_size,
        mtime_ns=st.st_mtime_ns,
        dataset_offset=offset,
        transfer_syntax_uid=ts,
        sop_class_uid=sop_class,
        sop_instance_uid=sop_instance,
        media_storage_sop_class_uid=ms_class,
        media_storage_sop_instance_uid=ms_instance,
        warnings=tuple(warnings),
    )


def _choose(
    name: str,
    raw: bytes | None,
    meta_value: str | None,
    meta_name: str,
    warnings: list[str],
    path: Path,
) -> str:
    """The dataset's value wins; the file meta's is a fallback (PS3.10 7.1 says they agree)."""
    value = _uid_text(raw) if raw is not None else ""
    if value:
        if meta_value is not None and meta_value != value:
            warnings.append(
                f"stale file meta: {meta_name} {meta_value} differs from the dataset's "
                f"{name} {value}; the dataset's value is used"
            )
        elif meta_value is None:
            warnings.append(f"file meta has no {meta_name}; the dataset's {name} is used")
        return value
    if meta_value:
        warnings.append(f"the dataset has no {name}; the file meta's {meta_name} is used")
        return meta_value
    raise DicomFileError(path, f"neither the dataset nor the file meta has a {name}")


async def probe_file(
    path: Path | str, *, limiter: anyio.CapacityLimiter | None = None
) -> DicomFileInfo:
    """:func:`read_file_info` in a worker thread (the event loop never touches the disk)."""
    return await anyio.to_thread.run_sync(
        read_file_info, Path(path), limiter=limiter or file_io_limiter()
    )


def _open_dataset(info: DicomFileInfo) -> BinaryIO:
    """Open ``info``'s file at its dataset (blocking), refusing a file changed since it was
    examined (size or modification time)."""
    try:
        fp = info.path.open("rb")
    except OSError as exc:
        raise DicomFileError(info.path, f"cannot open: {exc.strerror or exc}") from None
    try:
        st = os.fstat(fp.fileno())
        if st.st_size != info.file_size or st.st_mtime_ns != info.mtime_ns:
            raise FileChanged(info.path, "the file changed after it was examined")
        fp.seek(info.dataset_offset)
    except BaseException:
        fp.close()
        raise
    return fp


def _read_exact(fp: BinaryIO, n: int, path: Path) -> bytes:
    """``n`` bytes from ``fp`` (blocking); a short read means the file was cut under us."""
    try:
        chunk = fp.read(n)
    except OSError as exc:
        raise DicomFileError(path, f"read failed: {exc.strerror or exc}") from None
    if len(chunk) != n:
        raise FileChanged(
            path, f"the file became shorter while being sent ({len(chunk)} of {n} bytes read)"
        )
    return chunk


@dataclass(slots=True, eq=False)
class Prefetched:
    """The start of a probed file's dataset, read before its turn (:func:`prefetch_datasets`).

    ``head`` is the first bytes of the dataset, all of them when ``fp`` is ``None``; else
    ``fp`` is the file, still open right after ``head``. ``error`` says why nothing could be
    read. Hand it to :class:`DatasetReader` (``prefetched=``), which takes the file over, or
    :meth:`close` it. (Not frozen: the open file changes hands.)
    """

    info: DicomFileInfo
    head: bytes = b""
    fp: BinaryIO | None = None
    error: DicomFileError | None = None

    def close(self) -> None:
        """Close the file if it is still ours (blocking)."""
        fp, self.fp = self.fp, None
        if fp is not None:
            fp.close()


def _pread(fd: int, n: int, offset: int) -> bytes:
    if hasattr(os, "pread"):
        return os.pread(fd, n, offset)
    os.lseek(fd, offset, os.SEEK_SET)  # Windows has no pread
    return os.read(fd, n)


def _prefetch_one(info: DicomFileInfo, head_size: int) -> Prefetched:
    """Open, check, read the head, close unless more remains: plain ``os`` calls (four
    system calls for a small file, each one a moment without the GIL; ``open()`` makes
    eight)."""
    path = info.path
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_BINARY", 0))
    except OSError as exc:
        return Prefetched(info, error=DicomFileError(path, f"cannot open: {exc.strerror or exc}"))
    keep = False
    try:
        st = os.fstat(fd)
        if st.st_size != info.file_size or st.st_mtime_ns != info.mtime_ns:
            return Prefetched(
                info, error=FileChanged(path, "the file changed after it was examined")
            )
        n = min(info.dataset_length, head_size)
        head = b""
        while len(head) < n and (
            more := _pread(fd, n - len(head), info.dataset_offset + len(head))
        ):
            head += more  # a regular file reads whole at once; loop in case it does not
        if len(head) != n:
            why = f"the file became shorter while being sent ({len(head)} of {n} bytes read)"
            return Prefetched(info, error=FileChanged(path, why))
        if n >= info.dataset_length:
            return Prefetched(info, head)
        os.lseek(fd, info.dataset_offset + n, os.SEEK_SET)
        fp = os.fdopen(fd, "rb")
        keep = True
        return Prefetched(info, head, fp)
    except OSError as exc:
        return Prefetched(info, error=DicomFileError(path, f"read failed: {exc.strerror or exc}"))
    finally:
        if not keep:
            os.close(fd)


def prefetch_datasets(
    infos: Sequence[DicomFileInfo],
    *,
    head_size: int = DEFAULT_CHUNK_SIZE,
    heads: Sequence[int] | None = None,
) -> list[Prefetched]:
    """For each file, in order: open it (checking it is unchanged since it was examined) and
    read up to ``head_size`` bytes of its dataset (``heads[i]`` for file ``i`` when given;
    0: only open it), closing it when that is the whole dataset (blocking; meant to run
    many files in **one** worker-thread trip). A file that cannot be read gives a
    :class:`Prefetched` carrying the error, never raises."""
    if heads is None:
        return [_prefetch_one(info, head_size) for info in infos]
    return [_prefetch_one(info, n) for info, n in zip(infos, heads, strict=True)]


class DatasetReader:
    """The dataset of a probed file as an async iterable of ``bytes`` chunks.

    Use as ``async with DatasetReader(info) as reader: async for chunk in reader: ...``.
    Each chunk is a fresh ``bytes`` object of ``chunk_size`` bytes (the last one shorter),
    read in a worker thread. With ``read_ahead`` (default 1) a task of the reader reads the
    next chunk while the consumer sends the current one, so disk and network overlap; memory
    holds at most ``read_ahead + 1`` chunks plus what the consumer keeps. The file is opened
    on entry (checking it is unchanged since :func:`read_file_info`) and closed in the same
    worker-thread trip as its last read (or on exit, also off the loop). A dataset of at
    most ``chunk_size`` bytes (most instances) is opened, read and closed in **one**
    worker-thread trip on entry and yielded as one chunk. With ``prefetched`` (what
    :func:`prefetch_datasets` read ahead for ``info``) the reader starts from it: its head
    is the first chunk and its open file, if any, is read on (and closed by the reader).
    Errors (:class:`FileChanged`, :class:`DicomFileError`) are raised by the iteration,
    never by the exit.
    """

    def __init__(
        self,
        info: DicomFileInfo,
        *,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        read_ahead: int = 1,
        limiter: anyio.CapacityLimiter | None = None,
        prefetched: Prefetched | None = None,
    ) -> None:
        if chunk_size < 1 or read_ahead < 0:
            raise ValueError("chunk_size must be positive and read_ahead not negative")
        if prefetched is not None and prefetched.info is not info:
            raise ValueError("prefetched belongs to another file")
        self.info = info
        self.chunk_size = chunk_size
        self.read_ahead = read_ahead
        self._limiter = limiter
        self._prefetched = prefetched
        self._fp: BinaryIO | None = None
        self._remaining = info.dataset_length
        self._task_group: anyio.abc.TaskGroup | None = None
        self._chunks: MemoryObjectReceiveStream[bytes | DicomFileError] | None = None
        # The first chunk, read on entry (a small dataset whole, or a prefetched head).
        self._first: bytes | DicomFileError | None = None
        #: Bytes handed out so far.
        self.bytes_read = 0

    @property
    def total(self) -> int:
        """Bytes the reader yields in all: the dataset's length."""
        return self.info.dataset_length

    def _limit(self) -> anyio.CapacityLimiter:
        if self._limiter is None:
            self._limiter = file_io_limiter()
        return self._limiter

    def _open(self) -> BinaryIO:
        return _open_dataset(self.info)

    async def __aenter__(self) -> DatasetReader:
        pre, self._prefetched = self._prefetched, None
        if pre is not None:
            # Take the file over first: from here on it is ours to close.
            self._fp, pre.fp = pre.fp, None
            self._first = pre.error if pre.error is not None else pre.head
            self._remaining = 0 if pre.error is not None else self._remaining - len(pre.head)
        elif 0 < self._remaining <= self.chunk_size:
            self._first = await anyio.to_thread.run_sync(self._read_whole, limiter=self._limit())
            self._remaining = 0
            return self
        else:
            self._fp = await anyio.to_thread.run_sync(self._open, limiter=self._limit())
        if self.read_ahead and self._remaining > 0:
            send, self._chunks = anyio.create_memory_object_stream[bytes | DicomFileError](
                self.read_ahead
            )
            tg = anyio.create_task_group()
            try:
                await tg.__aenter__()
            except BaseException:
                await self.aclose()  # no __aexit__ follows a failed entry
                raise
            self._task_group = tg
            tg.start_soon(self._produce, send)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        tg, self._task_group = self._task_group, None
        try:
            if tg is not None:
                tg.cancel_scope.cancel()
                await tg.__aexit__(None, None, None)
        finally:
            if self._chunks is not None:
                self._chunks.close()
            await self.aclose()

    async def aclose(self) -> None:
        """Close the file (off the loop, shielded from cancellation)."""
        fp, self._fp = self._fp, None
        if fp is not None:
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(fp.close, limiter=self._limit())

    def _read_whole(self) -> bytes | DicomFileError:
        """Worker thread: open, read the whole (small) dataset, close; a read error is
        returned, for the iteration to raise."""
        fp = self._open()
        try:
            return _read_exact(fp, self._remaining, self.info.path)
        except DicomFileError as exc:
            return exc
        finally:
            fp.close()

    def _read_chunk(self, fp: BinaryIO, n: int, last: bool) -> bytes:
        """Worker thread: the next ``n`` bytes; the last read closes the file too."""
        try:
            return _read_exact(fp, n, self.info.path)
        finally:
            if last:
                fp.close()

    async def _read(self) -> bytes:
        """The next chunk, read in a worker thread (blocking file I/O never on the loop)."""
        fp = self._fp
        if fp is None:
            raise DicomFileError(self.info.path, "reader is not open (use 'async with')")
        n = min(self.chunk_size, self._remaining)
        last = n == self._remaining
        chunk = await anyio.to_thread.run_sync(self._read_chunk, fp, n, last, limiter=self._limit())
        if last:
            # Closed by that trip. Not forgotten before it: a trip cancelled before its
            # thread started leaves the file to aclose() (closing twice is harmless).
            self._fp = None
        self._remaining -= n
        return chunk

    async def _produce(self, send: MemoryObjectSendStream[bytes | DicomFileError]) -> None:
        """Read ahead of the consumer; an error is handed over in place of a chunk."""
        async with send:
            while self._remaining > 0:
                try:
                    item: bytes | DicomFileError = await self._read()
                except DicomFileError as exc:
                    item = exc
                try:
                    await send.send(item)
                except (anyio.BrokenResourceError, anyio.ClosedResourceError):
                    return
                if isinstance(item, DicomFileError):
                    return

    def __aiter__(self) -> DatasetReader:
        return self

    async def __anext__(self) -> bytes:
        if self._first is not None:
            item, self._first = self._first, None
            if isinstance(item, DicomFileError):
                self._remaining = 0
                raise item
            if item:
                self.bytes_read += len(item)
                return item
        if self._chunks is not None:
            try:
                item = await self._chunks.receive()
            except (anyio.EndOfStream, anyio.ClosedResourceError):
                raise StopAsyncIteration from None
            if isinstance(item, DicomFileError):
                raise item
            chunk = item
        else:
            if self._remaining <= 0:
                raise StopAsyncIteration
            chunk = await self._read()
        self.bytes_read += len(chunk)
        return chunk


def expand_paths(paths: Iterable[Path | str], *, recurse: bool = False) -> list[Path]:
    """Files named by ``paths`` (blocking): a directory gives the files directly in it, or
    everything under it with ``recurse``, sorted; a file is kept as given. Hidden entries
    inside directories are skipped."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            found = p.rglob("*") if recurse else p.iterdir()
            out.extend(
                sorted(
                    f
                    for f in found
                    if f.is_file()
                    and not any(part.startswith(".") for part in f.relative_to(p).parts)
                )
            )
        else:
            out.append(p)
    return out


@dataclass(frozen=True, slots=True, kw_only=True)
class PreparedFiles:
    """Files examined for sending: the DICOM ones, and the rest with the reason."""

    files: list[DicomFileInfo]
    skipped: list[DicomFileError]

    @property
    def total_bytes(self) -> int:
        return sum(f.dataset_length for f in self.files)


def _probe_many(paths: Sequence[Path]) -> list[DicomFileInfo | DicomFileError]:
    out: list[DicomFileInfo | DicomFileError] = []
    for p in paths:
        try:
            out.append(read_file_info(p))
        except DicomFileError as exc:
            out.append(exc)
    return out


async def probe_files(paths: Sequence[Path]) -> list[DicomFileInfo | DicomFileError]:
    """Probe ``paths`` in up to :data:`FILE_IO_THREADS` worker threads, in input order.

    A file that cannot be sent gives its :class:`DicomFileError` in its place.
    """
    if not paths:
        return []
    limiter = file_io_limiter()
    n = min(FILE_IO_THREADS, len(paths))
    size = -(-len(paths) // n)
    groups = [paths[i : i + size] for i in range(0, len(paths), size)]
    results: list[list[DicomFileInfo | DicomFileError]] = [[] for _ in groups]

    async def run(i: int) -> None:
        results[i] = await anyio.to_thread.run_sync(_probe_many, groups[i], limiter=limiter)

    async with anyio.create_task_group() as tg:
        for i in range(len(groups)):
            tg.start_soon(run, i)
    return [r for group in results for r in group]


async def prepare_files(paths: Iterable[Path | str], *, recurse: bool = False) -> PreparedFiles:
    """Expand directories and examine every file off the loop (see :func:`expand_paths`)."""
    expanded = await anyio.to_thread.run_sync(
        lambda: expand_paths(paths, recurse=recurse), limiter=file_io_limiter()
    )
    probed = await probe_files(expanded)
    return PreparedFiles(
        files=[p for p in probed if isinstance(p, DicomFileInfo)],
        skipped=[p for p in probed if isinstance(p, DicomFileError)],
    )
