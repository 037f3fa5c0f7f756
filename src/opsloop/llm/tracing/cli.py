"""``opsloop traces ...``: list, show, export and score LLM traces; set model prices."""

from __future__ import annotations

import re
import time
from datetime import UTC
from datetime import datetime
from pathlib import Path
from typing import Annotated
from typing import Any

import typer

from opsloop.console.commands import JsonOption
from opsloop.console.commands import command_group
from opsloop.console.output import command_client
from opsloop.console.output import console
from opsloop.console.output import print_json
from opsloop.console.output import print_listing
from opsloop.console.output import print_table
from opsloop.console.output import print_view

traces_app = command_group(
    "LLM traces sent by @opsloop.observe or any OpenTelemetry exporter (OTLP/HTTP at the "
    "server's /v1/traces), with token usage, cost and scores. Examples:\n\n"
    "  opsloop traces list --since 1h --user u-42 --error\n\n"
    "  opsloop traces list --score 'helpfulness<0.5' --min-cost 0.01\n\n"
    "  opsloop traces show 4bf92f3577b34da6a3ce929d0e0e4736\n\n"
    "  opsloop traces score 4bf92f35... helpfulness 0.8 --comment 'good, a bit long'\n\n"
    "  opsloop traces export spans.parquet --since 7d\n\n"
    "  opsloop traces stats --by route --since 7d --bucket 1d\n\n"
    "  opsloop traces sessions --user u-42\n\n"
    "  opsloop traces prices set 'my-llama-.*' --input 0.2 --output 0.6"
)
prices_app = command_group("Model prices (per million tokens) used to cost spans at ingest.")
traces_app.add_typer(prices_app, name="prices")
_AGO = re.compile(r"(\d+(?:\.\d+)?)\s*([smhdw])")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_time(text: str | None) -> int | None:
    """``30m``, ``2h``, ``7d`` (ago) or an ISO date/time (UTC if no zone) as ns since epoch."""
    from opsloop.errors import InvalidInput
    from opsloop.kernel.timeutil import iso_utc

    if text is None:
        return None
    match = _AGO.fullmatch(text.strip())
    if match:
        seconds = float(match.group(1)) * _UNIT_S[match.group(2)]
        return time.time_ns() - int(seconds * 1e9)
    moment = iso_utc(text)
    if moment is None:
        raise InvalidInput(
            f"time {text!r} is neither an age (30m, 2h, 7d) nor an ISO date (2026-11-24T09:00)"
        )
    return int(moment.timestamp() * 1e9)


def filter_options(
    since: str | None = None, until: str | None = None, **options: Any
) -> dict[str, Any]:
    """Filter options as :class:`~opsloop.llm.tracing.entities.TraceFilter` fields: the times
    (ages or ISO) as ns since the epoch, and only the options given."""
    out = {k: v for k, v in options.items() if v not in (None, [])}
    out["since_ns"], out["until_ns"] = parse_time(since), parse_time(until)
    return {k: v for k, v in out.items() if v is not None}


def _stamp(ns: int) -> str:
    return datetime.fromtimestamp(ns / 1e9, tz=UTC).strftime("%Y-%m-%d %H:%M:%S")


def _ms(value: float) -> str:
    if value < 1:
        return f"{value * 1000:.0f} µs"
    return f"{value:.1f} ms" if value < 1000 else f"{value / 1000:.2f} s"


def _cost(value: float | None) -> str:
    return "" if not value else f"${value:.6f}".rstrip("0").rstrip(".")


