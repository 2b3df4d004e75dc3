"""``AE.associate(...)`` as a context manager, on both backends: release on a normal exit,
abort on an exception (re-raised as itself), one entry per context."""

from __future__ import annotations

import anyio
import pytest

import aiodimse

pytestmark = pytest.mark.anyio


class _Boom(Exception):
    pass


async def test_normal_exit_releases_and_an_exception_aborts_and_propagates_as_itself() -> None:
    async with aiodimse.AE("SCP").serve("127.0.0.1", 0) as server:
        scu = aiodimse.AE("A")
        async with scu.associate("127.0.0.1", server.port) as assoc:
            assert (await assoc.echo()).code == 0
        # Channel internals, inspected on purpose: released, no error.
        assert assoc._channel._released and assoc._channel.error is None

        boom = _Boom("application bug")
        with pytest.raises(_Boom) as info:
            async with scu.associate("127.0.0.1", server.port) as assoc2:
                raise boom
        assert info.value is boom  # not wrapped in an ExceptionGroup
        assert not assoc2.is_established and not assoc2._channel._released
        assert isinstance(assoc2._channel.error, aiodimse.errors.AssociationAborted)
        for _ in range(500):  # the acceptor's side ends too (A-ABORT received)
            if not server.active:
                break
            await anyio.sleep(0.01)
        assert server.active == 0


async def test_a_context_is_entered_once() -> None:
    async with aiodimse.AE("SCP").serve("127.0.0.1", 0) as server:
        cm = aiodimse.AE("A").associate("127.0.0.1", server.port)
        async with cm:
            with pytest.raises(RuntimeError, match="entered once"):
                await cm.__aenter__()
