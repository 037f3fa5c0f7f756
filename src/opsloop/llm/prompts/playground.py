"""The playground's server side: render a prompt's template, stored or edited, into the chat
messages the playground page sends to the LLM gateway.

The page lets a user edit a copy of a version before sending it, so what it renders need not be
stored: the template comes in the request, and is rendered in the same sandbox as
:meth:`~opsloop.llm.prompts.entities.Prompt.compile` with the same bounds (template size,
variables, time and memory). Rendering stays on the server, in one place, rather than in a
second template engine in the browser that could disagree with it. A text prompt becomes one
``user`` message, which is how the gateway is asked to complete it.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from pydantic import ConfigDict
from pydantic import Field

from opsloop.errors import InvalidInput
from opsloop.llm.prompts.entities import ChatMessage
from opsloop.llm.prompts.services import MAX_TEMPLATE_CHARS
from opsloop.llm.prompts.template import render
from opsloop.llm.prompts.template import variables_of

__all__ = ["PromptRender", "RenderedPrompt", "render_copy"]


class PromptRender(BaseModel):
    """A template to render: ``text`` (a text prompt) or ``messages`` (chat), and the values."""

    model_config = ConfigDict(extra="forbid")

    text: str | None = None
    messages: list[ChatMessage] | None = None
    variables: dict[str, Any] = Field(default_factory=dict, description="name → value")


class RenderedPrompt(BaseModel):
    model_config = ConfigDict(frozen=True)

    messages: list[ChatMessage] = Field(description="ready for /v1/chat/completions")
    variables: list[str] = Field(description="the variables the template uses, sorted")


def render_copy(body: PromptRender) -> RenderedPrompt:
    """``body``'s template rendered with its variables.

    Raises:
        InvalidInput: Neither or both of text and messages, no messages, a template over the
            size limit or with a syntax error, a variable without a value (``details`` lists
            ``missing`` and every ``variables``), or a render the sandbox refuses.
    """
    if (body.text is None) == (body.messages is None):
        raise InvalidInput("send either text (a text prompt) or messages (a chat prompt)")
    if body.text is not None:
        template = [ChatMessage(role="user", content=body.text)]
    elif not body.messages:
        raise InvalidInput("a chat prompt needs at least one message")
    else:
        template = body.messages
    if sum(len(m.content) for m in template) > MAX_TEMPLATE_CHARS:
        raise InvalidInput(f"the template is over {MAX_TEMPLATE_CHARS:,} characters")
    used = variables_of([m.content for m in template])
    missing = [name for name in used if name not in body.variables]
    if missing:
        raise InvalidInput(
            f"give a value for: {', '.join(missing)}",
            details={"missing": missing, "variables": used},
        )
    rendered = [
        ChatMessage(role=m.role, content=render(m.content, body.variables)) for m in template
    ]
    return RenderedPrompt(messages=rendered, variables=used)
