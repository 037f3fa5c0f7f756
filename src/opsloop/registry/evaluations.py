"""Stored evaluations: services that record a report and link it into the lineage graph.

An evaluation of a registered version gets the edge ``model_version -evaluated-> evaluation``;
one over a dataset version gets ``dataset_version -input-> evaluation``. Every function takes a
session and never commits.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from pydantic import BaseModel
from pydantic import ConfigDict
from pydantic import Field
from sqlalchemy.orm import Session

from opsloop.errors import InvalidInput
from opsloop.kernel.timeutil import now_ms
from opsloop.lineage import graph
from opsloop.registry.tables import EvaluationRow
from opsloop.store.columns import newest_rows
from opsloop.store.ids import row_by_id
from opsloop.store.rows import from_row

__all__ = [
    "EVALUATION",
    "Evaluation",
    "evaluation_lineage_label",
    "get_evaluation",
    "list_evaluations",
    "record_evaluation",
]

EVALUATION = "evaluation"


class Evaluation(BaseModel):
    model_config = ConfigDict(frozen=True)

    evaluation_id: str | None = Field(None, description="None for an evaluation not stored")
    model_ref: str | None = None
    dataset_ref: str | None = None
    task: str
    target: str | None = None
    metrics: dict[str, float | None] = Field(default_factory=dict)
    report: dict[str, Any] = Field(default_factory=dict, description="slices, curves, plots")
    created_at: int
    created_by: str


def _entity(row: EvaluationRow, full: bool = True) -> Evaluation:
    report = json.loads(row.report)
    shown = report if full else {k: v for k, v in report.items() if k != "plots"}
    metrics = report.get("metrics", {})
    return from_row(Evaluation, row, evaluation_id=row.id, metrics=metrics, report=shown)


def record_evaluation(
    session: Session,
    report: dict[str, Any],
    *,
    created_by: str,
    model_ref: str | None = None,
    dataset_ref: str | None = None,
) -> Evaluation:
    """Store an evaluation report; ``model_ref`` / ``dataset_ref`` must exist when given."""
    from opsloop.data.versions import version_row
    from opsloop.registry.models import MODEL_VERSION
    from opsloop.registry.models import resolve_version_row

    if "task" not in report or "metrics" not in report:
        raise InvalidInput("an evaluation report needs at least 'task' and 'metrics'")
    row = EvaluationRow(
        id=uuid.uuid4().hex,
        task=str(report["task"]),
        target=report.get("target"),
        report=json.dumps(report, allow_nan=False, default=str),
        created_at=now_ms(),
        created_by=created_by,
    )
    node = (EVALUATION, row.id)
    if model_ref is not None:
        model, version = resolve_version_row(session, model_ref)
        row.model_version_id, row.model_ref = version.id, f"{model.name}@{version.number}"
        graph.add_edge(session, (MODEL_VERSION, version.id), node, "evaluated")
    if dataset_ref is not None:
        dataset, data_version = version_row(session, dataset_ref)
        row.dataset_version_id = data_version.id
        row.dataset_ref = f"{dataset.name}@{data_version.number}"
        graph.add_edge(session, (graph.DATASET_VERSION, data_version.id), node, "input")
    session.add(row)
    session.flush()
    return _entity(row)


def get_evaluation(session: Session, evaluation_id: str) -> Evaluation:
    row: EvaluationRow = row_by_id(session, EvaluationRow, evaluation_id, "evaluation")
    return _entity(row)


def list_evaluations(session: Session, model_ref: str, limit: int = 100) -> list[Evaluation]:
    """A version's evaluations, newest first, without their plots."""
    from opsloop.registry.models import resolve_version_row

    _, version = resolve_version_row(session, model_ref)
    owner, stamp = EvaluationRow.model_version_id, EvaluationRow.created_at
    return [_entity(r, full=False) for r in newest_rows(session, owner, version.id, stamp, limit)]


def evaluation_lineage_label(session: Session, evaluation_id: str) -> dict[str, Any]:
    """How a stored evaluation appears in a lineage walk: what it measured, on what."""
    row = session.get(EvaluationRow, evaluation_id)
    if row is None:
        return {}
    on = f" on {row.dataset_ref}" if row.dataset_ref else ""
    return {"label": f"evaluation {evaluation_id[:8]} of {row.model_ref}{on}"}
