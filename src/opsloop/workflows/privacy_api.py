"""``/api/privacy``: retention settings, a sweep now, and erasures (admins, in ``users`` mode:
the roles are in :mod:`opsloop.governance.policy`).

The server's own prediction log (``state.serving.log``) is the one swept and erased here, so a
row this process logged a second ago is sealed and reached too.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from opsloop.governance import retention
from opsloop.kernel.identity import current_user
from opsloop.kernel.routes import Route
from opsloop.web.deps import AppState
from opsloop.web.deps import ReadSession
from opsloop.web.deps import State
from opsloop.workflows.privacy import ErasureRequest
from opsloop.workflows.privacy import ErasureResult
from opsloop.workflows.privacy import SweepResult
from opsloop.workflows.privacy import erase
from opsloop.workflows.privacy import sweep

__all__ = ["ERASURES", "RETENTION", "SWEEPS", "router"]

RETENTION = Route("/privacy/retention")
SWEEPS = Route("/privacy/sweeps")
ERASURES = Route("/privacy/erasures")

router = APIRouter(tags=["privacy"])


def _log(state: AppState) -> Any:
    return getattr(state.serving, "log", None)


@router.get(RETENTION.template)
def get_retention(session: ReadSession) -> retention.RetentionPolicy:
    """Days kept per kind (``null``: forever) and each kind's last sweep."""
    return retention.get_policy(session)


@router.put(RETENTION.template)
def set_retention(body: retention.RetentionSet, state: State) -> retention.RetentionPolicy:
    """Set the kinds the body names (a number of days, or ``null`` to keep forever)."""
    with state.store.write() as session:
        return retention.set_policy(session, body, current_user())


@router.post(SWEEPS.template)
def run_sweep(state: State) -> SweepResult:
    """Sweep every kind with a retention now, whatever the hour's mark says."""
    return sweep(state.store, _log(state), actor=current_user(), force=True)


@router.post(ERASURES.template)
def erase_user(body: ErasureRequest, state: State) -> ErasureResult:
    """Delete one end user's traces, scores, review items and prediction rows (``dry_run``:
    count them). An unknown user id erases nothing: every count is 0."""
    return erase(state.store, _log(state), body.user_id, actor=current_user(),
                 dry_run=body.dry_run)  # fmt: skip
