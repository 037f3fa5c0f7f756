"""Tracing end to end: the SDK's spans on local and HTTP backends over SQLite and PostgreSQL,
async code and threads, costs, scores, filters and Parquet export."""

from __future__ import annotations

import asyncio
import contextvars
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

import opsloop
from opsloop.errors import InvalidInput
from opsloop.errors import NotFound
from opsloop.errors import StoreError
from opsloop.llm.tracing.exporter import SpanExporter
from opsloop.llm.tracing.pricing import ModelPrice
from opsloop.llm.tracing.pricing import PriceTable
from opsloop.llm.tracing.records import MAX_VALUE_CHARS
from opsloop.llm.tracing.records import SpanRecord
from tests.cli.support import in_process as opsloop_in_process


def _rag(client: Any, question: str, user: str, fail: bool = False) -> str:
    tracer = client.traces.tracer

    @tracer.observe(kind="retriever")
    def retrieve(q: str) -> list[str]:
        return [f"doc about {q}", "another doc"]

    @tracer.observe(kind="llm", name="generate")
    def generate(q: str, docs: list[str]) -> str:
        if fail:
            raise TimeoutError("model timed out")
        opsloop.traces.current_span().update(
            model="gpt-4o-mini", usage={"prompt_tokens": 1000, "completion_tokens": 200}
        )
        return f"answer to {q}"

    with tracer.span("rag", kind="chain", input=question, user_id=user, session_id="s1") as span:
        span.update(tags=["rag", "v2"])
        answer = generate(question, retrieve(question))
        span.update(output=answer)
    return span.trace_id


def test_sdk_spans_become_traces_with_cost_scores_filters_and_export(
    client: Any, tmp_path: Path
) -> None:
    traces = client.traces
    first = _rag(client, "refunds?", "u1")
    with pytest.raises(TimeoutError):
        _rag(client, "shipping?", "u2", fail=True)
    traces.flush()

    detail = traces.get(first)
    names = [(s.name, s.kind) for s in detail.spans]
    assert names == [("rag", "chain"), ("retrieve", "retriever"), ("generate", "llm")]
    root, retrieve, generate = detail.spans
    assert retrieve.parent_span_id == generate.parent_span_id == root.span_id
    assert retrieve.input == '{"q": "refunds?"}' and "doc about refunds?" in retrieve.output
    assert generate.model == "gpt-4o-mini" and generate.total_tokens == 1200
    assert generate.cost == pytest.approx(1000 * 0.15e-6 + 200 * 0.60e-6)  # default price
    assert generate.user_id == "u1"  # inherited from the parent
    trace = detail.trace
    assert (trace.name, trace.span_count, trace.error_count) == ("rag", 3, 0)
    assert trace.input == "refunds?" and trace.output == "answer to refunds?"
    assert trace.cost == pytest.approx(generate.cost) and trace.tags == ["rag", "v2"]
    assert (trace.user_id, trace.session_id) == ("u1", "s1")

    failed = traces.list(error=True).items
    assert len(failed) == 1 and failed[0].user_id == "u2" and failed[0].error_count == 2
    failed_detail = traces.get(failed[0].trace_id)
    generate_failed = next(s for s in failed_detail.spans if s.name == "generate")
    assert generate_failed.status == "error"
    assert generate_failed.status_message == "TimeoutError: model timed out"
    assert generate_failed.events[0]["name"] == "exception"

    assert [t.trace_id for t in traces.list(user_id="u1").items] == [first]
    assert len(traces.list(tags=["rag"]).items) == 2 and traces.list(tags=["nope"]).items == []
    assert [t.trace_id for t in traces.list(min_cost=1e-4).items] == [first]
    assert len(traces.list(model="gpt-4o-mini").items) == 1
    assert len(traces.list(name="RAG", session_id="s1").items) == 2
    assert traces.list(max_latency_ms=0.0).items == []
    page = traces.list(max_results=1)
    assert len(page.items) == 1 and page.next_page_token
    assert len(traces.list(max_results=1, page_token=page.next_page_token).items) == 1

    thumbs = traces.score(first, "thumbs", True, comment="great")
    assert (thumbs.data_type, thumbs.value) == ("boolean", 1.0)
    traces.score(first, "helpfulness", 0.9, span_id=generate.span_id)
    traces.score(first, "topic", "billing")
    assert [t.trace_id for t in traces.list(scores=["helpfulness>=0.5"]).items] == [first]
    assert traces.list(scores=["helpfulness<0.5"]).items == []
    assert len(traces.list(scores=["thumbs=true", "topic=billing"]).items) == 1
    assert traces.get(first).trace.scores == {"thumbs": 1.0, "helpfulness": 0.9, "topic": "billing"}
    assert {s.name for s in traces.scores(trace_id=first)} == {"thumbs", "helpfulness", "topic"}

    out = traces.export(tmp_path / "spans.parquet")
    table = pq.read_table(out)
    assert table.num_rows == 6 and set(table.column("name").to_pylist()) >= {"rag", "generate"}
    only = pq.read_table(traces.export(tmp_path / "t.parquet", what="traces", user_id="u1"))
    assert only.column("trace_id").to_pylist() == [first]


