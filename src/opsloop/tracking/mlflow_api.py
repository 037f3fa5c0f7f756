"""MLflow's tracking REST API (``/api/2.0/mlflow/...``) over opsloop's tracking services.

With ``MLFLOW_TRACKING_URI=http://<opsloop server>`` an unmodified MLflow script logs into
opsloop: experiments, runs, params, tags, metrics, histories, searches. Each route parses
MLflow's request, calls the same service function as opsloop's own route (:mod:`.api`), and
answers MLflow's JSON (:mod:`.mlflow_protocol`); errors take MLflow's shape
(:mod:`opsloop.web.mlflow`). Runs created here carry the tag ``opsloop.origin = mlflow``.

MLflow answers some refusals with codes of its own, kept here so its client raises what a
script expects: a changed param, or a write to a finished or deleted run, is
``INVALID_PARAMETER_VALUE``; a metric missing from a run has an empty history.

The logging routes are hot: MLflow's client sends one ``log-metric`` request per point, one
``log-parameter`` or ``set-tag`` request per call of its fluent API, and ``log-batch`` 1,000
points a request. They parse their own body (:func:`.web.mlflow.mlflow_body`, refusing as
FastAPI would) and write in one thread hop, rather than through a body model and a
``WriteSession`` dependency (three thread hops), whose machinery costs more than the write;
they are their own router (``logging_router``), included first (routes are matched in order)
and answered before FastAPI's routing (:func:`opsloop.web.mlflow.dispatch_mlflow_routes`).
``runs/search`` answers from the rows (:func:`.mlflow_protocol.runs_json`), serialised once,
by pydantic's encoder (``to_json``: a 1,000-run page in a fifth of ``json.dumps``' time).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi import Query
from fastapi import Request
from fastapi.responses import Response
from pydantic_core import to_json
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from opsloop.errors import Conflict
from opsloop.errors import NotFound
from opsloop.kernel.bounds import Int64
from opsloop.kernel.identity import current_principal
from opsloop.kernel.paging import decode_page_token
from opsloop.kernel.paging import encode_page_token
from opsloop.store.ids import FULL_ID_LENGTH
from opsloop.tracking import experiments
from opsloop.tracking import run_data
from opsloop.tracking import runs
from opsloop.tracking import search
from opsloop.tracking.entities import MetricBatch
from opsloop.tracking.entities import MetricSeries
from opsloop.tracking.mlflow_artifacts import list_run_artifacts
from opsloop.tracking.mlflow_experiments import search_experiments
from opsloop.tracking.mlflow_protocol import ORIGIN_TAG
from opsloop.tracking.mlflow_protocol import RUN_NAME_TAG
from opsloop.tracking.mlflow_protocol import artifact_uri
from opsloop.tracking.mlflow_protocol import experiment_json
from opsloop.tracking.mlflow_protocol import input_tags
from opsloop.tracking.mlflow_protocol import resolve_experiment_id
from opsloop.tracking.mlflow_protocol import run_info_json
from opsloop.tracking.mlflow_protocol import runs_json
from opsloop.tracking.mlflow_protocol import tag_dict
from opsloop.tracking.mlflow_protocol import view_of
from opsloop.tracking.mlflow_requests import CreateExperiment
from opsloop.tracking.mlflow_requests import CreateRun
from opsloop.tracking.mlflow_requests import ExperimentRef
from opsloop.tracking.mlflow_requests import ExperimentTag
from opsloop.tracking.mlflow_requests import LogBatch
from opsloop.tracking.mlflow_requests import LogInputs
from opsloop.tracking.mlflow_requests import LogMetric
from opsloop.tracking.mlflow_requests import RunKeyValue
from opsloop.tracking.mlflow_requests import RunRef
from opsloop.tracking.mlflow_requests import SearchExperiments
from opsloop.tracking.mlflow_requests import SearchRuns
from opsloop.tracking.mlflow_requests import UpdateExperiment
from opsloop.tracking.mlflow_requests import UpdateRun
from opsloop.tracking.names import random_run_name
from opsloop.tracking.validation import check_artifact_path
from opsloop.web.deps import ReadSession
from opsloop.web.deps import WriteSession
from opsloop.web.deps import get_state
from opsloop.web.mlflow import answered_as
from opsloop.web.mlflow import mlflow_body

__all__ = ["logging_router", "router"]

router = APIRouter(tags=["mlflow"])
# The four routes MLflow's client calls the most: included first (routes match in order), and
# answered before FastAPI's routing (web.mlflow.dispatch_mlflow_routes): each endpoint takes the
# request alone.
logging_router = APIRouter(tags=["mlflow"])
Json = dict[str, Any]


# -- logging ----------------------------------------------------------------------------------
@logging_router.post("/runs/log-metric")
async def log_metric(request: Request) -> Response:
    """One point (MLflow's client calls this once per point): see the module's docstring."""
    body = await mlflow_body(request, LogMetric)
    await run_in_threadpool(_write, request, body.run_id, [body])
    return _done()


@logging_router.post("/runs/log-parameter")
async def log_param(request: Request) -> Response:
    """One param (MLflow's fluent ``log_param`` sends one request each): as ``log-metric``."""
    body = await mlflow_body(request, RunKeyValue)
    await run_in_threadpool(_write, request, body.run_id, [], {body.key: body.value})
    return _done()


@logging_router.post("/runs/set-tag")
async def set_tag(request: Request) -> Response:
    """One tag, one request each, as ``log-parameter``."""
    body = await mlflow_body(request, RunKeyValue)
    await run_in_threadpool(_write, request, body.run_id, [], None, {body.key: body.value})
    return _done()


@logging_router.post("/runs/log-batch")
async def log_batch(request: Request) -> Response:
    body = await mlflow_body(request, LogBatch)
    params, tags = tag_dict(body.params), tag_dict(body.tags)
    await run_in_threadpool(_write, request, body.run_id, body.metrics or [], params, tags)
    return _done()


# -- experiments ---------------------------------------------------------------------------------
@router.post("/experiments/create")
def create_experiment(body: CreateExperiment, session: WriteSession) -> Json:
    created = experiments.create_experiment(session, body.name, tags=tag_dict(body.tags))
    return {"experiment_id": created.experiment_id}


@router.get("/experiments/get")
def get_experiment(session: ReadSession, experiment_id: str = Query()) -> Json:
    found = experiments.get_experiment(session, resolve_experiment_id(session, experiment_id))
    return {"experiment": experiment_json(found)}


@router.get("/experiments/get-by-name")
def get_experiment_by_name(session: ReadSession, experiment_name: str = Query()) -> Json:
    return {
        "experiment": experiment_json(experiments.get_experiment_by_name(session, experiment_name))
    }


@router.post("/experiments/search")
def search_experiments_route(body: SearchExperiments, session: ReadSession) -> Json:
    page = search_experiments(
        session,
        view=view_of(body.view_type),
        filter=body.filter,
        order_by=body.order_by,
        max_results=body.max_results,
        page_token=body.page_token,
    )
    return _paged("experiments", [experiment_json(e) for e in page.items], page.next_page_token)


@router.post("/experiments/update")
def update_experiment(body: UpdateExperiment, session: WriteSession) -> Json:
    experiment_id = resolve_experiment_id(session, body.experiment_id)
    experiments.update_experiment(session, experiment_id, name=body.new_name)
    return {}


@router.post("/experiments/delete")
def delete_experiment(body: ExperimentRef, session: WriteSession) -> Json:
    experiments.delete_experiment(session, resolve_experiment_id(session, body.experiment_id))
    return {}


@router.post("/experiments/restore")
def restore_experiment(body: ExperimentRef, session: WriteSession) -> Json:
    experiments.restore_experiment(session, resolve_experiment_id(session, body.experiment_id))
    return {}


@router.post("/experiments/set-experiment-tag")
def set_experiment_tag(body: ExperimentTag, session: WriteSession) -> Json:
    experiment_id = resolve_experiment_id(session, body.experiment_id)
    experiments.set_experiment_tag(session, experiment_id, body.key, body.value)
    return {}


@router.post("/experiments/delete-experiment-tag")
def delete_experiment_tag(body: ExperimentTag, session: WriteSession) -> Json:
    experiment_id = resolve_experiment_id(session, body.experiment_id)
    experiments.delete_experiment_tag(session, experiment_id, body.key)
    return {}


# -- runs ----------------------------------------------------------------------------------------
@router.post("/runs/create")
def create_run(body: CreateRun, session: WriteSession) -> Json:
    """The caller a users-mode server authenticated is the author, never the body's
    ``user_id`` (as opsloop's own route)."""
    tags = tag_dict(body.tags)
    run_name = body.run_name or tags.get(RUN_NAME_TAG) or random_run_name()
    user_id = body.user_id if current_principal() is None else None
    with answered_as("INVALID_PARAMETER_VALUE", Conflict):  # a deleted experiment
        created = runs.create_run(
            session,
            resolve_experiment_id(session, body.experiment_id, create=True),
            run_name=run_name,
            tags={**tags, RUN_NAME_TAG: run_name, ORIGIN_TAG: "mlflow"},
            start_time=body.start_time,
            user_id=user_id,
        )
    return {"run": runs_json(session, [runs.require_run(session, created.info.run_id)])[0]}


@router.get("/runs/get")
def get_run(session: ReadSession, run_id: str = Query()) -> Json:
    return {"run": runs_json(session, [runs.require_run(session, run_id)])[0]}


@router.post("/runs/update")
def update_run(body: UpdateRun, session: WriteSession) -> Json:
    info = runs.update_run(
        session, body.run_id, status=body.status, end_time=body.end_time, run_name=body.run_name
    )
    if body.run_name:
        run_data.log_batch(session, info.run_id, tags={RUN_NAME_TAG: info.run_name})
    return {"run_info": run_info_json(runs.require_run(session, info.run_id))}


@router.post("/runs/delete")
def delete_run(body: RunRef, session: WriteSession) -> Json:
    runs.delete_run(session, body.run_id)
    return {}


@router.post("/runs/restore")
def restore_run(body: RunRef, session: WriteSession) -> Json:
    runs.restore_run(session, body.run_id)
    return {}


@router.post("/runs/search")
def search_runs(body: SearchRuns, session: ReadSession) -> Response:
    """A page of up to 1,000 runs: answered straight from the rows (:func:`runs_json`), and
    serialised once (see the module's docstring), not walked again by FastAPI's encoder."""
    rows, token = search.search_run_rows(
        session,
        [resolve_experiment_id(session, e) for e in body.experiment_ids],
        filter=body.filter or None,
        order_by=body.order_by,
        max_results=body.max_results,
        page_token=body.page_token,
        view=view_of(body.run_view_type),
    )
    page = _paged("runs", runs_json(session, rows), token)
    return Response(to_json(page), media_type="application/json")


@router.post("/runs/delete-tag")
def delete_tag(body: RunKeyValue, session: WriteSession) -> Json:
    run_data.delete_tag(session, body.run_id, body.key)
    return {}


@router.post("/runs/log-inputs")
def log_inputs(body: LogInputs, session: WriteSession) -> Json:
    _log(session, body.run_id, tags=input_tags(body.datasets or []))
    return {}


def _done() -> Response:
    """MLflow's empty answer; a new one per request, as middlewares may add headers to it."""
    return Response(b"{}", media_type="application/json")


def _write(
    request: Request,
    run_id: str,
    metrics: list[Any],
    params: dict[str, str] | None = None,
    tags: dict[str, str] | None = None,
) -> None:
    """:func:`_log` in a write transaction of the request's workspace, committed before the
    answer (as a ``WriteSession`` route's), from a worker thread. A run named by its full id
    whose name stays is written in a plain transaction (``Store.write_plain``: no ORM session,
    whose set-up and commit cost as much as the statements); the audit event commits with it
    all the same."""
    store = get_state(request).store
    if len(run_id) == FULL_ID_LENGTH and not (tags and tags.get(RUN_NAME_TAG)):
        with store.write_plain() as sql, answered_as("INVALID_PARAMETER_VALUE", Conflict):
            run_data.log_batch_plain(sql, run_id, metrics=_columns(metrics), params=params,
                                     tags=tags, finished=True)  # fmt: skip
        return
    with store.write() as session:
        _log(session, run_id, metrics=metrics, params=params, tags=tags)


def _log(
    session: Session,
    run_id: str,
    *,
    metrics: list[Any] | None = None,
    params: dict[str, str] | None = None,
    tags: dict[str, str] | None = None,
) -> None:
    """One ``log_batch`` for MLflow's points (``Metric`` or ``LogMetric``); a new
    ``mlflow.runName`` tag renames the run, and an ended run still takes points and params,
    as on MLflow's server (a deleted one does not)."""
    with answered_as("INVALID_PARAMETER_VALUE", Conflict):  # MLflow's code for these
        run_data.log_batch(session, run_id, metrics=_columns(metrics or []), params=params,
                           tags=tags, finished=True)  # fmt: skip
        if tags and tags.get(RUN_NAME_TAG):
            runs.update_run(session, run_id, run_name=tags[RUN_NAME_TAG])


def _columns(points: list[Any]) -> MetricBatch | None:
    """MLflow's metric points, grouped by key into opsloop's columnar batch."""
    columns: dict[str, tuple[list[float], list[int], list[int]]] = {}
    for point in points:
        column = columns.get(point.key)
        if column is None:
            column = columns[point.key] = ([], [], [])
        column[0].append(point.value)
        column[1].append(point.step)
        column[2].append(point.timestamp)
    if not columns:
        return None
    series = {  # validated already, as MLflow's points
        key: MetricSeries.model_construct(values=values, steps=steps, timestamps=timestamps)
        for key, (values, steps, timestamps) in columns.items()
    }
    return MetricBatch.model_construct(series=series)


# -- metric history ------------------------------------------------------------------------------
@router.get("/metrics/get-history")
def get_metric_history(
    session: ReadSession,
    run_id: str = Query(),
    metric_key: str = Query(),
    max_results: Int64 | None = Query(None, ge=1),
    page_token: str | None = None,
) -> Json:
    """Every point of one metric, paged when ``max_results`` is given. A metric the run never
    logged has an empty history (MLflow's answer); an unknown run is an error."""
    run_id = runs.require_run_id(session, run_id)
    try:
        history = run_data.get_metric_history(session, run_id, metric_key)
    except NotFound:
        return {"metrics": []}
    points = [
        {"key": metric_key, "value": value, "step": step, "timestamp": timestamp}
        for step, value, timestamp in zip(
            history.steps, history.values, history.timestamps, strict=True
        )
    ]
    offset = decode_page_token(page_token)
    end = len(points) if max_results is None else offset + max_results
    token = encode_page_token(end) if end < len(points) else None
    return _paged("metrics", points[offset:end], token)


def _paged(name: str, items: list[Json], token: str | None) -> Json:
    out: Json = {name: items}
    if token:
        out["next_page_token"] = token
    return out


# -- artifacts (the tracking service's listing; the bytes go through the proxy) -------------------
@router.get("/artifacts/list")
def list_artifacts(session: ReadSession, run_id: str = Query(), path: str = Query("")) -> Json:
    run = runs.get_run(session, run_id)
    folder = check_artifact_path(path) if path else ""
    return {
        "root_uri": artifact_uri(run.info.experiment_id, run.info.run_id),
        "files": list_run_artifacts(session, run.info.run_id, folder),
    }
