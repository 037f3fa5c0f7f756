"""The gateway standalone (``opsloop gateway``'s app, ``auth: open``) in front of the
fault-injecting upstream, called with the real ``openai`` client, sockets beyond loopback
blocked: answers, tools and JSON mode passed through, weighted targets, retries and fallbacks
on 5xx, hangs, invalid JSON and streams cut before their first event, an SSE error for one cut
after it, OpenAI's error shape for unknown models and malformed bodies, and ``/metrics``."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from tests.gateway.conftest import Served
from tests.gateway.conftest import routes
from tests.gateway.conftest import write_config
from tests.gateway.upstream_server import Upstream
from tests.no_network import no_network  # noqa: F401  (fixture)


@pytest.fixture(scope="module")
def gateway(upstream: Upstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    from opsloop.app.gateway import create_gateway_app
    from opsloop.config import load_settings

    home = tmp_path_factory.mktemp("gateway")
    path = write_config(home, {"routes": routes(upstream), "auth": "open"})
    settings = load_settings(
        home=str(home), database_url=f"sqlite:///{home / 'db'}", blob_url=str(home / "blobs")
    )
    with Served(create_gateway_app(path, settings)) as served:
        yield served


@pytest.fixture
def client(gateway: Served, no_network: list[str]) -> Iterator[openai.OpenAI]:  # noqa: F811
    with openai.OpenAI(base_url=f"{gateway.url}/v1", api_key="x", max_retries=0) as c:
        yield c
    assert no_network == []


def _ask(client: openai.OpenAI, model: str, **extra: Any) -> Any:
    return client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": "hi"}], **extra
    )


def test_an_answer_comes_back_whole_with_its_usage(client: openai.OpenAI, upstream: Upstream):
    answer = _ask(client, "ok")
    assert answer.choices[0].message.content == "answer from ok"
    assert answer.usage is not None and answer.usage.total_tokens == 18
    mode, body = upstream.requests[-1]
    assert mode == "ok" and body["model"] == "gpt-4o-mini"  # the target's own model name


def test_tools_and_json_mode_pass_through_untouched(client: openai.OpenAI, upstream: Upstream):
    tools = [
        {
            "type": "function",
            "function": {
                "name": "lookup",
                "description": "find",
                "parameters": {"type": "object", "properties": {"q": {"type": "string"}}},
            },
        }
    ]
    answer = _ask(client, "ok", tools=tools, tool_choice="auto", seed=7)
    assert answer.choices[0].message.tool_calls[0].function.name == "lookup"
    sent = upstream.requests[-1][1]
    assert sent["tools"] == tools and sent["tool_choice"] == "auto" and sent["seed"] == 7
    answer = _ask(client, "ok", response_format={"type": "json_object"})
    assert json.loads(answer.choices[0].message.content) == {"mode": "ok"}
    assert upstream.requests[-1][1]["response_format"] == {"type": "json_object"}


def test_a_stream_arrives_in_order_and_ends(client: openai.OpenAI, upstream: Upstream):
    chunks = list(_ask(client, "ok", stream=True))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Hello from upstream"
    assert all(c.choices for c in chunks)  # the usage chunk the gateway asked for is hidden
    assert upstream.requests[-1][1]["stream_options"] == {"include_usage": True}
    with_usage = list(_ask(client, "ok", stream=True, stream_options={"include_usage": True}))
    assert with_usage[-1].usage is not None and with_usage[-1].usage.total_tokens == 8


def test_async_client_streams_too(gateway: Served, no_network: list[str]) -> None:  # noqa: F811
    async def run() -> str:
        async with openai.AsyncOpenAI(
            base_url=f"{gateway.url}/v1", api_key="x", max_retries=0
        ) as client:
            stream = await client.chat.completions.create(
                model="ok", messages=[{"role": "user", "content": "hi"}], stream=True
            )
            return "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])

    assert asyncio.run(run()) == "Hello from upstream"
    assert no_network == []


def test_targets_are_drawn_by_weight(client: openai.OpenAI, upstream: Upstream) -> None:
    start = len(upstream.requests)
    for _ in range(200):
        _ask(client, "weighted")
    modes = upstream.modes()[start:]
    assert 1.8 < modes.count("wa") / max(modes.count("wb"), 1) < 5  # 3:1 configured


@pytest.mark.parametrize(
    ("route", "tried"),
    [("flaky", ["500", "500", "ok"]), ("hangs", ["hang", "ok"]), ("badjson", ["badjson", "ok"])],
)
def test_failures_fall_back(
    client: openai.OpenAI, upstream: Upstream, route: str, tried: list[str]
):
    start = len(upstream.requests)
    raw = client.with_raw_response.chat.completions.create(
        model=route, messages=[{"role": "user", "content": "hi"}]
    )
    answer = raw.parse()
    assert answer.choices[0].message.content == "answer from ok"
    assert raw.headers["x-opsloop-route"] == route and raw.headers["x-opsloop-target"] == "ok"
    assert upstream.modes()[start:] == tried


def test_a_stream_cut_before_its_first_event_is_answered_by_the_fallback(
    client: openai.OpenAI, upstream: Upstream
) -> None:
    start = len(upstream.requests)
    text = "".join(
        c.choices[0].delta.content or "" for c in _ask(client, "cut-before", stream=True)
    )
    assert text == "Hello from upstream"
    assert upstream.modes()[start:] == ["cut0", "ok"]


@pytest.mark.parametrize("route", ["cut-after", "stall-after"])
def test_a_stream_cut_after_its_first_event_ends_in_an_error(
    client: openai.OpenAI, route: str
) -> None:
    seen = []
    with pytest.raises(openai.APIError, match="broke off"):
        for chunk in _ask(client, route, stream=True):
            seen.append(chunk.choices[0].delta.content or "")
    assert "".join(seen) == "Hello"  # what came before the cut, then the error: no silent end


def test_no_target_answering_is_a_502_listing_the_attempts(client: openai.OpenAI) -> None:
    with pytest.raises(openai.APIStatusError) as caught:
        _ask(client, "dead")
    assert caught.value.status_code == 502
    error = caught.value.body
    assert error["code"] == "upstream_failed" and error["type"] == "upstream_error"
    assert "dead/500: HTTP 500" in error["message"] and "dead/hang: no answer" in error["message"]


def test_an_upstream_refusing_the_request_is_passed_on(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        _ask(client, "refuse")
    assert caught.value.body["param"] == "messages"


def test_an_unknown_model_is_a_404_in_openai_shape(client: openai.OpenAI, gateway: Served):
    with pytest.raises(openai.NotFoundError) as caught:
        _ask(client, "gpt-9")
    assert caught.value.body["code"] == "model_not_found"
    raw = httpx.post(
        f"{gateway.url}/v1/chat/completions",
        json={"model": "gpt-9", "messages": [{"role": "user", "content": "x"}]},
    )
    assert raw.status_code == 404
    assert set(raw.json()["error"]) == {"message", "type", "param", "code"}
    assert raw.json()["error"]["param"] == "model"


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (b"{not json", "not valid JSON"),
        (b"[1, 2]", "JSON object"),
        (b'{"model": "ok"}', "'messages'"),
        (b'{"model": "ok", "messages": []}', "'messages'"),
        (b'{"model": 3, "messages": [{"role": "user", "content": "x"}]}', "'model'"),
        (b'{"messages": [{"role": "user", "content": "x"}]}', "'model' is required"),
        (
            b'{"model": "ok", "messages": [{"role": "user", "content": "x"}], "stream": 1}',
            "'stream'",
        ),
    ],
)
def test_malformed_bodies_are_400s(gateway: Served, body: bytes, says: str) -> None:
    answer = httpx.post(
        f"{gateway.url}/v1/chat/completions",
        content=body,
        headers={"content-type": "application/json"},
    )
    assert answer.status_code == 400, answer.text
    error = answer.json()["error"]
    assert error["type"] == "invalid_request_error" and says in error["message"]


def test_embeddings_and_the_model_list(client: openai.OpenAI) -> None:
    vectors = client.embeddings.create(model="ok", input="hello")
    assert vectors.data[0].embedding == [0.1, 0.2]
    names = {m.id for m in client.models.list()}
    assert {"ok", "flaky", "cut-after"} <= names


def test_gateway_command_checks_its_config(tmp_path: Path, upstream: Upstream) -> None:
    from typer.testing import CliRunner

    from opsloop.app.cli import app
    from opsloop.app.cli import register_commands

    register_commands(["gateway"])
    good = write_config(tmp_path, {"routes": routes(upstream)[:3], "auth": "open"})
    done = CliRunner().invoke(app, ["gateway", "--config", good, "--check", "--json"])
    assert done.exit_code == 0, done.output
    assert [r["name"] for r in json.loads(done.output)["routes"]] == ["ok", "weighted", "flaky"]
    (tmp_path / "bad.yaml").write_text("routes: [{name: x, targets: [{name: a, weight: 0}]}]")
    bad = CliRunner().invoke(app, ["gateway", "--config", str(tmp_path / "bad.yaml"), "--check"])
    assert bad.exit_code != 0


def test_a_standalone_gateway_with_keys_refuses_a_wrong_key_in_openai_shape(
    upstream: Upstream, tmp_path: Path
) -> None:
    """``auth: keys``: the key check runs before the route (whose handler calls it directly,
    without FastAPI's dependency solving): no key and a wrong key are 401s in OpenAI's shape,
    a real key is answered."""
    from opsloop import Client
    from opsloop.app.gateway import create_gateway_app
    from opsloop.config import load_settings

    path = write_config(tmp_path, {"routes": routes(upstream), "auth": "keys"})
    settings = load_settings(
        home=str(tmp_path), database_url=f"sqlite:///{tmp_path / 'db'}",
        blob_url=str(tmp_path / "blobs"),
    )  # fmt: skip
    with Client(settings=settings) as local:
        local.governance.create_user("ann", role="viewer")
        key = local.governance.create_key("app", user="ann").secret
    with Served(create_gateway_app(path, settings)) as served:
        url = f"{served.url}/v1"
        for given in ("wrong", key[:-1] + ("x" if key[-1] != "x" else "y")):
            with pytest.raises(openai.AuthenticationError) as caught:
                _ask(openai.OpenAI(base_url=url, api_key=given, max_retries=0), "ok")
            assert set(caught.value.body) == {"message", "type", "param", "code"}
        bare = httpx.post(f"{url}/chat/completions", json={"model": "ok", "messages": []})
        assert bare.status_code == 401 and bare.json()["error"]["type"] == "authentication_error"
        with openai.OpenAI(base_url=url, api_key=key, max_retries=0) as client:
            assert _ask(client, "ok").choices[0].message.content == "answer from ok"


def test_the_standalone_gateway_serves_metrics_to_its_scraper(
    gateway: Served, upstream: Upstream, tmp_path: Path
) -> None:
    """``/metrics``: open where no token is set (as ``opsloop serve``); with ``auth: keys``
    the scrape token or a key is required, as the server in ``users`` mode requires."""
    from opsloop import Client
    from opsloop.app.gateway import create_gateway_app
    from opsloop.config import load_settings

    opened = httpx.get(f"{gateway.url}/metrics")
    assert opened.status_code == 200 and opened.headers["content-type"].startswith("text/plain")
    assert "\nopsloop_gateway_spans_dropped_total " in opened.text
    path = write_config(tmp_path, {"routes": routes(upstream), "auth": "keys"})
    settings = load_settings(
        home=str(tmp_path), database_url=f"sqlite:///{tmp_path / 'db'}",
        blob_url=str(tmp_path / "blobs"), metrics_token="scrape-me",
    )  # fmt: skip
    with Client(settings=settings) as local:
        local.governance.create_user("ann", role="viewer")
        key = local.governance.create_key("app", user="ann").secret
    with Served(create_gateway_app(path, settings)) as served:
        url = f"{served.url}/metrics"
        assert httpx.get(url).status_code == 401
        assert httpx.get(url, headers={"Authorization": "Bearer wrong"}).status_code == 401
        for token in ("scrape-me", key):
            scraped = httpx.get(url, headers={"Authorization": f"Bearer {token}"})
            assert scraped.status_code == 200
            assert "# TYPE opsloop_gateway_spans_dropped_total counter" in scraped.text


def test_a_body_over_16_mib_is_refused_before_it_is_read(gateway: Served) -> None:
    big = b'{"model": "ok", "messages": [{"role": "user", "content": "' + b"x" * (16 << 20)
    answer = httpx.post(f"{gateway.url}/v1/chat/completions", content=big + b'"}]}')
    assert answer.status_code == 413 and "16 MiB" in answer.json()["error"]["message"]