def test_bad_scores_and_lookups_are_refused(client: Any) -> None:
    traces = client.traces
    trace_id = _rag(client, "q", "u1")
    traces.flush()
    with pytest.raises(NotFound, match="does not exist"):
        traces.score("f" * 32, "thumbs", True)
    with pytest.raises(NotFound, match="not part of trace"):
        traces.score(trace_id, "thumbs", True, span_id="a" * 16)
    with pytest.raises(InvalidInput, match="not 32 lower-case hex"):
        traces.get("not-a-trace")
    with pytest.raises(NotFound):
        traces.get("e" * 32)
    with pytest.raises(InvalidInput, match="not a finite numeric"):
        traces.score(trace_id, "quality", float("nan"))
    with pytest.raises(InvalidInput, match="not a number"):
        traces.score(trace_id, "quality", "high", data_type="numeric")
    with pytest.raises(InvalidInput, match="NAME OP VALUE"):
        traces.list(scores=["helpfulness"])
    with pytest.raises(InvalidInput, match="use = or !="):
        traces.list(scores=["topic>billing"])
    with pytest.raises(InvalidInput, match="not a regular expression"):
        traces.set_price("gpt-(", input_per_mtok=1)
    with pytest.raises(NotFound, match="cannot be deleted, only overridden"):
        traces.delete_price(traces.prices()[0].pattern)
    assert len(traces.list().items) == 1  # nothing refused above touched what was stored


def test_user_prices_override_defaults_for_new_spans(client: Any) -> None:
    traces = client.traces
    traces.set_price("gpt-4o-mini", input_per_mtok=1.0, output_per_mtok=2.0, per_request=0.5)
    assert traces.prices()[0].source == "user"
    tracer = traces.tracer
    with tracer.span("call", kind="llm", model="openai/gpt-4o-mini") as span:
        span.update(usage={"input_tokens": 1_000_000, "output_tokens": 500_000})
    with tracer.span("priced", kind="llm", model="gpt-4o-mini", cost=0.01):
        pass
    traces.flush()
    spans = {t.name: t for t in traces.list().items}
    assert spans["call"].cost == pytest.approx(1.0 + 1.0 + 0.5)
    assert spans["priced"].cost == pytest.approx(0.01)  # a cost sent with the span wins
    traces.delete_price("gpt-4o-mini")
    assert all(p.source == "default" for p in traces.prices())


def test_prompt_version_is_recorded_on_the_span_that_compiles_it(client: Any) -> None:
    client.prompts.create("answer", text="Answer: {{ q }}", labels=["production"])
    tracer = client.traces.tracer
    with tracer.span("ask", kind="llm") as span:
        client.prompts.get("answer").compile(q="hi")
    client.traces.flush()
    stored = client.traces.get(span.trace_id).spans[0]
    assert (stored.prompt_name, stored.prompt_version) == ("answer", 1)
    assert len(client.traces.list(prompt="answer@1").items) == 1
    assert client.traces.list(prompt="answer@2").items == []


def test_async_tasks_and_threads_keep_their_own_parents(sqlite_url: str, tmp_path: Path) -> None:
    client = opsloop.Client(database_url=sqlite_url, blob_url=str(tmp_path / "b"))
    tracer = client.traces.tracer

    @tracer.observe(kind="llm")
    async def call(i: int) -> str:
        await asyncio.sleep(0.01 * (3 - i))
        return f"r{i}"

    @tracer.observe(kind="agent")
    async def agent(i: int) -> list[str]:
        return [await call(i), await call(i + 10)]

    @tracer.observe(kind="tool")
    def tool(i: int) -> int:
        return i * 2

    @tracer.observe
    async def stream(n: int):  # an async generator: its span ends when it is exhausted
        for i in range(n):
            yield f"t{i} "

    async def main() -> list[Any]:
        results = await asyncio.gather(*(agent(i) for i in range(3)))
        chunks = [c async for c in stream(3)]
        return [results, chunks]

    results, chunks = asyncio.run(main())
    assert results[1] == ["r1", "r11"] and "".join(chunks) == "t0 t1 t2 "
    with tracer.span("fan-out", kind="chain") as parent:
        with ThreadPoolExecutor(4) as pool:
            joined = [pool.submit(contextvars.copy_context().run, tool, i) for i in range(4)]
            [f.result() for f in joined]
        orphan = threading.Thread(target=tool, args=(99,))  # no context: a trace of its own
        orphan.start()
        orphan.join()
    client.traces.flush()
    listed = client.traces.list().items
    agents = [t for t in listed if t.name == "agent"]
    assert len(agents) == 3 and all(t.span_count == 3 for t in agents)
    for t in agents:
        spans = client.traces.get(t.trace_id).spans
        assert {s.parent_span_id for s in spans[1:]} == {spans[0].span_id}
    assert next(t for t in listed if t.name == "stream").output == "t0 t1 t2 "
    fan = client.traces.get(parent.trace_id)
    assert fan.trace.span_count == 5
    assert sum(1 for t in listed if t.name == "tool") == 1  # the orphan thread
    client.close()


