"""Masking at ingest (issue 23, data privacy): spans sent by the real OpenTelemetry SDK exporter
to a real server, and prediction-log rows, land masked, on SQLite and PostgreSQL; the original
reaches neither the database nor the ingest spool; off means unchanged; bad settings are a
one-line 4xx over HTTP and a one-line error from the CLI."""

from __future__ import annotations

import contextlib
import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from opsloop import Client
from opsloop.governance.masker import IngestMasking
from opsloop.governance.masker import Masker
from opsloop.governance.masking import MaskingSet
from opsloop.governance.masking import set_masking
from opsloop.llm.tracing.local import LocalTracingBackend
from opsloop.llm.tracing.records import SpanRecord
from opsloop.llm.tracing.spool import IngestSpool
from opsloop.schema import open_store
from opsloop.serving.predlog import PredictionLog
from opsloop.store.database import Store
from tests.conftest import LiveServer

EMAIL, PHONE, CARD = "ann.lee@example.com", "(415) 555-2671", "4111 1111 1111 1111"
PROSE = f"Hi, I am Ann, mail me at {EMAIL} or call {PHONE}; card {CARD}."


def _send_spans(url: str, marker: str) -> str:
    """One trace through the OpenTelemetry SDK and its OTLP/HTTP exporter; its id."""
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = TracerProvider(resource=Resource.create({"service.name": "support-bot"}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=f"{url}/v1/traces")))
    tracer = provider.get_tracer("test")
    with tracer.start_as_current_span(f"agent {marker}") as root:
        root.set_attribute("user.id", "user-7")
        root.set_attribute("input.value", PROSE)
        root.set_attribute("output.value", f"Sure, I wrote to {EMAIL}.")
        root.set_attribute("customer.phone", "4155552671")  # a phone by its key, not its text
        root.set_attribute("retries", 3)
        with tracer.start_as_current_span("chat") as chat:
            chat.set_attributes({"gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o",
                                 "gen_ai.usage.input_tokens": 12})  # fmt: skip
            chat.add_event("gen_ai.user.message", {"content": f"my mail is {EMAIL}"})
            chat.add_event("gen_ai.choice", {"message": f"noted: {PHONE}"})
    assert provider.force_flush(10_000)
    provider.shutdown()
    return f"{root.get_span_context().trace_id:032x}"


def _stored_text(database_url: str, trace_id: str) -> str:
    """Every text column of the trace's rows as the database holds them."""
    engine = sa.create_engine(database_url)
    try:
        with engine.connect() as conn:
            spans = conn.execute(
                sa.text(
                    "SELECT input, output, status_message, attributes, events FROM spans "
                    "WHERE trace_id = :t"
                ),
                {"t": trace_id},
            ).all()
            traces = conn.execute(
                sa.text("SELECT input, output FROM traces WHERE trace_id = :t"), {"t": trace_id}
            ).all()
    finally:
        engine.dispose()
    assert spans and traces
    return json.dumps([list(map(str, row)) for row in [*spans, *traces]])


def test_otel_spans_land_masked_and_off_leaves_them(
    live_server: LiveServer, database_url: str
) -> None:
    with Client(server_url=live_server.url) as client:
        policy = client.governance.set_masking("traces", ["EMAIL", "PHONE", "CARD"])
        assert policy.traces is not None and policy.predictions is None
        assert policy.traces.entities == ["EMAIL_ADDRESS", "PHONE_NUMBER", "CREDIT_CARD"]

        masked = _send_spans(live_server.url, "masked")
        stored = _stored_text(database_url, masked)
        for secret in (EMAIL, PHONE, CARD, "4155552671"):
            assert secret not in stored
        detail = httpx.get(f"{live_server.url}/api/traces/{masked}").json()
        spans = {s["name"]: s for s in detail["spans"]}
        root, chat = spans["agent masked"], spans["chat"]
        assert root["input"] == (
            "Hi, I am Ann, mail me at <EMAIL_ADDRESS> or call <PHONE_NUMBER>; card <CREDIT_CARD>."
        )
        assert detail["trace"]["output"] == "Sure, I wrote to <EMAIL_ADDRESS>."
        assert root["attributes"]["customer.phone"] == "<PHONE_NUMBER>"
        assert root["attributes"]["retries"] == 3  # not text: left as it is
        assert root["user_id"] == "user-7"  # ids stay: erasure finds a user's traces by them
        assert "<EMAIL_ADDRESS>" in chat["input"] and "<PHONE_NUMBER>" in chat["output"]
        assert chat["model"] == "gpt-4o" and chat["input_tokens"] == 12

        client.governance.set_masking("traces", None)  # off: seen by the next batch at once
        assert client.governance.masking().traces is None
        kept = _send_spans(live_server.url, "kept")
        stored = _stored_text(database_url, kept)
        assert EMAIL in stored and PHONE in stored and CARD in stored


