"""Acceptor behaviour checked the same way on both accept paths (native and anyio)."""

from __future__ import annotations

import logging
from typing import Any

import pytest

import aiodimse
from aiodimse.net.transport import Transport
from aiodimse.services.server import Server


async def failing_handler_is_logged_and_the_server_goes_on(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Setting up the first connection raises (a bug): that connection ends, the error is
    logged, the next connection is served."""
    real_open = Server._open
    calls = {"n": 0}

    def open_connection(self: Server, transport: Transport, addr: object, *args: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("bug in a connection handler")
        return real_open(self, transport, addr, *args)

    monkeypatch.setattr(Server, "_open", open_connection)
    caplog.set_level(logging.ERROR, logger="aiodimse.server")
    async with aiodimse.AE("SCP").serve("127.0.0.1", 0) as server:
        with pytest.raises(aiodimse.errors.NetworkError):
            async with aiodimse.AE("A").associate("127.0.0.1", server.port):
                pass
        async with aiodimse.AE("A").associate("127.0.0.1", server.port) as assoc:
            assert (await assoc.echo()).code == 0
    assert any("bug in a connection handler" in r.getMessage() for r in caplog.records)
