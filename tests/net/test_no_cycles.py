"""A finished association leaves no reference cycle among the library's objects.

The channel and its transport hold each other's bound methods while they work; when the
channel ends it drops them, so the connection's objects (channel, transport, socket, core,
receive buffer) are freed by reference counting as soon as their owner lets go, instead of
waiting for the cyclic garbage collector, whose passes cost CPU on a busy server and keep
64 KiB receive buffers alive until they run.

(A failed association is another matter: the exception raised to the caller refers, through
its traceback, to the frames that hold the channel, as any Python exception does.)
"""

from __future__ import annotations

import gc
from collections import Counter
from collections.abc import Iterator

import pytest

import aiodimse

# The socket transport and the channel holding each other is the loop-callback path.
pytestmark = [pytest.mark.anyio, pytest.mark.fd_callbacks]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # the lazy acceptor and the socket transport are asyncio's


@pytest.fixture
def saved_garbage() -> Iterator[list[object]]:
    """Everything the cyclic collector finds while the test runs, kept for inspection."""
    gc.collect()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        yield gc.garbage
    finally:
        gc.set_debug(0)
        gc.garbage.clear()


def _ours(garbage: list[object]) -> Counter[str]:
    return Counter(
        type(o).__qualname__ for o in garbage if type(o).__module__.startswith("aiodimse")
    )


async def test_echo_associations_leave_no_cycles(saved_garbage: list[object]) -> None:
    server = aiodimse.AE("ECHO_SCP")
    async with server.serve("127.0.0.1", 0) as listener:
        ae = aiodimse.AE("BENCH")
        for _ in range(3):  # warm: first-use caches are not per-association garbage
            async with ae.associate("127.0.0.1", listener.port, called_ae="ECHO_SCP") as a:
                await a.echo()
        gc.collect()
        saved_garbage.clear()
        for _ in range(5):
            async with ae.associate("127.0.0.1", listener.port, called_ae="ECHO_SCP") as a:
                assert (await a.echo()).is_success
        gc.collect()
        assert _ours(saved_garbage) == Counter()