Since = Annotated[str | None, typer.Option(help="Started after: 30m, 2h, 7d or an ISO time.")]
Until = Annotated[str | None, typer.Option(help="Started before: an age or an ISO time.")]
Name = Annotated[str | None, typer.Option(help="Trace name contains this (any case).")]
User = Annotated[str | None, typer.Option("--user", help="Only this user id.")]
Session = Annotated[str | None, typer.Option("--session", help="Only this session id.")]
Tag = Annotated[list[str] | None, typer.Option("--tag", help="Carries this tag (repeatable).")]
MinCost = Annotated[float | None, typer.Option(help="Cost at least this (USD).")]
MaxCost = Annotated[float | None, typer.Option(help="Cost at most this (USD).")]
MinLatency = Annotated[float | None, typer.Option(help="Took at least this many ms.")]
MaxLatency = Annotated[float | None, typer.Option(help="Took at most this many ms.")]
Error = Annotated[
    bool | None, typer.Option("--error/--no-error", help="Only failed (or only clean) traces.")
]
ScoreOpt = Annotated[
    list[str] | None,
    typer.Option("--score", help="Score condition, e.g. 'helpfulness>=0.5' (repeatable)."),
]
PromptOpt = Annotated[str | None, typer.Option(help="Used this prompt: NAME or NAME@N.")]
ModelOpt = Annotated[str | None, typer.Option(help="A span called this model.")]


@traces_app.command("list")
def list_traces(
    since: Since = None,
    until: Until = None,
    name: Name = None,
    user: User = None,
    session: Session = None,
    tag: Tag = None,
    min_cost: MinCost = None,
    max_cost: MaxCost = None,
    min_latency: MinLatency = None,
    max_latency: MaxLatency = None,
    error: Error = None,
    score: ScoreOpt = None,
    prompt: PromptOpt = None,
    model: ModelOpt = None,
    limit: Annotated[int, typer.Option(help="At most this many traces.")] = 50,
    json_: JsonOption = False,
) -> None:
    """Traces, newest first, with duration, spans, tokens, cost and scores."""
    filters = filter_options(
        since=since, until=until, name=name, user_id=user, session_id=session, tags=tag,
        min_cost=min_cost, max_cost=max_cost, min_latency_ms=min_latency,
        max_latency_ms=max_latency, error=error, scores=score, prompt=prompt, model=model,
    )  # fmt: skip
    page = command_client().traces.list(max_results=limit, **filters)
    if json_:
        print_json(page)
        return
    print_table(
        [
            "trace",
            "name",
            "started (UTC)",
            "duration",
            "spans",
            "tokens",
            "cost",
            "user",
            "status",
            "scores",
        ],
        [
            (
                t.trace_id,
                t.name,
                _stamp(t.start_ns),
                _ms(t.duration_ms),
                t.span_count,
                t.input_tokens + t.output_tokens or "",
                _cost(t.cost),
                t.user_id,
                f"{t.error_count} error(s)" if t.error_count else "ok",
                ", ".join(f"{k}={v}" for k, v in t.scores.items()),
            )
            for t in page.items
        ],
    )
    if page.next_page_token:
        console().print(f"(more: raise --limit above {limit})")


def _tree(detail: Any) -> Any:
    from rich.markup import escape
    from rich.tree import Tree

    trace = detail.trace
    total = max(trace.end_ns - trace.start_ns, 1)
    width = 24

    def label(span: Any) -> str:
        start = int((span.start_ns - trace.start_ns) / total * width)
        length = max(1, round((span.end_ns - span.start_ns) / total * width))
        bar = " " * start + "█" * min(length, width - start)
        color = "red" if span.status == "error" else "cyan"
        parts = [f"[{color}]{bar:<{width}}[/]", f"[bold]{escape(span.name)}[/]",
                 f"[dim]{span.kind}[/]", _ms(span.duration_ms)]  # fmt: skip
        if span.model:
            parts.append(escape(span.model))
        if span.total_tokens:
            parts.append(f"{span.total_tokens} tok")
        if span.cost:
            parts.append(_cost(span.cost))
        if span.prompt_name:
            parts.append(f"prompt {escape(span.prompt_name)}@{span.prompt_version}")
        if span.status == "error":
            parts.append(f"[red]{escape(span.status_message or 'error')}[/]")
        return "  ".join(parts)

    from opsloop.llm.tracing.entities import children_by_parent

    children = children_by_parent(detail.spans)
    root = Tree(
        f"[bold]{escape(trace.name)}[/]  {trace.trace_id}  {_stamp(trace.start_ns)} UTC  "
        f"{_ms(trace.duration_ms)}  {trace.span_count} spans  {_cost(trace.cost)}"
    )

    def add(node: Any, parent_id: str | None) -> None:
        for span in children.get(parent_id, []):
            add(node.add(label(span)), span.span_id)

    add(root, None)
    return root


