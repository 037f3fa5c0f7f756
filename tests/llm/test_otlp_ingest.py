"""OTLP/HTTP ingest at /v1/traces: the real OpenTelemetry SDK exporter, OTLP/JSON, GenAI and
OpenInference attributes, bad payloads, late parents, and no loss while PostgreSQL is away."""

from __future__ import annotations

import gzip
import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from tests.conftest import PG_BASE
from tests.conftest import LiveServer

NOW = time.time_ns()


def _span(trace: str, span: str, name: str, parent: str | None = None, **extra: Any) -> dict:
    body = {
        "traceId": trace,
        "spanId": span,
        "name": name,
        "kind": 1,
        "startTimeUnixNano": str(NOW),
        "endTimeUnixNano": str(NOW + 2_000_000),
        "attributes": extra.pop("attributes", []),
        "status": extra.pop("status", {}),
    }
    if parent:
        body["parentSpanId"] = parent
    body.update(extra)
    return body


def _payload(*spans: dict, service: str = "svc") -> dict:
    return {
        "resourceSpans": [
            {
                "resource": {
                    "attributes": [{"key": "service.name", "value": {"stringValue": service}}]
                },
                "scopeSpans": [{"scope": {"name": "test"}, "spans": list(spans)}],
            }
        ]
    }


def _attr(key: str, value: Any) -> dict:
    if isinstance(value, bool):
        return {"key": key, "value": {"boolValue": value}}
    if isinstance(value, int):
        return {"key": key, "value": {"intValue": str(value)}}
    return {"key": key, "value": {"stringValue": value}}


def test_real_opentelemetry_sdk_exporter_with_genai_and_openinference(
    live_server: LiveServer,
) -> None:
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from opentelemetry.trace import Status
    from opentelemetry.trace import StatusCode

    provider = TracerProvider(resource=Resource.create({"service.name": "support-bot"}))
    provider.add_span_processor(
        BatchSpanProcessor(OTLPSpanExporter(endpoint=f"{live_server.url}/v1/traces"))
    )
    tracer = provider.get_tracer("test")
    with tracer.start_as_current_span("agent run") as root:
        root.set_attribute("openinference.span.kind", "AGENT")
        root.set_attribute("session.id", "sess-9")
        root.set_attribute("user.id", "user-7")
        root.set_attribute("input.value", "What is my balance?")
        with tracer.start_as_current_span("chat gpt-4o") as chat:
            chat.set_attributes(
                {
                    "gen_ai.operation.name": "chat",
                    "gen_ai.request.model": "gpt-4o",
                    "gen_ai.response.model": "gpt-4o-2024-08-06",
                    "gen_ai.usage.input_tokens": 2000,
                    "gen_ai.usage.output_tokens": 100,
                    "gen_ai.request.temperature": 0.2,
                }
            )
        with tracer.start_as_current_span("lookup") as tool:
            tool.set_attributes(
                {
                    "openinference.span.kind": "TOOL",
                    "llm.model_name": "claude-3-5-haiku-20241022",
                    "llm.token_count.prompt": 10,
                    "llm.token_count.completion": 5,
                    "llm.input_messages.0.message.role": "user",
                    "llm.input_messages.0.message.content": "balance?",
                    "output.value": "42 EUR",
                }
            )
            tool.set_status(Status(StatusCode.ERROR, "upstream 500"))
    assert provider.force_flush(10_000)
    provider.shutdown()

    trace_id = f"{root.get_span_context().trace_id:032x}"
    detail = httpx.get(f"{live_server.url}/api/traces/{trace_id}").json()
    trace, spans = detail["trace"], {s["name"]: s for s in detail["spans"]}
    assert trace["name"] == "agent run" and trace["span_count"] == 3
    assert (trace["user_id"], trace["session_id"]) == ("user-7", "sess-9")
    assert trace["input"] == "What is my balance?" and trace["error_count"] == 1
    chat = spans["chat gpt-4o"]
    assert (chat["kind"], chat["model"], chat["service"]) == (
        "llm",
        "gpt-4o-2024-08-06",
        "support-bot",
    )
    assert (chat["input_tokens"], chat["output_tokens"], chat["total_tokens"]) == (2000, 100, 2100)
    assert chat["cost"] == pytest.approx(2000 * 2.5e-6 + 100 * 10e-6)
    assert chat["attributes"]["gen_ai.request.temperature"] == 0.2
    assert chat["user_id"] is None  # OTel spans carry only what they were given
    lookup = spans["lookup"]
    assert lookup["kind"] == "tool" and lookup["status"] == "error"
    assert lookup["status_message"] == "upstream 500"
    assert json.loads(lookup["input"]) == [{"role": "user", "content": "balance?"}]
    assert lookup["output"] == "42 EUR"
    assert lookup["cost"] == pytest.approx(10 * 0.8e-6 + 5 * 4e-6)
    assert spans["agent run"]["kind"] == "agent"
    assert trace["cost"] == pytest.approx(chat["cost"] + lookup["cost"])


