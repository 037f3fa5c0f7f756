"""LLM-as-judge: a model grades an output against a rubric, through any provider.

The judge is asked for ``{"score": 1-5, "reason": "..."}``; its reply is read leniently (a
JSON object anywhere in the text, else ``score: N`` or a lone digit 1-5), because small and
local models rarely answer in clean JSON. The score is returned on [0, 1] ((N - 1) / 4). A
reply with no score is an error the assertion reports with the reply, never a silent 0.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from opsloop.llm.evals.providers import Provider

__all__ = ["JUDGE_SYSTEM", "Verdict", "judge", "parse_verdict"]

JUDGE_SYSTEM = (
    "You are a strict, impartial grader. Read the rubric, the question and the answer. Reply "
    'with only a JSON object: {"score": <integer 1-5, 5 = fully meets the rubric>, '
    '"reason": "<one sentence>"}.'
)
_JSON = re.compile(r"\{[^{}]*\}", re.S)
_SCORE = re.compile(r"score\W{0,3}([1-5])\b", re.I)
_DIGIT = re.compile(r"(?<![\d.])([1-5])(?![\d.])")


@dataclass(frozen=True)
class Verdict:
    score: float | None  # on [0, 1]; None when the reply held no score
    reason: str
    raw: str


def parse_verdict(reply: str) -> Verdict:
    for match in _JSON.finditer(reply):
        try:
            data = json.loads(match.group(0))
        except ValueError:
            continue
        value = data.get("score") if isinstance(data, dict) else None
        if isinstance(value, int | float) and 1 <= value <= 5:
            return Verdict((float(value) - 1) / 4, str(data.get("reason", "")), reply)
    match = _SCORE.search(reply) or _DIGIT.search(reply)
    if match:
        return Verdict((int(match.group(1)) - 1) / 4, reply.strip()[:500], reply)
    return Verdict(None, f"judge reply held no 1-5 score: {reply.strip()[:200]!r}", reply)


def judge(provider: Provider, rubric: str, question: str, answer: str) -> Verdict:
    messages = [
        {"role": "system", "content": JUDGE_SYSTEM},
        {"role": "user", "content": f"Rubric: {rubric}\nQuestion: {question}\nAnswer: {answer}"},
    ]
    completion = provider.complete(messages, {})
    if completion.error is not None:
        return Verdict(None, f"judge call failed: {completion.error}", "")
    return parse_verdict(completion.output or "")