@traces_app.command("show")
def show(
    trace_id: str,
    io: Annotated[
        bool, typer.Option("--io", help="Also print each span's input and output.")
    ] = False,
    json_: JsonOption = False,
) -> None:
    """One trace as a tree of spans with a timeline bar, model, tokens, cost and errors."""
    detail = command_client().traces.get(trace_id)
    print_view(detail, lambda found: _print_trace(found, io=io), as_json=json_)


def _print_trace(detail: Any, *, io: bool) -> None:
    out = console()
    out.print(_tree(detail))
    if detail.scores:
        out.print("scores: " + ", ".join(
            f"{s.name}={s.value if s.value is not None else s.string_value} ({s.source})"
            for s in detail.scores
        ))  # fmt: skip
    if io:
        for span in detail.spans:
            out.print(f"[bold]{span.name}[/] ({span.span_id})", markup=True)
            out.print(f"  input:  {span.input}", markup=False)
            out.print(f"  output: {span.output}", markup=False)


@traces_app.command("export")
def export(
    path: Path,
    traces_only: Annotated[
        bool, typer.Option("--traces", help="One row per trace instead of per span.")
    ] = False,
    since: Since = None,
    until: Until = None,
    name: Name = None,
    user: User = None,
    session: Session = None,
    tag: Tag = None,
    error: Error = None,
    score: ScoreOpt = None,
    prompt: PromptOpt = None,
    model: ModelOpt = None,
) -> None:
    """Write the matching spans (or traces) to a Parquet file."""
    filters = filter_options(
        since=since, until=until, name=name, user_id=user, session_id=session, tags=tag,
        error=error, scores=score, prompt=prompt, model=model,
    )  # fmt: skip
    import pyarrow.parquet as pq

    what = "traces" if traces_only else "spans"
    written = command_client().traces.export(path, what=what, **filters)
    rows = pq.read_metadata(written).num_rows
    console().print(f"wrote {rows} {what} to {written}")


@traces_app.command("score")
def score(
    trace_id: str,
    name: str,
    value: Annotated[str, typer.Argument(help="A number, true/false, or a category/text.")],
    span: Annotated[str | None, typer.Option(help="Score this span of the trace.")] = None,
    comment: Annotated[str | None, typer.Option(help="Why.")] = None,
    data_type: Annotated[
        str | None, typer.Option("--type", help="numeric, boolean, categorical or text.")
    ] = None,
    json_: JsonOption = False,
) -> None:
    """Record a human score on a trace (or a span)."""
    parsed: float | bool | str = value
    if data_type in (None, "numeric"):
        try:
            parsed = float(value)
        except ValueError:
            parsed = value
    if data_type in (None, "boolean") and value.lower() in ("true", "false"):
        parsed = value.lower() == "true"
    result = command_client().traces.score(
        trace_id, name, parsed, span_id=span, comment=comment, data_type=data_type,
        source="human",
    )  # fmt: skip
    if json_:
        print_json(result)
        return
    shown = result.value if result.value is not None else result.string_value
    console().print(f"scored {trace_id} {name}={shown} ({result.data_type}) as {result.id}")


@prices_app.command("list")
def prices_list(json_: JsonOption = False) -> None:
    """Prices in the order they are tried: yours (most specific first), then the defaults."""
    prices = command_client().traces.prices()
    print_listing(
        prices,
        ["pattern", "input $/Mtok", "output $/Mtok", "per request", "source"],
        [(p.pattern, p.input_per_mtok, p.output_per_mtok, p.per_request, p.source) for p in prices],
        as_json=json_,
    )


