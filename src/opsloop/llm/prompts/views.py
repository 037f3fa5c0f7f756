"""The prompt registry's web pages: prompts, and a prompt's versions with their templates,
config, variables and labels, with a diff against the previous version."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from opsloop.llm.prompts import services
from opsloop.llm.prompts.tables import PromptRow
from opsloop.web.deps import ReadSession
from opsloop.web.shell import SearchHit, UiDomain

__all__ = ["UI", "router"]

router = APIRouter(include_in_schema=False)


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
    return UI.subpage(request, "prompt.html", name, info=info, versions=versions, diffs=diffs)
