"""LLM usage stats and sessions: the same answers from the local and HTTP backends, on SQLite
and PostgreSQL (the ``client`` fixture runs each test four ways)."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from opsloop.errors import InvalidInput
from opsloop.errors import NotFound
from opsloop.llm.tracing.records import SpanRecord
from opsloop.llm.tracing.stats import KEY_ATTRIBUTE
from opsloop.llm.tracing.stats import ROUTE_ATTRIBUTE
from tests.cli.support import in_process as opsloop_in_process

MINUTE = 60 * 10**9
_ids = iter(range(1, 10**6))


def call(
    start_ns: int,
    ms: float,
    *,
    model: str | None = "gpt-4o-mini",
    route: str | None = None,
    key: str | None = None,
    user: str | None = None,
    session: str | None = None,
    error: bool = False,
    tokens: tuple[int, int] = (100, 20),
    cost: float = 0.001,
    extra: dict[str, Any] | None = None,
    text: tuple[str, str] = ("q", "a"),
) -> SpanRecord:
    """One LLM call as the root span of its own trace."""
    n = next(_ids)
    attributes = dict(extra or {})
    if route:
        attributes[ROUTE_ATTRIBUTE] = route
    if key:
        attributes[KEY_ATTRIBUTE] = key
    return SpanRecord(
        trace_id=f"{n:032x}", span_id=f"{n:016x}", name="chat", kind="llm",
        start_ns=start_ns, end_ns=start_ns + int(ms * 1e6), model=model,
        status="error" if error else "ok", status_message="boom" if error else None,
        input_tokens=tokens[0], output_tokens=tokens[1], cost=cost, user_id=user,
        session_id=session, attributes=attributes, input=text[0], output=text[1],
    )  # fmt: skip


def store(client: Any, records: list[SpanRecord]) -> None:
    for record in records:
        client.traces.tracer.exporter.add(record)
    client.traces.flush()


def test_stats_by_model_with_percentiles_errors_tokens_and_buckets(client: Any) -> None:
    base = (time.time_ns() // (60 * MINUTE) - 2) * 60 * MINUTE  # two hours ago, on the hour
    records = [call(base + i * MINUTE, ms=float(i + 1)) for i in range(20)]  # 1..20 ms
    records += [call(base + 70 * MINUTE, ms=500.0, model="llama", error=True, tokens=(10, 0))]
    records += [call(base + 71 * MINUTE, ms=100.0, model="llama", cost=0.5)]
    records += [call(base + 5 * MINUTE, ms=1.0, model=None)]  # not an LLM call: not counted
    records += [call(base - 10 * MINUTE, ms=9999.0)]  # before the range
    store(client, records)

    stats = client.traces.stats(since_ns=base, until_ns=base + 120 * MINUTE, bucket_s=3600)
    assert stats.by == "model" and stats.bucket_s == 3600
    mini, llama = stats.groups
    assert (mini.group, mini.calls, mini.errors, mini.error_rate) == ("gpt-4o-mini", 20, 0, 0.0)
    assert (mini.p50_ms, mini.p95_ms) == pytest.approx((10.0, 19.0))  # nearest rank: 10th, 19th
    assert (mini.input_tokens, mini.output_tokens) == (2000, 400)
    assert mini.cost == pytest.approx(0.02)
    assert (llama.group, llama.calls, llama.errors, llama.error_rate) == ("llama", 2, 1, 0.5)
    assert (llama.p50_ms, llama.p95_ms) == pytest.approx((100.0, 500.0))
    assert stats.total.calls == 22 and stats.total.cost == pytest.approx(0.521)
    assert stats.total.p95_ms == pytest.approx(100.0)  # rank 21 of 22: 1..20, 100, 500

    points = [(p.group, p.bucket_ns - base, p.calls) for p in stats.series]
    assert points == [("gpt-4o-mini", 0, 20), ("llama", 60 * MINUTE, 2)]

    one = client.traces.stats(since_ns=base, until_ns=base + 120 * MINUTE, max_groups=1)
    assert {p.group for p in one.series} == {"gpt-4o-mini"}
    assert len(one.groups) == 2 and one.bucket_s == 300  # about 60 buckets over two hours


def test_stats_by_route_key_and_user(client: Any) -> None:
    now = time.time_ns()
    odd = {"score": float("inf"), "ratio": float("nan")}  # stored as JSON's missing Infinity/NaN
    store(client, [
        call(now - 5 * MINUTE, 10, route="support", key="k1", user="alice"),
        call(now - 4 * MINUTE, 30, route="support", key="k2", user="bob", extra=odd),
        call(now - 3 * MINUTE, 20, route="search", key="k1", user="alice"),
        call(now - 2 * MINUTE, 40),  # called directly, not through the gateway
    ])  # fmt: skip

    def groups(by: str) -> dict[str | None, int]:
        return {g.group: g.calls for g in client.traces.stats(by=by).groups}

    assert groups("route") == {"support": 2, "search": 1, None: 1}
    assert groups("key") == {"k1": 2, "k2": 1, None: 1}
    assert groups("user") == {"alice": 2, "bob": 1, None: 1}
    support = next(g for g in client.traces.stats(by="route").groups if g.group == "support")
    assert (support.p50_ms, support.p95_ms) == pytest.approx((10.0, 30.0))


def test_a_users_calls_count_for_them_when_only_the_trace_root_names_the_user(
    client: Any,
) -> None:
    tracer = client.traces.tracer
    root = tracer.span("conversation", kind="chain", user_id="carol", session_id="c1")
    with root, tracer.span("generate", kind="llm") as span:
        span.update(model="gpt-4o-mini", usage={"prompt_tokens": 5, "completion_tokens": 1})
    client.traces.flush()
    assert [(g.group, g.calls) for g in client.traces.stats(by="user").groups] == [("carol", 1)]


def test_sessions_list_and_one_conversation_in_order(client: Any) -> None:
    now = time.time_ns()
    store(client, [
        call(now - 9 * MINUTE, 5, session="s/1", user="alice", text=("hi", "hello")),
        call(now - 8 * MINUTE, 5, session="s/1", user="alice", text=("refund?", "sure")),
        call(now - 7 * MINUTE, 5, session="s/1", user="alice", error=True, text=("and?", "")),
        call(now - 6 * MINUTE, 5, session="s2", user="bob"),
        call(now - 5 * MINUTE, 5),  # no session
    ])  # fmt: skip

    page = client.traces.sessions()
    assert [(s.session_id, s.trace_count, s.user_id) for s in page.items] == [
        ("s2", 1, "bob"), ("s/1", 3, "alice"),
    ]  # fmt: skip
    first = page.items[1]
    assert (first.error_count, first.input_tokens, first.cost) == (1, 300, pytest.approx(0.003))
    assert [s.session_id for s in client.traces.sessions(user_id="alice").items] == ["s/1"]
    paged = client.traces.sessions(max_results=1)
    assert [s.session_id for s in paged.items] == ["s2"] and paged.next_page_token
    rest = client.traces.sessions(max_results=1, page_token=paged.next_page_token)
    assert [s.session_id for s in rest.items] == ["s/1"] and rest.next_page_token is None

    detail = client.traces.session("s/1")
    assert detail.session.trace_count == 3
    assert [t.input for t in detail.traces] == ["hi", "refund?", "and?"]
    with pytest.raises(NotFound, match="no trace has session id 'nope'"):
        client.traces.session("nope")


def test_bad_queries_are_invalid_input(client: Any) -> None:
    now = time.time_ns()
    with pytest.raises(InvalidInput, match="by"):
        client.traces.stats(by="weather")
    with pytest.raises(InvalidInput, match="since must be before until"):
        client.traces.stats(since_ns=now, until_ns=now - 1)
    with pytest.raises(InvalidInput, match="more than 1000 buckets"):
        client.traces.stats(since_ns=now - 7 * 86400 * 10**9, until_ns=now, bucket_s=60)
    with pytest.raises(InvalidInput, match="until_ns"):
        client.traces.stats(until_ns=2**70)
    with pytest.raises(InvalidInput, match="page_token"):
        client.traces.sessions(page_token="forged")


def test_cli_stats_and_sessions(capsys: pytest.CaptureFixture[str]) -> None:
    import subprocess
    import sys
    from pathlib import Path

    import opsloop

    client = opsloop.Client()  # the default embedded store under this test's OPSLOOP_HOME
    now = time.time_ns()
    store(client, [call(now - MINUTE, 12, route="support", session="s1", user="u1")])
    client.close()
    in_process = opsloop_in_process(capsys)

    def run(*args: str, code: int = 0) -> str:
        return in_process(*args, code=code).output

    data = json.loads(run("traces", "stats", "--by", "route", "--since", "1h", "--json"))
    assert [(g["group"], g["calls"]) for g in data["groups"]] == [("support", 1)]
    table = run("traces", "stats", "--by", "route")
    assert "support" in table and "12.0 ms" in table
    listed = json.loads(run("traces", "sessions", "--json"))
    assert [s["session_id"] for s in listed["items"]] == ["s1"]
    assert "u1" in run("traces", "sessions")
    turns = run("traces", "sessions", "s1")
    assert "12.0 ms" in turns and "ok" in turns
    assert "no trace has session id" in run("traces", "sessions", "nope", code=3)
    # The installed command, once: bad input is exit code 2 and no traceback.
    opsloop_cli = str(Path(sys.executable).with_name("opsloop"))
    bad = subprocess.run(
        [opsloop_cli, "traces", "stats", "--by", "weather"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode == 2, bad.stderr
    assert "by" in bad.stdout + bad.stderr and "Traceback" not in bad.stdout + bad.stderr
    assert "bucket 'soon'" in run("traces", "stats", "--bucket", "soon", code=2)
    assert "Group by model, route, key or user" in run("traces", "stats", "--help")
