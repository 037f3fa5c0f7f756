"""Tracking's web pages: experiments, the runs table, a run, an artifact, and run comparison.

Pages are rendered on the server from the same services the REST API calls; the charts on the
run and compare pages fetch metric histories from ``/api`` (thinned to ``CHART_POINTS``) and
draw them in the browser. Every URL is a deep link: the runs table keeps its filter, order,
page and flat/nested view in the query string (its parts are in :mod:`views_table`). Edits made
on a page (a run's name, description and tags) are sent by the browser to the REST API, so
the role check and the audit log apply to them as to any other client.
"""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Annotated
from typing import Any

from fastapi import APIRouter
from fastapi import Query
from fastapi import Request
from fastapi.responses import FileResponse
from fastapi.responses import Response
from fastapi.responses import StreamingResponse
from sqlalchemy.orm import Session
from starlette.background import BackgroundTask

from opsloop.errors import InvalidInput
from opsloop.errors import NotFound
from opsloop.governance.policy import may
from opsloop.kernel.paging import decode_page_token
from opsloop.kernel.paging import encode_page_token
from opsloop.kernel.timeutil import now_ms
from opsloop.store.local_blobs import LocalBlobStore
from opsloop.tracking import artifacts
from opsloop.tracking import experiments
from opsloop.tracking import runs
from opsloop.tracking import search
from opsloop.tracking import views_table as table
from opsloop.tracking.entities import Experiment
from opsloop.tracking.entities import Run
from opsloop.tracking.previews import IMAGE_TYPES
from opsloop.tracking.previews import preview_artifact
from opsloop.tracking.previews import preview_kind
from opsloop.tracking.views_table import DEFAULT_PAGE_SIZE
from opsloop.tracking.views_table import REPRO_PREFIX
from opsloop.web.deps import AppState
from opsloop.web.deps import Blobs
from opsloop.web.deps import ReadSession
from opsloop.web.deps import State
from opsloop.web.shell import SearchHit
from opsloop.web.shell import UiDomain
from opsloop.web.shell import security_headers

__all__ = ["UI", "router"]

PAGE_SIZES = (25, 50, 100, 250)
CHART_POINTS = 1500
MAX_COMPARED = 10
MAX_INLINE_IMAGES = 24  # figures shown with the charts; the artifacts list has them all
_NOTE_TAG = "mlflow.note.content"  # where MLflow keeps a run's description

router = APIRouter(include_in_schema=False)  # pages, not API: errors render as HTML


def _find(session: Session, text: str) -> list[SearchHit]:
    hits = [
        SearchHit("experiment", e.name, f"/experiments/{e.experiment_id}", e.experiment_id)
        for e in experiments.find_experiments(session, text)
    ]
    hits += [
        SearchHit("run", r.info.run_name, f"/runs/{r.info.run_id}", r.info.run_id)
        for r in search.find_runs(session, text)
    ]
    return hits


UI = UiDomain(
    key="tracking", title="Experiments", href="/experiments", package="opsloop.tracking", find=_find
)


@router.get("/experiments")
def experiments_page(request: Request, session: ReadSession) -> Response:
    listed = experiments.list_experiments(session, max_results=10_000).items
    activity = search.experiment_activity(session, [e.experiment_id for e in listed])
    return UI.page(
        request, "experiments.html", "Experiments", experiments=listed, activity=activity
    )


