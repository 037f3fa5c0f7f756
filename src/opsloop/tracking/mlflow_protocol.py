"""MLflow's tracking JSON <-> opsloop's tracking entities, for :mod:`.mlflow_api`.

MLflow's client speaks protobuf JSON with snake_case names: int64 fields as numbers or strings
(pydantic accepts both), tags and params as ``[{"key", "value"}]`` lists, a run's metrics with
their step and timestamp. Ids stay opsloop's own (32-hex, as MLflow's run ids are), times stay
milliseconds since the epoch, so nothing is translated but the shape. Three MLflow notions with
no opsloop column are mapped here once:

- experiment ``"0"``, MLflow's default experiment, is opsloop's ``Default`` experiment;
- a run's ``artifact_uri`` is ``mlflow-artifacts:/<experiment_id>/<run_id>/artifacts``, which
  makes the client upload and download through the server's artifact proxy
  (:mod:`.mlflow_artifacts`), so artifacts land in opsloop's blob store like any other;
- a dataset logged as an input (``log-inputs``) is kept as a run tag under
  :data:`INPUT_TAG_PREFIX` (its JSON) and given back as ``inputs.dataset_inputs``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel
from pydantic import ConfigDict
from sqlalchemy import bindparam
from sqlalchemy import select
from sqlalchemy.orm import Session

from opsloop.errors import InvalidInput
from opsloop.errors import NotFound
from opsloop.tracking import experiments
from opsloop.tracking.entities import Experiment
from opsloop.tracking.tables import LatestMetricRow
from opsloop.tracking.tables import ParamRow
from opsloop.tracking.tables import RunTagRow

__all__ = [
    "DEFAULT_EXPERIMENT_ID",
    "INPUT_TAG_PREFIX",
    "ORIGIN_TAG",
    "RUN_NAME_TAG",
    "KeyValue",
    "MlflowRequest",
    "artifact_uri",
    "experiment_json",
    "input_tags",
    "resolve_experiment_id",
    "run_info_json",
    "runs_json",
    "tag_dict",
    "view_of",
]

DEFAULT_EXPERIMENT_ID = "0"  # what MLflow's fluent API uses before set_experiment
ORIGIN_TAG = "opsloop.origin"  # "mlflow": the run was created through MLflow's REST API
RUN_NAME_TAG = "mlflow.runName"  # MLflow keeps a run's name in this tag too
INPUT_TAG_PREFIX = "opsloop.mlflow.input."
_NOTE_TAG = "mlflow.note.content"  # MLflow's experiment and run description
_VIEWS = {"ACTIVE_ONLY": "active", "DELETED_ONLY": "deleted", "ALL": "all"}
_IN_CHUNK = 500  # run ids per IN (...) list


class MlflowRequest(BaseModel):
    """Base of the request bodies: fields MLflow sends that opsloop has no use for (``run_uuid``,
    ``model_id``...) are ignored, not refused, so a newer client keeps working."""

    model_config = ConfigDict(extra="ignore")


class KeyValue(MlflowRequest):
    key: str
    value: str = ""


def tag_dict(pairs: Iterable[KeyValue] | None) -> dict[str, str]:
    return {pair.key: pair.value for pair in pairs or ()}


def _pairs(values: dict[str, str]) -> list[dict[str, str]]:
    return [{"key": k, "value": v} for k, v in values.items()]


def view_of(view_type: str | None) -> str:
    """opsloop's view for MLflow's ``ViewType`` name (default ``ACTIVE_ONLY``)."""
    try:
        return _VIEWS[(view_type or "ACTIVE_ONLY").upper()]
    except KeyError:
        raise InvalidInput(f"unknown view type {view_type!r}; one of {', '.join(_VIEWS)}") from None


def resolve_experiment_id(session: Session, experiment_id: str, *, create: bool = False) -> str:
    """opsloop's id for an MLflow experiment id: ``"0"`` is the ``Default`` experiment (made on
    first use when ``create``; until then ``"0"`` stays, and finds nothing); any other id is
    opsloop's own."""
    if not experiment_id:
        raise InvalidInput("experiment_id is required")
    if experiment_id != DEFAULT_EXPERIMENT_ID:
        return experiment_id
    if create:
        default = experiments.get_or_create_experiment(session, experiments.DEFAULT_EXPERIMENT)
        return default.experiment_id
    try:
        return experiments.get_experiment_by_name(
            session, experiments.DEFAULT_EXPERIMENT
        ).experiment_id
    except NotFound:
        return experiment_id


def artifact_uri(experiment_id: str, run_id: str) -> str:
    return f"mlflow-artifacts:/{experiment_id}/{run_id}/artifacts"


