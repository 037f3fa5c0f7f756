"""A new prompt version from the edit form on the prompt's page.

The page posts a plain form (it works with JavaScript off): ``kind`` (``text`` or ``chat``),
the template (``text``, or ``role`` / ``content`` pairs in order), ``config`` as a JSON object
and the commit ``message``. Versions are immutable, so an edit always saves the next version;
saving what the latest version already holds is refused (``Conflict``) rather than answered
with the old version, so that the editor sees that nothing was saved.

Browsers send a textarea's line breaks as CRLF; they are turned back into ``\\n`` here, or
every edit of a template would look like a change of each of its lines.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import ValidationError
from sqlalchemy.orm import Session

from opsloop.errors import Conflict
from opsloop.errors import InvalidInput
from opsloop.llm.prompts import services
from opsloop.llm.prompts.entities import ChatMessage
from opsloop.llm.prompts.entities import Prompt
from opsloop.llm.prompts.entities import PromptVersionCreate
from opsloop.llm.prompts.ports import LabelGate

__all__ = ["MAX_MESSAGES", "save_edit", "version_from_form"]

MAX_MESSAGES = 200
_ROLES = "system, user, assistant or tool"


def _field(form: dict[str, list[str]], name: str) -> str:
    return form.get(name, [""])[0].replace("\r\n", "\n")


def _config(text: str) -> dict[str, Any]:
    try:
        config = json.loads(text.strip() or "{}")
    except json.JSONDecodeError as exc:
        raise InvalidInput(
            f"the config is not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None
    if not isinstance(config, dict):
        raise InvalidInput('the config is a JSON object, such as {"model": "gpt-4o-mini"}')
    return config


def _messages(form: dict[str, list[str]]) -> list[ChatMessage]:
    roles, contents = form.get("role", []), form.get("content", [])
    if len(roles) != len(contents):
        raise InvalidInput("each message of the form needs a role and a content")
    messages = []
    for role, content in zip(roles, contents, strict=True):
        content = content.replace("\r\n", "\n")
        if not content.strip():
            continue  # the blank row the form offers for a new message
        try:
            messages.append(ChatMessage(role=role, content=content))  # type: ignore[arg-type]
        except ValidationError:
            raise InvalidInput(f"unknown message role {role[:40]!r}: use {_ROLES}") from None
    if len(messages) > MAX_MESSAGES:
        raise InvalidInput(f"a prompt holds at most {MAX_MESSAGES} messages")
    return messages


def version_from_form(form: dict[str, list[str]]) -> PromptVersionCreate:
    """The version the edit form describes (``parse_qs`` of its body).

    Raises:
        InvalidInput: No commit message, a config that is not a JSON object, an unknown
            ``kind`` or message role.
    """
    message = _field(form, "message").strip()
    if not message:
        raise InvalidInput("say what changed: the commit message is empty")
    config = _config(_field(form, "config"))
    kind = _field(form, "kind")
    if kind == "text":
        return PromptVersionCreate(text=_field(form, "text"), config=config, message=message)
    if kind == "chat":
        return PromptVersionCreate(messages=_messages(form), config=config, message=message)
    raise InvalidInput(f"unknown prompt kind {kind[:40]!r}: text or chat")


def save_edit(
    session: Session, name: str, body: PromptVersionCreate, *, created_by: str, gate: LabelGate
) -> Prompt:
    """Save ``body`` as the next version of the existing prompt ``name``.

    Raises:
        NotFound: There is no prompt ``name`` (the form edits one; it does not create one).
        InvalidInput: A template the registry refuses (syntax, size, no messages).
        Conflict: The latest version holds this template and config already.
    """
    services.prompt_info(session, name)
    prompt, created = services.create_version(session, name, body, created_by=created_by, gate=gate)
    if not created:
        raise Conflict(
            f"nothing changed: version {prompt.version} holds this template and config already"
        )
    return prompt
