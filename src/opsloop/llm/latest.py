"""The latest rows of a timeline, oldest first.

A conversation's traces (``tracing.stats``) and a gateway route's changes
(``gateway.rollout_state``) both show the newest ``limit`` entries in the order they happened:
the query orders newest first so that ``LIMIT`` keeps the latest, and the page is turned round.
"""

from __future__ import annotations

from typing import TypeVar

from sqlalchemy import Select
from sqlalchemy.orm import Session

__all__ = ["latest_oldest_first"]

R = TypeVar("R")


def latest_oldest_first(session: Session, newest_first: Select[tuple[R]], limit: int) -> list[R]:
    """The first ``limit`` rows of ``newest_first`` (a query ordered newest first), reversed."""
    rows = list(session.scalars(newest_first.limit(limit)))
    rows.reverse()
    return rows
