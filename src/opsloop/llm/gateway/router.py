"""Which target answers: weighted choice, retries with backoff, then the route's fallbacks.

A route is tried ``retries + 1`` times, each time on a target drawn by weight among those that
have not failed yet for this request, waiting ``backoff_s`` doubled after each failure; then
each fallback route the same way (a fallback's own fallbacks are not followed, so no chain of
routes can loop). Every failed attempt is kept as ``route/target: reason`` for the span.

Streams commit at their first event: a target that fails before sending one is treated like
any failure (the next attempt or a fallback answers, and the client never knows). Once an event
has gone to the client, a later failure (a cut, a stall, invalid JSON, an error event) ends the
stream with an SSE error event in OpenAI's shape, which the ``openai`` client raises as an
``APIError``: never a silent truncation that looks like a finished answer.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import random
import time
from collections.abc import AsyncIterator
from collections.abc import Iterator
from dataclasses import dataclass
from dataclasses import field
from typing import TYPE_CHECKING
from typing import Any

from opsloop.errors import UpstreamFailed
from opsloop.llm.gateway.config import RouteConfig
from opsloop.llm.gateway.upstream import DONE
from opsloop.llm.gateway.upstream import Reply
from opsloop.llm.gateway.upstream import Target
from opsloop.llm.gateway.upstream import TargetFailed

if TYPE_CHECKING:
    from opsloop.llm.gateway.rollout_split import Split

__all__ = ["LiveStream", "Route", "Router", "StreamState", "sse_error"]


class Route:
    """A configured route with its built targets."""

    def __init__(self, config: RouteConfig, targets: list[Target]) -> None:
        self.config = config
        self.name = config.name
        self.targets = targets
        self.split: Split | None = None  # a rollout's live share, set by its controller

    def pick(self, failed: set[str]) -> Target:
        """A target drawn by weight among those not in ``failed`` (all of them once every
        target has failed); while a rollout runs, its :class:`Split` draws instead."""
        live = [t for t in self.targets if t.name not in failed] or self.targets
        if len(live) == 1:
            return live[0]
        if self.split is not None:
            return self.split.pick(live)  # type: ignore[return-value]
        cumulative = list(itertools.accumulate(t.weight for t in live))
        return random.choices(live, cum_weights=cumulative)[0]


@dataclass
class StreamState:
    """What a stream carried, gathered as it passes: for guardrails, limits and the span."""

    text: list[str] = field(default_factory=list)
    finish_reason: str | None = None
    usage: dict[str, Any] | None = None
    model: str | None = None
    done: bool = False
    first_at: float | None = None  # time.perf_counter() of the first event
    error: str | None = None

    def observe(self, payload: bytes) -> dict[str, Any]:
        """Parse one event's payload and note what it says.

        Raises:
            TargetFailed: Not JSON, or an ``error`` event from the upstream.
        """
        try:
            data = json.loads(payload)
        except ValueError:
            raise TargetFailed("sent an event that is not JSON") from None
        if not isinstance(data, dict):
            raise TargetFailed("sent an event that is not a JSON object")
        if "error" in data:
            raise TargetFailed(f"sent an error event: {str(data['error'])[:200]}")
        if self.first_at is None:
            self.first_at = time.perf_counter()
        if data.get("usage"):
            self.usage = data["usage"]
        if self.model is None and data.get("model"):
            self.model = data["model"]
        for choice in data.get("choices") or ():
            delta = choice.get("delta") or {}
            content = delta.get("content")
            if content:
                self.text.append(content)
            if choice.get("finish_reason"):
                self.finish_reason = choice["finish_reason"]
        return data


def sse_error(message: str, code: str = "upstream_failed") -> bytes:
    """An SSE event in OpenAI's error shape (the ``openai`` client raises it)."""
    error = {"message": message, "type": "upstream_error", "param": None, "code": code}
    return b"data: " + json.dumps({"error": error}).encode() + b"\n\n"


