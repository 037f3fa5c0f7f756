"""The tracing web pages: traces with filters, and one trace as a span waterfall with each
span's input, output, usage, cost and errors, and the trace's scores; sessions (a conversation's
traces in order); and a dashboard of LLM calls over time (cost, tokens, latency, errors) by
model, gateway route, API key or user, charted by ``usage_charts.js`` with the shell's
``lineChart`` from the numbers :mod:`.stats` sums in SQL.

The waterfall is drawn with SVG attributes rather than inline styles, which the pages'
Content-Security-Policy forbids.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC
from datetime import datetime
from typing import Any

from fastapi import APIRouter
from fastapi import Request
from fastapi.responses import Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from opsloop.errors import InvalidInput
from opsloop.llm.tracing import services
from opsloop.llm.tracing import stats
from opsloop.llm.tracing.entities import Span
from opsloop.llm.tracing.entities import TraceFilter
from opsloop.llm.tracing.entities import children_by_parent
from opsloop.llm.tracing.tables import TraceRow
from opsloop.web.deps import ReadSession
from opsloop.web.shell import SearchHit
from opsloop.web.shell import UiDomain

__all__ = ["UI", "router"]

router = APIRouter(include_in_schema=False)
_PAGE = 100


def _find(session: Session, text: str) -> list[SearchHit]:
    rows = session.execute(
        select(TraceRow.trace_id, TraceRow.name)
        .where(TraceRow.name.icontains(text, autoescape=True) | (TraceRow.trace_id == text))
        .order_by(TraceRow.start_ns.desc())
        .limit(20)
    )
    return [SearchHit("trace", name, f"/traces/{tid}", tid) for tid, name in rows]


UI = UiDomain(
    key="traces", title="Traces", href="/traces", package="opsloop.llm.tracing", find=_find
)


def _stamp(ns: int) -> str:
    return datetime.fromtimestamp(ns / 1e9, tz=UTC).strftime("%Y-%m-%d %H:%M:%S")


@router.get("/traces")
def traces_page(request: Request, session: ReadSession) -> Response:
    q = request.query_params
    form = {k: q.get(k, "") for k in ("name", "user_id", "session_id", "tag", "score", "status")}
    error_text = None
    try:
        flt = TraceFilter(
            name=form["name"] or None,
            user_id=form["user_id"] or None,
            session_id=form["session_id"] or None,
            tags=[form["tag"]] if form["tag"] else [],
            scores=[form["score"]] if form["score"] else [],
            error={"error": True, "ok": False}.get(form["status"]),
        )
        page = services.list_traces(session, flt, _PAGE, q.get("page_token"))
    except (InvalidInput, ValueError) as exc:
        error_text = getattr(exc, "message", str(exc))
        page = services.list_traces(session, TraceFilter(), _PAGE, None)
    return UI.page(
        request, "traces.html", "Traces", traces=page.items,
        next_page_token=page.next_page_token, form=form, filter_error=error_text, stamp=_stamp,
    )  # fmt: skip


_RANGES = {"1h": 3600, "24h": 86_400, "7d": 7 * 86_400, "30d": 30 * 86_400}
_CHARTS = (("cost", "Cost (USD)"), ("tokens", "Tokens (in + out)"), ("calls", "Calls"),
           ("p50_ms", "Latency p50 (ms)"), ("p95_ms", "Latency p95 (ms)"),
           ("error_rate", "Error rate"))  # fmt: skip


def _charts(result: stats.TraceStats) -> list[dict[str, Any]]:
    """One chart per measure, one series per group (bucket starts in ms, as the charts take)."""
    by_group: dict[str | None, list[stats.StatsPoint]] = {}
    for point in result.series:
        by_group.setdefault(point.group, []).append(point)
    charts = []
    for key, title in _CHARTS:
        series = []
        for group, points in by_group.items():
            values = [
                p.input_tokens + p.output_tokens if key == "tokens" else getattr(p, key)
                for p in points
            ]
            series.append({
                "label": group or "(none)", "timestamps": [p.bucket_ns // 10**6 for p in points],
                "values": values,
            })  # fmt: skip
        charts.append({"key": key, "title": title, "series": series})
    return charts


@router.get("/traces/dashboard")
def dashboard_page(request: Request, session: ReadSession) -> Response:
    q = request.query_params
    form = {"by": q.get("by", "model"), "range": q.get("range", "24h")}
    if form["by"] not in stats.GROUP_BY or form["range"] not in _RANGES:
        raise InvalidInput(
            f"group by one of {', '.join(stats.GROUP_BY)} over one of {', '.join(_RANGES)}"
        )
    until_ns = time.time_ns()
    query = stats.StatsQuery(by=form["by"], since_ns=until_ns - _RANGES[form["range"]] * 10**9,
                             until_ns=until_ns)  # type: ignore[arg-type]  # fmt: skip
    result = stats.trace_stats(session, query)
    return UI.subpage(
        request, "dashboard.html", "LLM usage", stats=result, charts=_charts(result), form=form,
        ranges=list(_RANGES), group_by=stats.GROUP_BY, stamp=_stamp,
    )  # fmt: skip


@router.get("/traces/sessions")
def sessions_page(request: Request, session: ReadSession) -> Response:
    user_id = request.query_params.get("user_id") or None
    query = stats.SessionQuery(
        user_id=user_id, max_results=_PAGE, page_token=request.query_params.get("page_token")
    )
    page = stats.list_sessions(session, query)
    return UI.subpage(
        request, "sessions.html", "Sessions", sessions=page.items,
        next_page_token=page.next_page_token, user_id=user_id or "", stamp=_stamp,
    )  # fmt: skip


@router.get("/traces/sessions/{session_id:path}")
def session_page(request: Request, session_id: str, session: ReadSession) -> Response:
    detail = stats.get_session(session, session_id)
    return UI.subpage(
        request, "session.html", f"Session {session_id}", ("Sessions", "/traces/sessions"),
        summary=detail.session, traces=detail.traces, stamp=_stamp,
    )  # fmt: skip


@dataclass(frozen=True)
class _Row:
    span: Span
    depth: int
    x: float  # waterfall bar, in 0..1000 of the trace's time
    width: float


def _waterfall(spans: list[Span], start_ns: int, end_ns: int) -> list[_Row]:
    total = max(end_ns - start_ns, 1)
    children = children_by_parent(spans)
    rows: list[_Row] = []

    def walk(parent: str | None, depth: int) -> None:
        for span in children.get(parent, []):
            x = (span.start_ns - start_ns) / total * 1000
            width = max((span.end_ns - span.start_ns) / total * 1000, 2.0)
            rows.append(_Row(span, min(depth, 12), x, min(width, 1000 - x)))
            walk(span.span_id, depth + 1)

    walk(None, 0)
    return rows


@router.get("/traces/{trace_id}")
def trace_page(request: Request, trace_id: str, session: ReadSession) -> Response:
    detail = services.get_trace(session, trace_id)
    trace = detail.trace
    return UI.subpage(
        request, "trace.html", trace.name, trace=trace,
        rows=_waterfall(detail.spans, trace.start_ns, trace.end_ns), scores=detail.scores,
        stamp=_stamp,
    )  # fmt: skip
