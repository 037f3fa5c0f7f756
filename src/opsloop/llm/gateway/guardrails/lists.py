"""Word lists: ``topics`` (allow or deny subjects by keyword) and ``banned`` (words and patterns).

Keywords match whole words in any case; a keyword of several words matches across any run of
white space (``credit card`` finds ``Credit  card``). Each list compiles to one regular
expression, so a list of hundreds of words costs one pass over the text.

``topics`` reads, at the input stage, the last user message (earlier turns already passed the
rule when they were last); at the output stage, the answer. ``deny`` triggers on any keyword;
``allow`` triggers when the text mentions none of its keywords (off-topic).

``banned`` reads, at the input stage, every message; at the output stage, the answer.
``redact`` puts ``replacement`` (default ``<BANNED>``) in place of each match.
"""

from __future__ import annotations

import re
from typing import Any

from opsloop.llm.gateway.guardrails.base import Outcome
from opsloop.llm.gateway.guardrails.base import Rule
from opsloop.llm.gateway.guardrails.base import message_texts
from opsloop.llm.gateway.guardrails.base import rewrite_texts
from opsloop.llm.gateway.guardrails.base import short
from opsloop.llm.gateway.guardrails.config import BannedSpec
from opsloop.llm.gateway.guardrails.config import TopicsSpec

__all__ = ["BannedRule", "TopicsRule", "keyword_pattern"]


def keyword_pattern(keywords: list[str]) -> re.Pattern[str]:
    """One case-insensitive pattern matching any keyword as whole words."""
    parts = [r"\s+".join(re.escape(w) for w in k.split()) for k in keywords]
    parts.sort(key=len, reverse=True)  # the longest phrase wins where two start together
    return re.compile(rf"(?<!\w)(?:{'|'.join(parts)})(?!\w)", re.IGNORECASE)


def _last_user_text(body: dict[str, Any]) -> tuple[int, str] | None:
    found = None
    for index, content in message_texts(body, ["user"]):
        if found is None or index != found[0]:
            found = (index, content)
        else:  # several text parts of one message
            found = (index, f"{found[1]}\n{content}")
    return found


class TopicsRule(Rule):
    def __init__(self, spec: TopicsSpec) -> None:
        super().__init__(spec)
        self.allow = keyword_pattern(spec.allow) if spec.allow else None
        self.deny = keyword_pattern(spec.deny) if spec.deny else None

    async def check(self, body: dict[str, Any], text: str | None) -> Outcome:
        if self.stage == "output":
            where, subject = "the answer", text or ""
        else:
            last = _last_user_text(body)
            if last is None:
                return Outcome(False, "no user message")
            where, subject = f"message {last[0] + 1}", last[1]
        if self.deny is not None and (hit := self.deny.search(subject)):
            topic = " ".join(hit.group().lower().split())
            return Outcome(True, f"denied topic {topic!r} in {where}")
        if self.allow is not None and not self.allow.search(subject):
            return Outcome(True, f"off-topic: {where} mentions none of the allowed topics")
        return Outcome(False, "on topic")


class BannedRule(Rule):
    def __init__(self, spec: BannedSpec) -> None:
        super().__init__(spec)
        self.patterns = [keyword_pattern(spec.words)] if spec.words else []
        self.patterns += [re.compile(p) for p in spec.patterns]
        self.replacement = spec.replacement

    def _first(self, text: str) -> str | None:
        for pattern in self.patterns:
            if hit := pattern.search(text):
                return hit.group()
        return None

    def _redact(self, text: str) -> str:
        for pattern in self.patterns:
            text = pattern.sub(self.replacement, text)
        return text

    async def check(self, body: dict[str, Any], text: str | None) -> Outcome:
        if self.stage == "output":
            hit = self._first(text or "")
            if hit is None:
                return Outcome(False, "nothing banned")
            redacted = self._redact(text or "") if self.action == "redact" else None
            return Outcome(True, f"banned {short(hit, 40)!r} in the answer", text=redacted)
        for index, content in message_texts(body):
            if (hit := self._first(content)) is not None:
                redacted = None
                if self.action == "redact":
                    redacted = rewrite_texts(body, None, self._redact)
                return Outcome(
                    True, f"banned {short(hit, 40)!r} in message {index + 1}", body=redacted
                )
        return Outcome(False, "nothing banned")
