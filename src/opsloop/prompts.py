"""The prompt registry: ``opsloop.prompts.create``, ``get`` (cached), ``set_label``...

Module-level functions use the default client::

    import opsloop

    opsloop.prompts.create("answer", text="Answer briefly: {{ question }}", labels=["production"])
    prompt = opsloop.prompts.get("answer")            # label production, cached for 60 s
    text = prompt.compile(question="Where is my order?")
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from typing import Any

if TYPE_CHECKING:
    from opsloop.llm.prompts.entities import Prompt
    from opsloop.llm.prompts.entities import PromptDiff
    from opsloop.llm.prompts.sdk import PromptsClient

__all__ = ["create", "diff", "get", "set_label", "versions"]


def _prompts() -> PromptsClient:
    from opsloop.fluent import get_client

    return get_client().prompts


def create(name: str, **options: Any) -> Prompt:
    """Save the next version of a prompt (see ``PromptsClient.create``)."""
    return _prompts().create(name, **options)


def get(name: str, **options: Any) -> Prompt:
    """A version by label (default ``production``) or number, cached with a fallback."""
    return _prompts().get(name, **options)


def set_label(name: str, version: int, label: str) -> Prompt:
    return _prompts().set_label(name, version, label)


def versions(name: str) -> list[Prompt]:
    return _prompts().versions(name)


def diff(name: str, old: int, new: int) -> PromptDiff:
    return _prompts().diff(name, old, new)
