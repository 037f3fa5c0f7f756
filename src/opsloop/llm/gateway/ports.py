"""What the gateway's request path is handed: small protocols, one per concern.

The proxy (:mod:`.proxy`) depends only on these; each has one implementation in its own module
of this package (limits, guardrails, cache), except :class:`LocalModels`, whose implementation
needs the model registry (a floor above ``llm``) and is wired in by ``opsloop.app``.

Everything here is async: the gateway serves on one event loop, and a blocking call on the
request path would add its latency to every other request in flight.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from dataclasses import field
from typing import Any
from typing import Literal
from typing import Protocol
from typing import runtime_checkable

__all__ = [
    "CachedAnswer",
    "Caller",
    "Guard",
    "GuardDecision",
    "GuardVerdict",
    "KeyLimits",
    "Limiter",
    "LocalGenerator",
    "LocalModels",
    "Reservation",
    "ResponseCache",
    "SettlesInline",
]


@dataclass(frozen=True)
class KeyLimits:
    """What one API key may use; None means unlimited.

    Attributes:
        rpm: Requests per minute.
        tpm: Tokens (prompt + completion) per minute.
        budget_usd: Spend allowed per ``budget_period``.
        budget_period: ``day`` or ``month`` (UTC calendar periods).
    """

    rpm: int | None = None
    tpm: int | None = None
    budget_usd: float | None = None
    budget_period: Literal["day", "month"] = "month"


@dataclass(frozen=True)
class Caller:
    """Who sent a request, as the gateway's auth check resolved it.

    ``key_id`` is empty when the gateway runs without keys (open, or the server's one token);
    limits then apply to nobody.
    """

    key_id: str = ""
    user: str = ""
    limits: KeyLimits = field(default_factory=KeyLimits)


@dataclass
class Reservation:
    """What :meth:`Limiter.reserve` set aside for one call, settled once the call ends.

    ``headers`` are sent on the response (``x-ratelimit-remaining-requests`` and the like, and
    ``x-opsloop-limits: fail-open`` when the limit store was down and the route lets calls through).
    """

    key_id: str
    tokens: int
    cost_usd: float
    token: str = ""  # the limiter's own handle for this reservation
    headers: dict[str, str] = field(default_factory=dict)


class Limiter(Protocol):
    """Requests, tokens and spend per key, enforced atomically: reserve before the call (the
    estimate), settle after (the actual), so concurrent calls can never overshoot together."""

    async def reserve(self, caller: Caller, *, tokens: int, cost_usd: float) -> Reservation:
        """Set aside one request, ``tokens`` and ``cost_usd`` for ``caller``; raises
        :class:`opsloop.errors.RateLimited` (with ``retry_after_s``) when any limit would be
        passed."""
        ...

    async def settle(self, reservation: Reservation, *, tokens: int, cost_usd: float) -> None:
        """Replace the reservation's estimate with what the call actually used (0 and 0.0 when
        it failed before reaching a model)."""
        ...


@runtime_checkable
class SettlesInline(Protocol):
    """A :class:`Limiter` whose settling never waits (the in-process one): the proxy calls
    :meth:`settle_now` as a call ends instead of running :meth:`Limiter.settle` as a task."""

    def settle_now(self, reservation: Reservation, *, tokens: int, cost_usd: float) -> None:
        """What :meth:`Limiter.settle` does, done before returning."""
        ...


@dataclass(frozen=True)
class GuardDecision:
    """One rule's verdict on one request or answer; every decision becomes span attributes.

    Attributes:
        rule: The rule's name as configured (``pii``, ``injection``, ``json_schema`` …).
        stage: ``input`` or ``output``.
        action: ``block``, ``redact`` or ``flag``: what the rule is configured to do.
        triggered: Whether the rule matched (a decision that did not trigger is still recorded).
        reason: One line a person can read ("email address in message 2").
        score: The rule's score where it has one (the injection classifier's probability).
    """

    rule: str
    stage: Literal["input", "output"]
    action: Literal["block", "redact", "flag"]
    triggered: bool
    reason: str = ""
    score: float | None = None


@dataclass
class GuardVerdict:
    """The result of a route's rules on a request (``body``) or an answer (``text``).

    ``body``/``text`` are what goes on (redacted where a redact rule matched). ``blocked`` is the
    first triggered ``block`` decision, or None. ``reask`` is set by an output rule that allows
    one retry (JSON-schema validation): the message to append before asking the model again.
    """

    decisions: list[GuardDecision] = field(default_factory=list)
    body: dict[str, Any] | None = None
    text: str | None = None
    blocked: GuardDecision | None = None
    reask: str | None = None


class Guard(Protocol):
    """A route's guardrails, built from its configuration."""

    async def check_input(self, body: dict[str, Any]) -> GuardVerdict:
        """Rules on an OpenAI chat request body before it is sent on."""
        ...

    async def check_output(self, body: dict[str, Any], text: str) -> GuardVerdict:
        """Rules on the answer's text (``body`` is the request, for context such as the
        groundedness check's documents or the expected JSON schema)."""
        ...


@dataclass(frozen=True)
class CachedAnswer:
    """A cache hit: the stored OpenAI response, and how it matched (``exact`` or ``semantic``
    with its cosine similarity)."""

    response: dict[str, Any]
    kind: Literal["exact", "semantic"]
    similarity: float = 1.0


class ResponseCache(Protocol):
    """A route's answer cache (off unless the route turns it on)."""

    async def get(self, body: dict[str, Any]) -> CachedAnswer | None: ...

    async def put(self, body: dict[str, Any], response: dict[str, Any]) -> None: ...


class LocalGenerator(Protocol):
    """A registered causal LM generating in-process (batched across concurrent requests)."""

    async def complete(self, body: dict[str, Any]) -> dict[str, Any]:
        """An OpenAI ``chat.completion`` object for a chat request body."""
        ...

    def stream(self, body: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
        """OpenAI ``chat.completion.chunk`` objects as tokens are generated."""
        ...


class LocalModels(Protocol):
    """Registered models the gateway can generate with (``support-bot@champion``)."""

    def generator(self, ref: str) -> LocalGenerator:
        """The generator of the model version ``ref`` names, loaded once and kept; raises
        :class:`opsloop.errors.NotFound` for an unknown model or version and
        :class:`opsloop.errors.InvalidInput` for a version that is not a causal LM."""
        ...
