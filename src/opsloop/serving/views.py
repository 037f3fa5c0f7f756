"""The deployment pages: what each deployment serves, and one deployment's traffic, rollout
analyses, history of changes and latest logged predictions with their ground truth."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from opsloop.errors import NotFound
from opsloop.serving import rollouts, services
from opsloop.serving.tables import DeploymentRow
from opsloop.web.deps import ReadSession, State
from opsloop.web.shell import SearchHit, UiDomain, render

__all__ = ["UI", "router"]

router = APIRouter(include_in_schema=False)


def _find(session: Session, text: str) -> list[SearchHit]:
    rows = session.execute(
        select(DeploymentRow.name, DeploymentRow.model_name)
        .where(DeploymentRow.name.icontains(text, autoescape=True))
        .order_by(DeploymentRow.name)
        .limit(20)
    )
    return [SearchHit("deployment", name, f"/deployments/{name}", model) for name, model in rows]


UI = UiDomain(
    key="deployments",
    title="Deployments",
    href="/deployments",
    package="opsloop.serving",
    find=_find,
)


@router.get("/deployments")
def deployments_page(request: Request, session: ReadSession) -> Response:
    return render(
        request,
        "deployments/deployments.html",
        {
            "title": "Deployments",
            "active": "deployments",
            "deployments": services.list_deployments(session),
        },
    )


@router.get("/deployments/{name}")
def deployment_page(request: Request, name: str, session: ReadSession, state: State) -> Response:
    deployment = services.get_deployment(session, name)
    try:
        rollout: Any = rollouts.get_rollout(session, name)
    except NotFound:
        rollout = None
    frame = state.serving.log.predictions(name).tail(20).iloc[::-1]
    return render(
        request,
        "deployments/deployment.html",
        {
            "title": name, "active": "deployments", "crumbs": [("Deployments", "/deployments")],
            "deployment": deployment, "events": services.deployment_events(session, name)[::-1],
            "rollout": rollout, "predictions": frame.to_dict(orient="records"),
        },
    )  # fmt: skip
