"""The ``injection`` rule: prompt injection in the request, in two tiers.

Tier 1 (:mod:`.patterns`) runs inline on every message of the chosen ``roles`` (default
``user`` and ``tool``: a tool's result is where indirect injections arrive; the system prompt
is the operator's own). A message it scores 1 triggers the rule and tier 2 is skipped. Otherwise
tier 2 (:mod:`.classifier`, built in or the rule's ONNX ``model``) scores every message in one
batch, in the event loop's default executor: the built-in model takes several milliseconds a
batch (scikit-learn's per-call overhead), which would stall every other request on the loop.
The first call also trains the built-in model there (about a second, once per process).

The decision's score is the highest of both tiers over the messages; the rule triggers when
tier 1 scores 1 or tier 2 reaches ``threshold``. ``tiers: [rules]`` or ``tiers: [classifier]``
runs one tier alone.
"""

from __future__ import annotations

import asyncio
from typing import Any

from opsloop.llm.gateway.guardrails.base import Outcome
from opsloop.llm.gateway.guardrails.base import Rule
from opsloop.llm.gateway.guardrails.base import message_texts
from opsloop.llm.gateway.guardrails.classifier import OnnxClassifier
from opsloop.llm.gateway.guardrails.classifier import TextClassifier
from opsloop.llm.gateway.guardrails.classifier import builtin_classifier
from opsloop.llm.gateway.guardrails.config import InjectionSpec
from opsloop.llm.gateway.guardrails.patterns import tier1

__all__ = ["InjectionRule"]


class InjectionRule(Rule):
    """See the module docstring.

    Raises:
        InvalidInput: (when built) the ``model`` file is missing or not a usable ONNX model.
    """

    def __init__(self, spec: InjectionSpec) -> None:
        super().__init__(spec)
        self.roles = spec.roles
        self.threshold = spec.threshold
        self.rules = "rules" in spec.tiers
        self.classifier: TextClassifier | None = None
        if spec.model:
            self.classifier = OnnxClassifier(spec.model, spec.positive_class)
        elif "classifier" in spec.tiers:
            self.classifier = builtin_classifier()

    async def check(self, body: dict[str, Any], text: str | None) -> Outcome:
        messages = list(message_texts(body, self.roles))
        if not messages:
            return Outcome(False, "no message to check", score=0.0)
        best = 0.0
        if self.rules:
            for index, content in messages:
                score, families = tier1(content)
                if score >= 1.0:
                    return Outcome(
                        True, f"message {index + 1}: patterns {', '.join(families)}", score=score
                    )
                best = max(best, score)
        if self.classifier is None:
            return Outcome(False, f"patterns scored {best:.1f} (1 triggers)", score=best)
        loop = asyncio.get_running_loop()
        texts = [content for _, content in messages]
        scores = await loop.run_in_executor(None, self.classifier.score, texts)
        top = max(range(len(scores)), key=scores.__getitem__)
        best = max(best, scores[top])
        if scores[top] >= self.threshold:
            where = messages[top][0] + 1
            return Outcome(
                True, f"message {where}: classifier {scores[top]:.2f} >= {self.threshold}", best
            )
        return Outcome(False, f"classifier {scores[top]:.2f} < {self.threshold}", score=best)
