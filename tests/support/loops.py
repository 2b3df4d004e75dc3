"""Event loops for running the suite the way other platforms' default loops behave.

``AIODIMSE_TEST_LOOP=no-fd-callbacks`` makes every asyncio loop of the run refuse
``add_reader``/``add_writer`` (and their removal) with :class:`NotImplementedError`, as
Windows' default ``ProactorEventLoop`` does. asyncio's own transports keep working (they
use the loop's private registration), anyio falls back to its selector thread as it does on
Windows, and aiodimse must take its portable paths: the anyio accept loop, the anyio
receive path, connect through anyio. CI runs part of the suite this way
(``make test``); it shows those paths work, on Linux, not that Windows itself does.
"""

from __future__ import annotations

import asyncio
import os
import sys
from typing import Any

ENV = "AIODIMSE_TEST_LOOP"
NO_FD_CALLBACKS = "no-fd-callbacks"


def _from_asyncio() -> bool:
    """Whether the caller of the caller is asyncio itself (its ``sock_*`` helpers use the
    public methods internally; the proactor has its own implementation of those)."""
    return str(sys._getframe(2).f_globals.get("__name__", "")).startswith("asyncio.")


class NoFdCallbacksLoop(asyncio.SelectorEventLoop):
    """A selector loop whose public fd-callback API is missing for everyone but asyncio's
    own socket helpers, like the proactor's."""

    def add_reader(self, fd: Any, callback: Any, *args: Any) -> None:
        if not _from_asyncio():
            raise NotImplementedError("add_reader (simulated proactor loop)")
        super().add_reader(fd, callback, *args)

    def remove_reader(self, fd: Any) -> bool:
        if not _from_asyncio():
            raise NotImplementedError("remove_reader (simulated proactor loop)")
        return super().remove_reader(fd)

    def add_writer(self, fd: Any, callback: Any, *args: Any) -> None:
        if not _from_asyncio():
            raise NotImplementedError("add_writer (simulated proactor loop)")
        super().add_writer(fd, callback, *args)

    def remove_writer(self, fd: Any) -> bool:
        if not _from_asyncio():
            raise NotImplementedError("remove_writer (simulated proactor loop)")
        return super().remove_writer(fd)


class NoFdCallbacksPolicy(asyncio.DefaultEventLoopPolicy):
    def new_event_loop(self) -> asyncio.AbstractEventLoop:
        return NoFdCallbacksLoop()


def install_from_environment() -> str | None:
    """Install the loop policy named by :data:`ENV`; returns its name (None: default)."""
    name = os.environ.get(ENV, "")
    if not name:
        return None
    if name != NO_FD_CALLBACKS:
        raise ValueError(f"{ENV}={name!r}: the only choice is {NO_FD_CALLBACKS!r}")
    asyncio.set_event_loop_policy(NoFdCallbacksPolicy())
    return name
