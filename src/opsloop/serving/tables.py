"""Deployments and their history of traffic changes (who moved what, when, and why)."""

from __future__ import annotations

from sqlalchemy import BigInteger
from sqlalchemy import Index
from sqlalchemy import Integer
from sqlalchemy import String
from sqlalchemy import Text
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column

from opsloop.store import columns as col
from opsloop.store.base import Base


class DeploymentRow(col.Named, col.CreatedAt, col.UpdatedAt, col.CreatedBy, Base):
    __tablename__ = "deployments"

    model_name: Mapped[str] = mapped_column(String(250))
    policy: Mapped[str] = mapped_column(Text)  # JSON TrafficPolicy
    status: Mapped[str] = mapped_column(String(16))  # active, degraded
    revision: Mapped[int] = mapped_column(Integer)  # bumped on every change; runtimes reload
    description: Mapped[str | None] = mapped_column(Text)


class DeploymentEventRow(col.IdKey, Base):
    __tablename__ = "deployment_events"
    __table_args__ = (Index("ix_deployment_events_deployment", "deployment_id", "at"),)

    deployment_id: Mapped[str] = col.owner_ref("deployments")
    at: Mapped[int] = mapped_column(BigInteger)
    actor: Mapped[str] = mapped_column(String(250))
    action: Mapped[str] = mapped_column(String(32))
    from_policy: Mapped[str | None] = mapped_column(Text)
    to_policy: Mapped[str | None] = mapped_column(Text)
    reason: Mapped[str | None] = mapped_column(Text)


class RolloutRow(col.IdKey, col.CreatedAt, col.UpdatedAt, col.CreatedBy, Base):
    """A progressive rollout of a candidate on a deployment, and where it stands."""

    __tablename__ = "rollouts"
    __table_args__ = (Index("ix_rollouts_deployment_status", "deployment_id", "status"),)

    deployment_id: Mapped[str] = col.owner_ref("deployments")
    spec: Mapped[str] = mapped_column(Text)  # JSON RolloutSpec
    status: Mapped[str] = mapped_column(String(16))  # running, succeeded, degraded, aborted
    step: Mapped[int] = mapped_column(Integer)
    step_started_at: Mapped[int] = mapped_column(BigInteger)
    window_started_at: Mapped[int] = mapped_column(BigInteger)  # traffic at the current weight
    failures: Mapped[int] = mapped_column(Integer)
    analyses: Mapped[str] = mapped_column(Text)  # JSON list of analysis results
    message: Mapped[str | None] = mapped_column(Text)
