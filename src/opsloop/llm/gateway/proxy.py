"""The gateway's request path, one call from caller to span.

``caller → limiter.reserve → (prompt compiled) → guard.check_input → cache.get → route →
guard.check_output (one re-ask) → cache.put → limiter.settle → span``. Each stage is optional
(a route without guardrails or cache, a gateway without limits) and costs nothing when absent.

The upstream's bytes go to the client as they came whenever no rule changed the answer: the
proxy reads the usage and the first choice's text out of them, and never re-validates the whole
response. On a route with guardrails a streamed request is answered whole, checked, and then
sent as a stream, so no text reaches the client before the output rules have passed it.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from dataclasses import field
from typing import TYPE_CHECKING
from typing import Any

from opsloop.errors import InvalidInput
from opsloop.errors import NotFound
from opsloop.errors import UpstreamFailed
from opsloop.llm.gateway import answers
from opsloop.llm.gateway.ports import Caller
from opsloop.llm.gateway.ports import Guard
from opsloop.llm.gateway.ports import GuardDecision
from opsloop.llm.gateway.ports import Limiter
from opsloop.llm.gateway.ports import Reservation
from opsloop.llm.gateway.ports import ResponseCache as Cache
from opsloop.llm.gateway.ports import SettlesInline
from opsloop.llm.gateway.router import LiveStream
from opsloop.llm.gateway.router import Route
from opsloop.llm.gateway.router import Router
from opsloop.llm.gateway.spans import SpanSink
from opsloop.llm.gateway.spans import guard_attributes
from opsloop.llm.gateway.upstream import Reply
from opsloop.llm.gateway.upstream import Target
from opsloop.llm.tracing.pricing import PriceTable
from opsloop.llm.tracing.records import SpanRecord

if TYPE_CHECKING:
    from opsloop.llm.prompts.sdk import PromptsClient

__all__ = ["Answer", "Gateway"]


@dataclass
class Answer:
    """What the API sends: whole ``content`` or a ``stream`` of SSE bytes, with headers."""

    content: bytes = b""
    stream: AsyncIterator[bytes] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    status: int = 200


@dataclass
class _Call:
    """One request on its way through; becomes its span."""

    caller: Caller
    operation: str
    route: Route
    body: dict[str, Any]
    trace_id: str | None
    parent_id: str | None
    start_ns: int = field(default_factory=time.time_ns)
    t0: float = field(default_factory=time.perf_counter)
    failures: list[str] = field(default_factory=list)
    decisions: list[GuardDecision] = field(default_factory=list)
    prompt: tuple[str, int] | None = None
    cache: str | None = None
    target: Target | None = None
    model: str | None = None
    given: int | None = None
    made: int | None = None
    text: str | None = None
    first_at: float | None = None
    error: str | None = None
    reservation: Reservation | None = None
    reask: str | None = None  # asked, then passed / blocked / failed: the second answer's fate


class Gateway:
    """Routes OpenAI-shaped requests to targets, with what each route is configured to add.

    Args:
        router: The routes and their targets.
        sink: Where spans go (None: not traced, for tests of the path alone).
        limiter: Per-key limits and budgets (None: none).
        guards: A route's guardrails by route name (routes without are absent).
        caches: A route's answer cache by route name.
        prompts: The prompt registry, for requests that name a ``prompt``.
        prices: Prices per model, for the cost of each call.
    """

    def __init__(
        self,
        router: Router,
        *,
        sink: SpanSink | None = None,
        limiter: Limiter | None = None,
        guards: dict[str, Guard] | None = None,
        caches: dict[str, Cache] | None = None,
        prompts: PromptsClient | None = None,
        prices: PriceTable | None = None,
    ) -> None:
        self.router = router
        self.sink = sink
        self.limiter = limiter
        self._settle_now = limiter.settle_now if isinstance(limiter, SettlesInline) else None
        self.guards = guards or {}
        self.caches = caches or {}
        self.prompts = prompts
        self.prices = prices or PriceTable([])
        self._pending: set[asyncio.Task[None]] = set()
        self._models: dict[str, tuple[str, ...]] = {}  # by route: the models it may reach
        models = [{"id": n, "object": "model", "created": 0, "owned_by": "opsloop"}
                  for n in router.routes]  # fmt: skip
        self.models_json = json.dumps({"object": "list", "data": models}).encode()

    # -- the two operations -------------------------------------------------------------------
    async def chat(self, caller: Caller, raw: bytes, traceparent: str | None = None) -> Answer:
        """Answer a ``/v1/chat/completions`` body.

        Raises:
            InvalidInput: A malformed body, or a guardrail blocked it (400).
            NotFound: No route of that name (404).
            RateLimited: Over the key's limits (429).
            UpstreamFailed: No target answered (502).
            ClientError: An upstream refused the request itself (its status and body).
        """
        body = answers.parse_body(raw, chat=True)
        prompt = await self._compile(body) if "prompt" in body else None
        call = self._start(caller, "chat", body, traceparent)
        call.prompt = prompt
        stream = body.get("stream") is True
        try:
            await self._reserve(call)
            guard = self.guards.get(call.route.name)
            if guard is not None:
                verdict = await guard.check_input(call.body)
                call.decisions += verdict.decisions
                if verdict.blocked is not None:
                    raise answers.blocked_error(verdict.blocked)
                if verdict.body is not None:
                    call.body = verdict.body
            if stream and guard is None:
                cached = await self._cached(call)
                if cached is None:
                    live = await self.router.open_stream(call.route, call.body, call.failures)
                    return self._relay(call, live)
                data = cached
            else:
                data = await self._cached(call) or await self._answer(call, guard)
            if not stream:
                return self._finish_whole(call, data)
            include = bool((body.get("stream_options") or {}).get("include_usage"))
            events = answers.as_sse(data[1], include_usage=include)
            self._finish(call)
            return Answer(stream=_replay(events), headers=self._headers(call))
        except BaseException as exc:
            call.error = call.error or _describe(exc)
            self._finish(call)
            raise

    async def embeddings(
        self, caller: Caller, raw: bytes, traceparent: str | None = None
    ) -> Answer:
        """Answer a ``/v1/embeddings`` body (raises as :meth:`chat` does)."""
        body = answers.parse_body(raw, chat=False)
        call = self._start(caller, "embeddings", body, traceparent)
        try:
            await self._reserve(call)
            target, reply = await self.router.complete(
                call.route, call.body, call.failures, embeddings=True
            )
            call.target, call.model = target, reply.data.get("model") or target.model
            call.given, call.made = answers.usage_tokens(reply.data.get("usage"))
            self._finish(call)
            return Answer(reply.content, headers=self._headers(call))
        except BaseException as exc:
            call.error = call.error or _describe(exc)
            self._finish(call)
            raise

    async def aclose(self) -> None:
        """Wait for settlements in flight, then stop the span worker (what is queued is
        stored first)."""
        if self._pending:
            await asyncio.gather(*self._pending, return_exceptions=True)
        if self.sink is not None:
            await asyncio.to_thread(self.sink.close)

    # -- stages -------------------------------------------------------------------------------
    def _start(
        self, caller: Caller, operation: str, body: dict[str, Any], traceparent: str | None
    ) -> _Call:
        name = body.get("model")
        route = self.router.routes.get(name) if isinstance(name, str) else None
        if route is None:
            known = ", ".join(sorted(self.router.routes)) or "none configured"
            raise NotFound(
                f"the model '{name}' does not exist on this gateway; routes: {known}",
                details={"param": "model", "code": "model_not_found"},
            )
        trace_id, parent_id = answers.parse_traceparent(traceparent)
        return _Call(caller, operation, route, body, trace_id, parent_id)

    async def _compile(self, body: dict[str, Any]) -> tuple[str, int]:
        """Put the registered prompt's messages (and its config, under the body's own keys)
        into ``body``; returns the version used."""
        if self.prompts is None:
            raise InvalidInput("this gateway has no prompt registry: send 'messages' instead")
        name, _, which = body.pop("prompt").partition("@")
        variables = body.pop("variables", {}) or {}
        version = int(which) if which.isdigit() else None
        prompts = self.prompts
        prompt = await asyncio.to_thread(
            lambda: prompts.get(name, version=version, label=None if version else which)
        )
        compiled = prompt.compile(**variables)
        messages = [{"role": "user", "content": compiled}] if prompt.type == "text" else compiled
        body["messages"] = [*messages, *(body.get("messages") or [])]
        for key, value in prompt.config.items():
            body.setdefault(key, value)
        return prompt.name, prompt.version

    async def _reserve(self, call: _Call) -> None:
        if self.limiter is None:
            return
        given, made = answers.estimate_usage(call.body)
        models = self._models.get(call.route.name) or self._models_of(call.route)
        cost = max(answers.cost_of(self.prices, model, given, made) or 0.0
                   for model in models)  # fmt: skip  # the dearest
        reserve = self.limiter.reserve
        call.reservation = await reserve(call.caller, tokens=given + made, cost_usd=cost)

    def _models_of(self, route: Route) -> tuple[str, ...]:
        """The models a call on ``route`` may reach (its targets' and its fallbacks'), found
        once per route: a route's targets are fixed once built."""
        routes = [route, *(self.router.routes[name] for name in route.config.fallbacks)]
        models = tuple({t.model: None for r in routes for t in r.targets})  # once each, in order
        self._models[route.name] = models
        return models

    async def _cached(self, call: _Call) -> tuple[bytes, dict[str, Any]] | None:
        cache = self.caches.get(call.route.name)
        if cache is None:
            return None
        hit = await cache.get(call.body)
        if hit is None:
            return None
        call.cache = hit.kind
        call.model = hit.response.get("model")
        call.text = answers.answer_text(hit.response)
        return json.dumps(hit.response, ensure_ascii=False).encode(), hit.response

    async def _answer(self, call: _Call, guard: Guard | None) -> tuple[bytes, dict[str, Any]]:
        """The routed answer, through the output rules (one re-ask when a rule asks for it)."""
        body = call.body
        for asked in (False, True):
            sent = body if guard is None else answers.without_context(body)
            target, reply = await self.router.complete(call.route, sent, call.failures)
            self._note(call, target, reply)
            if guard is None:
                break
            text = answers.answer_text(reply.data)
            verdict = await guard.check_output(body, text)
            call.decisions += verdict.decisions
            if asked:  # how the re-ask ended, for the span
                again = "failed" if verdict.reask else "passed"
                call.reask = "blocked" if verdict.blocked is not None else again
            if verdict.blocked is not None:
                raise answers.blocked_error(verdict.blocked)
            if verdict.reask is None:
                if verdict.text is not None and verdict.text != text:
                    call.text = verdict.text
                    reply = Reply(answers.replace_text(reply.data, verdict.text), reply.data)
                break
            if asked:
                raise UpstreamFailed(
                    f"the answer still failed the output rules after one re-ask: {verdict.reask}"
                )
            retry = [
                {"role": "assistant", "content": text},
                {"role": "user", "content": verdict.reask},
            ]
            body = {**body, "messages": [*body["messages"], *retry]}
        cache = self.caches.get(call.route.name)
        if cache is not None:
            await cache.put(call.body, reply.data)
        return reply.content, reply.data

    def _note(self, call: _Call, target: Target, reply: Reply) -> None:
        call.target = target
        call.model = reply.data.get("model") or target.model
        given, made = answers.usage_tokens(reply.data.get("usage"))
        call.given = (call.given or 0) + (given or 0) if given is not None else call.given
        call.made = (call.made or 0) + (made or 0) if made is not None else call.made
        call.text = answers.answer_text(reply.data)

    def _relay(self, call: _Call, live: LiveStream) -> Answer:
        call.target = live.target

        async def relay() -> AsyncIterator[bytes]:
            try:
                async for chunk in live:
                    yield chunk
            finally:
                state = live.state
                call.first_at, call.error = state.first_at, state.error
                call.model = state.model or live.target.model
                call.given, call.made = answers.usage_tokens(state.usage)
                call.text = "".join(state.text)
                self._finish(call)

        return Answer(stream=relay(), headers=self._headers(call))

    def _finish_whole(self, call: _Call, data: tuple[bytes, dict[str, Any]]) -> Answer:
        self._finish(call)
        return Answer(data[0], headers=self._headers(call))

    def _headers(self, call: _Call) -> dict[str, str]:
        headers = dict(call.reservation.headers) if call.reservation is not None else {}
        headers["x-opsloop-route"] = call.route.name
        if call.target is not None:
            headers["x-opsloop-target"] = call.target.name
        if call.cache:
            headers["x-opsloop-cache"] = call.cache
        return headers

    def _finish(self, call: _Call) -> None:
        """Settle the reservation (in the background, unless the limiter settles inline) and
        queue the span."""
        end_ns = time.time_ns()
        cost = None
        if call.model and (call.given or call.made):
            cost = answers.cost_of(self.prices, call.model, call.given, call.made)
        if call.cache:
            cost = 0.0  # a hit costs nothing upstream
        if self.limiter is not None and call.reservation is not None:
            tokens = (call.given or 0) + (call.made or 0)
            if self._settle_now is not None:  # in-process: no task a request to settle
                self._settle_now(call.reservation, tokens=tokens, cost_usd=cost or 0.0)
            else:
                settle = self.limiter.settle(call.reservation, tokens=tokens, cost_usd=cost or 0.0)
                task = asyncio.get_running_loop().create_task(settle)
                self._pending.add(task)
                task.add_done_callback(self._pending.discard)
        if self.sink is not None:
            self.sink.put(
                self._span(call, end_ns, cost), call.body.get("messages") or call.body.get("input")
            )

    def _span(self, call: _Call, end_ns: int, cost: float | None) -> SpanRecord:
        latency = (time.perf_counter() - call.t0) * 1000
        attrs: dict[str, Any] = {
            "gen_ai.operation.name": call.operation,
            "gen_ai.request.model": call.route.name,
            "opsloop.gateway.route": call.route.name,
            "opsloop.gateway.latency_ms": round(latency, 3),
            "opsloop.gateway.cache_hit": call.cache is not None,
            "opsloop.gateway.stream": call.body.get("stream") is True,
            "opsloop.gateway.fallbacks": list(call.failures),
            "opsloop.gateway.attempts": len(call.failures) + (call.error is None),
        }
        if call.model:
            attrs["gen_ai.response.model"] = call.model
        if call.target is not None:
            attrs["opsloop.gateway.target"] = call.target.name
        if call.cache:
            attrs["opsloop.gateway.cache_kind"] = call.cache
        if call.reask:
            attrs["opsloop.gateway.reask"] = call.reask
        if call.first_at is not None:
            attrs["opsloop.gateway.ttft_ms"] = round((call.first_at - call.t0) * 1000, 3)
        if call.caller.key_id:
            attrs["opsloop.gateway.key_id"] = call.caller.key_id
        if call.caller.user:
            attrs["opsloop.gateway.principal"] = call.caller.user
        attrs.update(guard_attributes(call.decisions))
        given, made = call.given, call.made
        end_user = call.body.get("user")
        return SpanRecord(
            # ids as OpenTelemetry's SDK draws them: unique, not secret, so from the PRNG the
            # OS seeded (again in a forked child), not a getrandom system call each
            trace_id=call.trace_id or f"{random.getrandbits(128):032x}",
            span_id=f"{random.getrandbits(64):016x}",
            parent_span_id=call.parent_id,
            name=f"{call.operation} {call.route.name}",
            start_ns=call.start_ns,
            end_ns=max(end_ns, call.start_ns),
            kind="llm" if call.operation == "chat" else "embedding",
            status="error" if call.error else "ok",
            status_message=call.error,
            service="opsloop-gateway",
            model=call.model or call.route.name,
            input_tokens=given,
            output_tokens=made,
            total_tokens=(given or 0) + (made or 0)
            if given is not None or made is not None
            else None,
            cost=cost,
            output=call.text,
            user_id=end_user
            if isinstance(end_user, str) and end_user
            else call.caller.user or None,
            prompt_name=call.prompt[0] if call.prompt else None,
            prompt_version=call.prompt[1] if call.prompt else None,
            attributes=attrs,
        )


async def _replay(events: list[bytes]) -> AsyncIterator[bytes]:
    for event in events:
        yield event


def _describe(exc: BaseException) -> str:
    message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {message}"[:1000]
