"""REST: ``/api/pipelines/runs`` starts a pipeline run (202, with its id at once),
``/api/pipelines/runs/{id}`` is its DAG with each step's state, ``.../{id}/resume`` runs it
again from where it failed and ``.../{id}/reproduce`` recomputes it (``.../reproduction``
compares the two); ``/api/tuning`` starts an Optuna study and ``/api/tuning/{id}`` is its result;
``/api/triggers[/{name}[/fire|/firings]]`` are the triggers. ``POST .../fire`` is the webhook;
send an ``Idempotency-Key`` header and a retried call starts nothing twice. The paths are in
:mod:`opsloop.pipelines.routes`."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi import Header
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel
from pydantic import ConfigDict
from pydantic import Field

from opsloop.kernel.bounds import NonNegativeInt64
from opsloop.kernel.identity import current_user
from opsloop.pipelines import routes
from opsloop.pipelines import runs
from opsloop.pipelines import triggers
from opsloop.pipelines.cancel import request_cancel
from opsloop.pipelines.reruns import Reproduction
from opsloop.pipelines.runs import PipelineReproduce
from opsloop.pipelines.runs import PipelineRerun
from opsloop.pipelines.runs import PipelineRunCreate
from opsloop.pipelines.runs import PipelineRunSummary
from opsloop.pipelines.runs import PipelineRunView
from opsloop.pipelines.runs import StepLogs
from opsloop.pipelines.triggers import Firing
from opsloop.pipelines.triggers import Trigger
from opsloop.pipelines.triggers import TriggerCreate
from opsloop.pipelines.tuning import TuneCreate
from opsloop.pipelines.tuning import TuneResult
from opsloop.pipelines.tuning import read_result
from opsloop.web.deps import ReadSession
from opsloop.web.deps import State
from opsloop.web.deps import WriteSession

__all__ = ["router"]

router = APIRouter(tags=["pipelines"])


@router.post(routes.PIPELINE_RUNS.template, response_model=PipelineRunView, status_code=202)
async def start_pipeline_run(body: PipelineRunCreate, state: State) -> PipelineRunView:
    """Start a pipeline run on the server (its module must be importable there). The pipeline
    and its params are checked first (400); the answer comes once the run exists (202) and
    shows its steps as PENDING; poll ``GET /api/pipelines/runs/{run_id}``."""
    run_id = await run_in_threadpool(state.launcher.start, body)
    return await run_in_threadpool(runs.describe, state.client, run_id)


@router.post(routes.PIPELINE_RUN_RESUME.template, response_model=PipelineRunView, status_code=202)
async def resume_pipeline_run(
    run_id: str, state: State, body: PipelineRerun | None = None
) -> PipelineRunView:
    """Run a pipeline run (usually a FAILED one) again with its params: its finished steps
    come from the cache. Answers with the new run (202), tagged ``opsloop.resumed_from``;
    404 for an unknown run, 400 for one that is not a pipeline run."""
    executor = body.executor if body else None
    new_id = await run_in_threadpool(state.launcher.resume, run_id, executor)
    return await run_in_threadpool(runs.describe, state.client, new_id)


@router.post(
    routes.PIPELINE_RUN_REPRODUCE.template, response_model=PipelineRunView, status_code=202
)
async def reproduce_pipeline_run(
    run_id: str, state: State, body: PipelineReproduce | None = None
) -> PipelineRunView:
    """Recompute a pipeline run (no cache, its params and seed, nothing registered) on the
    server; with ``clean_env``, in a fresh environment built from the run's lock, on the run's
    code restored from the store (the server needs no clone). Answers with the reproduction's
    run (202); once it has ended, ``GET /api/pipelines/runs/{its id}/reproduction`` compares
    the two. 400 for a run that recorded too little to reproduce it that way."""
    body = body or PipelineReproduce()
    new_id = await run_in_threadpool(
        state.launcher.reproduce, run_id, body.executor, body.clean_env
    )
    return await run_in_threadpool(runs.describe, state.client, new_id)


@router.get(routes.PIPELINE_RUN_REPRODUCTION.template, response_model=Reproduction)
async def get_reproduction(run_id: str, state: State) -> Reproduction:
    """How reproduction ``run_id`` compares with the run it reproduces: per step identical
    bytes or not and which numbers moved, the commits, the packages that differ. 409 while it
    runs, 400 for a run that is no reproduction."""
    from opsloop.pipelines.reruns import compare

    return await run_in_threadpool(compare, state.client, run_id)


class TuneStarted(BaseModel):
    run_id: str = Field(description="the study's run: GET /api/tuning/{run_id} once it ends")


@router.post(routes.TUNING.template, response_model=TuneStarted, status_code=202)
async def start_tuning(body: TuneCreate, state: State) -> TuneStarted:
    """Tune an objective with Optuna on the server (its module must be importable there):
    the study is a run and each trial a nested run. The objective and space are checked
    first (400); the answer comes once the study's run exists (202)."""
    return TuneStarted(run_id=await run_in_threadpool(state.launcher.tune, body))