@router.get("/experiments/{experiment_id}")
def runs_page(
    request: Request,
    experiment_id: str,
    session: ReadSession,
    filter: Annotated[str, Query(max_length=4000)] = "",
    order: Annotated[str, Query(max_length=600)] = "",
    page: str | None = None,
    size: int = DEFAULT_PAGE_SIZE,
    flat: bool = False,
) -> Response:
    """The runs table: one column per param, metric and tag, filtered, sorted and paged.

    Without a filter, nested runs sit under their parent and the pages count top-level runs;
    a filter (or ``flat=1``) lists every matching run on its own row, since a child may match
    where its parent does not.
    """
    if size not in PAGE_SIZES:
        raise InvalidInput(f"size must be one of {list(PAGE_SIZES)}, got {size}")
    experiment = experiments.get_experiment(session, experiment_id)
    ids = [experiment_id]
    nested = not filter and not flat
    base = {
        "filter": filter,
        "order": order,
        "size": str(size) if size != DEFAULT_PAGE_SIZE else "",
        "flat": "1" if flat else "",
    }
    context: dict[str, Any] = {
        "experiment": experiment,
        "filter": filter,
        "order": order,
        "flat": flat,
        "nested": nested,
        "groups": table.column_groups(search.column_keys(session, ids)),
        "rows": [],
        "total": 0,
        "offset": 0,
        "filter_error": None,
        "field": table.field,
        "ago": table.ago,
        "full_time": table.full_time,
        "now": now_ms(),
        "size": size,
        "page_sizes": PAGE_SIZES,
        "sort_url": lambda key: table.sort_url(experiment_id, base, key, order),
        "flat_url": table.table_url(experiment_id, {**base, "flat": "" if flat else "1"}),
        "sort_state": lambda key: table.sort_state(order, key),
    }
    try:  # nested: pages of the runs that head a tree (an orphan of a deleted parent too)
        found = search.search_runs(
            session,
            ids,
            filter=filter,
            order_by=[order] if order else None,
            max_results=size,
            page_token=page,
            top_level=nested,
        )
        total = search.count_runs(session, ids, filter=filter, top_level=nested)
    except InvalidInput as error:
        context["filter_error"] = error.message
        return UI.subpage(request, "runs.html", experiment.name, status_code=400, **context)
    offset = decode_page_token(page)
    rows = (
        table.nest(session, experiment_id, found.items, order)
        if nested
        else [table.TableRow(run) for run in found.items]
    )
    context.update(
        rows=rows,
        shown=len(found.items),
        total=total,
        offset=offset,
        next_url=table.runs_url(experiment_id, base, found.next_page_token),
        prev_url=table.runs_url(
            experiment_id, base, encode_page_token(max(0, offset - size)) if offset else None
        ),
    )
    return UI.subpage(request, "runs.html", experiment.name, **context)


@router.get("/runs/{run_id}")
def run_page(request: Request, run_id: str, session: ReadSession, state: State) -> Response:
    run = _get_run(session, run_id)
    experiment = experiments.get_experiment(session, run.info.experiment_id)
    children = search.search_runs(
        session,
        [run.info.experiment_id],
        filter=f"attributes.parent_run_id = '{run_id}'",
        order_by=["start_time"],
        max_results=500,
    ).items
    parent = runs.get_run(session, run.info.parent_run_id) if run.info.parent_run_id else None
    user_tags = {
        k: v for k, v in run.data.tags.items() if not k.startswith(REPRO_PREFIX) and k != _NOTE_TAG
    }
    repro = {
        k[len(REPRO_PREFIX) :]: v for k, v in run.data.tags.items() if k.startswith(REPRO_PREFIX)
    }
    listed = artifacts.list_artifacts(session, run_id)
    return UI.subpage(
        request,
        "run.html",
        run.info.run_name,
        *_run_trail(experiment, parent),
        run=run,
        experiment=experiment,
        parent=parent,
        children=children,
        user_tags=user_tags,
        repro=repro,
        artifacts=listed,
        images=[a for a in listed if preview_kind(a.path) == "image"][:MAX_INLINE_IMAGES],
        preview_kind=preview_kind,
        description=run.data.tags.get(_NOTE_TAG, run.info.notes or ""),
        note_tag=_NOTE_TAG,
        versions=_registered_versions(state, session, run_id),
        can_edit=may("PATCH", "/api/runs/{run_id}"),  # viewers get no buttons that 403
        page_data={
            "runId": run_id,
            "status": run.info.status.value,
            "metricKeys": sorted(run.data.metrics),
            "chartPoints": CHART_POINTS,
        },
    )


@router.get("/runs/{run_id}/artifacts/view/{path:path}")
def artifact_page(
    request: Request, run_id: str, path: str, session: ReadSession, blobs: Blobs
) -> Response:
    run = _get_run(session, run_id)
    artifact = artifacts.get_artifact(session, run_id, path)
    experiment = experiments.get_experiment(session, run.info.experiment_id)
    return UI.subpage(
        request,
        "artifact.html",
        PurePosixPath(path).name,
        *_run_trail(experiment, None),
        (run.info.run_name, f"/runs/{run_id}"),
        run=run,
        artifact=artifact,
        preview=preview_artifact(blobs, artifact),
    )