@dataclass(eq=False)
class LiveStream:
    """A stream committed to one target: its first event is in hand, the rest follow.

    Iterate it for the bytes to send; :attr:`state` says what passed. ``hide_usage`` drops the
    usage-only chunk the gateway asked for on the client's behalf (``include_usage``).
    """

    target: Target
    events: AsyncIterator[bytes]
    first: tuple[bytes, dict[str, Any]]
    state: StreamState
    hide_usage: bool = field(kw_only=True)

    def _keep(self, data: dict[str, Any]) -> bool:
        return not (self.hide_usage and not data.get("choices") and "usage" in data)

    async def __aiter__(self) -> AsyncIterator[bytes]:
        state = self.state
        payload, data = self.first
        if self._keep(data):
            yield b"data: " + payload + b"\n\n"
        try:
            async for payload in self.events:
                if payload == DONE:
                    state.done = True
                    break
                data = state.observe(payload)
                if self._keep(data):
                    yield b"data: " + payload + b"\n\n"
            if not state.done and state.finish_reason is None:
                raise TargetFailed("the stream ended mid-answer (no finish_reason, no [DONE])")
        except TargetFailed as exc:
            state.error = f"{self.target.route}/{self.target.name}: {exc.reason}"
            yield sse_error(f"the model's answer broke off: {state.error}", "stream_cut")
            return
        finally:
            await _close(self.events)
        yield b"data: [DONE]\n\n"


async def _close(events: AsyncIterator[bytes]) -> None:
    close = getattr(events, "aclose", None)
    if close is not None:
        await close()


class Router:
    """Routes by name; :meth:`complete` and :meth:`open_stream` try them as described above."""

    def __init__(self, routes: dict[str, Route]) -> None:
        self.routes = routes

    def attempts(self, route: Route) -> Iterator[tuple[Route, int]]:
        for current in [route, *(self.routes[name] for name in route.config.fallbacks)]:
            for attempt in range(current.config.retries + 1):
                yield current, attempt

    async def complete(
        self, route: Route, body: dict[str, Any], failures: list[str], *, embeddings: bool = False
    ) -> tuple[Target, Reply]:
        """The first whole answer; each failed attempt is appended to ``failures``.

        Raises:
            UpstreamFailed: Every attempt failed (the message lists them).
            ClientError: An upstream refused the request itself.
        """
        failed: dict[str, set[str]] = {}
        for current, attempt in self.attempts(route):
            await _backoff(current, attempt)
            target = current.pick(failed.setdefault(current.name, set()))
            try:
                reply = await target.complete(
                    {**body, "model": target.model}, embeddings=embeddings
                )
            except TargetFailed as exc:
                failed[current.name].add(target.name)
                failures.append(f"{current.name}/{target.name}: {exc.reason}")
                continue
            return target, reply
        raise _exhausted(route, failures)

    async def open_stream(
        self, route: Route, body: dict[str, Any], failures: list[str]
    ) -> LiveStream:
        """A stream whose first event has arrived (from the first target that sent one).

        Raises:
            UpstreamFailed: No attempt got as far as a first event.
            ClientError: An upstream refused the request itself.
        """
        asked = body.get("stream_options") or {}
        hide_usage = not asked.get("include_usage")
        body = {**body, "stream_options": {**asked, "include_usage": True}}
        failed: dict[str, set[str]] = {}
        for current, attempt in self.attempts(route):
            await _backoff(current, attempt)
            target = current.pick(failed.setdefault(current.name, set()))
            events = target.stream({**body, "model": target.model}).__aiter__()
            state = StreamState()
            try:
                payload = await events.__anext__()
                if payload == DONE:
                    raise TargetFailed("the stream ended before any answer")
                data = state.observe(payload)
            except (TargetFailed, StopAsyncIteration) as exc:
                await _close(events)
                failed[current.name].add(target.name)
                reason = getattr(exc, "reason", "the stream ended before any answer")
                failures.append(f"{current.name}/{target.name}: {reason}")
                continue
            except BaseException:
                await _close(events)
                raise
            return LiveStream(target, events, (payload, data), state, hide_usage=hide_usage)
        raise _exhausted(route, failures)


async def _backoff(route: Route, attempt: int) -> None:
    if attempt and route.config.backoff_s:
        await asyncio.sleep(route.config.backoff_s * 2 ** (attempt - 1))


def _exhausted(route: Route, failures: list[str]) -> UpstreamFailed:
    tried = "; ".join(failures[-5:])
    return UpstreamFailed(
        f"no target of route '{route.name}' answered ({len(failures)} attempt(s)): {tried}",
        details={"attempts": list(failures)},
    )
