"""Writing gather lists that hold :class:`~aiodimse.dimse.file_region.FileRegion` parts.

Theory of operation
-------------------
A C-STORE of a file whose transfer syntax the peer accepted sends the file's dataset bytes
unchanged. Instead of reading them into memory (a worker-thread trip and a copy per chunk)
and writing them (a second copy), the sender can hand the fragmenter regions of the open
file; the socket transport then writes each PDU as

* its headers (PDU header, PDV header: a few bytes) with ``send(..., MSG_MORE)``, which
  tells the kernel more data of the same segment follows, then
* the region with ``os.sendfile``: the kernel moves the bytes from the page cache to the
  socket; Python never sees them.

On the wire this is exactly one PDU written at once: ``MSG_MORE`` keeps the headers out of a
segment of their own even with ``TCP_NODELAY`` (Linux ``tcp(7)``, ``send(2)``), so the
"header and payload in one write" rule of the gathered path holds.

Where it applies: :data:`SENDFILE_SUPPORTED` (Linux: ``os.sendfile`` and ``MSG_MORE``), on
a plain TCP socket (:class:`~aiodimse.net.transport.SocketTransport`; TLS and other streams
read the file as before). Elsewhere (Windows, macOS) the sender never makes regions.

Like asyncio's own ``loop.sock_sendfile``, the ``sendfile`` call runs on the event loop's
thread: it never waits for the socket (non-blocking; the transport waits for writability),
but it may wait for the disk when the file is not in the page cache. The reader of regions
(:mod:`aiodimse.services.store_regions`) asks the kernel to read each next chunk ahead
(``posix_fadvise(WILLNEED)``) so that the wait is rare and short. A file system that
refuses ``sendfile`` (``EINVAL``/``ENOSYS``/``EOPNOTSUPP``) gets its region read with
``pread`` and written instead, 256 KiB at a time (also on the loop's thread).
"""

from __future__ import annotations

import errno
import os
import socket
from collections.abc import Awaitable, Callable, Sequence
from typing import Final

from ..dimse.file_region import FileRegion

__all__ = ["SENDFILE_SUPPORTED", "has_regions", "write_with_regions"]

#: Whether this platform can write :class:`FileRegion` parts (see the module docstring).
SENDFILE_SUPPORTED: Final = hasattr(os, "sendfile") and hasattr(socket, "MSG_MORE")
_MSG_MORE: Final = getattr(socket, "MSG_MORE", 0)
#: ``sendfile`` errors meaning "not for this file": the bytes are copied instead.
_NO_SENDFILE: Final = frozenset(
    {errno.EINVAL, errno.ENOSYS, getattr(errno, "EOPNOTSUPP", errno.EINVAL)}
)
_COPY_PIECE: Final = 256 * 1024

Part = bytes | memoryview | FileRegion


def has_regions(parts: Sequence[object]) -> bool:
    """Whether ``parts`` holds a :class:`FileRegion`."""
    for p in parts:
        if type(p) is FileRegion:
            return True
    return False


class FileEndedEarly(OSError):
    """The file of a region ended before the region did (it was cut while being sent)."""


async def _write_views(
    sock: socket.socket,
    views: list[memoryview],
    flags: int,
    wait_writable: Callable[[], Awaitable[None]],
) -> None:
    while views:
        try:
            sent = sock.sendmsg(views, (), flags)
        except (BlockingIOError, InterruptedError):
            await wait_writable()
            continue
        drop_sent(views, sent)


def drop_sent(views: list[memoryview], sent: int) -> None:
    """Remove the first ``sent`` bytes of ``views``, in place (after a partial write)."""
    i = 0
    while i < len(views) and sent >= len(views[i]):
        sent -= len(views[i])
        i += 1
    del views[:i]
    if views and sent:
        views[0] = views[0][sent:]


async def _write_region(
    sock: socket.socket, region: FileRegion, wait_writable: Callable[[], Awaitable[None]]
) -> None:
    if getattr(region.owner, "closed", False):
        raise OSError(errno.EBADF, "the file of a region was closed before it was sent")
    out_fd = sock.fileno()
    offset, left = region.offset, region.length
    while left:
        try:
            sent = os.sendfile(out_fd, region.fd, offset, left)
        except (BlockingIOError, InterruptedError):
            await wait_writable()
            continue
        except OSError as exc:
            if exc.errno not in _NO_SENDFILE:
                raise
            # A file system without sendfile support: read and write the rest instead.
            await _copy_region(sock, region.fd, offset, left, wait_writable)
            return
        if sent == 0:
            # The file is shorter than when it was examined: the PDU cannot be completed.
            raise FileEndedEarly(
                errno.EIO, f"the file became shorter while being sent ({left} bytes missing)"
            )
        offset += sent
        left -= sent


async def _copy_region(
    sock: socket.socket,
    fd: int,
    offset: int,
    left: int,
    wait_writable: Callable[[], Awaitable[None]],
) -> None:
    """The fallback of :func:`_write_region`: ``pread`` and ``sendmsg``, a piece at a time."""
    while left:
        piece = os.pread(fd, min(left, _COPY_PIECE), offset)
        if not piece:
            raise FileEndedEarly(
                errno.EIO, f"the file became shorter while being sent ({left} bytes missing)"
            )
        await _write_views(sock, [memoryview(piece)], _MSG_MORE, wait_writable)
        offset += len(piece)
        left -= len(piece)


async def write_with_regions(
    sock: socket.socket,
    parts: Sequence[Part],
    wait_writable: Callable[[], Awaitable[None]],
) -> None:
    """Write ``parts`` in order on the non-blocking ``sock``: buffers gathered with
    ``sendmsg`` (``MSG_MORE`` when a region follows), regions with ``os.sendfile``.
    ``wait_writable()`` is awaited whenever the socket is full. Raises ``OSError`` (a
    :class:`FileEndedEarly` when a region's file is too short); what was written then
    stays written."""
    run: list[memoryview] = []
    for p in parts:
        if isinstance(p, FileRegion):
            if run:
                await _write_views(sock, run, _MSG_MORE, wait_writable)
                run = []
            await _write_region(sock, p, wait_writable)
        elif len(p):
            run.append(memoryview(p))
    if run:
        await _write_views(sock, run, 0, wait_writable)
