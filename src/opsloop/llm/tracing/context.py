"""The current span, per thread and per asyncio task (a ``ContextVar``).

Kept free of imports so that code which only asks "is there a span?" (``Prompt.compile``
recording which prompt version a call used) costs nothing when tracing is not in use.
A new thread starts with no current span: pass ``parent=`` or run the thread's work in
``contextvars.copy_context()`` to keep it in the same trace.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any

__all__ = ["CURRENT_SPAN", "current_span"]

CURRENT_SPAN: ContextVar[Any] = ContextVar("opsloop_current_span", default=None)


def current_span() -> Any:
    """The ``ActiveSpan`` open in this context, or None."""
    return CURRENT_SPAN.get()
