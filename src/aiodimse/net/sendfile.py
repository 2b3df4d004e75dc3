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

System calls per PDU (a 4 MiB instance is a 4 MiB PDU and a short last one):

* a region of at most :data:`SMALL_REGION` bytes (the short last PDU of a dataset, or
  every PDU of a small maximum PDU length) whose pages are all in the page cache is read
  with ``preadv2(RWF_NOWAIT)``, which fails rather than wait for the disk (Linux
  ``preadv2(2)``), and goes out in the **same** ``sendmsg`` as its headers: one call
  instead of ``sendmsg`` + ``sendfile``. Not cached (or cut short): ``sendfile`` as above.
  At most :data:`SMALL_HELD` bytes read that way wait in one ``sendmsg``.
* after a short write the writer tries again at once rather than waiting for
  writability: on loopback the peer has often made room by then (strace, 200 x 4 MiB
  instances: 29 of ~170 retries after a short ``sendfile`` met ``EAGAIN``), and a wait
  costs two ``epoll_ctl`` and a trip through the event loop.
"""

from __future__ import annotations

import errno
import os
import socket
from collections.abc import Awaitable, Callable, Sequence
from typing import Final

from ..dimse.file_region import FileRegion

__all__ = ["SENDFILE_SUPPORTED", "SMALL_REGION", "has_regions", "read_cached", "write_with_regions"]

#: Whether this platform can write :class:`FileRegion` parts (see the module docstring).
SENDFILE_SUPPORTED: Final = hasattr(os, "sendfile") and hasattr(socket, "MSG_MORE")
_MSG_MORE: Final = getattr(socket, "MSG_MORE", 0)
#: ``sendfile`` errors meaning "not for this file": the bytes are copied instead.
_NO_SENDFILE: Final = frozenset(
    {errno.EINVAL, errno.ENOSYS, getattr(errno, "EOPNOTSUPP", errno.EINVAL)}
)
_COPY_PIECE: Final = 256 * 1024
#: A region at most this long is read from the page cache and written with its headers in
#: one ``sendmsg`` (module docstring).
SMALL_REGION: Final = 64 * 1024
#: At most this many bytes read that way are held for one ``sendmsg``.
SMALL_HELD: Final = 256 * 1024
#: ``preadv2`` flag: fail with ``EAGAIN`` instead of waiting for the disk (Linux >= 4.14).
_NOWAIT: Final = getattr(os, "RWF_NOWAIT", 0) if hasattr(os, "preadv") else 0

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
    left = sum(map(len, views))
    while left:
        try:
            sent = sock.sendmsg(views, (), flags)
        except (BlockingIOError, InterruptedError):
            await wait_writable()
            continue
        if sent >= left:  # the usual case: all of it at once
            views.clear()
            return
        left -= sent
        drop_sent(views, sent)
    views.clear()


def drop_sent(views: list[memoryview], sent: int) -> None:
    """Remove the first ``sent`` bytes of ``views``, in place (after a partial write)."""
    i = 0
    for view in views:
        n = len(view)
        if sent < n:
            break
        sent -= n
        i += 1
    del views[:i]
    if views and sent:
        views[0] = views[0][sent:]


async def _write_region(
    sock: socket.socket, region: FileRegion, wait_writable: Callable[[], Awaitable[None]]
) -> None:
    _check_open(region)
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


def _check_open(region: FileRegion) -> None:
    if getattr(region.owner, "closed", False):
        raise OSError(errno.EBADF, "the file of a region was closed before it was sent")


def read_cached(region: FileRegion) -> bytearray | None:
    """The bytes of ``region`` when every one of them is in the page cache, read without
    waiting for the disk (``preadv2`` with ``RWF_NOWAIT``); ``None`` when some are not,
    the file is shorter than the region, or the platform has no such read (the caller
    then uses ``sendfile``, which also reports a file cut short)."""
    if not _NOWAIT:
        return None
    buf = bytearray(region.length)
    try:
        n = os.preadv(region.fd, [buf], region.offset, _NOWAIT)
    except OSError:  # BlockingIOError: not cached; EOPNOTSUPP: no RWF_NOWAIT on this fs
        return None
    return buf if n == region.length else None


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
    ``sendmsg`` (``MSG_MORE`` when a region follows), regions with ``os.sendfile`` (a
    short one whose bytes are cached: read, and gathered with the buffers around it).
    ``wait_writable()`` is awaited whenever the socket is full. Raises ``OSError`` (a
    :class:`FileEndedEarly` when a region's file is too short); what was written then
    stays written."""
    run: list[memoryview] = []
    held = 0  # bytes of small regions read into ``run``
    for p in parts:
        if type(p) is FileRegion:
            if not p.length:
                continue
            if p.length <= SMALL_REGION:
                _check_open(p)
                if held + p.length > SMALL_HELD and run:
                    await _write_views(sock, run, _MSG_MORE, wait_writable)
                    run, held = [], 0
                cached = read_cached(p)
                if cached is not None:
                    run.append(memoryview(cached))
                    held += p.length
                    continue
            if run:
                await _write_views(sock, run, _MSG_MORE, wait_writable)
                run, held = [], 0
            await _write_region(sock, p, wait_writable)
        elif len(p):
            run.append(memoryview(p))  # type: ignore[arg-type]
    if run:
        await _write_views(sock, run, 0, wait_writable)
