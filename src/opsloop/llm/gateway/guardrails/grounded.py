"""The ``grounded`` rule: is the answer supported by the context the request supplied?

It is the eval metric's claim check (:func:`opsloop.llm.evals.metrics.groundedness`): the
answer is split into claims (sentences), and a claim is supported when a context sentence is
semantically close to it (``similarity``, MiniLM embeddings) or the context holds nearly all its
content words (``word_recall``). The score is the share of supported claims; under
``min_score`` the rule triggers, and the reason quotes the first unsupported claim.

**How a request supplies its context**, first found wins:

1. a top-level ``"context"`` field in the request body: a string, or a list of strings (the
   retrieved documents); the gateway removes it before sending the request on, as it is not an
   OpenAI field;
2. the text inside ``<context>…</context>`` or ``<documents>…</documents>`` in the system
   messages (the usual shape of a RAG prompt).

A request with neither is not checked (the decision says so), unless the rule sets
``require_context: true``, which triggers it. Embedding runs in the event loop's default
executor: it takes milliseconds, and the model's first load a few seconds.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

from opsloop.llm.evals.metrics import groundedness
from opsloop.llm.gateway.guardrails.base import Outcome
from opsloop.llm.gateway.guardrails.base import Rule
from opsloop.llm.gateway.guardrails.base import message_texts
from opsloop.llm.gateway.guardrails.base import short
from opsloop.llm.gateway.guardrails.config import GroundedSpec

__all__ = ["GroundedRule", "request_context"]

_TAGGED = re.compile(r"<(context|documents)>(.*?)</\1>", re.DOTALL | re.IGNORECASE)


def request_context(body: dict[str, Any]) -> str | None:
    """The context a request supplies (see the module docstring), or None."""
    context = body.get("context")
    if isinstance(context, str) and context.strip():
        return context
    if isinstance(context, list):
        documents = [d for d in context if isinstance(d, str) and d.strip()]
        if documents:
            return "\n".join(documents)
    tagged = [
        m.group(2).strip() for _, t in message_texts(body, ["system"]) for m in _TAGGED.finditer(t)
    ]
    return "\n".join(t for t in tagged if t) or None


class GroundedRule(Rule):
    def __init__(self, spec: GroundedSpec) -> None:
        super().__init__(spec)
        self.min_score = spec.min_score
        self.similarity = spec.similarity
        self.word_recall = spec.word_recall
        self.require_context = spec.require_context

    async def check(self, body: dict[str, Any], text: str | None) -> Outcome:
        context = request_context(body)
        if context is None:
            if self.require_context:
                return Outcome(True, "the request supplied no context to check the answer against")
            return Outcome(False, "not checked: the request supplied no context")
        if not (text or "").strip():
            return Outcome(False, "empty answer", score=1.0)
        loop = asyncio.get_running_loop()
        results = await loop.run_in_executor(
            None,
            lambda: groundedness(
                [text or ""], [context], similarity=self.similarity, word_recall=self.word_recall
            ),
        )
        result = results[0]
        supported = len(result.claims) - len(result.unsupported)
        summary = f"{supported} of {len(result.claims)} claims supported"
        if result.score < self.min_score:
            first = short(result.unsupported[0], 80)
            return Outcome(True, f"{summary}, under {self.min_score}; e.g. {first!r}", result.score)
        return Outcome(False, summary, score=result.score)
