"""Responses of a window written together (asyncio).

While several requests we perform are in flight (PS3.7 D.3.3.3), the command-only
responses that become ready in one turn of the event loop leave in one write at the next
turn, not in one write each. Shown without timing: the SCP's handlers wait in a Gate that
opens only when all of the window's requests are being performed, so all their responses
become ready at once; the writes the SCP makes after that are counted.
"""

from __future__ import annotations

import anyio
import pytest

from aiodimse.net import transport as transport_mod
from aiodimse.net.channel import Channel
from tests.scale.scale_support import Gate, WindowSCP, make_instance, session

pytestmark = [pytest.mark.anyio, pytest.mark.fd_callbacks]  # our socket's writes are counted

WINDOW = 8


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # deferred writes are a loop callback: asyncio's fast path


async def test_a_windows_responses_leave_in_few_writes(monkeypatch: pytest.MonkeyPatch) -> None:
    gate = Gate(WINDOW)
    opened_at: list[int] = []
    writes: list[int] = []
    original = transport_mod.SocketTransport._write_some

    def counting(self: transport_mod.SocketTransport, views: object) -> int:
        writes.append(sum(len(v) for v in views))  # type: ignore[attr-defined]
        return original(self, views)  # type: ignore[arg-type]

    monkeypatch.setattr(transport_mod.SocketTransport, "_write_some", counting)

    async def hook(index: int, channel: Channel) -> int | None:
        await gate.wait()
        if not opened_at:
            opened_at.append(len(writes))  # writes so far: the requests, and earlier ones
        return None

    scp = WindowSCP(hook=hook, max_operations_performed=WINDOW)
    with anyio.fail_after(20):
        async with session(scp, invoked=WINDOW) as assoc:
            assert assoc.operations_window == WINDOW
            results = await assoc.store_many([make_instance(i) for i in range(WINDOW)])
            after = writes[opened_at[0] :]
    assert [r.ok for r in results] == [True] * WINDOW
    assert sorted(scp.answered) == list(range(WINDOW))
    # The gate opened with every request performed: their responses (and nothing else,
    # the client is waiting) were then written in one or two writes, not eight.
    assert 1 <= len(after) <= 2, after
