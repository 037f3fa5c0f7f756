"""Per-key limits set with ``opsloop keys limit``, enforced by the wired gateway with the real
``openai`` client, on the real Redis (a key prefix of its own) and in-process: a key over its
requests per minute gets a 429 with ``Retry-After``, and a budget is charged with the answer's
whole ``max_tokens`` (or the default cap) before the call, so a call that could pass it is
refused rather than let through."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

from tests.gateway.conftest import Served
from tests.gateway.e2e_world import World
from tests.gateway.e2e_world import drop_redis_keys
from tests.gateway.e2e_world import make_world
from tests.gateway.e2e_world import redis_limits
from tests.gateway.e2e_world import span_where
from tests.gateway.e2e_world import write
from tests.gateway.upstream_server import Upstream
from tests.no_network import no_network  # noqa: F401  (fixture)

pytest.importorskip("torch")
pytestmark = pytest.mark.usefixtures("no_network")


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    return make_world(tmp_path_factory.mktemp("e2e-limits"))


@pytest.fixture(params=["redis", "in-process"])
def gateway(
    request: pytest.FixtureRequest, world: World, upstream: Upstream, tmp_path: Path
) -> Iterator[Served]:
    from opsloop.app.gateway import create_gateway_app

    limits, prefix = redis_limits() if request.param == "redis" else ("", "")
    config = (
        f'routes:\n  - name: ok\n    targets: [{{name: up, base_url: "{upstream.url("ok")}", '
        f"model: gpt-4o-mini}}]\nlimits: {{{limits}}}\n"
    )
    try:
        with Served(create_gateway_app(write(tmp_path / "gateway.yaml", config),
                                       world.settings)) as served:  # fmt: skip
            yield served
    finally:
        if prefix:
            drop_redis_keys(prefix)


def _client(gateway: Served, world: World, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=world.keys[key], max_retries=0)


def _ask(client: openai.OpenAI, **extra: object) -> object:
    return client.chat.completions.create(
        model="ok", messages=[{"role": "user", "content": "hi"}], **extra
    )


def test_a_key_over_its_requests_per_minute_gets_a_429(gateway: Served, world: World) -> None:
    with _client(gateway, world, "tight") as tight:  # --rpm 2
        _ask(tight)
        _ask(tight)
        with pytest.raises(openai.RateLimitError) as caught:
            _ask(tight)
    assert caught.value.body["code"] == "rate_limit_exceeded"
    assert "requests per minute" in caught.value.body["message"]
    assert int(caught.value.response.headers["retry-after"]) >= 1
    with _client(gateway, world, "main") as main:  # another key is not held back
        assert _ask(main).choices[0].message.content == "answer from ok"


def test_a_budget_reserves_the_whole_answer_before_the_call(
    gateway: Served, world: World, upstream: Upstream
) -> None:
    before = len(upstream.requests)
    with _client(gateway, world, "thrifty") as thrifty:  # --budget 0.001 --per day
        with pytest.raises(openai.RateLimitError) as caught:
            _ask(thrifty)  # no max_tokens: 4,096 answer tokens at $0.60/M may pass $0.001
        assert "budget" in caught.value.body["message"]
        assert len(upstream.requests) == before  # refused before any upstream call
        answer = _ask(thrifty, max_tokens=50)  # at most $0.00003: fits
    assert answer.choices[0].message.content == "answer from ok"
    store = gateway.app.state.opsloop.store
    span = span_where(store, lambda s: s.attributes.get("opsloop.gateway.key_id")
                      == world.key_ids["thrifty"] and s.status == "ok")  # fmt: skip
    assert 0 < span.cost < 0.001