def test_hash_mode_joins_one_value_across_traces_and_predictions(
    live_server: LiveServer, tmp_path: Path
) -> None:
    with Client(server_url=live_server.url) as client:
        client.governance.set_masking("traces,predictions", "EMAIL", mode="hash")
        shown = httpx.get(f"{live_server.url}/api/privacy/masking").json()
        assert shown["traces"] == {"entities": ["EMAIL_ADDRESS"], "mode": "hash"}
        assert "key" not in json.dumps(shown)  # the hash key never leaves the server
        first = _send_spans(live_server.url, "one")
        second = _send_spans(live_server.url, "two")
    one, two = (
        httpx.get(f"{live_server.url}/api/traces/{t}").json()["trace"]["output"]
        for t in (first, second)
    )
    assert one == two and one.startswith("Sure, I wrote to <EMAIL_ADDRESS_") and EMAIL not in one
    token = one.removeprefix("Sure, I wrote to ").removesuffix(".")

    # the server's own prediction log masks with the same key: the hash joins the two
    log = live_server.app.state.opsloop.serving.log
    body = {"records": [{"email": EMAIL.upper(), "amount": 3.5}]}
    log.log({"request_id": "r1", "deployment": "churn", "model": "churn", "version": 1,
             "ts_ms": 1_700_000_000_000, "latency_ms": 1.0, "inputs": body, "outputs": [0],
             "shadow": False, "error": None})  # fmt: skip
    assert body["records"][0]["email"] == EMAIL.upper()  # the request itself is left alone
    row = log.predictions("churn").iloc[0]
    assert json.loads(row["inputs"]) == {"records": [{"email": token, "amount": 3.5}]}


def _prediction(request_id: str) -> dict[str, Any]:
    return {"request_id": request_id, "deployment": "bot", "model": "bot", "version": 1,
            "ts_ms": 1_700_000_000_000, "latency_ms": 2.0, "shadow": False,
            "inputs": {"instances": [{"text": PROSE, "tel": "4155552671", "n": 7}]},
            "outputs": [f"forwarded to {EMAIL}", "DE89 3704 0044 0532 0130 00"],
            "error": f"ValueError: bad iban for {EMAIL}"}  # fmt: skip


def test_prediction_rows_are_masked_before_the_journal(database_url: str, tmp_path: Path) -> None:
    store = open_store(database_url)
    masking = IngestMasking(store)
    log = PredictionLog(tmp_path / "predictions", masking=masking)
    try:
        with Client(database_url=database_url, blob_url=str(tmp_path / "blobs")) as client:
            client.governance.set_masking(["predictions"], ["email", "phone", "iban"])
        log.log(_prediction("r1"))
        journal = "".join(p.read_text() for p in (tmp_path / "predictions").glob("predictions-*"))
        assert "r1" in journal
        for secret in (EMAIL, PHONE, "4155552671", "DE89"):
            assert secret not in journal
        log.flush()
        stored = log.predictions("bot").iloc[0]
        text = f"Hi, I am Ann, mail me at <EMAIL_ADDRESS> or call <PHONE_NUMBER>; card {CARD}."
        assert json.loads(stored["inputs"])["instances"][0] == {
            "text": text,
            "tel": "<PHONE_NUMBER>",
            "n": 7,
        }
        assert json.loads(stored["outputs"]) == ["forwarded to <EMAIL_ADDRESS>", "<IBAN_CODE>"]
        assert stored["error"] == "ValueError: bad iban for <EMAIL_ADDRESS>"

        with store.write() as session:  # off, written as another process would
            set_masking(session, MaskingSet(streams=["predictions"], entities=None), "root")
        log.log(_prediction("r2"))
        log.flush()
        kept = log.predictions("bot").set_index("request_id").loc["r2"]
        assert EMAIL in kept["inputs"] and EMAIL in kept["outputs"]
    finally:
        log.close()
        store.dispose()


