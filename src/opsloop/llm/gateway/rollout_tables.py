"""The gateway's routes as the store knows them: one row per route with its rollout's live
state, and the history of every change to a route's traffic (who, what, why).

The live share lives here, not in a process: every gateway process reads it on each tick of its
controller, so several gateways in front of one store split the traffic alike, and a change
made by one of them (or by ``opsloop gateway-routes rollout``) reaches the others within a tick.
"""

from __future__ import annotations

from sqlalchemy import BigInteger
from sqlalchemy import Float
from sqlalchemy import Index
from sqlalchemy import Integer
from sqlalchemy import String
from sqlalchemy import Text
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column

from opsloop.store import columns as col
from opsloop.store.base import Base

__all__ = ["RouteHistoryRow", "RouteStateRow"]


class RouteStateRow(Base):
    """A route a gateway serves; the rollout columns are null when it has none."""

    __tablename__ = "gateway_routes"

    route: Mapped[str] = mapped_column(String(200), primary_key=True)
    targets: Mapped[str] = mapped_column(Text)  # JSON list of {name, weight}
    baseline: Mapped[str | None] = mapped_column(String(100))
    candidate: Mapped[str | None] = mapped_column(String(100))
    mode: Mapped[str | None] = mapped_column(String(8))  # canary, ab
    share: Mapped[float | None] = mapped_column(Float)  # the candidate's % of the pair's traffic
    step: Mapped[int] = mapped_column(Integer)
    status: Mapped[str | None] = mapped_column(String(16))  # running, paused, promoted, rolled_back
    step_started_at: Mapped[int | None] = mapped_column(BigInteger)  # ms
    judged_at: Mapped[int | None] = mapped_column(BigInteger)
    verdict: Mapped[str | None] = mapped_column(Text)  # JSON: the latest judgment
    updated_at: Mapped[int] = mapped_column(BigInteger)
    updated_by: Mapped[str] = mapped_column(String(250))


class RouteHistoryRow(col.IdKey, Base):
    """One change of a route's traffic: a rollout started, stepped, promoted, rolled back,
    paused or resumed, by the controller or a person."""

    __tablename__ = "gateway_route_history"
    __table_args__ = (Index("ix_gateway_route_history_route", "route", "at"),)

    route: Mapped[str] = mapped_column(String(200))
    at: Mapped[int] = mapped_column(BigInteger)
    actor: Mapped[str] = mapped_column(String(250))
    action: Mapped[str] = mapped_column(String(16))
    share_before: Mapped[float | None] = mapped_column(Float)
    share_after: Mapped[float | None] = mapped_column(Float)
    reason: Mapped[str] = mapped_column(Text)
    details: Mapped[str] = mapped_column(Text)  # JSON: the windows judged, the targets