@router.get(routes.TUNING_RESULT.template, response_model=TuneResult)
async def get_tuning(run_id: str, state: State) -> TuneResult:
    """A finished study's best score and params, trials, importances and registered model;
    409 while it runs."""
    return await run_in_threadpool(read_result, state.client, run_id)


@router.get(routes.PIPELINE_RUNS.template, response_model=list[PipelineRunSummary])
def list_pipeline_runs(
    session: ReadSession, limit: NonNegativeInt64 = 20, pipeline: str | None = None
) -> list[PipelineRunSummary]:
    """The latest pipeline runs, newest first (``pipeline=NAME`` for one pipeline's)."""
    return runs.list_pipeline_runs(session, limit, pipeline)


@router.get(routes.PIPELINE_RUN.template, response_model=PipelineRunView)
async def get_pipeline_run(run_id: str, state: State) -> PipelineRunView:
    """A pipeline run's DAG: each step with its inputs, column, state, duration and cache
    verdict; steps not started are PENDING (or SKIPPED once the run has ended)."""
    return await run_in_threadpool(runs.describe, state.client, run_id)


@router.post(routes.PIPELINE_RUN_CANCEL.template, response_model=PipelineRunView, status_code=202)
async def cancel_pipeline_run(run_id: str, state: State) -> PipelineRunView:
    """Ask a running pipeline run to stop: no step starts after it sees the request (within
    about a second), a step in a process or on Ray is killed, one on a thread finishes; the
    run then ends KILLED and can be resumed. 409 for a run that has ended."""
    return await run_in_threadpool(request_cancel, state.client, run_id)


@router.get(routes.PIPELINE_RUN_LOGS.template, response_model=list[StepLogs])
async def get_pipeline_run_logs(
    run_id: str, state: State, step: str | None = None
) -> list[StepLogs]:
    """What each step printed, warned and logged (``step=NAME``: that step only); a cached
    step's logs are those of the run that computed it. 404 for an unknown run or step."""
    return await run_in_threadpool(runs.step_logs, state.client, run_id, step)


@router.post(routes.TRIGGERS.template, response_model=Trigger, status_code=201)
def create_trigger(body: TriggerCreate, session: WriteSession, state: State) -> Trigger:
    """A trigger whose pipeline this server would refuse to import is refused now (403),
    not at its first firing."""
    state.code.check(body.pipeline)
    return triggers.create_trigger(session, body, current_user())


@router.get(routes.TRIGGERS.template, response_model=list[Trigger])
def list_triggers(session: ReadSession) -> list[Trigger]:
    return triggers.list_triggers(session)


@router.get(routes.TRIGGER.template, response_model=Trigger)
def get_trigger(name: str, session: ReadSession) -> Trigger:
    return triggers.get_trigger(session, name)


@router.delete(routes.TRIGGER.template, status_code=204)
def delete_trigger(name: str, session: WriteSession) -> None:
    triggers.delete_trigger(session, name)


class FireBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    params: dict[str, Any] = Field(default_factory=dict)


@router.post(routes.TRIGGER_FIRE.template, response_model=Firing, status_code=202)
def fire_trigger(
    name: str, session: WriteSession, body: FireBody | None = None,
    idempotency_key: str | None = Header(None),
) -> Firing:  # fmt: skip
    """Fire the trigger now; the server's scheduler runs the pipeline (202: accepted)."""
    key = f"webhook:{idempotency_key}" if idempotency_key else None
    firing, _ = triggers.fire(session, name, key, "webhook", (body or FireBody()).params)
    return firing


@router.get(routes.TRIGGER_FIRINGS.template, response_model=list[Firing])
def list_firings(name: str, session: ReadSession, limit: NonNegativeInt64 = 20) -> list[Firing]:
    return triggers.list_firings(session, name, limit)
