"""What every rule is: a spec, one async ``check``, and an :class:`Outcome`.

A rule never decides what its action does; it says whether it matched, why, and (for a
``redact`` action) what the request or answer becomes. :class:`~.guard.RouteGuard` turns
outcomes into :class:`~opsloop.llm.gateway.ports.GuardDecision` objects and applies the action.
Reasons go on the call's span, so they never quote the personal data a rule found.

Messages are OpenAI chat messages: ``content`` is a string, or a list of parts of which the
``{"type": "text", "text": ...}`` ones are text (images and audio are passed by).
"""

from __future__ import annotations

from abc import ABC
from abc import abstractmethod
from collections.abc import Callable
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from opsloop.llm.gateway.guardrails.config import RuleSpec

__all__ = ["Outcome", "Rule", "message_texts", "rewrite_texts", "short"]


@dataclass(frozen=True)
class Outcome:
    """One rule's finding. ``body``/``text`` are set only by a redaction that changed something;
    ``reask`` only by a rule that lets the model try once more."""

    triggered: bool
    reason: str = ""
    score: float | None = None
    body: dict[str, Any] | None = None
    text: str | None = None
    reask: str | None = None


class Rule(ABC):
    """One configured rule. ``check`` is called on the event loop: a rule whose work may take
    more than a millisecond moves it to the loop's executor itself."""

    def __init__(self, spec: RuleSpec) -> None:
        self.spec = spec
        self.name = spec.label
        self.stage = spec.stage
        self.action = spec.action

    @abstractmethod
    async def check(self, body: dict[str, Any], text: str | None) -> Outcome:
        """The rule on a request ``body`` (input stage, ``text`` None) or on the answer ``text``
        of that request (output stage)."""


def message_texts(
    body: dict[str, Any], roles: list[str] | None = None
) -> Iterator[tuple[int, str]]:
    """``(message index, text)`` of each text in the messages whose role is in ``roles``
    (every role for None)."""
    messages = body.get("messages") if isinstance(body, dict) else None
    for index, message in enumerate(messages if isinstance(messages, list) else []):
        if not isinstance(message, dict) or (
            roles is not None and message.get("role") not in roles
        ):
            continue
        content = message.get("content")
        if isinstance(content, str):
            yield index, content
        elif isinstance(content, list):
            for part in content:
                if isinstance(part, dict) and isinstance(part.get("text"), str):
                    yield index, part["text"]


def rewrite_texts(
    body: dict[str, Any], roles: list[str] | None, change: Callable[[str], str]
) -> dict[str, Any] | None:
    """A copy of ``body`` with ``change`` applied to each text of the chosen messages, or None
    when nothing changed. The caller's body is left as it was (it may be logged or retried)."""
    messages = body.get("messages")
    if not isinstance(messages, list):
        return None
    changed = False
    out = []
    for message in messages:
        if not isinstance(message, dict) or (
            roles is not None and message.get("role") not in roles
        ):
            out.append(message)
            continue
        content = message.get("content")
        new_content: Any = content
        if isinstance(content, str):
            new_content = change(content)
        elif isinstance(content, list):
            new_content = [
                {**part, "text": change(part["text"])}
                if isinstance(part, dict) and isinstance(part.get("text"), str)
                else part
                for part in content
            ]
        if new_content != content:
            changed = True
            message = {**message, "content": new_content}
        out.append(message)
    return {**body, "messages": out} if changed else None


def short(text: str, limit: int = 60) -> str:
    """``text`` on one line, cut to ``limit`` characters with an ellipsis."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
