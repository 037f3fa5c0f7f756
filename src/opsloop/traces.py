"""LLM tracing: ``opsloop.observe``, ``opsloop.traces.span``, and reading traces back.

Module-level functions use the default client::

    import opsloop

    @opsloop.observe(kind="llm")
    def answer(question: str) -> str:
        opsloop.traces.current_span().update(model="gpt-4o-mini", usage=response.usage)
        ...

    with opsloop.traces.span("rag", kind="chain", user_id="u-7") as span:
        span.update(output=answer(question))
    opsloop.traces.score(span.trace_id, "helpfulness", 0.9)
    opsloop.traces.list(user_id="u-7", error=False)
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING
from typing import Any

from opsloop.llm.tracing.context import current_span

if TYPE_CHECKING:
    from opsloop.kernel.paging import Page
    from opsloop.llm.tracing.entities import Score
    from opsloop.llm.tracing.entities import Trace
    from opsloop.llm.tracing.entities import TraceDetail
    from opsloop.llm.tracing.sdk import ActiveSpan
    from opsloop.llm.tracing.sdk import TracesClient

__all__ = ["current_span", "export", "flush", "get", "list", "observe", "score", "span"]


def _traces() -> TracesClient:
    from opsloop.fluent import get_client

    return get_client().traces


def span(name: str, *, kind: str = "span", **fields: Any) -> ActiveSpan:
    """A span for a ``with`` block, a child of the current span (see ``Tracer.span``)."""
    return _traces().tracer.span(name, kind=kind, **fields)


def observe(fn: Any = None, **options: Any) -> Any:
    """Trace each call of a function as a span (see ``opsloop.llm.tracing.sdk.observe``)."""
    from opsloop.llm.tracing.sdk import observe as _observe

    return _observe(fn, **options)


def flush() -> None:
    """Store every span ended so far."""
    _traces().flush()


def list(**filters: Any) -> Page[Trace]:
    """Traces newest first, filtered (``user_id=``, ``tags=[...]``, ``error=True``...)."""
    return _traces().list(**filters)


def get(trace_id: str) -> TraceDetail:
    return _traces().get(trace_id)


def score(trace_id: str, name: str, value: float | bool | str, **options: Any) -> Score:
    """Score a trace or one of its spans (``span_id=``, ``comment=``)."""
    return _traces().score(trace_id, name, value, **options)


def export(path: str | Path, **options: Any) -> Path:
    """Write matching spans (or ``what="traces"``) to Parquet."""
    return _traces().export(path, **options)
