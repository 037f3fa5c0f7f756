"""The prompt registry's web pages: prompts, and a prompt's versions with their templates,
config, variables and labels, with a diff against the previous version; an edit form that saves
the next version, two versions side by side, and a playground that sends a version (or an
edited copy) through the LLM gateway.

Who may edit is the server's route policy (:mod:`opsloop.governance.policy`), asked here only
to hide what a caller could not use: the write itself is refused by the server's auth check.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs
from urllib.parse import quote

from fastapi import APIRouter
from fastapi import Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse
from fastapi.responses import Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from opsloop.errors import Conflict
from opsloop.errors import InvalidInput
from opsloop.governance.policy import may
from opsloop.kernel.identity import current_user
from opsloop.llm.prompts import services
from opsloop.llm.prompts.diff import compare
from opsloop.llm.prompts.edits import save_edit
from opsloop.llm.prompts.edits import version_from_form
from opsloop.llm.prompts.entities import Prompt
from opsloop.llm.prompts.gate import Gate
from opsloop.llm.prompts.tables import PromptRow
from opsloop.web.deps import ReadSession
from opsloop.web.deps import State
from opsloop.web.shell import SearchHit
from opsloop.web.shell import UiDomain

__all__ = ["UI", "router"]

router = APIRouter(include_in_schema=False)
_MAX_FORM_BYTES = 2 * 1024 * 1024  # a template at the registry's size limit, url-encoded
_SAVE = "/prompts/{name}/versions"  # the edit form's route, as the policy names it


def _find(session: Session, text: str) -> list[SearchHit]:
    names = session.scalars(
        select(PromptRow.name)
        .where(PromptRow.name.icontains(text, autoescape=True))
        .order_by(PromptRow.name)
        .limit(20)
    )
    return [SearchHit("prompt", name, f"/prompts/{name}", name) for name in names]


UI = UiDomain(
    key="prompts", title="Prompts", href="/prompts", package="opsloop.llm.prompts", find=_find
)


def _draft(prompt: Prompt, message: str = "") -> dict[str, Any]:
    """The edit form's fields, filled from ``prompt``."""
    return {
        "kind": prompt.type,
        "text": prompt.text or "",
        "messages": [(m.role, m.content) for m in prompt.messages or []],
        "config": json.dumps(prompt.config, indent=2, sort_keys=True),
        "message": message,
        "base": prompt.version,
    }


def _draft_from_form(form: dict[str, list[str]]) -> dict[str, Any]:
    """The edit form's fields as they were posted, to show them again with the error."""
    first = {key: values[0].replace("\r\n", "\n") for key, values in form.items() if values}
    pairs = zip(form.get("role", []), form.get("content", []), strict=False)
    return {
        "kind": first.get("kind", "text"),
        "text": first.get("text", ""),
        "messages": [(r, c.replace("\r\n", "\n")) for r, c in pairs if c.strip()],
        "config": first.get("config", "{}"),
        "message": first.get("message", ""),
        "base": first.get("base", ""),
    }


@router.get("/prompts")
def prompts_page(request: Request, session: ReadSession) -> Response:
    listed = services.list_prompts(session, 10_000, None).items
    return UI.page(request, "prompts.html", "Prompts", prompts=listed)


@router.get("/prompts/{name}")
def prompt_page(request: Request, name: str, session: ReadSession) -> Response:
    info = services.prompt_info(session, name)
    versions = services.list_versions(session, name)
    diffs = {
        v.version: services.diff_versions(session, f"{name}@{v.version - 1}", v.ref).template
        for v in versions
        if v.version > 1
    }
    return UI.subpage(
        request, "prompt.html", name, info=info, versions=versions, diffs=diffs,
        can_edit=may("POST", _SAVE),
    )  # fmt: skip


@router.get("/prompts/{name}/edit")
def edit_page(
    request: Request, name: str, session: ReadSession, version: str = "latest"
) -> Response:
    """The edit form, filled with ``version`` (a number, a label or ``latest``)."""
    prompt = services.get_prompt(session, f"{name}@{version}")
    return _edit(request, name, _draft(prompt), None, 200)


def _edit(
    request: Request, name: str, draft: dict[str, Any], error: str | None, status: int
) -> Response:
    crumbs = (name, f"/prompts/{quote(name)}")
    return UI.subpage(
        request, "edit.html", f"Edit {name}", crumbs, status_code=status, name=name,
        draft=draft, error=error,
    )  # fmt: skip


@router.post(_SAVE)
async def save_version(request: Request, name: str, state: State, gate: Gate) -> Response:
    """Save the edit form as the next version, then show it on the prompt's page; a form the
    registry refuses comes back with its values and the reason (400, or 409: no change)."""
    body = await request.body()
    if len(body) > _MAX_FORM_BYTES:
        raise InvalidInput(f"the form is over {_MAX_FORM_BYTES // 1024 // 1024} MiB")
    form = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
    author = current_user()

    def save() -> Prompt:
        with state.store.write() as session:
            return save_edit(session, name, version_from_form(form), created_by=author, gate=gate)

    try:
        saved = await run_in_threadpool(save)
    except (InvalidInput, Conflict) as exc:
        return _edit(request, name, _draft_from_form(form), exc.message, exc.http_status)
    return RedirectResponse(f"/prompts/{quote(name)}#v{saved.version}", status_code=303)


@router.get("/prompts/{name}/diff")
def diff_page(
    request: Request, name: str, session: ReadSession, old: str = "", new: str = "latest"
) -> Response:
    """``old`` and ``new`` (numbers, labels or ``latest``) side by side; ``old`` defaults to
    the version before ``new``."""
    newer = services.get_prompt(session, f"{name}@{new or 'latest'}")
    older = services.get_prompt(session, f"{name}@{old or max(1, newer.version - 1)}")
    versions = services.list_versions(session, name)
    crumbs = (name, f"/prompts/{quote(name)}")
    return UI.subpage(
        request, "diff.html", f"{name}: {older.version} → {newer.version}", crumbs,
        name=name, side=compare(older, newer), versions=versions,
    )  # fmt: skip


@router.get("/prompts/{name}/playground")
def playground_page(
    request: Request, name: str, session: ReadSession, version: str = "latest"
) -> Response:
    """``version`` in an editable copy, sent from the browser to the gateway's
    ``/v1/chat/completions`` (``playground.js``), and saved back as the next version."""
    prompt = services.get_prompt(session, f"{name}@{version}")
    versions = services.list_versions(session, name)
    crumbs = (name, f"/prompts/{quote(name)}")
    return UI.subpage(
        request, "playground.html", f"Playground: {name}", crumbs, name=name, prompt=prompt,
        versions=versions, draft=_draft(prompt), config_json=json.dumps(prompt.config),
        can_save=may("POST", "/api/prompts/{name}/versions"),
    )  # fmt: skip
