"""How the benchmark scripts ask aiodimse for an asynchronous operations window (PS3.7 D.3.3.3).

The AE option that proposes/accepts the window is being added while these benchmarks are
written; this module finds it by name so the scripts work as soon as it exists, and says
plainly that it does not otherwise (the benchmark row then shows that reason).
"""

from __future__ import annotations

import inspect
from typing import Any

#: Substrings of an ``aiodimse.AE`` keyword that sets the window we propose/accept.
_NAMES = ("async_operations_window", "operations_window", "async_window", "window")


class NoWindowOption(RuntimeError):
    """aiodimse has no AE option for the asynchronous operations window (yet)."""


def ae_window_kwargs(ae_class: Any, window: int) -> dict[str, Any]:
    """Keyword arguments for ``aiodimse.AE(...)`` proposing ``window`` operations each way.

    ``window == 1`` needs no option (one at a time is the default without the item).
    Raises :class:`NoWindowOption` when ``window > 1`` and no suitable keyword exists.
    """
    if window <= 1:
        return {}
    params = inspect.signature(ae_class).parameters
    for wanted in _NAMES:
        for name, param in params.items():
            if wanted in name:
                text = str(param.annotation)
                value: Any = (window, window) if "tuple" in text else window
                return {name: value}
    raise NoWindowOption(
        "aiodimse.AE has no option to propose an asynchronous operations window yet"
    )