def test_huge_values_are_truncated_with_a_marker_not_rejected(sqlite_url: str) -> None:
    client = opsloop.Client(database_url=sqlite_url)
    with client.traces.tracer.span("big", input="x" * (MAX_VALUE_CHARS + 500)) as span:
        span.update(metadata={"blob": "y" * (MAX_VALUE_CHARS * 2)})
    client.traces.flush()
    stored = client.traces.get(span.trace_id).spans[0]
    assert stored.input.endswith("…[truncated 500 chars]")
    assert stored.attributes["blob"].endswith(f"…[truncated {MAX_VALUE_CHARS} chars]")
    client.close()


def test_exporter_keeps_spans_through_an_outage_and_drops_only_past_its_bound() -> None:
    stored: list[SpanRecord] = []
    down = {"calls": 2}

    def sink(batch: list[SpanRecord]) -> None:
        if down["calls"]:
            down["calls"] -= 1
            raise StoreError("database unavailable")
        stored.extend(batch)

    exporter = SpanExporter(sink, max_batch=3, interval=60, max_queue=10)
    records = [SpanRecord("1" * 32, f"{i + 1:016x}", "s", 1, 2) for i in range(12)]
    for record in records:
        exporter.add(record)
    assert exporter.dropped == 2  # the oldest two went past max_queue
    with pytest.raises(StoreError):
        exporter.flush()
    with pytest.raises(StoreError):
        exporter.flush()
    assert exporter.pending == 10 and stored == []
    exporter.flush()
    assert [r.span_id for r in stored] == [r.span_id for r in records[2:]]
    exporter.close()


def test_price_table_matching() -> None:
    table = PriceTable([ModelPrice("gpt-4o.*", 9.0, 9.0, source="user")])
    assert table.find("gpt-4o-2024-08-06").source == "user"
    defaults = PriceTable([])
    assert defaults.find("gpt-4o-2024-08-06").input_per_mtok == 2.50
    assert defaults.find("azure/gpt-4o-mini").input_per_mtok == 0.15
    assert defaults.find("claude-3-5-sonnet-20241022").output_per_mtok == 15.0
    assert defaults.find("my-private-model") is None


def test_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import json
    import subprocess
    import sys

    client = opsloop.Client()  # the default embedded store under this test's OPSLOOP_HOME
    trace_id = _rag(client, "refunds?", "u1")
    with pytest.raises(TimeoutError):
        _rag(client, "late?", "u2", fail=True)
    client.traces.flush()
    in_process = opsloop_in_process(capsys)

    def run(*args: str, code: int = 0) -> str:
        return in_process(*args, code=code).output

    listed = json.loads(run("traces", "list", "--json", "--since", "1h", "--no-error"))
    assert [t["trace_id"] for t in listed["items"]] == [trace_id]
    assert json.loads(run("traces", "list", "--json", "--error"))["items"][0]["user_id"] == "u2"
    shown = run("traces", "show", trace_id, "--io")
    assert "rag" in shown and "generate" in shown and "gpt-4o-mini" in shown
    assert "1200 tok" in shown and "answer to refunds?" in shown
    assert "helpfulness=0.8 (numeric)" in run("traces", "score", trace_id, "helpfulness", "0.8")
    assert "thumbs=1.0 (boolean)" in run("traces", "score", trace_id, "thumbs", "true")
    scored = json.loads(run("traces", "list", "--json", "--score", "helpfulness>0.5"))
    assert len(scored["items"]) == 1
    assert "wrote 3 spans" in run("traces", "export", str(tmp_path / "s.parquet"), "--user", "u1")
    assert "wrote 2 traces" in run("traces", "export", str(tmp_path / "t.parquet"), "--traces")
    run("traces", "prices", "set", "tiny-.*", "--input", "0.5", "--output", "1")
    assert "tiny-.*" in run("traces", "prices", "list")
    # The installed command, once: a missing trace is exit code 3 and one line.
    opsloop_cli = str(Path(sys.executable).with_name("opsloop"))
    missing = subprocess.run(
        [opsloop_cli, "traces", "show", "a" * 32], capture_output=True, text=True, timeout=60
    )
    assert missing.returncode == 3, missing.stderr
    assert "does not exist" in missing.stderr and "Traceback" not in missing.stderr
    assert "neither an age" in run("traces", "list", "--since", "yesterday", code=2)
    assert "NAME OP VALUE" in run("traces", "list", "--score", "oops", code=2)
    assert "--no-error" in run("traces", "list", "--help")
    client.close()


def test_seeding_random_does_not_repeat_trace_ids(sqlite_url: str) -> None:
    client = opsloop.Client(database_url=sqlite_url)
    ids = []
    for _ in range(2):
        opsloop.seed_everything(42)  # what a reproducible training script does first
        with client.traces.tracer.span("step") as span:
            pass
        ids.append(span.trace_id)
    client.traces.flush()
    assert ids[0] != ids[1] and len(client.traces.list().items) == 2
    client.close()
