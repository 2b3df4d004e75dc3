"""The acceptor's native path on asyncio: connections accepted from a loop callback and run
on their sockets' read callbacks, with a reader task only when one is needed
(``Server._accept_natively``, ``Server._start``), with the same admission, failure and
shutdown behaviour as the task-group path that trio uses."""

from __future__ import annotations

import asyncio
import errno
import logging
import socket

import anyio
import pytest

import aiodimse
from aiodimse.services.server import Server
from tests.net.accept_checks import failing_handler_is_logged_and_the_server_goes_on

pytestmark = [pytest.mark.anyio, pytest.mark.fd_callbacks]  # the native accept path itself


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def _readers() -> list[asyncio.Task[object]]:
    return [t for t in asyncio.all_tasks() if t.get_coro().__qualname__ == "Channel.run"]  # type: ignore[union-attr]


async def test_a_short_association_runs_without_a_task_and_ends_with_its_association() -> None:
    """Associate, C-ECHO, release: both ends run on their sockets' read callbacks alone (no
    reader task, no task of the server's), and the acceptor's books are closed when the
    requestor has closed the connection."""
    async with aiodimse.AE("SCP").serve("127.0.0.1", 0) as server:
        async with aiodimse.AE("A").associate("127.0.0.1", server.port) as assoc:
            assert (await assoc.echo()).code == 0
            # internals, inspected on purpose
            assert len(server._channels) == 1 and server.active == 1
            assert not server._native_tasks and not _readers()
        for _ in range(100):  # the acceptor's side ends a moment after the release
            if not server._channels:
                break
            await anyio.sleep(0.01)
        assert not server._channels and server.active == 0 and server.pending == 0
        assert not server._native_tasks and not _readers()
        assert server.total_associations == 1


async def test_a_connection_that_never_sends_a_request_ends_by_artim_without_a_task() -> None:
    """ARTIM on the loop's timer: a connection that sends nothing is closed when it expires,
    and no longer counts as pending."""
    scp = aiodimse.AE("SCP", timeouts=aiodimse.Timeouts(acse=0.2))
    async with scp.serve("127.0.0.1", 0) as server:
        stream = await anyio.connect_tcp("127.0.0.1", server.port)
        async with stream:
            for _ in range(100):
                if server.pending == 1:
                    break
                await anyio.sleep(0.01)
            assert server.pending == 1 and not _readers()
            with anyio.fail_after(5):
                with pytest.raises((anyio.EndOfStream, anyio.BrokenResourceError)):
                    await stream.receive()
        for _ in range(100):
            if not server._channels:
                break
            await anyio.sleep(0.01)
        assert server.pending == 0 and not server._channels and not _readers()


async def test_accept_failure_pauses_then_accepting_resumes(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """EMFILE from accept(): the listener is unregistered for 0.1 s, not spun on, and the
    connection waiting in the backlog is served once accepting resumes."""
    real_accept = socket.socket.accept
    failures = {"left": 1}

    def accept(self: socket.socket) -> tuple[socket.socket, object]:
        if failures["left"]:
            failures["left"] -= 1
            raise OSError(errno.EMFILE, "Too many open files")
        return real_accept(self)

    caplog.set_level(logging.ERROR, logger="aiodimse.server")
    async with aiodimse.AE("SCP").serve("127.0.0.1", 0) as server:
        monkeypatch.setattr(socket.socket, "accept", accept)
        with anyio.fail_after(10):
            async with aiodimse.AE("A").associate("127.0.0.1", server.port) as assoc:
                assert (await assoc.echo()).code == 0
        monkeypatch.undo()
    assert failures["left"] == 0
    assert any("accept failed" in r.getMessage() for r in caplog.records)


async def test_a_failing_connection_handler_is_logged_and_the_server_goes_on(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    await failing_handler_is_logged_and_the_server_goes_on(monkeypatch, caplog)


async def test_shutdown_aborts_what_is_still_running_and_leaves_no_task() -> None:
    scp = aiodimse.AE("SCP")
    entered = anyio.Event()

    async def slow(req: aiodimse.EchoRequest) -> int:
        entered.set()
        await anyio.sleep(30)
        return 0

    scp.on_echo = slow
    outcome: list[BaseException] = []

    async def client(port: int) -> None:
        try:
            async with aiodimse.AE("A").associate("127.0.0.1", port) as assoc:
                await assoc.echo()
        except aiodimse.errors.DicomError as exc:
            outcome.append(exc)

    before = asyncio.all_tasks()
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            server = Server(scp, shutdown_timeout=0.2)
            async with server.listening("127.0.0.1", 0):
                tg.start_soon(client, server.port)
                await entered.wait()
                # The handler waits in a task of its association's own, not the server's.
                (channel,) = server._channels
                assert channel._task_group.running() and not server._native_tasks  # type: ignore[union-attr]
            assert not server._channels
            assert not channel._task_group.running()  # type: ignore[union-attr]
    assert asyncio.all_tasks() == before
    assert len(outcome) == 1  # the client saw the abort, in words
    assert "abort" in str(outcome[0]).lower()
