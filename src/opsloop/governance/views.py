"""The audit log page (``/audit``): events newest first, filtered by actor, resource and time,
with the chain's verdict on top. In ``users`` mode it is an admin's page (the route needs
``admin``, and the nav shows it to admins only)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter
from fastapi import Query
from fastapi import Request
from fastapi.responses import Response

from opsloop.errors import InvalidInput
from opsloop.governance import audit
from opsloop.web.deps import ReadSession
from opsloop.web.shell import UiDomain

__all__ = ["UI", "router"]

router = APIRouter(include_in_schema=False)
UI = UiDomain(
    key="audit", title="Audit", href="/audit", package="opsloop.governance", admin_only=True
)
_PAGE = 100


@router.get("/audit")
def audit_page(
    request: Request,
    session: ReadSession,
    actor: Annotated[str, Query(max_length=250)] = "",
    resource: Annotated[str, Query(max_length=1000)] = "",
    since: Annotated[str, Query(max_length=40)] = "",
    before: Annotated[int | None, Query(ge=1)] = None,
) -> Response:
    """Events newest first, :data:`_PAGE` at a time (``before``: the seq to go below)."""
    problem = ""
    since_ms = None
    if since.strip():
        try:
            since_ms = audit.parse_since(since)
        except InvalidInput as exc:
            problem = exc.message
    events = audit.list_events(session, actor=actor.strip() or None,
                               resource=resource.strip() or None, since=since_ms,
                               before_seq=before, limit=_PAGE + 1)  # fmt: skip
    older = events[_PAGE - 1].seq if len(events) > _PAGE else None
    return UI.page(
        request, "audit.html", "Audit log", events=events[:_PAGE], older=older,
        actor=actor, resource=resource, since=since, problem=problem,
        verdict=audit.verify(session),
    )  # fmt: skip
