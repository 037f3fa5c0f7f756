"""The prompt registry's REST routes under ``/api``: prompts, versions, labels and diffs.

Routes that move labels depend on ``label_gate`` (:mod:`opsloop.llm.prompts.gate`), the gate
the app hands in (the evals domain's): prompts may not import evals. ``/prompt-renders``
renders a template that need not be stored (the playground's edited copy).
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi import Response
from fastapi import status
from pydantic import BaseModel
from pydantic import Field

from opsloop.kernel.bounds import PositiveInt64
from opsloop.kernel.identity import current_user
from opsloop.kernel.paging import Page
from opsloop.llm.prompts import routes
from opsloop.llm.prompts import services
from opsloop.llm.prompts.entities import Prompt
from opsloop.llm.prompts.entities import PromptDiff
from opsloop.llm.prompts.entities import PromptInfo
from opsloop.llm.prompts.entities import PromptVersionCreate
from opsloop.llm.prompts.gate import Gate
from opsloop.llm.prompts.gate import label_gate
from opsloop.llm.prompts.playground import PromptRender
from opsloop.llm.prompts.playground import RenderedPrompt
from opsloop.llm.prompts.playground import render_copy
from opsloop.web.deps import PageQuery
from opsloop.web.deps import ReadSession
from opsloop.web.deps import WriteSession
from opsloop.web.deps import version_ref

__all__ = ["label_gate", "router"]

router = APIRouter(tags=["prompts"])


class LabelSet(BaseModel):
    version: PositiveInt64 = Field(description="the version number the label should point at")


@router.get(routes.PROMPTS.template)
def list_prompts(session: ReadSession, page: PageQuery) -> Page[PromptInfo]:
    return services.list_prompts(session, page.max_results, page.page_token)


@router.get(routes.PROMPT.template)
def get_prompt_info(name: str, session: ReadSession) -> PromptInfo:
    return services.prompt_info(session, name)


@router.get(routes.VERSIONS.template)
def list_versions(name: str, session: ReadSession) -> list[Prompt]:
    """Every version, newest first."""
    return services.list_versions(session, name)


@router.post(routes.VERSIONS.template, status_code=status.HTTP_201_CREATED)
def create_version(
    name: str, body: PromptVersionCreate, session: WriteSession, gate: Gate, response: Response
) -> Prompt:
    """Save the next version (201), or get the latest back (200) if it holds the same template
    and config; ``labels`` are pointed at it either way."""
    prompt, created = services.create_version(
        session, name, body, created_by=current_user(), gate=gate
    )
    if not created:
        response.status_code = status.HTTP_200_OK
    return prompt


@router.get(routes.VERSION.template)
def get_version(name: str, selector: str, session: ReadSession) -> Prompt:
    """``selector`` is a number, a label (``production``) or ``latest``."""
    return services.get_prompt(session, version_ref(name, selector))


@router.put(routes.LABEL.template)
def set_label(name: str, label: str, body: LabelSet, session: WriteSession, gate: Gate) -> Prompt:
    return services.set_label(session, version_ref(name, body.version), label, gate=gate)


@router.delete(routes.LABEL.template, status_code=status.HTTP_204_NO_CONTENT)
def delete_label(name: str, label: str, session: WriteSession) -> None:
    services.delete_label(session, name, label)


@router.get(routes.DIFFS.template)
def diff(old: str, new: str, session: ReadSession) -> PromptDiff:
    """Template (unified diff), config and variables changed from ``old`` to ``new``."""
    return services.diff_versions(session, old, new)


@router.post(routes.RENDERS.template)
def render(body: PromptRender) -> RenderedPrompt:
    """A template (stored or not) rendered with ``variables`` into chat messages, in the same
    sandbox as ``compile``: a text prompt becomes one user message. 400 names any variable
    left without a value (``details.missing``)."""
    return render_copy(body)
