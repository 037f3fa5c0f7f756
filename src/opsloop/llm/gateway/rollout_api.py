"""The gateway's routes over REST, under ``/api/gateway``: their targets and live rollout
share, each route's history, and a maintainer's override (promote, roll back, pause, resume).

``opsloop server`` mounts them (:func:`opsloop.app.gateway.mount_gateway`); the role each needs
is in :mod:`opsloop.governance.policy`. The gateways in front of the same store pick an
override up within a tick of their controller.
"""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter
from pydantic import BaseModel
from pydantic import ConfigDict
from pydantic import Field

from opsloop.kernel.identity import current_user
from opsloop.kernel.timeutil import now_ms
from opsloop.llm.gateway import rollout_state as state
from opsloop.llm.gateway.rollout_state import HistoryEntry
from opsloop.llm.gateway.rollout_state import RouteState
from opsloop.web.deps import ReadSession
from opsloop.web.deps import WriteSession
from opsloop.web.openapi import error_response

__all__ = ["HISTORY", "OVERRIDE", "ROUTES", "RolloutOverride", "router"]

ROUTES = "/gateway/routes"
HISTORY = "/gateway/routes/{route}/history"
OVERRIDE = "/gateway/routes/{route}/rollout"

router = APIRouter(tags=["gateway"])


class RolloutOverride(BaseModel):
    model_config = ConfigDict(extra="forbid")

    action: Literal["promote", "rollback", "pause", "resume"]
    reason: str | None = Field(None, max_length=2000, description="why, for the history")


@router.get(ROUTES)
def list_routes(session: ReadSession) -> list[RouteState]:
    """Every route a gateway on this store has served, with its rollout's live share."""
    return state.list_routes(session)


@router.get(HISTORY, responses={404: error_response("no such route")})
def route_history(route: str, session: ReadSession, limit: int = 1000) -> list[HistoryEntry]:
    """The route's changes, oldest first: who, what, why, the share before and after."""
    return state.history(session, route, max(1, min(limit, 10_000)))


@router.post(
    OVERRIDE,
    responses={400: error_response("no rollout, or not in that state"),
               404: error_response("no such route")},
)  # fmt: skip
def override_rollout(route: str, body: RolloutOverride, session: WriteSession) -> RouteState:
    """Promote, roll back, pause or resume the route's rollout by hand (recorded with the
    caller's name in the history and the audit log)."""
    return state.override(session, route, body.action, current_user(), body.reason, now_ms())
