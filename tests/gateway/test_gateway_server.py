"""The gateway inside ``opsloop server`` in ``users`` mode: callers send an API key made with the
governance SDK, every call lands as a span in the server's trace store (route, target, tokens,
cost, fallbacks, time to first token, key id and user), and a request may name a registered
prompt whose version the span records."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from tests.conftest import LiveServer
from tests.gateway.conftest import routes
from tests.gateway.conftest import write_config
from tests.gateway.upstream_server import Upstream
from tests.governance.conftest import bootstrap
from tests.no_network import no_network  # noqa: F401  (fixture)


@pytest.fixture
def server(
    upstream: Upstream, sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[LiveServer, dict[str, str]]]:
    monkeypatch.setenv("OPSLOOP_AUTH", "users")
    monkeypatch.setenv(
        "OPSLOOP_GATEWAY_CONFIG", write_config(tmp_path, {"routes": routes(upstream)})
    )
    blobs = str(tmp_path / "server-blobs")
    keys = bootstrap(sqlite_url, blobs)
    with LiveServer(sqlite_url, blobs) as live:
        yield live, keys


def _spans(live: LiveServer, count: int) -> list[Any]:
    """The gateway's spans once ``count`` have been stored (they are written in the background)."""
    from opsloop.llm.tracing.entities import TraceFilter
    from opsloop.llm.tracing.local import LocalTracingBackend

    backend = LocalTracingBackend(live.app.state.opsloop.store)
    deadline = time.monotonic() + 20
    while True:
        traces = backend.list_traces(TraceFilter(), 100, None).items
        spans = [s for t in traces for s in backend.get_trace(t.trace_id).spans]
        if len(spans) >= count or time.monotonic() > deadline:
            return sorted(spans, key=lambda s: s.start_ns)
        time.sleep(0.1)


def test_a_key_calls_models_and_every_call_is_a_span(
    server: tuple[LiveServer, dict[str, str]],
    no_network: list[str],  # noqa: F811
) -> None:
    live, keys = server
    viewer = openai.OpenAI(base_url=f"{live.url}/v1", api_key=keys["vic"], max_retries=0)
    answer = viewer.chat.completions.create(
        model="ok", messages=[{"role": "user", "content": "hi"}], user="end-user-7"
    )
    assert answer.choices[0].message.content == "answer from ok"
    text = "".join(
        c.choices[0].delta.content or ""
        for c in viewer.chat.completions.create(
            model="cut-before", messages=[{"role": "user", "content": "hi"}], stream=True
        )
    )
    assert text == "Hello from upstream"
    with pytest.raises(openai.AuthenticationError) as caught:
        openai.OpenAI(base_url=f"{live.url}/v1", api_key="wrong", max_retries=0).models.list()
    assert set(caught.value.body) == {"message", "type", "param", "code"}
    assert no_network == []

    whole, streamed = _spans(live, 2)
    from opsloop import Client

    with Client(database_url=live.app.state.opsloop.settings.database_url) as local:
        vic_key = next(k for k in local.governance.list_keys(user="vic"))
    assert whole.kind == "llm" and whole.name == "chat ok" and whole.model == "gpt-4o-mini"
    assert (whole.input_tokens, whole.output_tokens) == (11, 7)
    assert whole.cost is not None and whole.cost > 0  # gpt-4o-mini's list price
    assert whole.user_id == "end-user-7" and '"hi"' in (whole.input or "")
    attrs = whole.attributes
    assert attrs["opsloop.gateway.route"] == "ok" and attrs["opsloop.gateway.target"] == "ok"
    assert attrs["opsloop.gateway.key_id"] == vic_key.id
    assert attrs["opsloop.gateway.principal"] == "vic"
    assert attrs["opsloop.gateway.cache_hit"] is False and attrs["opsloop.gateway.fallbacks"] == []
    assert attrs["opsloop.gateway.latency_ms"] > 0
    assert streamed.output == "Hello from upstream" and streamed.total_tokens == 8
    assert streamed.attributes["opsloop.gateway.fallbacks"] == [
        "cut-before/cut0: the stream ended before any answer"
    ]
    assert streamed.attributes["opsloop.gateway.ttft_ms"] > 0


def test_a_request_may_name_a_registered_prompt(
    server: tuple[LiveServer, dict[str, str]], upstream: Upstream
) -> None:
    live, keys = server
    from opsloop import Client

    with Client(database_url=live.app.state.opsloop.settings.database_url) as local:
        local.prompts.create(
            "answer",
            messages=[{"role": "system", "content": "Answer {{ topic }} questions."}],
            config={"temperature": 0.2},
            labels=["staging"],
        )
    body = {
        "model": "ok",
        "prompt": "answer@staging",
        "variables": {"topic": "billing"},
        "messages": [{"role": "user", "content": "why?"}],
    }
    answer = httpx.post(
        f"{live.url}/v1/chat/completions",
        json=body,
        headers={"authorization": f"Bearer {keys['vic']}"},
    )
    assert answer.status_code == 200, answer.text
    sent = upstream.requests[-1][1]
    assert sent["messages"] == [
        {"role": "system", "content": "Answer billing questions."},
        {"role": "user", "content": "why?"},
    ]
    assert sent["temperature"] == 0.2 and "prompt" not in sent and "variables" not in sent
    (span,) = _spans(live, 1)
    assert (span.prompt_name, span.prompt_version) == ("answer", 1)
    missing = httpx.post(
        f"{live.url}/v1/chat/completions",
        json={**body, "prompt": "nope@staging"},
        headers={"authorization": f"Bearer {keys['vic']}"},
    )
    assert missing.status_code == 404 and missing.json()["error"]["message"]


def test_the_servers_middlewares_still_wrap_model_calls(
    server: tuple[LiveServer, dict[str, str]],
) -> None:
    """The gateway's requests are answered before FastAPI's routing, but inside the server's
    middlewares: a request id on every answer, the workspace named in the path, the body
    limit."""
    live, keys = server
    auth = {"authorization": f"Bearer {keys['vic']}"}
    listed = httpx.get(f"{live.url}/w/default/v1/models", headers=auth)
    assert listed.status_code == 200 and len(listed.headers["x-request-id"]) >= 16
    assert "ok" in {m["id"] for m in listed.json()["data"]}
    elsewhere = httpx.get(f"{live.url}/w/nowhere/v1/models", headers=auth)
    assert elsewhere.status_code == 404 and "nowhere" in elsewhere.json()["error"]["message"]
    big = b'{"model": "ok", "messages": [{"role": "user", "content": "' + b"x" * (16 << 20)
    refused = httpx.post(f"{live.url}/v1/chat/completions", content=big + b'"}]}', headers=auth)
    assert refused.status_code == 413 and refused.headers["x-request-id"]
    assert refused.json()["error"]["code"] == "TOO_LARGE"
