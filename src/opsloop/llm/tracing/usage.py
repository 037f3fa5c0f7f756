"""The usage half of :class:`~opsloop.llm.tracing.sdk.TracesClient`: LLM calls over time (by model,
gateway route, API key or user) and conversations (traces sharing a session id), over whatever
:class:`~opsloop.llm.tracing.backend.TracingBackend` the client holds, so it answers the same on
the embedded store and against a server."""

from __future__ import annotations

from pydantic import ValidationError

from opsloop.errors import InvalidInput
from opsloop.errors import validation_problems
from opsloop.kernel.bounds import check_int64
from opsloop.kernel.paging import Page
from opsloop.llm.tracing.backend import TracingBackend
from opsloop.llm.tracing.stats import SessionDetail
from opsloop.llm.tracing.stats import SessionQuery
from opsloop.llm.tracing.stats import SessionSummary
from opsloop.llm.tracing.stats import StatsQuery
from opsloop.llm.tracing.stats import TraceStats

__all__ = ["TraceUsage"]


class TraceUsage:
    """Usage methods over ``self._backend``; mixed into the traces client.

    Example:
        >>> stats = Client().traces.stats(by="route", since_ns=time.time_ns() - 7 * 86400e9)
        >>> [(g.group, g.calls, g.cost, g.p95_ms) for g in stats.groups]
    """

    _backend: TracingBackend

    def stats(
        self,
        *,
        by: str = "model",
        since_ns: int | None = None,
        until_ns: int | None = None,
        bucket_s: int | None = None,
        max_groups: int = 8,
    ) -> TraceStats:
        """LLM calls (spans naming a model) from ``since_ns`` (default a day ago) to
        ``until_ns`` (default now), grouped ``by`` ``model``, ``route``, ``key`` or ``user``:
        calls, errors, tokens, cost and p50/p95 latency in total, per group, and per time bucket
        for the ``max_groups`` busiest groups. Raises ``InvalidInput`` for another ``by``, a
        range that ends before it starts, or a bucket too narrow for the range."""
        try:
            query = StatsQuery(
                by=by, since_ns=since_ns, until_ns=until_ns, bucket_s=bucket_s,  # type: ignore[arg-type]
                max_groups=max_groups,
            )  # fmt: skip
        except ValidationError as exc:
            problems = "; ".join(validation_problems(exc))
            raise InvalidInput(f"invalid trace stats query: {problems}") from None
        return self._backend.trace_stats(query)

    def sessions(
        self,
        *,
        user_id: str | None = None,
        since_ns: int | None = None,
        until_ns: int | None = None,
        max_results: int = 50,
        page_token: str | None = None,
    ) -> Page[SessionSummary]:
        """Sessions (traces sharing a session id) with a trace in the range, most recently
        active first, with their trace count, tokens, cost and errors."""
        if not 1 <= max_results <= 1000:
            raise InvalidInput(f"max_results must be 1 to 1000, got {max_results}")
        for what, value in (("since_ns", since_ns), ("until_ns", until_ns)):
            if value is not None:
                check_int64(value, what)
        query = SessionQuery(
            user_id=user_id, since_ns=since_ns, until_ns=until_ns, max_results=max_results,
            page_token=page_token,
        )  # fmt: skip
        return self._backend.list_sessions(query)

    def session(self, session_id: str) -> SessionDetail:
        """One conversation: its totals and its traces in the order they happened. Raises
        ``NotFound`` when no trace carries ``session_id``."""
        return self._backend.get_session(session_id)
