"""Pipeline runs as a whole: the DAG of one run with each step's state (for ``opsloop pipelines
show``, ``GET /api/pipelines/runs/{id}`` and the web UI), the latest runs, what their steps
printed, and the request bodies that start and rerun them (run in the background by
:mod:`opsloop.pipelines.launcher`).

A pipeline run records its graph when it starts (the ``opsloop.pipeline.graph`` tag: each step
and the outputs it takes), so the DAG shows the steps that have not started yet, or never will
because an earlier step failed, next to the nested runs of the steps that did.
"""

from __future__ import annotations

import contextlib
import json
from typing import Any

from pydantic import BaseModel
from pydantic import ConfigDict
from pydantic import Field

from opsloop.errors import InvalidInput
from opsloop.errors import NotFound
from opsloop.pipelines.attempts import read_attempts
from opsloop.pipelines.graph import GRAPH_TAG

__all__ = [
    "AttemptView",
    "PipelineReproduce",
    "PipelineRerun",
    "PipelineRunCreate",
    "PipelineRunSummary",
    "PipelineRunView",
    "StepLogs",
    "StepView",
    "describe",
    "list_pipeline_runs",
    "step_logs",
]


class AttemptView(BaseModel):
    number: int = Field(description="1 for the first attempt")
    outcome: str | None = Field(
        None, description="succeeded, failed (the step raised), crashed (its process or Ray "
        "worker died), timeout or cancelled; None: still running",
    )  # fmt: skip
    duration_s: float | None = None
    error: str | None = None


class StepView(BaseModel):
    name: str
    status: str = Field(
        description="FINISHED, FAILED, KILLED, RUNNING, PENDING (not started) or SKIPPED"
    )
    rank: int = Field(description="the DAG's column: 0 for steps that take no step's output")
    inputs: list[str] = Field(description="upstream outputs: `step`, or `step.output`")
    run_id: str | None = None
    cache: str | None = Field(None, description="hit or miss")
    reason: str | None = None
    duration_s: float | None = None
    outputs: list[str] = Field(default_factory=list)
    model_version: str | None = None
    error: str | None = None
    cached_from: str | None = Field(None, description="a cached step: the run that computed it")
    attempts: list[AttemptView] = Field(
        default_factory=list, description="each time it ran, in order; retries=N allows N+1, "
        "whatever ended each (an exception, a timeout, a worker that died). None for a cached "
        "step",
    )  # fmt: skip


class StepLogs(BaseModel):
    step: str
    run_id: str | None = Field(None, description="the step's run (None: it never started)")
    logs_run_id: str | None = Field(
        None, description="the run holding the logs: a cached step's are those of the run "
        "that computed it",
    )  # fmt: skip
    text: str | None = Field(None, description="what it printed, warned and logged; None: nothing")


class PipelineRunView(BaseModel):
    run_id: str
    pipeline: str
    status: str
    experiment_id: str
    start_time: int | None = None
    end_time: int | None = None
    target: str | None = Field(None, description="MODULE:NAME it was run from")
    params: dict[str, Any] = Field(default_factory=dict)
    data_versions: dict[str, str] = Field(
        default_factory=dict, description="each data reference it was given -> the NAME@N read"
    )
    trigger: str | None = None
    failed_step: str | None = None
    error: str | None = Field(None, description="why the run failed, when not a step's error")
    reproduces: str | None = Field(None, description="the run this one recomputed, if any")
    resumed_from: str | None = Field(None, description="the failed run this one resumed")
    steps: list[StepView]


def _step_view(name: str, inputs: list[str], run: Any, parent_done: bool) -> StepView:
    if run is None:
        return StepView(name=name, status="SKIPPED" if parent_done else "PENDING", rank=0,
                        inputs=inputs)  # fmt: skip
    tags = run.data.tags
    cache = tags.get("opsloop.cache")
    reason = tags.get("opsloop.cache.reason")
    if cache == "hit":
        reason = f"cached from run {tags.get('opsloop.cache.source', '')[:8]}"
    attempts = [AttemptView.model_validate(a) for a in read_attempts(tags, run.info.status)]
    if attempts and run.info.status == "RUNNING":  # retried, and at it again
        attempts.append(AttemptView(number=attempts[-1].number + 1))
    return StepView(
        name=name, status=run.info.status, rank=0, inputs=inputs, run_id=run.info.run_id,
        cache=cache, reason=reason, duration_s=run.data.metrics.get("duration_s"),
        outputs=sorted(json.loads(tags.get("opsloop.outputs", "{}"))),
        model_version=tags.get("opsloop.model.version"), error=tags.get("opsloop.error"),
        cached_from=tags.get("opsloop.cache.source") if cache == "hit" else None,
        attempts=attempts,
    )  # fmt: skip


def _rank(steps: list[StepView]) -> None:
    """Each step's column: one past the furthest of the steps it takes outputs from."""
    by_name = {s.name: s for s in steps}
    for s in steps:  # graph order: inputs come before the steps that take them
        upstream = [by_name[i.split(".", 1)[0]] for i in s.inputs if i.split(".", 1)[0] in by_name]
        s.rank = 1 + max((u.rank for u in upstream), default=-1)