@prices_app.command("set")
def prices_set(
    pattern: Annotated[str, typer.Argument(help="Regex that model names fully match.")],
    input: Annotated[float, typer.Option(help="USD per million input tokens.")] = 0.0,
    output: Annotated[float, typer.Option(help="USD per million output tokens.")] = 0.0,
    per_request: Annotated[float, typer.Option(help="USD per call.")] = 0.0,
) -> None:
    """Set your price for matching models (spans ingested from now on use it)."""
    price = command_client().traces.set_price(
        pattern, input_per_mtok=input, output_per_mtok=output, per_request=per_request
    )
    console().print(
        f"{price.pattern}: ${price.input_per_mtok}/Mtok in, ${price.output_per_mtok}/Mtok out"
    )


@prices_app.command("delete")
def prices_delete(pattern: str) -> None:
    """Remove one of your prices (the defaults apply again)."""
    command_client().traces.delete_price(pattern)
    console().print(f"deleted price {pattern}")


def _seconds(text: str | None) -> int | None:
    from opsloop.errors import InvalidInput

    match = _AGO.fullmatch(text.strip()) if text else None
    if text and not match:
        raise InvalidInput(f"bucket {text!r} is not a width such as 5m, 1h or 1d")
    return max(1, int(float(match.group(1)) * _UNIT_S[match.group(2)])) if match else None


@traces_app.command("stats")
def stats(
    by: Annotated[str, typer.Option(help="Group by model, route, key or user.")] = "model",
    since: Annotated[str, typer.Option(help="From: 30m, 2h, 7d ago or an ISO time.")] = "1d",
    until: Until = None,
    bucket: Annotated[
        str | None,
        typer.Option(help="Bucket width (5m, 1h, 1d) for --json's series; default ~60 buckets."),
    ] = None,
    json_: JsonOption = False,
) -> None:
    """LLM calls (spans that name a model) per model, gateway route, API key or user: calls,
    error rate, tokens, cost and p50/p95 latency. --json adds the series over time that the
    web UI's dashboard (/traces/dashboard) charts."""
    result = command_client().traces.stats(
        by=by, since_ns=parse_time(since), until_ns=parse_time(until), bucket_s=_seconds(bucket)
    )
    if json_:
        print_json(result)
        return

    def cells(name: str, g: Any) -> tuple[Any, ...]:
        latency = [_ms(v) if v is not None else "" for v in (g.p50_ms, g.p95_ms)]
        return (name, g.calls, f"{g.error_rate:.1%}", g.input_tokens, g.output_tokens,
                _cost(g.cost), *latency)  # fmt: skip

    rows = [cells(g.group or "(none)", g) for g in result.groups]
    print_table([by, "calls", "errors", "tokens in", "tokens out", "cost", "p50", "p95"],
                [*rows, cells("all", result.total)] if rows else [])  # fmt: skip
    console().print(f"{_stamp(result.since_ns)} to {_stamp(result.until_ns)} UTC")


@traces_app.command("sessions")
def sessions(
    session_id: Annotated[
        str | None, typer.Argument(help="Show this session's traces in order.")
    ] = None,
    user: User = None,
    since: Since = None,
    limit: Annotated[int, typer.Option(help="At most this many sessions.")] = 50,
    json_: JsonOption = False,
) -> None:
    """Conversations: traces that share a session id, the most recently active first; with a
    SESSION_ID, that conversation's traces oldest first, each with its input and output."""
    traces = command_client().traces
    if session_id is not None:
        detail = traces.session(session_id)
        print_listing(detail,
                      ["trace", "started (UTC)", "duration", "cost", "status", "input", "output"],
                      [(t.trace_id, _stamp(t.start_ns), _ms(t.duration_ms), _cost(t.cost),
                        "error" if t.error_count else "ok", (t.input or "")[:60],
                        (t.output or "")[:60]) for t in detail.traces],
                      as_json=json_)  # fmt: skip
        return
    page = traces.sessions(user_id=user, since_ns=parse_time(since), max_results=limit)
    head = ["session", "traces", "first (UTC)", "last (UTC)", "user", "tokens", "cost", "errors"]
    print_listing(page, head,
                  [(s.session_id, s.trace_count, _stamp(s.first_ns), _stamp(s.last_ns), s.user_id,
                    s.input_tokens + s.output_tokens, _cost(s.cost), s.error_count)
                   for s in page.items],
                  as_json=json_)  # fmt: skip