def test_a_batch_spooled_while_the_database_is_away_is_masked(tmp_path: Path) -> None:
    """A setting never read (the database was away from the start) masks every entity: the
    batch waiting on disk holds no original."""
    away = Store("postgresql+psycopg://postgres@127.0.0.1:9/nowhere?connect_timeout=2")
    backend = LocalTracingBackend(away)
    spool = IngestSpool(tmp_path / "spool", backend.ingest)
    record = SpanRecord(trace_id="ab" * 16, span_id="cd" * 8, name="chat", start_ns=1,
                        end_ns=2, input=PROSE, attributes={"ip": "client at 10.1.2.3"})  # fmt: skip
    try:
        result = spool.accept([record])
        assert result.spooled
        written = _waiting_batch(tmp_path / "spool")
        assert written["input"] == (
            "Hi, I am Ann, mail me at <EMAIL_ADDRESS> or call <PHONE_NUMBER>; card <CREDIT_CARD>."
        )
        assert written["attributes"] == {"ip": "client at <IP_ADDRESS>"}
    finally:
        away.dispose()


def _waiting_batch(folder: Path) -> Any:
    """The one batch on disk, read while the spool's drainer retries it: a retry claims the
    file by renaming it and puts it back, so a read may find it gone for a moment."""
    deadline = time.monotonic() + 20
    while True:
        for path in sorted(folder.iterdir()):
            with contextlib.suppress(FileNotFoundError):
                return json.loads(path.read_text())
        assert time.monotonic() < deadline, f"no batch in {folder}"
        time.sleep(0.01)


def test_masking_twice_changes_nothing() -> None:
    hashed = Masker(["EMAIL", "PHONE", "CARD", "IBAN", "IP", "SSN"], "hash", "k" * 64)
    once = hashed.text(PROSE + " ssn 219-09-9999, ip 192.168.0.12")
    assert EMAIL not in once and "219-09-9999" not in once and "192.168.0.12" not in once
    assert hashed.text(once) is once
    assert hashed.text(PROSE) == hashed.text(PROSE.replace(EMAIL, EMAIL.upper()))


def test_bad_settings_are_one_line_4xx(users_server: Any) -> None:
    with users_server.http("vic") as http:
        answer = http.put("/api/privacy/masking", json={"streams": ["traces"], "entities": []})
        assert answer.status_code == 403 and "'admin'" in answer.json()["error"]["message"]
        assert http.get("/api/privacy/masking").status_code == 403
    with users_server.http("root") as http:
        for bad, word in (
            ({"streams": ["traces"], "entities": ["EMAIL", "SHOE_SIZE"]}, "SHOE_SIZE"),
            ({"streams": ["logs"], "entities": ["EMAIL"]}, "logs"),
            ({"streams": [], "entities": ["EMAIL"]}, "streams"),
            ({"streams": ["traces"], "entities": ["EMAIL"], "mode": "rot13"}, "mode"),
            ({"streams": ["traces"], "entities": ["EMAIL"], "key": "mine"}, "key"),
        ):
            answer = http.put("/api/privacy/masking", json=bad)
            assert answer.status_code == 400, (bad, answer.text)
            message = answer.json()["error"]["message"]
            assert word in message and "\n" not in message, message
        assert http.get("/api/privacy/masking").json()["traces"] is None  # nothing changed
        ok = http.put("/api/privacy/masking", json={"streams": ["traces"], "entities": ["IP"]})
        assert ok.status_code == 200 and ok.json()["updated_by"] == "root"
        events = http.get("/api/audit", params={"actor": "root"}).json()["items"]
        assert any(e["action"] == "PUT /api/privacy/masking" for e in events), events


def _cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    from opsloop.app.cli import main

    with pytest.raises(SystemExit) as exit_:
        main(["privacy", "mask", *args])
    out = capsys.readouterr()
    return int(exit_.value.code or 0), out.out, out.err


def test_cli_sets_and_shows_and_refuses_in_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    for bad in (
        ["--streams", "traces", "--entities", "EMAIL,SHOE"],
        ["--streams", "spans", "--entities", "EMAIL"],
        ["--streams", "traces", "--entities", "EMAIL", "--mode", "rot13"],
    ):
        code, _, err = _cli(capsys, "set", *bad)
        assert code != 0, (bad, err)
        assert err.strip().count("\n") == 0 and "Traceback" not in err, err
    code, out, _ = _cli(capsys, "set", "--streams", "traces,predictions", "--entities",
                        "EMAIL,PHONE", "--mode", "hash", "--json")  # fmt: skip
    assert code == 0, out
    shown = json.loads(out)
    assert shown["predictions"] == {"entities": ["EMAIL_ADDRESS", "PHONE_NUMBER"], "mode": "hash"}
    code, out, _ = _cli(capsys, "set", "--streams", "predictions", "--entities", "off")
    assert code == 0 and "off" in out
    code, out, _ = _cli(capsys, "show", "--json")
    assert code == 0 and json.loads(out)["predictions"] is None
    assert json.loads(out)["traces"]["entities"] == ["EMAIL_ADDRESS", "PHONE_NUMBER"]
