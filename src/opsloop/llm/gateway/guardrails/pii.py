"""PII in requests (``pii``) and in answers (``pii_leak``), found by the governance recognizers.

The same :class:`opsloop.governance.pii.PiiDetector` that scans datasets scans messages here, so
a value ``opsloop data scan --pii`` reports is the value the gateway redacts. ``redact`` puts a
placeholder naming the kind in place of each value (``<EMAIL>``, ``<PHONE>``, ``<CREDIT_CARD>``),
which keeps the sentence readable for the model. The detector is regular expressions behind
cheap pre-filters (microseconds a message), so it runs inline on the event loop. Reasons count
what was found and where, never the values: they are written to the call's span.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from opsloop.governance.pii import Finding
from opsloop.governance.pii import PiiDetector
from opsloop.llm.gateway.guardrails.base import Outcome
from opsloop.llm.gateway.guardrails.base import Rule
from opsloop.llm.gateway.guardrails.base import message_texts
from opsloop.llm.gateway.guardrails.base import rewrite_texts
from opsloop.llm.gateway.guardrails.config import PiiLeakSpec
from opsloop.llm.gateway.guardrails.config import PiiSpec

__all__ = ["PLACEHOLDERS", "PiiLeakRule", "PiiRule", "redact"]

PLACEHOLDERS = {
    "EMAIL_ADDRESS": "<EMAIL>",
    "PHONE_NUMBER": "<PHONE>",
    "CREDIT_CARD": "<CREDIT_CARD>",
    "US_SSN": "<SSN>",
    "IBAN_CODE": "<IBAN>",
    "IP_ADDRESS": "<IP_ADDRESS>",
    "PERSON": "<PERSON>",
}


def redact(text: str, findings: list[Finding]) -> str:
    """``text`` with each finding replaced by its placeholder (findings do not overlap)."""
    out, last = [], 0
    for f in sorted(findings, key=lambda f: f.start):
        out += [text[last : f.start], PLACEHOLDERS[f.entity]]
        last = f.end
    out.append(text[last:])
    return "".join(out)


def _counted(counts: Counter[str]) -> str:
    return ", ".join(f"{n} {entity}" for entity, n in sorted(counts.items()))


class PiiRule(Rule):
    """Input stage: PII in the messages of the chosen ``roles``."""

    def __init__(self, spec: PiiSpec) -> None:
        super().__init__(spec)
        self.detector = PiiDetector(spec.entities)
        self.roles = spec.roles

    async def check(self, body: dict[str, Any], text: str | None) -> Outcome:
        where: dict[int, Counter[str]] = {}
        for index, content in message_texts(body, self.roles):
            for finding in self.detector.find(content):
                where.setdefault(index, Counter())[finding.entity] += 1
        if not where:
            return Outcome(False, "no PII found")
        reason = "; ".join(f"{_counted(c)} in message {i + 1}" for i, c in where.items())
        redacted = None
        if self.action == "redact":
            redacted = rewrite_texts(body, self.roles, lambda t: redact(t, self.detector.find(t)))
        return Outcome(True, reason, body=redacted)


class PiiLeakRule(Rule):
    """Output stage: PII in the answer."""

    def __init__(self, spec: PiiLeakSpec) -> None:
        super().__init__(spec)
        self.detector = PiiDetector(spec.entities)

    async def check(self, body: dict[str, Any], text: str | None) -> Outcome:
        findings = self.detector.find(text or "")
        if not findings:
            return Outcome(False, "no PII found")
        reason = f"{_counted(Counter(f.entity for f in findings))} in the answer"
        redacted = redact(text or "", findings) if self.action == "redact" else None
        return Outcome(True, reason, text=redacted)
