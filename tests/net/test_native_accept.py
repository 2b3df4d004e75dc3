"""The acceptor's native path on asyncio: connections accepted from a loop callback and run
as plain tasks (``Server._accept_natively``), with the same admission, failure and shutdown
behaviour as the task-group path that trio uses."""

from __future__ import annotations

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


async def test_connections_run_as_plain_tasks_and_end_with_their_association() -> None:
    async with aiodimse.AE("SCP").serve("127.0.0.1", 0) as server:
        async with aiodimse.AE("A").associate("127.0.0.1", server.port) as assoc:
            assert (await assoc.echo()).code == 0
            assert len(server._native_tasks) == 1  # internals, inspected on purpose
        for _ in range(100):  # the acceptor's side ends a moment after the release
            if not server._native_tasks:
                break
            await anyio.sleep(0.01)
        assert not server._native_tasks
        assert server.total_associations == 1


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

    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            server = Server(scp, shutdown_timeout=0.2)
            async with server.listening("127.0.0.1", 0):
                tg.start_soon(client, server.port)
                await entered.wait()
                assert len(server._native_tasks) == 1
            assert not server._native_tasks
    assert len(outcome) == 1  # the client saw the abort, in words
    assert "abort" in str(outcome[0]).lower()
