"""``client.pipelines``: start a pipeline run and read its DAG; ``client.triggers``: pipelines
started by a schedule, a new data version, an alert or a webhook.

Written once over a :class:`~opsloop.pipelines.backend.PipelineBackend` and a
:class:`~opsloop.pipelines.backend.TriggerBackend`: in local mode the pipelines run in this
process (``opsloop scheduler`` fires the triggers); with a server every call goes to its REST
API and the server runs the pipelines. The ``Client`` chooses the backends.
"""

from __future__ import annotations

from typing import Any

from opsloop.kernel.validation import validated
from opsloop.pipelines.backend import PipelineBackend
from opsloop.pipelines.backend import TriggerBackend
from opsloop.pipelines.reruns import Reproduction
from opsloop.pipelines.runs import PipelineRunCreate
from opsloop.pipelines.runs import PipelineRunSummary
from opsloop.pipelines.runs import PipelineRunView
from opsloop.pipelines.runs import StepLogs
from opsloop.pipelines.triggers import Firing
from opsloop.pipelines.triggers import Trigger
from opsloop.pipelines.triggers import TriggerCreate
from opsloop.pipelines.tuning import TuneCreate
from opsloop.pipelines.tuning import TuneResult

__all__ = ["PipelinesClient", "TriggersClient"]


class PipelinesClient:
    """Pipeline runs and tuning studies, over ``backend`` (local or remote)."""

    def __init__(self, backend: PipelineBackend) -> None:
        self._backend = backend

    @property
    def runs_on_server(self) -> bool:
        """Whether runs started here run on a server (a client of a server) rather than in
        this process."""
        return self._backend.runs_on_server

    def run(
        self, pipeline: str, *, params: dict[str, Any] | None = None,
        experiment: str | None = None, no_cache: bool = False, executor: str = "local",
        tags: dict[str, str] | None = None, wait: bool = True, poll: float = 0.5,
    ) -> PipelineRunView:  # fmt: skip
        """Run ``pipeline`` (``MODULE:NAME`` or ``FILE.py:NAME``) and return its DAG. Local
        mode runs it here and waits (a failure raises ``PipelineFailed``); with a server it
        runs there, and ``wait=False`` returns at once with the steps PENDING."""
        body = validated(
            PipelineRunCreate, "invalid run", pipeline=pipeline, params=params or {},
            experiment=experiment, no_cache=no_cache, executor=executor, tags=tags or {},
        )  # fmt: skip
        return self._backend.run(body, wait, poll)

    def resume(
        self, run_id: str, *, executor: str | None = None, wait: bool = True, poll: float = 0.5
    ) -> PipelineRunView:
        """Run ``run_id`` (usually a FAILED run) again with its params; its finished steps
        come from the cache. Local mode runs it here and waits; with a server it runs there,
        and ``wait=False`` returns as soon as the new run exists."""
        return self._backend.resume(run_id, executor, wait, poll)

    def reproduce(
        self, run_id: str, *, executor: str | None = None, clean_env: bool = False,
        poll: float = 0.5,
    ) -> Reproduction:  # fmt: skip
        """Recompute ``run_id`` (no cache, its params and seed) and compare it step by step:
        identical bytes or not, which numbers moved, commits and packages. ``clean_env``
        runs it in a fresh environment built from the run's lock, on the run's code (a
        worktree of its commit, or its source tree from the store). Local mode runs it here;
        with a server it runs there (with no clone needed) and this waits for the comparison."""
        return self._backend.reproduce(run_id, executor, clean_env, poll)

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
        body = validated(
            TuneCreate, "invalid tuning", objective=objective, space=space, n_trials=n_trials,
            direction=direction, study=study, parallel=parallel, executor=executor,
            pruner=pruner, sampler=sampler, seed=seed, register=register, experiment=experiment,
        )  # fmt: skip
        return self._backend.tune(body, poll)

    def study_storage(self) -> str:
        """Where :func:`opsloop.pipelines.tuning.tune` keeps Optuna's tables: beside this
        client's database. ``InvalidInput`` for a client of a server (tune with
        :meth:`tune`, which runs the study on the server)."""
        return self._backend.study_storage()

    def get_run(self, run_id: str) -> PipelineRunView:
        """Run ``run_id``'s DAG: each step's inputs, column, state, duration, cache verdict."""
        return self._backend.get_run(run_id)

    def cancel(self, run_id: str) -> PipelineRunView:
        """Ask running pipeline run ``run_id`` to stop (see ``cancel.request_cancel``); its DAG
        as it stands. It ends KILLED once its runner has seen the request."""
        return self._backend.cancel(run_id)

    def logs(self, run_id: str, step: str | None = None) -> list[StepLogs]:
        """What each step of run ``run_id`` printed, warned and logged (or ``step``'s only)."""
        return self._backend.logs(run_id, step)

    def list_runs(self, limit: int = 20, pipeline: str | None = None) -> list[PipelineRunSummary]:
        """The latest pipeline runs, newest first (of one pipeline with ``pipeline``)."""
        return self._backend.list_runs(limit, pipeline)


class TriggersClient:
    """Pipeline triggers and their firings, over ``backend`` (local or remote)."""

    def __init__(self, backend: TriggerBackend) -> None:
        self._backend = backend

    def create(self, name: str, pipeline: str, kind: str, **fields: Any) -> Trigger:
        """``kind`` is ``cron`` (``cron="*/15 * * * *"``), ``dataset`` (``dataset="churn"``),
        ``alert`` (``monitor="churn-watch"``, optional ``rule``) or ``webhook``; ``params``
        go to the pipeline."""
        body = validated(
            TriggerCreate, "invalid trigger", name=name, pipeline=pipeline, kind=kind, **fields
        )
        return self._backend.create_trigger(body)

    def list(self) -> list[Trigger]:
        return self._backend.list_triggers()

    def get(self, name: str) -> Trigger:
        return self._backend.get_trigger(name)

    def delete(self, name: str) -> None:
        self._backend.delete_trigger(name)

    def fire(
        self, name: str, *, key: str | None = None, params: dict[str, Any] | None = None,
        run: bool = True,
    ) -> Firing:  # fmt: skip
        """Fire ``name`` now (the webhook's call). The same ``key`` fires once however often
        it is sent. Local mode runs the pipeline here unless ``run=False``; a server's
        scheduler runs it there."""
        return self._backend.fire(name, key, params, run)

    def firings(self, name: str, limit: int = 20) -> list[Firing]:
        return self._backend.list_firings(name, limit)
