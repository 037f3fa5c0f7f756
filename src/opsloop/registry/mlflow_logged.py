"""MLflow 3's logged models, kept on opsloop's runs (no table of their own).

MLflow 3 logs a model as a *logged model* (id ``m-<32 hex>``) before anything is registered:
``log_model`` creates one, uploads the model directory to its ``artifact_location``, links it
to the run as an output, and ``registered_model_name`` then registers ``models:/<model_id>``.
opsloop maps that onto what it has:

- the record (name, type, status, tags, params, times) is a tag of the run that logged it,
  ``opsloop.mlflow.logged_model.<model_id>`` → its JSON, so finding a model by id is one look-up
  on the run-tag key index, and the run page shows which models it logged;
- its files are that run's artifacts under ``models/<model_id>/`` and its ``artifact_location``
  is that folder's ``mlflow-artifacts:`` URI, so MLflow's client uploads and downloads them
  through the tracking artifact proxy, into opsloop's blob store, like any artifact;
- a model logged outside any run gets a run of its own (named after the model, tagged
  ``opsloop.mlflow.holder``), ended when the model is finalized.

Registering ``models:/<model_id>`` then registers the run's folder as an ordinary registry
version (:mod:`.mlflow_registry`), linked to the run in the lineage graph.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

from pydantic import BaseModel
from pydantic import Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from opsloop.errors import InvalidInput
from opsloop.errors import NotFound
from opsloop.kernel.identity import current_user
from opsloop.kernel.timeutil import now_ms
from opsloop.registry.mlflow_filters import Search
from opsloop.registry.mlflow_filters import field_of
from opsloop.registry.mlflow_filters import matches
from opsloop.tracking import runs
from opsloop.tracking.entities import RunStatus
from opsloop.tracking.mlflow_protocol import artifact_uri
from opsloop.tracking.mlflow_protocol import resolve_experiment_id
from opsloop.tracking.tables import RunRow
from opsloop.tracking.tables import RunTagRow

__all__ = [
    "RECORD_PREFIX",
    "LoggedModel",
    "create_logged_model",
    "delete_logged_model_tag",
    "finalize_logged_model",
    "get_logged_model",
    "log_outputs",
    "logged_model_json",
    "search_logged_models",
    "set_logged_model_params",
    "set_logged_model_tags",
]

RECORD_PREFIX = "opsloop.mlflow.logged_model."
HOLDER_TAG = "opsloop.mlflow.holder"
_MODEL_ID = re.compile(r"^m-[0-9a-f]{32}$")
_STATUSES = {
    "LOGGED_MODEL_PENDING": "PENDING",
    "LOGGED_MODEL_READY": "READY",
    "LOGGED_MODEL_UPLOAD_FAILED": "FAILED",
    "PENDING": "PENDING",
    "READY": "READY",
    "FAILED": "FAILED",
    "UPLOAD_FAILED": "FAILED",
}
_FILTER_KEYS = (
    "name",
    "model_id",
    "source_run_id",
    "status",
    "model_type",
    "creation_timestamp",
    "last_updated_timestamp",
    "tags.",
    "params.",
)
_ORDER_KEYS = ("name", "creation_timestamp", "last_updated_timestamp", "model_id")


class LoggedModel(BaseModel):
    """A logged model as stored in its run's tag (``run_id``, ``experiment_id`` and
    ``model_id`` come from where it is stored)."""

    model_id: str = ""
    experiment_id: str = ""
    run_id: str = ""
    name: str
    model_type: str | None = None
    source_run_id: str | None = None
    status: str = "PENDING"
    status_message: str | None = None
    created_at: int
    updated_at: int
    creator: str
    output_step: int | None = None
    tags: dict[str, str] = Field(default_factory=dict)
    params: dict[str, str] = Field(default_factory=dict)

    @property
    def folder(self) -> str:
        """Where its files are among the run's artifacts."""
        return f"models/{self.model_id}"

    def record(self) -> str:
        return self.model_dump_json(exclude={"model_id", "experiment_id", "run_id"})


def _check_id(model_id: str) -> str:
    if not isinstance(model_id, str) or not _MODEL_ID.match(model_id):
        raise NotFound(f"logged model {model_id!r} does not exist (ids look like m-<32 hex>)")
    return model_id


def _save(session: Session, model: LoggedModel) -> None:
    session.merge(
        RunTagRow(run_id=model.run_id, key=RECORD_PREFIX + model.model_id, value=model.record())
    )
    session.flush()


def _from_row(model_id: str, run_id: str, experiment_id: str, value: str) -> LoggedModel:
    found = LoggedModel.model_validate_json(value)
    return found.model_copy(
        update={"model_id": model_id, "run_id": run_id, "experiment_id": experiment_id}
    )


def get_logged_model(session: Session, model_id: str) -> LoggedModel:
    """The logged model ``model_id``. ``NotFound``."""
    row = session.execute(
        select(RunTagRow.run_id, RunTagRow.value, RunRow.experiment_id)
        .join(RunRow, RunRow.id == RunTagRow.run_id)
        .where(RunTagRow.key == RECORD_PREFIX + _check_id(model_id))
    ).first()
    if row is None:
        raise NotFound(f"logged model {model_id!r} does not exist")
    return _from_row(model_id, row.run_id, row.experiment_id, row.value)


