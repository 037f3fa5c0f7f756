"""Deployment services: create, change traffic, promote, roll back, delete; every change is an
event, bumps the deployment's revision (runtimes reload on it), and keeps the lineage edges
``deployment -serves-> model_version`` equal to the versions its policy names, which is what
stops a served version from being deleted.

Every function takes an open session and never commits.
"""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.orm import Session

from opsloop.errors import Conflict
from opsloop.errors import InvalidInput
from opsloop.errors import NotFound
from opsloop.kernel.refs import check_name
from opsloop.kernel.timeutil import now_ms
from opsloop.lineage import graph
from opsloop.registry.aliases import set_alias
from opsloop.registry.models import model_row
from opsloop.registry.models import resolve_version_row
from opsloop.serving.entities import Deployment
from opsloop.serving.entities import DeploymentCreate
from opsloop.serving.entities import DeploymentEvent
from opsloop.serving.entities import TrafficPolicy
from opsloop.serving.entities import deployment_from_row
from opsloop.serving.entities import event_from_row
from opsloop.serving.tables import DeploymentEventRow
from opsloop.serving.tables import DeploymentRow
from opsloop.store.columns import named_row

__all__ = [
    "DEPLOYMENT",
    "create_deployment",
    "delete_deployment",
    "deployment_events",
    "deployment_row",
    "get_deployment",
    "list_deployments",
    "promote",
    "record_batch",
    "record_event",
    "rollback",
    "set_policy",
]

DEPLOYMENT = "deployment"


def deployment_row(session: Session, name: str) -> DeploymentRow:
    """The deployment's row (``NotFound`` when there is none), for rollouts too."""
    row: DeploymentRow = named_row(session, DeploymentRow, name, "deployment")
    return row


def _serve(session: Session, row: DeploymentRow, policy: TrafficPolicy) -> None:
    """Check every version the policy names exists, and point the lineage edges at them."""
    node = (DEPLOYMENT, row.id)
    targets = []
    for number in policy.versions():
        try:
            _, version = resolve_version_row(session, f"{row.model_name}@{number}")
        except NotFound:
            raise NotFound(f"model {row.model_name!r} has no version {number} to serve") from None
        targets.append(version.id)
    graph.remove_edges(session, node, "serves")
    for version_id in targets:
        graph.add_edge(session, node, ("model_version", version_id), "serves")


def record_event(
    session: Session, row: DeploymentRow, action: str, actor: str,
    before: str | None, after: str | None, reason: str | None = None,
) -> None:  # fmt: skip
    """Add a change of the deployment to its history: who, what, its policy before and after."""
    session.add(
        DeploymentEventRow(
            id=uuid.uuid4().hex,
            deployment_id=row.id,
            at=now_ms(),
            actor=actor,
            action=action,
            from_policy=before,
            to_policy=after,
            reason=reason,
        )
    )


def create_deployment(session: Session, body: DeploymentCreate, created_by: str) -> Deployment:
    name = check_name(body.name, "deployment")
    if session.scalars(select(DeploymentRow.id).where(DeploymentRow.name == name)).first():
        raise Conflict(f"deployment {name!r} already exists; change its traffic instead")
    model_row(session, body.model)  # NotFound for an unknown model
    now = now_ms()
    row = DeploymentRow(
        id=uuid.uuid4().hex, name=name, model_name=body.model,
        policy=body.policy.model_dump_json(), status="active", revision=1,
        description=body.description, created_at=now, updated_at=now, created_by=created_by,
    )  # fmt: skip
    session.add(row)
    session.flush()
    _serve(session, row, body.policy)
    record_event(session, row, "create", created_by, None, row.policy)
    return deployment_from_row(row)


def get_deployment(session: Session, name: str) -> Deployment:
    return deployment_from_row(deployment_row(session, name))


def list_deployments(session: Session) -> list[Deployment]:
    return [
        deployment_from_row(r)
        for r in session.scalars(select(DeploymentRow).order_by(DeploymentRow.name))
    ]


def set_policy(
    session: Session,
    name: str,
    policy: TrafficPolicy,
    actor: str,
    *,
    action: str = "traffic",
    reason: str | None = None,
    expected_revision: int | None = None,
    status: str = "active",
) -> Deployment:
    """Replace the traffic policy; ``expected_revision`` makes it compare-and-set (409)."""
    row = deployment_row(session, name)
    if expected_revision is not None and row.revision != expected_revision:
        raise Conflict(
            f"deployment {name!r} changed (revision {row.revision}, expected "
            f"{expected_revision}): another change is in progress"
        )
    _serve(session, row, policy)
    before = row.policy
    row.policy, row.status = policy.model_dump_json(), status
    row.revision += 1
    row.updated_at = now_ms()
    record_event(session, row, action, actor, before, row.policy, reason)
    session.flush()
    return deployment_from_row(row)


def promote(
    session: Session, name: str, actor: str, *, alias: str | None = "champion"
) -> Deployment:
    """The candidate takes all traffic and (by default) the model's ``champion`` alias."""
    current = get_deployment(session, name)
    candidate = current.policy.candidate
    if candidate is None:
        raise InvalidInput(f"deployment {name!r} has no candidate to promote")
    deployment = set_policy(
        session, name, TrafficPolicy(stable=candidate), actor, action="promote",
        reason=f"v{candidate} promoted from {current.policy.describe()}",
    )  # fmt: skip
    if alias:
        set_alias(
            session, current.ref(candidate), alias, created_by=actor,
            reason=f"promoted by deployment {name}",
        )  # fmt: skip
    return deployment


def rollback(session: Session, name: str, actor: str, reason: str | None = None) -> Deployment:
    """All traffic back to the stable version; the candidate is dropped."""
    current = get_deployment(session, name)
    if current.policy.candidate is None:
        raise InvalidInput(f"deployment {name!r} has no candidate to roll back")
    return set_policy(
        session, name, TrafficPolicy(stable=current.policy.stable), actor, action="rollback",
        reason=reason or "manual rollback",
    )  # fmt: skip


def delete_deployment(session: Session, name: str, actor: str) -> None:
    row = deployment_row(session, name)
    graph.remove_edges(session, (DEPLOYMENT, row.id), "serves")
    session.delete(row)


def record_batch(session: Session, model_ref: str, input_ref: str | None, output_ref: str) -> None:
    """Lineage of a batch inference: the model version and the input behind the output."""
    from opsloop.data.versions import version_row as data_version_row

    _, model_version = resolve_version_row(session, model_ref)
    _, output = data_version_row(session, output_ref)
    graph.add_edge(
        session,
        ("model_version", model_version.id),
        (graph.DATASET_VERSION, output.id),
        "predicted",
    )
    if input_ref is not None:
        _, source = data_version_row(session, input_ref)
        graph.add_edge(
            session,
            (graph.DATASET_VERSION, source.id),
            (graph.DATASET_VERSION, output.id),
            "scored",
        )


def deployment_events(session: Session, name: str) -> list[DeploymentEvent]:
    row = deployment_row(session, name)
    events = session.scalars(
        select(DeploymentEventRow)
        .where(DeploymentEventRow.deployment_id == row.id)
        .order_by(DeploymentEventRow.at)
    )
    return [event_from_row(event) for event in events]
