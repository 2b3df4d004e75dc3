"""Running aiodimse code: :func:`run` with an optional uvloop event loop (issue 9).

uvloop (a libuv event loop for asyncio) is never required: it is used when it is installed
*and* asked for, with ``run(..., uvloop=True)`` or the environment variable
``AIODIMSE_UVLOOP=1`` (``0`` forbids it). Asked for but not installed, or on trio: the
standard loop, with one log line. Windows has no uvloop.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import anyio

log = logging.getLogger("aiodimse.net")

__all__ = ["UVLOOP_ENV", "asyncio_loop", "backend_options", "run", "uvloop_available"]

T = TypeVar("T")


def asyncio_loop() -> asyncio.AbstractEventLoop | None:
    """The running asyncio (or uvloop) event loop when called from one of its tasks, where
    the loop's own callbacks and primitives may be used; ``None`` on trio, outside a task,
    or under another library's loop."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return None
    return loop if asyncio.current_task(loop) is not None else None


#: The environment variable that asks for uvloop (``1``) or forbids it (``0``).
UVLOOP_ENV = "AIODIMSE_UVLOOP"


def uvloop_available() -> bool:
    """True when the ``uvloop`` package can be imported."""
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return False
    return True


def _wanted(uvloop: bool | None) -> bool:
    if uvloop is not None:
        return uvloop
    return os.environ.get(UVLOOP_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def backend_options(backend: str = "asyncio", *, uvloop: bool | None = None) -> dict[str, Any]:
    """anyio ``backend_options`` for ``backend``: ``{"use_uvloop": True}`` when uvloop is
    asked for (argument, else :data:`UVLOOP_ENV`) and installed, else ``{}``."""
    if backend != "asyncio" or not _wanted(uvloop):
        if backend != "asyncio" and uvloop:
            log.warning("uvloop asked for on %s: ignored (asyncio only)", backend)
        return {}
    if not uvloop_available():
        log.warning("uvloop asked for but not installed: using the standard asyncio loop")
        return {}
    log.debug("event loop: uvloop")
    return {"use_uvloop": True}


def run(
    func: Callable[..., Awaitable[T]],
    *args: Any,
    backend: str = "asyncio",
    uvloop: bool | None = None,
) -> T:
    """``anyio.run(func, *args)`` on ``backend``, with uvloop when asked for and installed
    (see the module docstring)."""
    return anyio.run(
        func, *args, backend=backend, backend_options=backend_options(backend, uvloop=uvloop)
    )
