"""``drop_sent`` and the gathered writes of ``write_with_regions`` after partial writes.

``drop_sent`` removes exactly the bytes a short ``sendmsg`` took (hypothesis, against joining
the buffers); ``_write_views`` writes everything in order however little each ``sendmsg``
takes (a fake socket taking a few bytes at a time, and refusing some calls).
"""

from __future__ import annotations

from collections.abc import Sequence

import anyio
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aiodimse.net.sendfile import _write_views, drop_sent

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@given(
    parts=st.lists(st.binary(min_size=1, max_size=40), min_size=1, max_size=8),
    data=st.data(),
)
@settings(max_examples=200)
def test_drop_sent_removes_exactly_what_was_sent(parts: list[bytes], data: st.DataObject) -> None:
    joined = b"".join(parts)
    sent = data.draw(st.integers(0, len(joined)))
    views = [memoryview(p) for p in parts]
    drop_sent(views, sent)
    assert b"".join(bytes(v) for v in views) == joined[sent:]
    assert all(len(v) for v in views)  # no empty view left at the front


class _Trickle:
    """A socket stand-in whose ``sendmsg`` takes at most ``step`` bytes and refuses every
    ``refuse``-th call (``BlockingIOError``)."""

    def __init__(self, step: int, refuse: int) -> None:
        self.got = bytearray()
        self.step = step
        self.refuse = refuse
        self.calls = 0
        self.flags: list[int] = []

    def sendmsg(self, views: Sequence[memoryview], anc: object = (), flags: int = 0) -> int:
        self.calls += 1
        if self.refuse and self.calls % self.refuse == 0:
            raise BlockingIOError
        self.flags.append(flags)
        data = b"".join(bytes(v) for v in views)[: self.step]
        self.got += data
        return len(data)


@pytest.mark.parametrize(("step", "refuse"), [(1 << 20, 0), (7, 0), (5, 3), (1, 2)])
async def test_write_views_writes_everything_in_order(step: int, refuse: int) -> None:
    parts = [b"header", b"x" * 50, b"tail!"]
    views = [memoryview(p) for p in parts]
    sock = _Trickle(step, refuse)
    waits: list[int] = []

    async def wait() -> None:
        waits.append(1)
        await anyio.lowlevel.checkpoint()

    await _write_views(sock, views, 123, wait)  # type: ignore[arg-type]
    assert bytes(sock.got) == b"".join(parts)
    assert views == []  # all written: nothing left to the caller
    assert set(sock.flags) == {123}
    assert len(waits) == (sock.calls // refuse if refuse else 0)


async def test_write_views_of_nothing_writes_nothing() -> None:
    sock = _Trickle(10, 0)
    await _write_views(sock, [], 0, anyio.lowlevel.checkpoint)  # type: ignore[arg-type]
    assert sock.calls == 0
