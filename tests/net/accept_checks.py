"""Acceptor behaviour checked the same way on both accept paths (native and anyio)."""

from __future__ import annotations

import logging
import socket

import pytest

import aiodimse
from aiodimse.services.server import Server


async def failing_handler_is_logged_and_the_server_goes_on(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The first connection's handler raises: that connection ends, the error is logged,
    the next connection is served."""
    real_handle = Server._handle
    calls = {"n": 0}

    async def handle(self: Server, sock: socket.socket, addr: object) -> None:
        calls["n"] += 1
        if calls["n"] == 1:
            sock.close()
            raise RuntimeError("bug in a connection handler")
        await real_handle(self, sock, addr)

    monkeypatch.setattr(Server, "_handle", handle)
    caplog.set_level(logging.ERROR, logger="aiodimse.server")
    async with aiodimse.AE("SCP").serve("127.0.0.1", 0) as server:
        with pytest.raises(aiodimse.errors.NetworkError):
            async with aiodimse.AE("A").associate("127.0.0.1", server.port):
                pass
        async with aiodimse.AE("A").associate("127.0.0.1", server.port) as assoc:
            assert (await assoc.echo()).code == 0
    assert any("bug in a connection handler" in r.getMessage() for r in caplog.records)
