"""A dataset converted to another transfer syntax while it is sent (PS3.5 Annex A, 10).

:class:`ConvertedSource` is an async iterator of ``bytes`` for the C-STORE data set when the
chosen presentation context does not have the instance's own transfer syntax
(:class:`~.storage_contexts.Conversion`):

* ``TRANSCODE`` (uncompressed -> uncompressed): the file's dataset is read 1 MiB at a time
  and fed to the streaming :class:`~aiodimse.dataset.transcode.Transcoder`, element by
  element, memory bounded by its buffer;
* ``DECODE`` (compressed -> uncompressed): :func:`~.decompress.decoded_chunks` yields
  Explicit VR Little Endian with native Pixel Data one frame at a time, then the transcoder
  takes it to the target syntax when that is not Explicit VR Little Endian.

Every step (read, decode, transcode) runs in a worker thread under one capacity limiter, so
the event loop never waits on the disk or on the CPU. The output length is not known before
the end: ``estimate`` is the stored length corrected by what has been produced so far, exact
once the stream is exhausted.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Final

import anyio

from ..constants import EXPLICIT_VR_LITTLE_ENDIAN
from ..net.filesource import DicomFileError, DicomFileInfo, FileChanged
from .decompress import decoded_chunks
from .filepolicy import temporary_name
from .storage_contexts import Conversion
from .ts_strategies import NATIVE

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

    from ..dataset.transcode import Transcoder

__all__ = ["READ_SIZE", "ConvertedSource", "convert_file", "convert_received", "file_chunks"]

log = logging.getLogger("aiodimse.storage_convert")

#: Bytes read from the file per step.
READ_SIZE: Final = 1 << 20


def file_chunks(info: DicomFileInfo, chunk_size: int = READ_SIZE) -> Iterator[bytes]:
    """The stored dataset of ``info`` in chunks (blocking generator; the file is closed when
    it ends or is closed). Raises :class:`FileChanged` when the file is not as probed."""
    try:
        fp = info.path.open("rb")
    except OSError as exc:
        raise DicomFileError(info.path, f"cannot open: {exc.strerror or exc}") from None
    with fp:
        st = os.fstat(fp.fileno())
        if st.st_size != info.file_size or st.st_mtime_ns != info.mtime_ns:
            raise FileChanged(info.path, "the file changed after it was examined")
        fp.seek(info.dataset_offset)
        remaining = info.dataset_length
        while remaining > 0:
            chunk = fp.read(min(chunk_size, remaining))
            if not chunk:
                raise FileChanged(info.path, "the file is shorter than when it was examined")
            remaining -= len(chunk)
            yield chunk


class _Pump:
    """The blocking half: pulls input chunks, feeds the transcoder, returns output."""

    def __init__(self, chunks: Iterator[bytes], transcoder: Transcoder | None) -> None:
        self._chunks = chunks
        self._transcoder = transcoder
        self.done = False
        self.consumed = 0
        self.produced = 0

    def step(self) -> bytes | None:
        """The next non-empty piece of output, ``None`` at the end."""
        while not self.done:
            try:
                chunk = next(self._chunks)
            except StopIteration:
                self.done = True
                pieces = list(self._transcoder.finish()) if self._transcoder else []
            else:
                self.consumed += len(chunk)
                pieces = list(self._transcoder.feed(chunk)) if self._transcoder else [chunk]
            data = b"".join(pieces)
            if data:
                self.produced += len(data)
                return data
        return None

    def close(self) -> None:
        self.done = True
        close = getattr(self._chunks, "close", None)
        if close is not None:
            close()


class ConvertedSource:
    """The converted dataset as an async iterator of ``bytes`` (see the module docstring).

    Call :meth:`prime` before the C-STORE-RQ goes out: it produces the first piece, so a
    missing codec or an unreadable file fails before anything is on the wire. Always
    :meth:`aclose` it (closes the file).
    """

    def __init__(
        self,
        *,
        conversion: Conversion,
        source_syntax: str,
        target_syntax: str,
        limiter: anyio.CapacityLimiter,
        file: DicomFileInfo | None = None,
        dataset: Dataset | None = None,
        stored_length: int = 0,
    ) -> None:
        if conversion is Conversion.NONE:
            raise ValueError("nothing to convert")
        if (file is None) == (dataset is None):
            raise ValueError("give a file or a dataset")
        self._limiter = limiter
        self._stored = stored_length
        self._first: bytes | None = None
        self._pump: _Pump | None = None
        self._args = (conversion, source_syntax, target_syntax, file, dataset)

    def _build(self) -> _Pump:
        from ..dataset.transcode import Transcoder

        conversion, source, target, file, dataset = self._args
        chunks: Iterator[bytes]
        if conversion is Conversion.TRANSCODE:
            assert file is not None  # a Dataset is encoded directly in the target syntax
            return _Pump(file_chunks(file), Transcoder(source, target))
        what: Path | Dataset | None = file.path if file is not None else dataset
        assert what is not None  # one of them is set (checked in __init__)
        chunks = decoded_chunks(what, source)
        transcoder = (
            None
            if target == EXPLICIT_VR_LITTLE_ENDIAN
            else Transcoder(EXPLICIT_VR_LITTLE_ENDIAN, target)
        )
        return _Pump(chunks, transcoder)

    def _first_step(self) -> bytes | None:
        self._pump = self._build()
        return self._pump.step()

    async def prime(self) -> None:
        """Produce the first piece now (errors surface here, before sending)."""
        if self._pump is None:
            self._first = await anyio.to_thread.run_sync(self._first_step, limiter=self._limiter)

    @property
    def estimate(self) -> int:
        """Expected output length: exact once exhausted."""
        pump = self._pump
        if pump is None:
            return self._stored
        if pump.done:
            return pump.produced
        return pump.produced + max(0, self._stored - pump.consumed)

    def __aiter__(self) -> ConvertedSource:
        return self

    async def __anext__(self) -> bytes:
        await self.prime()
        if self._first is not None:
            first, self._first = self._first, None
            return first
        assert self._pump is not None
        data = await anyio.to_thread.run_sync(self._pump.step, limiter=self._limiter)
        if data is None:
            raise StopAsyncIteration
        return data

    async def aclose(self) -> None:
        """Close the input (off the loop)."""
        if self._pump is not None:
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(self._pump.close, limiter=self._limiter)


# ------------------------------------------------------------------------------ on receipt


#: A received Deflated dataset may inflate to this many times its size, and at least to
#: :data:`MIN_INFLATE_CAP` bytes, when converted on receipt (ROBUSTNESS 30: deflate bombs).
MAX_INFLATE_RATIO: Final = 100
MIN_INFLATE_CAP: Final = 256 << 20


def convert_file(
    path: Path,
    source_syntax: str,
    target_syntax: str,
    *,
    durable: bool,
    max_inflated: int | None = None,
) -> None:
    """Rewrite the PS3.10 file at ``path`` in ``target_syntax`` (blocking).

    ``max_inflated`` caps the inflated size of a Deflated source (a larger one raises).

    Uncompressed sources are transcoded, compressed ones decoded (then transcoded); the File
    Meta Information gets the new Transfer Syntax UID (PS3.10 7.1). The new file is written
    next to the old one and replaces it atomically (fsynced first when ``durable``); on any
    error the original stays untouched and the error is raised.
    """
    from pydicom.filereader import read_file_meta_info
    from pydicom.filewriter import write_file_meta_info
    from pydicom.uid import UID

    from ..dataset.transcode import Transcoder
    from ..net.filesource import read_file_info

    info = read_file_info(path)
    meta = read_file_meta_info(path)
    meta.TransferSyntaxUID = UID(target_syntax)
    chunks: Iterator[bytes]
    transcoder: Transcoder | None
    if source_syntax in NATIVE:
        chunks = file_chunks(info)
        transcoder = Transcoder(source_syntax, target_syntax, max_inflated=max_inflated)
    else:
        chunks = decoded_chunks(path, source_syntax)
        transcoder = (
            None
            if target_syntax == EXPLICIT_VR_LITTLE_ENDIAN
            else Transcoder(EXPLICIT_VR_LITTLE_ENDIAN, target_syntax)
        )
    pump = _Pump(chunks, transcoder)
    # A temporary name of the storage root: removed at start-up if a crash leaves it.
    partial = path.with_name(temporary_name())
    try:
        with partial.open("wb") as out:
            out.write(b"\x00" * 128 + b"DICM")
            write_file_meta_info(out, meta, enforce_standard=True)  # type: ignore[arg-type]  # pydicom accepts any binary file
            while (data := pump.step()) is not None:
                out.write(data)
            if durable:
                out.flush()
                os.fsync(out.fileno())
        os.replace(partial, path)
    except BaseException:
        pump.close()
        partial.unlink(missing_ok=True)
        raise


async def convert_received(
    path: Path,
    source_syntax: str,
    target_syntax: str,
    *,
    limiter: anyio.CapacityLimiter,
    durable: bool = True,
) -> bool:
    """:func:`convert_file` in a worker thread, for a Storage SCP that converts on receipt.

    Returns ``False`` (the file is kept as received, and the reason logged) when it cannot
    be converted: a missing codec, data the transcoder refuses.
    """

    def convert() -> None:
        # The peer chose how much this inflates: bound it (ROBUSTNESS 30).
        cap = max(MIN_INFLATE_CAP, MAX_INFLATE_RATIO * path.stat().st_size)
        convert_file(path, source_syntax, target_syntax, durable=durable, max_inflated=cap)

    try:
        await anyio.to_thread.run_sync(convert, limiter=limiter)
    except Exception as exc:  # pydicom, codecs and the transcoder raise many kinds
        log.warning(
            "%s: kept in %s, cannot convert to %s: %s", path, source_syntax, target_syntax, exc
        )
        return False
    return True
