"""``GET /api/lineage``: the graph around a model version, dataset version or run."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi import Query

from opsloop.lineage import routes
from opsloop.web.deps import ReadSession
from opsloop.web.deps import State

router = APIRouter(tags=["lineage"])


@router.get(routes.LINEAGE.template)
def get_lineage(
    session: ReadSession,
    state: State,
    ref: str,
    kind: str | None = Query(None, pattern="^(model|data|run)$"),
) -> dict[str, Any]:
    """Upstream (runs, data versions, code commits) and downstream (evaluations, deployments,
    outputs) of ``ref``: ``churn@3`` (kind=model), ``iris@2`` (kind=data) or a run id. Without
    ``kind``, whichever kind has something named ``ref`` (400 naming them when several do)."""
    return state.lineage.lineage(session, kind, ref)