@router.get("/runs/{run_id}/artifacts/raw/{path:path}")
def artifact_raw(run_id: str, path: str, session: ReadSession, blobs: Blobs) -> Response:
    """An artifact's bytes: images inline (SVG sandboxed), anything else as a download."""
    artifact = artifacts.get_artifact(session, _get_run(session, run_id).info.run_id, path)
    name = PurePosixPath(artifact.path).name
    media_type = IMAGE_TYPES.get(PurePosixPath(name).suffix.lower())
    headers = security_headers()
    headers["Content-Security-Policy"] = "sandbox; default-src 'none'; style-src 'unsafe-inline'"
    disposition = "inline" if media_type else "attachment"
    if isinstance(blobs, LocalBlobStore) and blobs.path_of(artifact.digest).is_file():
        return FileResponse(
            blobs.path_of(artifact.digest),
            media_type=media_type or "application/octet-stream",
            filename=name,
            content_disposition_type=disposition,
            headers=headers,
        )
    handle = blobs.open(artifact.digest)
    headers["Content-Disposition"] = f'{disposition}; filename="{name}"'
    return StreamingResponse(
        iter(lambda: handle.read(1 << 20), b""),
        media_type=media_type or "application/octet-stream",
        headers=headers,
        background=BackgroundTask(handle.close),
    )


@router.get("/compare")
def compare_page(
    request: Request,
    session: ReadSession,
    run: Annotated[list[str], Query()] = [],  # noqa: B006 (FastAPI reads the default)
) -> Response:
    """Selected runs side by side: overlaid charts, a params/metrics diff, parallel coordinates."""
    run_ids = list(dict.fromkeys(r for r in run if r))
    if len(run_ids) < 2:
        raise InvalidInput("select at least two runs to compare (?run=ID&run=ID)")
    if len(run_ids) > MAX_COMPARED:
        raise InvalidInput(f"compare at most {MAX_COMPARED} runs at once, got {len(run_ids)}")
    compared = [_get_run(session, run_id) for run_id in run_ids]
    param_keys = sorted({k for r in compared for k in r.data.params})
    metric_keys = sorted({k for r in compared for k in r.data.metrics})
    return UI.subpage(
        request,
        "compare.html",
        "Compare runs",
        runs=compared,
        diff_rows=_diff_rows(compared, param_keys, metric_keys),
        page_data={
            "runs": [_compare_entry(r) for r in compared],
            "paramKeys": param_keys,
            "metricKeys": metric_keys,
            "chartPoints": CHART_POINTS,
        },
    )


def _registered_versions(state: AppState, session: Session, run_id: str) -> list[dict[str, Any]]:
    """The model versions registered from the run: its lineage's downstream model versions
    (registration records a ``run -> model_version`` edge). The catalog is handed in by the
    app, since the registry sits above tracking."""
    if state.lineage is None:
        return []
    downstream = state.lineage.lineage(session, "run", run_id)["downstream"]
    return [n for n in downstream if n["type"] == "model_version" and n.get("ref")]


def _diff_rows(
    compared: list[Run], param_keys: list[str], metric_keys: list[str]
) -> list[tuple[str, list[Any], bool, bool]]:
    """(label, one value per run, numeric?, differs?) for each param, then each metric."""
    rows: list[tuple[str, list[Any], bool, bool]] = []
    for key in param_keys:
        cells: list[Any] = [r.data.params.get(key, "") for r in compared]
        rows.append((f"params.{key}", cells, False, len(set(cells)) > 1))
    for key in metric_keys:
        cells = [r.data.metrics.get(key) for r in compared]
        rows.append((f"metrics.{key}", cells, True, len(set(cells)) > 1))
    return rows


def _get_run(session: Session, run_id: str) -> Run:
    """The run a URL names; a malformed id names nothing, so it is a 404 page too."""
    try:
        return runs.get_run(session, run_id)
    except InvalidInput as error:
        raise NotFound(error.message) from None


def _compare_entry(run: Run) -> dict[str, Any]:
    return {
        "id": run.info.run_id,
        "name": run.info.run_name,
        "start": run.info.start_time,
        "params": run.data.params,
        "metrics": run.data.metrics,
    }


def _run_trail(experiment: Experiment, parent: Run | None) -> list[tuple[str, str]]:
    """The pages between the experiments page and a run's: its experiment, its parent run."""
    trail = [(experiment.name, f"/experiments/{experiment.experiment_id}")]
    if parent is not None:
        trail.append((parent.info.run_name, f"/runs/{parent.info.run_id}"))
    return trail