def test_otlp_json_partial_success_keeps_the_good_spans(live_server: LiveServer) -> None:
    trace = uuid.uuid4().hex
    payload = _payload(
        _span(trace, "a" * 16, "root", attributes=[_attr("gen_ai.usage.input_tokens", 7)]),
        _span(trace, "b" * 16, "child", parent="a" * 16),
        _span(trace, "xyz", "bad id"),
        _span(trace, "c" * 16, "backwards", endTimeUnixNano=str(NOW - 1)),
        _span(trace, "d" * 16, "weird attr", attributes=[{"key": "k", "value": {"nope": 1}}]),
    )
    response = httpx.post(f"{live_server.url}/v1/traces", json=payload)
    assert response.status_code == 200, response.text
    partial = response.json()["partialSuccess"]
    assert partial["rejectedSpans"] == "3"
    assert (
        "bad id" in partial["errorMessage"] and "ends before it starts" in partial["errorMessage"]
    )
    detail = httpx.get(f"{live_server.url}/api/traces/{trace}").json()
    assert [s["name"] for s in detail["spans"]] == ["root", "child"]
    assert detail["trace"]["input_tokens"] == 7
    again = httpx.post(f"{live_server.url}/v1/traces", json=payload)  # a retry is harmless
    assert again.status_code == 200
    assert httpx.get(f"{live_server.url}/api/traces/{trace}").json()["trace"]["span_count"] == 2


def test_gzip_and_bad_payloads(live_server: LiveServer) -> None:
    url = f"{live_server.url}/v1/traces"
    trace = uuid.uuid4().hex
    body = gzip.compress(json.dumps(_payload(_span(trace, "e" * 16, "zipped"))).encode())
    zipped = httpx.post(
        url, content=body, headers={"Content-Type": "application/json", "Content-Encoding": "gzip"}
    )
    assert zipped.status_code == 200 and zipped.text == "{}"
    assert httpx.get(f"{live_server.url}/api/traces/{trace}").status_code == 200

    garbage = httpx.post(
        url, content=b"\xff\x00garbage", headers={"Content-Type": "application/x-protobuf"}
    )
    assert (
        garbage.status_code == 400 and "not an OTLP protobuf" in garbage.json()["error"]["message"]
    )
    not_json = httpx.post(url, content=b"{nope", headers={"Content-Type": "application/json"})
    assert not_json.status_code == 400 and "OTLP/JSON" in not_json.json()["error"]["message"]
    wrong_type = httpx.post(url, content=b"x", headers={"Content-Type": "text/plain"})
    assert wrong_type.status_code == 400 and "is not OTLP" in wrong_type.json()["error"]["message"]
    bad_zip = httpx.post(
        url,
        content=b"notgzip",
        headers={"Content-Type": "application/json", "Content-Encoding": "gzip"},
    )
    assert bad_zip.status_code == 400
    assert httpx.get(f"{live_server.url}/api/traces/{'f' * 32}").status_code == 404
    assert httpx.get(f"{live_server.url}/api/traces/zz").status_code == 400
    bad_filter = httpx.get(f"{live_server.url}/api/traces", params={"scores": "x"})
    assert (
        bad_filter.status_code == 400 and "NAME OP VALUE" in bad_filter.json()["error"]["message"]
    )
    # everything refused above left the stored trace alone
    assert [t["trace_id"] for t in httpx.get(f"{live_server.url}/api/traces").json()["items"]] == [
        trace
    ]


def test_children_before_their_root_are_summarised_once_it_arrives(live_server: LiveServer) -> None:
    url = f"{live_server.url}/v1/traces"
    trace, root = uuid.uuid4().hex, "1" * 16
    child = _span(trace, "2" * 16, "child", parent=root, attributes=[_attr("user.id", "u")])
    assert httpx.post(url, json=_payload(child)).status_code == 200
    early = httpx.get(f"{live_server.url}/api/traces/{trace}").json()["trace"]
    assert (early["name"], early["root_span_id"]) == ("child", None)
    late_root = _span(trace, root, "pipeline", startTimeUnixNano=str(NOW - 5_000_000))
    assert httpx.post(url, json=_payload(late_root)).status_code == 200
    final = httpx.get(f"{live_server.url}/api/traces/{trace}").json()
    assert (final["trace"]["name"], final["trace"]["root_span_id"]) == ("pipeline", root)
    assert final["trace"]["duration_ms"] == pytest.approx(7.0) and final["trace"]["user_id"] == "u"