def create_logged_model(
    session: Session,
    experiment_id: str,
    *,
    name: str | None,
    source_run_id: str | None,
    model_type: str | None,
    tags: dict[str, str],
    params: dict[str, str],
) -> LoggedModel:
    """Record a new logged model on ``source_run_id`` (or on a run of its own when there is
    none). ``NotFound`` for an unknown experiment or run; ``InvalidInput`` for a run of another
    experiment."""
    experiment_id = resolve_experiment_id(session, experiment_id)
    model_id = f"m-{uuid.uuid4().hex}"
    name = name or model_id
    if source_run_id:
        run = runs.require_run(session, source_run_id)
        if run.experiment_id != experiment_id:
            raise InvalidInput(
                f"run {source_run_id} belongs to experiment {run.experiment_id}, "
                f"not {experiment_id}"
            )
        run_id = run.id
    else:
        holder = runs.create_run(
            session, experiment_id, run_name=name[:250], tags={HOLDER_TAG: model_id}
        )
        run_id = holder.info.run_id
    now = now_ms()
    model = LoggedModel(
        model_id=model_id,
        experiment_id=experiment_id,
        run_id=run_id,
        name=name,
        model_type=model_type or None,
        source_run_id=source_run_id or None,
        created_at=now,
        updated_at=now,
        creator=current_user(),
        tags=tags,
        params=params,
    )
    _save(session, model)
    return model


def _update(session: Session, model_id: str, **changes: Any) -> LoggedModel:
    model = get_logged_model(session, model_id)
    changed = model.model_copy(update={**changes, "updated_at": now_ms()})
    _save(session, changed)
    return changed


def finalize_logged_model(session: Session, model_id: str, status: str) -> LoggedModel:
    """Mark the model READY or FAILED; a run held only for it ends with it."""
    state = _STATUSES.get(str(status).upper())
    if state is None or state == "PENDING":
        raise InvalidInput(f"finalize a logged model as READY or FAILED, not {status!r}")
    model = _update(session, model_id, status=state)
    if model.source_run_id is None:
        ended = RunStatus.FINISHED if state == "READY" else RunStatus.FAILED
        runs.update_run(session, model.run_id, status=ended, end_time=now_ms())
    return model


def set_logged_model_tags(session: Session, model_id: str, tags: dict[str, str]) -> LoggedModel:
    model = get_logged_model(session, model_id)
    return _update(session, model_id, tags={**model.tags, **tags})


def delete_logged_model_tag(session: Session, model_id: str, key: str) -> LoggedModel:
    model = get_logged_model(session, model_id)
    if key not in model.tags:
        raise NotFound(f"logged model {model_id} has no tag {key!r}")
    return _update(session, model_id, tags={k: v for k, v in model.tags.items() if k != key})


def set_logged_model_params(session: Session, model_id: str, params: dict[str, str]) -> LoggedModel:
    model = get_logged_model(session, model_id)
    return _update(session, model_id, params={**model.params, **params})


def log_outputs(session: Session, run_id: str, outputs: list[tuple[str, int]]) -> None:
    """Record that run ``run_id`` output these logged models (at these steps). ``NotFound``
    for an unknown run or model."""
    runs.require_run(session, run_id)
    for model_id, step in outputs:
        _update(session, model_id, output_step=step)


def search_logged_models(
    session: Session, experiment_ids: list[str], search: Search
) -> tuple[list[LoggedModel], str | None]:
    """One page of the experiments' logged models that match MLflow's filter, newest first
    unless ``order_by`` (``"FIELD [ASC|DESC]"`` entries) says otherwise."""
    clauses = search.clauses(_FILTER_KEYS)
    ordering = search.order(_ORDER_KEYS, [("creation_timestamp", True)])
    ids = [resolve_experiment_id(session, e) for e in experiment_ids]
    rows = session.execute(
        select(RunTagRow.key, RunTagRow.run_id, RunTagRow.value, RunRow.experiment_id)
        .join(RunRow, RunRow.id == RunTagRow.run_id)
        .where(
            RunTagRow.key.startswith(RECORD_PREFIX, autoescape=True),
            RunRow.experiment_id.in_(ids),
            RunRow.lifecycle_stage == "active",
        )
    ).all()
    found = [
        _from_row(r.key[len(RECORD_PREFIX) :], r.run_id, r.experiment_id, r.value) for r in rows
    ]
    found = [m for m in found if matches(clauses, lambda key, m=m: _field(m, key))]
    return search.page(found, ordering, _sort_field)


def _field(model: LoggedModel, key: str) -> Any:
    attributes = {
        "name": model.name,
        "model_id": model.model_id,
        "source_run_id": model.source_run_id,
        "status": model.status,
        "model_type": model.model_type,
        "creation_timestamp": model.created_at,
        "last_updated_timestamp": model.updated_at,
    }
    return field_of(key, attributes, tags=model.tags, params=model.params)


def _sort_field(model: LoggedModel, key: str) -> Any:
    return _field(model, key) or 0  # a model without the field sorts as 0


def logged_model_json(model: LoggedModel) -> dict[str, Any]:
    """MLflow's ``LoggedModel`` message for ``model``."""
    info: dict[str, Any] = {
        "model_id": model.model_id,
        "experiment_id": model.experiment_id,
        "name": model.name,
        "creation_timestamp_ms": model.created_at,
        "last_updated_timestamp_ms": model.updated_at,
        "artifact_uri": f"{artifact_uri(model.experiment_id, model.run_id)}/{model.folder}",
        "status": f"LOGGED_MODEL_{'UPLOAD_FAILED' if model.status == 'FAILED' else model.status}",
        "tags": [{"key": k, "value": v} for k, v in model.tags.items()],
    }
    for key, value in (
        ("model_type", model.model_type),
        ("source_run_id", model.source_run_id),
        ("status_message", model.status_message),
    ):
        if value is not None:
            info[key] = value
    params = [{"key": k, "value": v} for k, v in model.params.items()]
    return {"info": info, "data": {"params": params, "metrics": []}}
