"""``client.pipelines``: start a pipeline run and read its DAG; ``client.triggers``: pipelines
started by a schedule, a new data version, an alert or a webhook. Local mode runs the services
in this process (``opsloop scheduler`` fires the triggers); with a server every call goes to its
REST API and the server runs the pipelines."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import quote

from pydantic import TypeAdapter, ValidationError

from opsloop.errors import Conflict, InvalidInput, validation_problems
from opsloop.kernel.sdkpart import LocalOrRemote
from opsloop.pipelines.reruns import Reproduction
from opsloop.pipelines.runs import (
    PipelineRunCreate,
    PipelineRunSummary,
    PipelineRunView,
    StepLogs,
)
from opsloop.pipelines.triggers import Firing, Trigger, TriggerCreate
from opsloop.pipelines.tuning import TuneCreate, TuneResult

__all__ = ["PipelinesClient", "TriggersClient"]

_RUNS = TypeAdapter(list[PipelineRunSummary])
_TRIGGERS = TypeAdapter(list[Trigger])
_FIRINGS = TypeAdapter(list[Firing])
_LOGS = TypeAdapter(list[StepLogs])


class PipelinesClient(LocalOrRemote):
    def run(
        self, pipeline: str, *, params: dict[str, Any] | None = None,
        experiment: str | None = None, no_cache: bool = False, executor: str = "local",
        tags: dict[str, str] | None = None, wait: bool = True, poll: float = 0.5,
    ) -> PipelineRunView:  # fmt: skip
        """Run ``pipeline`` (``MODULE:NAME`` or ``FILE.py:NAME``) and return its DAG. Local
        mode runs it here and waits (a failure raises ``PipelineFailed``); with a server it
        runs there, and ``wait=False`` returns at once with the steps PENDING."""
        try:
            body = PipelineRunCreate(
                pipeline=pipeline, params=params or {}, experiment=experiment,
                no_cache=no_cache, executor=executor, tags=tags or {},
            )  # fmt: skip
        except ValidationError as exc:
            raise InvalidInput("invalid run: " + "; ".join(validation_problems(exc))) from None
        if not self._remote:
            from opsloop.pipelines.loading import load_pipeline

            result = load_pipeline(pipeline).run(
                client=self._client, experiment=experiment, no_cache=no_cache, tags=tags,
                executor=executor, **body.params,
            )  # fmt: skip
            return self.get_run(result.run_id)
        payload = body.model_dump(mode="json")
        view = PipelineRunView.model_validate(
            self._http("POST", "/api/pipelines/runs", json=payload, idempotent=False)
        )
        return self._follow(view, wait, poll)

    def resume(
        self, run_id: str, *, executor: str | None = None, wait: bool = True, poll: float = 0.5
    ) -> PipelineRunView:
        """Run ``run_id`` (usually a FAILED run) again with its params; its finished steps
        come from the cache. Local mode runs it here and waits; with a server it runs there,
        and ``wait=False`` returns as soon as the new run exists."""
        if not self._remote:
            from opsloop.pipelines.reruns import resume

            return self.get_run(resume(self._client, run_id, executor=executor).run_id)
        path = f"/api/pipelines/runs/{quote(run_id)}/resume"
        body = {"executor": executor}
        view = PipelineRunView.model_validate(self._http("POST", path, json=body, idempotent=False))
        return self._follow(view, wait, poll)

    def reproduce(
        self, run_id: str, *, executor: str | None = None, clean_env: bool = False,
        poll: float = 0.5,
    ) -> Reproduction:  # fmt: skip
        """Recompute ``run_id`` (no cache, its params and seed) and compare it step by step:
        identical bytes or not, which numbers moved, commits and packages. ``clean_env``
        runs it in a fresh environment built from the run's lock, on the run's code (a
        worktree of its commit, or its source tree from the store). Local mode runs it here;
        with a server it runs there (with no clone needed) and this waits for the comparison."""
        if not self._remote:
            from opsloop.pipelines.reruns import reproduce

            return reproduce(self._client, run_id, executor=executor, clean_env=clean_env)
        path = f"/api/pipelines/runs/{quote(run_id)}/reproduce"
        body = {"executor": executor, "clean_env": clean_env}
        view = PipelineRunView.model_validate(
            self._http("POST", path, json=body, idempotent=False, timeout=1800)
        )
        view = self._follow(view, True, poll)
        return Reproduction.model_validate(
            self._http("GET", f"/api/pipelines/runs/{quote(view.run_id)}/reproduction")
        )

    def tune(
        self, objective: str, space: dict[str, Any], *, n_trials: int = 20,
        direction: str = "maximize", study: str | None = None, parallel: int = 1,
        executor: str = "threads", pruner: str = "median", sampler: str = "tpe",
        seed: int | None = 0, register: str | None = None, experiment: str | None = None,
        poll: float = 1.0,
    ) -> TuneResult:  # fmt: skip
        """Tune ``objective`` (``MODULE:NAME`` or ``FILE.py:NAME``) with Optuna; see
        :func:`opsloop.pipelines.tuning.tune`. Local mode runs here; with a server the study
        runs there (next to its database) and this waits for its result."""
        try:
            body = TuneCreate(
                objective=objective, space=space, n_trials=n_trials, direction=direction,
                study=study, parallel=parallel, executor=executor, pruner=pruner,
                sampler=sampler, seed=seed, register=register, experiment=experiment,
            )  # fmt: skip
        except ValidationError as exc:
            raise InvalidInput("invalid tuning: " + "; ".join(validation_problems(exc))) from None
        if not self._remote:
            from opsloop.pipelines.tuning import load_objective, tune

            return tune(load_objective(objective), space, client=self._client,
                        **body.tune_arguments())  # fmt: skip
        payload = body.model_dump(mode="json", by_alias=True)
        started = self._http("POST", "/api/tuning", json=payload, idempotent=False)
        while True:
            try:
                return TuneResult.model_validate(
                    self._http("GET", f"/api/tuning/{quote(started['run_id'])}")
                )
            except Conflict:  # still running
                time.sleep(poll)

    def _follow(self, view: PipelineRunView, wait: bool, poll: float) -> PipelineRunView:
        while wait and view.status == "RUNNING":
            time.sleep(poll)
            view = self.get_run(view.run_id)
        return view

    def get_run(self, run_id: str) -> PipelineRunView:
        """Run ``run_id``'s DAG: each step's inputs, column, state, duration, cache verdict."""
        if self._remote:
            return PipelineRunView.model_validate(
                self._http("GET", f"/api/pipelines/runs/{quote(run_id)}")
            )
        from opsloop.pipelines.runs import describe

        return describe(self._client, run_id)

    def cancel(self, run_id: str) -> PipelineRunView:
        """Ask running pipeline run ``run_id`` to stop (see ``cancel.request_cancel``); its DAG
        as it stands. It ends KILLED once its runner has seen the request."""
        if self._remote:
            path = f"/api/pipelines/runs/{quote(run_id)}/cancel"
            return PipelineRunView.model_validate(self._http("POST", path, idempotent=False))
        from opsloop.pipelines.cancel import request_cancel

        return request_cancel(self._client, run_id)

    def logs(self, run_id: str, step: str | None = None) -> list[StepLogs]:
        """What each step of run ``run_id`` printed, warned and logged (or ``step``'s only)."""
        if self._remote:
            path = f"/api/pipelines/runs/{quote(run_id)}/logs"
            return _LOGS.validate_python(
                self._http("GET", path, params={"step": step} if step else None)
            )
        from opsloop.pipelines.runs import step_logs

        return step_logs(self._client, run_id, step)

    def list_runs(self, limit: int = 20, pipeline: str | None = None) -> list[PipelineRunSummary]:
        """The latest pipeline runs, newest first (of one pipeline with ``pipeline``)."""
        if self._remote:
            query: dict[str, Any] = {"limit": limit}
            if pipeline is not None:
                query["pipeline"] = pipeline
            return _RUNS.validate_python(self._http("GET", "/api/pipelines/runs", params=query))
        from opsloop.pipelines.runs import list_pipeline_runs

        with self._store.read() as session:
            return list_pipeline_runs(session, limit, pipeline)


class TriggersClient(LocalOrRemote):
    def create(self, name: str, pipeline: str, kind: str, **fields: Any) -> Trigger:
        """``kind`` is ``cron`` (``cron="*/15 * * * *"``), ``dataset`` (``dataset="churn"``),
        ``alert`` (``monitor="churn-watch"``, optional ``rule``) or ``webhook``; ``params``
        go to the pipeline."""
        try:
            body = TriggerCreate(name=name, pipeline=pipeline, kind=kind, **fields)  # type: ignore[arg-type]
        except ValidationError as exc:
            raise InvalidInput("invalid trigger: " + "; ".join(validation_problems(exc))) from None
        if self._remote:
            payload = body.model_dump(mode="json")
            return Trigger.model_validate(
                self._http("POST", "/api/triggers", json=payload, idempotent=False)
            )
        from opsloop.kernel.identity import current_user
        from opsloop.pipelines.triggers import create_trigger

        with self._store.write() as session:
            return create_trigger(session, body, current_user())

    def list(self) -> list[Trigger]:
        if self._remote:
            return _TRIGGERS.validate_python(self._http("GET", "/api/triggers"))
        from opsloop.pipelines.triggers import list_triggers

        with self._store.read() as session:
            return list_triggers(session)

    def get(self, name: str) -> Trigger:
        if self._remote:
            return Trigger.model_validate(self._http("GET", f"/api/triggers/{quote(name)}"))
        from opsloop.pipelines.triggers import get_trigger

        with self._store.read() as session:
            return get_trigger(session, name)

    def delete(self, name: str) -> None:
        if self._remote:
            self._client._transport.request("DELETE", f"/api/triggers/{quote(name)}")
            return
        from opsloop.pipelines.triggers import delete_trigger

        with self._store.write() as session:
            delete_trigger(session, name)

    def fire(
        self, name: str, *, key: str | None = None, params: dict[str, Any] | None = None,
        run: bool = True,
    ) -> Firing:  # fmt: skip
        """Fire ``name`` now (the webhook's call). The same ``key`` fires once however often
        it is sent. Local mode runs the pipeline here unless ``run=False``; a server's
        scheduler runs it there."""
        if self._remote:
            headers = {"Idempotency-Key": key} if key else {}
            response = self._client._transport.request(
                "POST", f"/api/triggers/{quote(name)}/fire", json={"params": params or {}},
                headers=headers, idempotent=key is not None,
            )  # fmt: skip
            return Firing.model_validate(response.json())
        from opsloop.pipelines import triggers

        with self._store.write() as session:
            firing, _ = triggers.fire(
                session, name, key and f"webhook:{key}", "fired by hand", params
            )
        if run and firing.status == "pending":
            return triggers.run_firing(self._client, self._store, firing.id) or firing
        return firing

    def firings(self, name: str, limit: int = 20) -> list[Firing]:
        if self._remote:
            path = f"/api/triggers/{quote(name)}/firings"
            return _FIRINGS.validate_python(self._http("GET", path, params={"limit": limit}))
        from opsloop.pipelines.triggers import list_firings

        with self._store.read() as session:
            return list_firings(session, name, limit)
