"""The shapes the prompt registry returns and accepts, the same from SDK, REST and CLI."""

from __future__ import annotations

from typing import Any
from typing import Literal

from pydantic import BaseModel
from pydantic import ConfigDict
from pydantic import Field

from opsloop.errors import InvalidInput
from opsloop.llm.prompts.template import render
from opsloop.llm.tracing.context import current_span

__all__ = ["ChatMessage", "Prompt", "PromptDiff", "PromptInfo", "PromptVersionCreate"]


class ChatMessage(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    role: Literal["system", "user", "assistant", "tool"]
    content: str


class PromptVersionCreate(BaseModel):
    """A new version: ``text`` for a text prompt or ``messages`` for a chat prompt."""

    model_config = ConfigDict(extra="forbid")

    text: str | None = None
    messages: list[ChatMessage] | None = None
    config: dict[str, Any] = Field(
        default_factory=dict, description="model and parameters used with the prompt"
    )
    message: str | None = Field(None, description="what changed, like a commit message")
    labels: list[str] = Field(default_factory=list, description="labels to point at it")


class Prompt(BaseModel):
    """One prompt version; ``compile(**variables)`` renders it in a sandbox.

    Example:
        >>> prompt = opsloop.prompts.get("support-answer", label="production")
        >>> prompt.compile(question="Where is my order?")
    """

    model_config = ConfigDict(frozen=True)

    name: str
    version: int
    type: Literal["text", "chat"]
    text: str | None = None
    messages: list[ChatMessage] | None = None
    config: dict[str, Any] = Field(default_factory=dict)
    variables: list[str] = Field(default_factory=list)
    labels: list[str] = Field(default_factory=list)
    message: str | None = None
    created_at: int
    created_by: str
    is_fallback: bool = Field(False, description="True when built from the caller's fallback")

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"

    def compile(self, **variables: Any) -> Any:
        """The text (text prompt) or the messages as dicts (chat prompt), rendered.

        Inside a traced span, the span records this prompt version (``NAME@N``), so every
        trace says which prompt produced it.
        """
        span = current_span()
        if span is not None and not self.is_fallback and span.record.prompt_name is None:
            span.use_prompt(self)
        if self.type == "text":
            return render(self.text or "", variables)
        used = set(self.variables)
        missing = sorted(used - set(variables))
        if missing:
            raise InvalidInput(
                f"missing template variable(s): {', '.join(missing)}",
                details={"missing": missing},
            )
        return [
            {"role": m.role, "content": render(m.content, variables)} for m in self.messages or []
        ]


class PromptInfo(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    description: str | None = None
    latest_version: int | None = None
    labels: dict[str, int] = Field(default_factory=dict)
    created_at: int
    updated_at: int


class PromptDiff(BaseModel):
    model_config = ConfigDict(frozen=True)

    old: str
    new: str
    template: str = Field(description="unified diff of the template text")
    config: dict[str, tuple[Any, Any]] = Field(
        default_factory=dict, description="config key → (old, new), only those that changed"
    )
    variables_added: list[str] = Field(default_factory=list)
    variables_removed: list[str] = Field(default_factory=list)