@pytest.fixture
def pg_database() -> Iterator[tuple[str, sa.Engine]]:
    """A PostgreSQL database of its own, which the test can make unreachable."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(PG_BASE, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    yield PG_BASE.rsplit("/", 1)[0] + f"/{name}", admin
    with admin.connect() as conn:
        conn.execute(sa.text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true'))
        conn.execute(sa.text(f'DROP DATABASE "{name}" WITH (FORCE)'))
    admin.dispose()


def _set_reachable(admin: sa.Engine, url: str, reachable: bool) -> None:
    name = url.rsplit("/", 1)[1]
    with admin.connect() as conn:
        conn.execute(sa.text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS {str(reachable).lower()}'))
        if not reachable:
            conn.execute(
                sa.text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :d"
                ),
                {"d": name},
            )


@pytest.mark.postgres
def test_spans_accepted_while_the_database_is_down_are_stored_when_it_returns(
    pg_database: tuple[str, sa.Engine], tmp_path: Path
) -> None:
    url, admin = pg_database
    with LiveServer(url, str(tmp_path / "blobs")) as server:
        before, during = uuid.uuid4().hex, uuid.uuid4().hex
        otlp = f"{server.url}/v1/traces"
        assert httpx.post(otlp, json=_payload(_span(before, "a" * 16, "before"))).status_code == 200
        _set_reachable(admin, url, False)
        assert httpx.get(f"{server.url}/healthz").status_code == 503
        accepted = httpx.post(otlp, json=_payload(_span(during, "b" * 16, "during outage")))
        assert accepted.status_code == 200, accepted.text
        spool = server.app.state.opsloop.trace_spool
        assert spool.pending() == 1  # on disk, fsynced, before the 200 went out
        _set_reachable(admin, url, True)
        deadline = time.monotonic() + 30
        while spool.pending() or httpx.get(f"{server.url}/api/traces/{during}").is_error:
            assert time.monotonic() < deadline, "spooled spans were not replayed"
            time.sleep(0.2)
        names = {t["name"] for t in httpx.get(f"{server.url}/api/traces").json()["items"]}
        assert names == {"before", "during outage"}


def test_numbers_beyond_64_bits_refuse_the_span_not_the_request(live_server: LiveServer) -> None:
    """Times are unsigned 64-bit on the wire and signed 64-bit in the store; token counts are
    whatever a client sends. Neither may reach the database as an overflow (a 500)."""
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    trace = uuid.uuid4().hex
    payload = _payload(
        _span(trace, "a" * 16, "root", attributes=[_attr("gen_ai.usage.input_tokens", 2**70)]),
        _span(trace, "b" * 16, "far future", parent="a" * 16, endTimeUnixNano=str(2**64 - 1)),
        _span(trace, "c" * 16, "not a time", parent="a" * 16, startTimeUnixNano="1e400"),
        _span(trace, "d" * 16, "infinite", parent="a" * 16, endTimeUnixNano=float("inf")),
    )
    response = httpx.post(
        f"{live_server.url}/v1/traces",
        content=json.dumps(payload).replace("Infinity", "1e999"),
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 200, response.text
    assert response.json()["partialSuccess"]["rejectedSpans"] == "3"
    detail = httpx.get(f"{live_server.url}/api/traces/{trace}").json()
    assert [s["name"] for s in detail["spans"]] == ["root"]
    (root,) = detail["spans"]
    assert root["input_tokens"] is None  # not a count the store can hold: kept as given
    assert root["attributes"]["gen_ai.usage.input_tokens"] == 2**70

    request = ExportTraceServiceRequest()  # the same in protobuf: fixed64 reaches 2**64 - 1
    span = request.resource_spans.add().scope_spans.add().spans.add()
    span.trace_id, span.span_id, span.name = bytes.fromhex(uuid.uuid4().hex), b"\x01" * 8, "pb"
    span.start_time_unix_nano, span.end_time_unix_nano = NOW, 2**64 - 1
    response = httpx.post(
        f"{live_server.url}/v1/traces",
        content=request.SerializeToString(),
        headers={"Content-Type": "application/x-protobuf"},
    )
    assert response.status_code == 200
    assert "end time" in response.content.decode("utf-8", "replace")