def describe(client: Any, run_id: str) -> PipelineRunView:
    """The DAG of pipeline run ``run_id`` with each step's state, through any client."""
    parent = client.get_run(run_id)
    run_id = parent.info.run_id  # the full id, where the caller gave a unique prefix
    tags = parent.data.tags
    if "opsloop.pipeline" not in tags:
        raise InvalidInput(f"run {run_id} is not a pipeline run")
    children = client.search_runs(
        parent.info.experiment_id, f"attributes.parent_run_id = '{run_id}'",
        order_by=["attributes.start_time"], max_results=1000,
    ).items  # fmt: skip
    by_step = {c.data.tags.get("opsloop.step", c.info.run_name): c for c in children}
    shape = json.loads(tags.get(GRAPH_TAG, "[]"))
    if not shape:  # recorded before graphs were, or too large: the steps that ran
        shape = [
            [name, [i for i in c.data.tags.get("opsloop.step.inputs", "").split(",") if i]]
            for name, c in by_step.items()
        ]
    done = parent.info.status != "RUNNING"
    steps = [_step_view(name, inputs, by_step.get(name), done) for name, inputs in shape]
    _rank(steps)
    return PipelineRunView(
        run_id=run_id, pipeline=tags["opsloop.pipeline"], status=parent.info.status,
        experiment_id=parent.info.experiment_id, start_time=parent.info.start_time,
        end_time=parent.info.end_time, target=tags.get("opsloop.pipeline.target"),
        params=json.loads(tags.get("opsloop.pipeline.params", "{}")),
        data_versions=json.loads(tags.get("opsloop.pipeline.data", "{}")),
        trigger=tags.get("opsloop.trigger"), failed_step=tags.get("opsloop.pipeline.failed_step"),
        error=tags.get("opsloop.error"), reproduces=tags.get("opsloop.reproduces"),
        resumed_from=tags.get("opsloop.resumed_from"), steps=steps,
    )  # fmt: skip


class PipelineRerun(BaseModel):
    model_config = ConfigDict(extra="forbid")

    executor: str | None = Field(None, description="local, process or ray (default: the run's)")


class PipelineReproduce(PipelineRerun):
    clean_env: bool = Field(
        False, description="in a fresh environment built from the run's lock, on its code "
        "(its commit's source tree from the store: the server needs no clone)",
    )  # fmt: skip


class PipelineRunSummary(BaseModel):
    run_id: str
    pipeline: str
    status: str
    start_time: int
    end_time: int | None = None


def list_pipeline_runs(
    session: Any, limit: int = 20, pipeline: str | None = None
) -> list[PipelineRunSummary]:
    """The latest pipeline runs of every experiment (or of one pipeline), newest first."""
    from sqlalchemy import select

    from opsloop.tracking.tables import RunRow
    from opsloop.tracking.tables import RunTagRow

    if not 1 <= limit <= 1000:
        raise InvalidInput(f"limit must be between 1 and 1000, got {limit}")
    query = (
        select(RunRow.id, RunRow.status, RunRow.start_time, RunRow.end_time, RunTagRow.value)
        .join(RunTagRow, RunTagRow.run_id == RunRow.id)
        .where(RunTagRow.key == "opsloop.pipeline", RunRow.lifecycle_stage == "active")
        .order_by(RunRow.start_time.desc())
        .limit(limit)
    )
    if pipeline is not None:
        query = query.where(RunTagRow.value == pipeline)
    return [
        PipelineRunSummary(run_id=r[0], status=r[1], start_time=r[2], end_time=r[3],
                           pipeline=r[4])
        for r in session.execute(query)
    ]  # fmt: skip


def step_logs(
    client: Any, run_id: str, step: str | None = None, view: PipelineRunView | None = None
) -> list[StepLogs]:
    """What each step of pipeline run ``run_id`` printed (``step``: that one only); ``view``
    is the run's DAG where the caller has it already.

    Raises:
        NotFound: the run has no step of that name.
    """
    from opsloop.pipelines.step_logs import LOGS_ARTIFACT

    steps = (view or describe(client, run_id)).steps
    if step is not None:
        steps = [s for s in steps if s.name == step]
        if not steps:
            raise NotFound(f"pipeline run {run_id} has no step {step!r}")
    found = []
    for s in steps:
        source = s.cached_from or s.run_id
        text = None
        if source is not None:
            with contextlib.suppress(LookupError):  # no file: it printed nothing
                text = client.read_artifact(source, LOGS_ARTIFACT).decode("utf-8", "replace")
        found.append(StepLogs(step=s.name, run_id=s.run_id, logs_run_id=source, text=text))
    return found


class PipelineRunCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    pipeline: str = Field(description="MODULE:NAME of a @pipeline importable by the server")
    params: dict[str, Any] = Field(default_factory=dict)
    experiment: str | None = None
    no_cache: bool = False
    executor: str = "local"
    tags: dict[str, str] = Field(default_factory=dict)
