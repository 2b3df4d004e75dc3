"""Optional uvloop (issue 9): used when installed and asked for, never required."""

from __future__ import annotations

import asyncio

import pytest

import aiodimse
from aiodimse.net import loop as loop_mod


def test_backend_options_follow_the_argument_then_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(loop_mod.UVLOOP_ENV, raising=False)
    assert loop_mod.backend_options() == {}
    assert loop_mod.backend_options("trio", uvloop=True) == {}
    installed = loop_mod.uvloop_available()
    assert loop_mod.backend_options(uvloop=True) == ({"use_uvloop": True} if installed else {})
    monkeypatch.setenv(loop_mod.UVLOOP_ENV, "1")
    assert loop_mod.backend_options() == ({"use_uvloop": True} if installed else {})
    assert loop_mod.backend_options(uvloop=False) == {}  # the argument wins
    monkeypatch.setenv(loop_mod.UVLOOP_ENV, "0")
    assert loop_mod.backend_options() == {}


def test_not_installed_falls_back_to_the_standard_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(loop_mod, "uvloop_available", lambda: False)
    assert loop_mod.backend_options(uvloop=True) == {}


async def _echo_twice() -> str:
    scp = aiodimse.AE("SCP")
    async with scp.serve("127.0.0.1", 0) as server:
        for _ in range(2):
            async with aiodimse.AE("SCU").associate("127.0.0.1", server.port) as assoc:
                assert (await assoc.echo()).code == 0
    return type(asyncio.get_running_loop()).__module__


@pytest.mark.parametrize("uvloop", [False, True])
def test_run_echoes_on_the_chosen_loop(uvloop: bool) -> None:
    if uvloop and not loop_mod.uvloop_available():
        pytest.skip("uvloop not installed (optional)")
    module = aiodimse.run(_echo_twice, uvloop=uvloop)
    assert module.startswith("uvloop") == uvloop
