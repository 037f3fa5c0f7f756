"""The proxy's stages in order, with small implementations of the ports standing in for the
limits, guardrails and cache modules (each built and tested on its own): a blocked input is a
400 naming the rule, an output that fails a rule is re-asked once, a cache hit skips the
upstream, a reservation is settled with the call's usage, and a 429 carries Retry-After."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from opsloop.errors import InvalidInput
from opsloop.errors import RateLimited
from opsloop.llm.gateway.config import parse_config
from opsloop.llm.gateway.ports import CachedAnswer
from opsloop.llm.gateway.ports import Caller
from opsloop.llm.gateway.ports import GuardDecision
from opsloop.llm.gateway.ports import GuardVerdict
from opsloop.llm.gateway.ports import KeyLimits
from opsloop.llm.gateway.ports import Reservation
from tests.gateway.conftest import routes
from tests.gateway.upstream_server import Upstream


class WordGuard:
    """Blocks inputs containing "forbidden"; asks once again for answers that are not JSON."""

    async def check_input(self, body: dict[str, Any]) -> GuardVerdict:
        text = json.dumps(body["messages"])
        hit = "forbidden" in text
        decision = GuardDecision(
            "banned_words", "input", "block", hit, "the word 'forbidden'" if hit else ""
        )
        return GuardVerdict([decision], blocked=decision if hit else None)

    async def check_output(self, body: dict[str, Any], text: str) -> GuardVerdict:
        try:
            json.loads(text)
        except ValueError:
            decision = GuardDecision("json_schema", "output", "block", True, "not JSON")
            return GuardVerdict([decision], reask="Answer with JSON only.")
        return GuardVerdict([GuardDecision("json_schema", "output", "block", False)])


class DictCache:
    def __init__(self) -> None:
        self.stored: dict[str, dict[str, Any]] = {}

    async def get(self, body: dict[str, Any]) -> CachedAnswer | None:
        found = self.stored.get(json.dumps(body["messages"]))
        return CachedAnswer(found, "exact") if found else None

    async def put(self, body: dict[str, Any], response: dict[str, Any]) -> None:
        self.stored[json.dumps(body["messages"])] = response


class CountingLimiter:
    def __init__(self, allowed: int) -> None:
        self.allowed = allowed
        self.settled: list[tuple[int, float]] = []

    async def reserve(self, caller: Caller, *, tokens: int, cost_usd: float) -> Reservation:
        if self.allowed <= 0:
            raise RateLimited(
                "key k1 is over 2 requests per minute", details={"retry_after_s": 12.5}
            )
        self.allowed -= 1
        return Reservation(
            caller.key_id,
            tokens,
            cost_usd,
            headers={"x-ratelimit-remaining-requests": str(self.allowed)},
        )

    async def settle(self, reservation: Reservation, *, tokens: int, cost_usd: float) -> None:
        self.settled.append((tokens, cost_usd))


def _build(upstream: Upstream, limiter: CountingLimiter, cache: DictCache) -> Any:
    from opsloop.app.gateway import build_gateway

    config = parse_config({"routes": routes(upstream)})
    return build_gateway(
        config,
        limiter_factory=lambda _limits: limiter,
        guard_factory=lambda route: WordGuard() if route.name == "ok" else None,
        cache_factory=lambda route: cache if route.name == "ok" else None,
    )


def _body(content: str, **extra: Any) -> bytes:
    return json.dumps(
        {"model": "ok", "messages": [{"role": "user", "content": content}], **extra}
    ).encode()


def test_the_stages_run_in_order(upstream: Upstream) -> None:
    limiter, cache = CountingLimiter(allowed=10), DictCache()
    gateway = _build(upstream, limiter, cache)
    caller = Caller("k1", "vic", KeyLimits(rpm=2))

    async def run() -> None:
        with pytest.raises(InvalidInput, match=r"guardrail .banned_words.*forbidden"):
            await gateway.chat(caller, _body("say something forbidden"))
        start = len(upstream.requests)
        answer = await gateway.chat(caller, _body("hello"))  # not JSON: re-asked once
        assert len(upstream.requests) - start == 2
        assert upstream.requests[-1][1]["messages"][-1] == {
            "role": "user",
            "content": "Answer with JSON only.",
        }
        assert json.loads(answer.content)["choices"][0]["message"]["content"] == '{"mode": "ok"}'
        hit = await gateway.chat(caller, _body("hello"))  # the same question: from the cache
        assert len(upstream.requests) - start == 2 and hit.headers["x-opsloop-cache"] == "exact"
        streamed = await gateway.chat(caller, _body("hello", stream=True))  # a hit, as a stream
        events = [e async for e in streamed.stream]
        assert events[-1] == b"data: [DONE]\n\n" and b'{\\"mode\\": \\"ok\\"}' in events[0]
        await gateway.aclose()

    asyncio.run(run())
    assert limiter.settled[0] == (0, 0.0)  # blocked before any model was called
    assert limiter.settled[1][0] == 36  # both answers' tokens (18 + 18)
    assert limiter.settled[2] == (0, 0.0)  # a hit costs nothing upstream


def test_over_the_limit_is_a_429_with_retry_after(upstream: Upstream) -> None:
    from opsloop.app.gateway import server_caller
    from opsloop.llm.gateway.api import gateway_router

    gateway = _build(upstream, CountingLimiter(allowed=0), DictCache())
    app = FastAPI()
    app.include_router(gateway_router(lambda _request: gateway, server_caller()))

    async def run() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
            return await client.post("/v1/chat/completions", content=_body("hi"))

    answer = asyncio.run(run())
    assert answer.status_code == 429 and answer.headers["retry-after"] == "13"
    assert answer.json()["error"]["code"] == "rate_limit_exceeded"