def experiment_json(experiment: Experiment) -> dict[str, Any]:
    tags = dict(experiment.tags)
    if experiment.description and _NOTE_TAG not in tags:
        tags[_NOTE_TAG] = experiment.description
    return {
        "experiment_id": experiment.experiment_id,
        "name": experiment.name,
        "artifact_location": f"mlflow-artifacts:/{experiment.experiment_id}",
        "lifecycle_stage": experiment.lifecycle_stage,
        "creation_time": experiment.created_at,
        "last_update_time": experiment.updated_at,
        "tags": _pairs(tags),
    }


def run_info_json(row: Any) -> dict[str, Any]:
    """MLflow's ``RunInfo`` of a run's row (a ``RunRow``, or a Core row of its columns)."""
    out: dict[str, Any] = {
        "run_id": row.id,
        "run_uuid": row.id,
        "run_name": row.name,
        "experiment_id": row.experiment_id,
        "user_id": row.user_id,
        "status": row.status,
        "start_time": row.start_time,
        "artifact_uri": artifact_uri(row.experiment_id, row.id),
        "lifecycle_stage": row.lifecycle_stage,
    }
    if row.end_time is not None:
        out["end_time"] = row.end_time
    return out


# Built once, the ids bound as an expanding parameter: building each IN (...) clause anew cost
# a few milliseconds a 1,000-run page (about 2% of a search's server instructions).
def _of_runs(*columns: Any) -> Any:
    return select(*columns).where(columns[0].in_(bindparam("ids", expanding=True)))


_PARAMS = _of_runs(ParamRow.run_id, ParamRow.key, ParamRow.value)
_TAGS = _of_runs(RunTagRow.run_id, RunTagRow.key, RunTagRow.value)
_METRICS = _of_runs(LatestMetricRow.run_id, LatestMetricRow.key, LatestMetricRow.value,
                    LatestMetricRow.step, LatestMetricRow.timestamp)  # fmt: skip


def runs_json(session: Session, rows: Sequence[Any]) -> list[dict[str, Any]]:
    """MLflow's ``Run`` for each run's row (a ``RunRow`` or a Core row of its columns): its
    params, its tags less the ones that hold its inputs, its latest metrics with their step and
    timestamp. Built straight from the rows, three queries per 500 runs: a search page of
    1,000 runs makes no entity objects on the way to its JSON."""
    params: dict[str, list[dict[str, Any]]] = {row.id: [] for row in rows}
    tags: dict[str, dict[str, str]] = {run_id: {} for run_id in params}
    metrics: dict[str, list[dict[str, Any]]] = {run_id: [] for run_id in params}
    ids = list(params)
    connection = session.connection()
    for start in range(0, len(ids), _IN_CHUNK):
        chunk = {"ids": ids[start : start + _IN_CHUNK]}
        # fetched whole: row by row costs more than the rest of the page
        for run_id, key, value in connection.execute(_PARAMS, chunk).all():
            params[run_id].append({"key": key, "value": value})
        for run_id, key, value in connection.execute(_TAGS, chunk).all():
            tags[run_id][key] = value
        for run_id, key, value, step, timestamp in connection.execute(_METRICS, chunk).all():
            metrics[run_id].append(
                {"key": key, "value": value, "step": step, "timestamp": timestamp}
            )
    return [_run_json(row, params[row.id], tags[row.id], metrics[row.id]) for row in rows]


def _run_json(
    row: Any,
    params: list[dict[str, Any]],
    all_tags: dict[str, str],
    metrics: list[dict[str, Any]],
) -> dict[str, Any]:
    tags = {k: v for k, v in all_tags.items() if not k.startswith(INPUT_TAG_PREFIX)}
    inputs = [json.loads(v) for k, v in sorted(all_tags.items()) if k.startswith(INPUT_TAG_PREFIX)]
    tags.setdefault(RUN_NAME_TAG, row.name)
    if row.notes and _NOTE_TAG not in tags:
        tags[_NOTE_TAG] = row.notes
    return {
        "info": run_info_json(row),
        "data": {"metrics": metrics, "params": params, "tags": _pairs(tags)},
        "inputs": {"dataset_inputs": inputs},
    }


def input_tags(datasets: list[dict[str, Any]]) -> dict[str, str]:
    """The run tags that keep ``log-inputs``' datasets: one per (name, digest), so logging
    the same dataset twice keeps one entry, and its JSON is what ``get-run`` gives back."""
    tags: dict[str, str] = {}
    for item in datasets:
        dataset = item.get("dataset") if isinstance(item, dict) else None
        if not isinstance(dataset, dict) or not dataset.get("name") or not dataset.get("digest"):
            raise InvalidInput("each dataset input needs a dataset with a name and a digest")
        identity = f"{dataset['name']}\0{dataset['digest']}".encode()
        key = INPUT_TAG_PREFIX + hashlib.sha256(identity).hexdigest()[:32]  # any name fits
        tags[key] = json.dumps({"tags": item.get("tags") or [], "dataset": dataset})
    return tags
