"""The pipelines page: the latest pipeline runs, and the triggers (what starts which pipeline,
and what last fired it) with their latest firings; a webhook trigger can be fired from here.
A pipeline run's page draws its DAG in SVG, each step boxed and coloured by its state; a
failed run can be resumed from there, a finished one reproduced (the reproduction's page then
compares the two step by step). A step that was retried, or whose one attempt crashed, has its
attempts listed (outcome, time, error), so a worker that died and was retried is not one clean
success."""

from __future__ import annotations

from urllib.parse import parse_qs
from urllib.parse import quote

from fastapi import APIRouter
from fastapi import Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse
from fastapi.responses import Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from opsloop.pipelines import runs
from opsloop.pipelines import triggers
from opsloop.pipelines.cancel import request_cancel
from opsloop.pipelines.tables import TriggerRow
from opsloop.web.deps import ReadSession
from opsloop.web.deps import State
from opsloop.web.shell import SearchHit
from opsloop.web.shell import UiDomain

__all__ = ["UI", "router"]

router = APIRouter(include_in_schema=False)


def _find(session: Session, text: str) -> list[SearchHit]:
    rows = session.execute(
        select(TriggerRow.name, TriggerRow.pipeline)
        .where(TriggerRow.name.icontains(text, autoescape=True))
        .order_by(TriggerRow.name)
        .limit(20)
    )
    return [SearchHit("trigger", name, "/pipelines", target) for name, target in rows]


UI = UiDomain(
    key="pipelines", title="Pipelines", href="/pipelines", package="opsloop.pipelines", find=_find
)


@router.get("/pipelines")
def pipelines_page(request: Request, session: ReadSession) -> Response:
    found = triggers.list_triggers(session)
    firings = {t.name: triggers.list_firings(session, t.name, 5) for t in found}
    return UI.page(
        request, "pipelines.html", "Pipelines", triggers=found, firings=firings,
        runs=runs.list_pipeline_runs(session, 20),
    )  # fmt: skip


BOX_W, BOX_H, GAP_X, GAP_Y, MARGIN = 190, 46, 64, 18, 40


def dag_layout(view: runs.PipelineRunView) -> dict[str, object]:
    """Boxes and edges of the DAG: a column per rank, steps top to bottom in graph order."""
    rows: dict[int, int] = {}
    boxes = {}
    for s in view.steps:
        row = rows.get(s.rank, 0)
        rows[s.rank] = row + 1
        x, y = MARGIN + s.rank * (BOX_W + GAP_X), MARGIN + row * (BOX_H + GAP_Y)
        took = "cached" if s.cache == "hit" else (
            f"{s.duration_s:.2f} s" if s.duration_s is not None else s.status.lower())  # fmt: skip
        if len(s.attempts) > 1:
            took += f" · {len(s.attempts)} attempts"
        boxes[s.name] = {"step": s, "x": x, "y": y, "detail": took}
    edges = []
    for s in view.steps:
        for label in s.inputs:
            source = boxes.get(label.split(".", 1)[0])
            if source is None:
                continue
            x1, y1 = source["x"] + BOX_W, source["y"] + BOX_H / 2  # type: ignore[operator]
            x2, y2 = boxes[s.name]["x"], boxes[s.name]["y"] + BOX_H / 2  # type: ignore[operator]
            bend = GAP_X / 2
            # an edge that skips columns arcs over the boxes between (same row, same height)
            lift = 0 if x2 - x1 <= GAP_X else BOX_H * 1.3
            d = f"M{x1},{y1} C{x1 + bend},{y1 - lift} {x2 - bend},{y2 - lift} {x2},{y2}"
            edges.append({"d": d, "label": label})
    columns = max(rows, default=-1) + 1  # none: a run that ended before any step started
    width = MARGIN * 2 + columns * BOX_W + max(columns - 1, 0) * GAP_X
    height = MARGIN * 2 + max(max(rows.values(), default=0) * (BOX_H + GAP_Y) - GAP_Y, 0)
    return {"boxes": list(boxes.values()), "edges": edges, "width": width, "height": height,
            "box_w": BOX_W, "box_h": BOX_H}  # fmt: skip


_OUTCOME_BADGES = {"succeeded": "FINISHED", "running": "RUNNING", "cancelled": "KILLED"}


def attempt_rows(view: runs.PipelineRunView) -> list[dict[str, object]]:
    """A row per attempt of each step that was retried or whose one attempt did not succeed
    (a single clean success says nothing the steps table does not)."""
    rows: list[dict[str, object]] = []
    for s in view.steps:
        if not s.attempts or [a.outcome for a in s.attempts] == ["succeeded"]:
            continue
        for a in s.attempts:
            outcome = a.outcome or "running"
            rows.append({"step": s.name, "first": a.number == s.attempts[0].number,
                         "attempt": a, "outcome": outcome,
                         "badge": _OUTCOME_BADGES.get(outcome, "FAILED")})  # fmt: skip
    return rows


@router.get("/pipelines/runs/{run_id}")
def pipeline_run_page(request: Request, run_id: str, state: State) -> Response:
    view = runs.describe(state.client, run_id)
    comparison = None
    if view.reproduces and view.status != "RUNNING":
        from opsloop.pipelines.reruns import compare

        comparison = compare(state.client, run_id)
    logs = [s for s in runs.step_logs(state.client, run_id, view=view) if s.text]
    return UI.page(
        request, "run.html", f"Pipeline {view.pipeline}", view=view, dag=dag_layout(view),
        comparison=comparison, logs=logs, attempts=attempt_rows(view),
        failed={s.name for s in view.steps if s.status == "FAILED"},
    )  # fmt: skip


@router.post("/pipelines/runs/{run_id}/reproduce")
async def reproduce_run(request: Request, run_id: str, state: State) -> Response:
    """Recompute a run from its page (in a clean environment when the form's box is ticked);
    the reproduction's page shows it, then the comparison."""
    form = parse_qs((await request.body())[:4096].decode("utf-8", "replace"))
    clean_env = form.get("clean_env", [""])[0] == "1"
    new_id = await run_in_threadpool(state.launcher.reproduce, run_id, None, clean_env)
    return RedirectResponse(f"/pipelines/runs/{quote(new_id)}", status_code=303)


@router.post("/pipelines/runs/{run_id}/cancel")
async def cancel_run(run_id: str, state: State) -> Response:
    """Cancel a running pipeline from its page; the page then follows it to KILLED."""
    await run_in_threadpool(request_cancel, state.client, run_id)
    return RedirectResponse(f"/pipelines/runs/{quote(run_id)}", status_code=303)


@router.post("/pipelines/runs/{run_id}/resume")
async def resume_run(run_id: str, state: State) -> Response:
    """Resume a failed run from its page; the answer is the new run's page, which follows it."""
    new_id = await run_in_threadpool(state.launcher.resume, run_id)
    return RedirectResponse(f"/pipelines/runs/{quote(new_id)}", status_code=303)


@router.post("/pipelines/triggers/{name}/fire")
async def fire_trigger(name: str, state: State) -> Response:
    """Fire a trigger from the page; the server's scheduler runs its pipeline."""

    def fire() -> None:
        with state.store.write() as session:
            triggers.fire(session, name, None, "fired from the web UI")

    await run_in_threadpool(fire)
    return RedirectResponse(f"/pipelines#trigger-{quote(name)}", status_code=303)
