"""Deployments and their history of traffic changes (who moved what, when, and why)."""

from __future__ import annotations

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from opsloop.store.base import Base


class DeploymentRow(Base):
    __tablename__ = "deployments"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(250), unique=True)
    model_name: Mapped[str] = mapped_column(String(250))
    policy: Mapped[str] = mapped_column(Text)  # JSON TrafficPolicy
    status: Mapped[str] = mapped_column(String(16))  # active, degraded
    revision: Mapped[int] = mapped_column(Integer)  # bumped on every change; runtimes reload
    description: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[int] = mapped_column(BigInteger)
    created_by: Mapped[str] = mapped_column(String(250))


class DeploymentEventRow(Base):
    __tablename__ = "deployment_events"
    __table_args__ = (Index("ix_deployment_events_deployment", "deployment_id", "at"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    deployment_id: Mapped[str] = mapped_column(ForeignKey("deployments.id", ondelete="CASCADE"))
    at: Mapped[int] = mapped_column(BigInteger)
    actor: Mapped[str] = mapped_column(String(250))
    action: Mapped[str] = mapped_column(String(32))
    from_policy: Mapped[str | None] = mapped_column(Text)
    to_policy: Mapped[str | None] = mapped_column(Text)
    reason: Mapped[str | None] = mapped_column(Text)


class RolloutRow(Base):
    """A progressive rollout of a candidate on a deployment, and where it stands."""

    __tablename__ = "rollouts"
    __table_args__ = (Index("ix_rollouts_deployment_status", "deployment_id", "status"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    deployment_id: Mapped[str] = mapped_column(ForeignKey("deployments.id", ondelete="CASCADE"))
    spec: Mapped[str] = mapped_column(Text)  # JSON RolloutSpec
    status: Mapped[str] = mapped_column(String(16))  # running, succeeded, degraded, aborted
    step: Mapped[int] = mapped_column(Integer)
    step_started_at: Mapped[int] = mapped_column(BigInteger)
    window_started_at: Mapped[int] = mapped_column(BigInteger)  # traffic at the current weight
    failures: Mapped[int] = mapped_column(Integer)
    analyses: Mapped[str] = mapped_column(Text)  # JSON list of analysis results
    message: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[int] = mapped_column(BigInteger)
    created_by: Mapped[str] = mapped_column(String(250))
