"""The deployment pages: what each deployment serves, and one deployment's traffic, rollout
analyses, history of changes and latest logged predictions with their ground truth."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi import Request
from fastapi.responses import Response

from opsloop.errors import NotFound
from opsloop.serving import rollouts
from opsloop.serving import services
from opsloop.serving.tables import DeploymentRow
from opsloop.web.deps import ReadSession
from opsloop.web.deps import State
from opsloop.web.search import find_by_name
from opsloop.web.shell import UiDomain

__all__ = ["UI", "router"]

router = APIRouter(include_in_schema=False)


UI = UiDomain(
    key="deployments",
    title="Deployments",
    href="/deployments",
    package="opsloop.serving",
    find=find_by_name("deployment", DeploymentRow.name, "/deployments", DeploymentRow.model_name),
)


@router.get("/deployments")
def deployments_page(request: Request, session: ReadSession) -> Response:
    return UI.page(
        request, "deployments.html", "Deployments", deployments=services.list_deployments(session)
    )


@router.get("/deployments/{name}")
def deployment_page(request: Request, name: str, session: ReadSession, state: State) -> Response:
    deployment = services.get_deployment(session, name)
    try:
        rollout: Any = rollouts.get_rollout(session, name)
    except NotFound:
        rollout = None
    frame = state.serving.log.predictions(name).tail(20).iloc[::-1]
    return UI.subpage(
        request,
        "deployment.html",
        name,
        deployment=deployment,
        events=services.deployment_events(session, name)[::-1],
        rollout=rollout,
        predictions=frame.to_dict(orient="records"),
    )
