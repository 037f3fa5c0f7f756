"""The registry's web pages: models, a model (versions, aliases, gate, alias history with
verdicts), a version (signature, card, training run, evaluations with plots, lineage).

Evaluation plots are SVG documents that anyone with API access could have stored, so they
are never inlined: each is served on its own URL as ``image/svg+xml`` under a sandboxing
Content-Security-Policy and shown through ``<img>``, where an SVG cannot run script.
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi import Request
from fastapi.responses import Response

from opsloop.errors import NotFound
from opsloop.governance.policy import may
from opsloop.registry import aliases
from opsloop.registry import cards
from opsloop.registry import evaluations as stored
from opsloop.registry import models
from opsloop.registry import versions
from opsloop.registry.tables import RegisteredModelRow
from opsloop.web.deps import ReadSession
from opsloop.web.deps import State
from opsloop.web.search import find_by_name
from opsloop.web.shell import UiDomain

__all__ = ["UI", "router"]

router = APIRouter(include_in_schema=False)


UI = UiDomain(
    key="registry",
    title="Models",
    href="/models",
    package="opsloop.registry",
    find=find_by_name("model", RegisteredModelRow.name, "/models"),
)


@router.get("/models")
def models_page(request: Request, session: ReadSession) -> Response:
    listed = models.list_models(session, max_results=10_000).items
    return UI.page(request, "models.html", "Models", models=listed)


@router.get("/models/{name}")
def model_page(request: Request, name: str, session: ReadSession) -> Response:
    model = models.get_model(session, name)
    listed = versions.list_versions(session, name, max_results=10_000).items
    history = aliases.alias_history(session, name)
    return UI.subpage(request, "model.html", name, model=model, versions=listed, history=history)


@router.get("/models/{name}/versions/{selector}")
def version_page(
    request: Request, name: str, selector: str, session: ReadSession, state: State
) -> Response:
    ref = f"{name}@{selector}"
    card = cards.build_card(session, ref)
    evaluations = [stored.get_evaluation(session, e["evaluation_id"]) for e in card["evaluations"]]
    return UI.subpage(
        request,
        "version.html",
        card["ref"],
        (name, f"/models/{name}"),
        card=card,
        evaluations=evaluations,
        graph=state.lineage.lineage(session, "model", card["ref"]),
        can_edit=may("PATCH", "/api/models/{name}/versions/{selector}"),
    )


@router.get("/evaluations/{evaluation_id}/plots/{plot}.svg")
def evaluation_plot(evaluation_id: str, plot: str, session: ReadSession) -> Response:
    evaluation = stored.get_evaluation(session, evaluation_id)
    svg = evaluation.report.get("plots", {}).get(plot)
    if not isinstance(svg, str):
        raise NotFound(f"evaluation {evaluation_id} has no plot {plot!r}")
    return Response(
        svg,
        media_type="image/svg+xml",
        headers={
            "Content-Security-Policy": "sandbox; default-src 'none'; style-src 'unsafe-inline'",
            "X-Content-Type-Options": "nosniff",
            "Cache-Control": "private, max-age=86400",
        },
    )
