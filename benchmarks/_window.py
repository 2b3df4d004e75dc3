"""How the benchmark scripts ask aiodimse for an asynchronous operations window (PS3.7 D.3.3.3).

aiodimse's ``AE`` takes ``max_operations_invoked`` (as requestor: requests we keep
outstanding; 1 proposes no window) and ``max_operations_performed`` (as acceptor: the most
we grant). This module builds those keywords, and says plainly when the installed aiodimse
has neither (the benchmark row then shows that reason instead of a misleading number).
"""

from __future__ import annotations

import enum
import inspect
from typing import Any


class Role(enum.Enum):
    REQUESTOR = "requestor"
    ACCEPTOR = "acceptor"


#: The AE keyword per role, then older spellings tried by substring.
_KEYWORD = {Role.REQUESTOR: "max_operations_invoked", Role.ACCEPTOR: "max_operations_performed"}
_FALLBACK = ("async_operations_window", "operations_window", "async_window")


class NoWindowOption(RuntimeError):
    """aiodimse has no AE option for the asynchronous operations window (yet)."""


def ae_window_kwargs(ae_class: Any, window: int, role: Role = Role.REQUESTOR) -> dict[str, Any]:
    """Keyword arguments for ``aiodimse.AE(...)``: ``window`` operations for ``role``.

    ``window == 1`` needs no option (one at a time is the default without the item).
    Raises :class:`NoWindowOption` when ``window > 1`` and no suitable keyword exists.
    """
    if window <= 1:
        return {}
    params = inspect.signature(ae_class).parameters
    if _KEYWORD[role] in params:
        return {_KEYWORD[role]: window}
    for wanted in _FALLBACK:
        for name, param in params.items():
            if wanted in name:
                value: Any = (window, window) if "tuple" in str(param.annotation) else window
                return {name: value}
    raise NoWindowOption(
        "aiodimse.AE has no option to propose an asynchronous operations window yet"
    )
