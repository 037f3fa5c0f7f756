"""The in-process pipelines backends: pipelines, reruns, studies and firings run here, through
the tracking client they are handed, and the services read the store directly.

The client is typed ``Any`` on purpose. A pipeline run is a tracked run with a nested run per
step, so the runner needs the whole tracking client: it creates, tags, logs to and ends runs,
stores and reads artifacts, registers models (``client.models``), resolves and records data
versions (``client.data``), reads its settings, and writes its step records behind through the
client's own tracking backend and metric queue (:mod:`opsloop.pipelines.journal`,
:mod:`opsloop.pipelines.cache_index`). A ``Protocol`` of that would be the ``Client`` itself,
which sits above this floor; whoever assembles the application hands in the ``Client`` (a
server, the one its app is built with).
"""

from __future__ import annotations

from typing import Any

from opsloop.kernel.identity import current_user
from opsloop.kernel.store_calls import StoreCalls
from opsloop.pipelines import reruns
from opsloop.pipelines import runs
from opsloop.pipelines import triggers
from opsloop.pipelines.backend import PipelineBackend
from opsloop.pipelines.backend import TriggerBackend
from opsloop.pipelines.cancel import request_cancel
from opsloop.pipelines.loading import load_pipeline
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
from opsloop.pipelines.tuning import load_objective
from opsloop.pipelines.tuning import optuna_storage
from opsloop.pipelines.tuning import tune
from opsloop.store.database import Store

__all__ = ["LocalPipelineBackend", "LocalTriggerBackend"]


class LocalPipelineBackend(StoreCalls, PipelineBackend):
    """Runs pipelines, reruns and studies in this process and waits for them.

    Args:
        store: The metadata store (the latest runs are read from it directly).
        client: The tracking client the runs go through (see the module docstring).
        database_url: The store's database URL as configured: Optuna's tables go beside it.
    """

    def __init__(self, store: Store, client: Any, database_url: str) -> None:
        self.store = store
        self.client = client
        self.database_url = database_url

    @property
    def runs_on_server(self) -> bool:
        return False

    # -- runs ---------------------------------------------------------------------------------
    def run(self, body: PipelineRunCreate, wait: bool, poll: float) -> PipelineRunView:
        result = load_pipeline(body.pipeline).run(
            client=self.client, experiment=body.experiment, no_cache=body.no_cache,
            tags=body.tags, executor=body.executor, **body.params,
        )  # fmt: skip
        return self.get_run(result.run_id)

    def resume(self, run_id: str, executor: str | None, wait: bool, poll: float) -> PipelineRunView:
        return self.get_run(reruns.resume(self.client, run_id, executor=executor).run_id)

    def reproduce(
        self, run_id: str, executor: str | None, clean_env: bool, poll: float
    ) -> Reproduction:
        return reruns.reproduce(self.client, run_id, executor=executor, clean_env=clean_env)

    def get_run(self, run_id: str) -> PipelineRunView:
        return runs.describe(self.client, run_id)

    def cancel(self, run_id: str) -> PipelineRunView:
        return request_cancel(self.client, run_id)

    def logs(self, run_id: str, step: str | None) -> list[StepLogs]:
        return runs.step_logs(self.client, run_id, step)

    def list_runs(self, limit: int, pipeline: str | None) -> list[PipelineRunSummary]:
        return self._read(runs.list_pipeline_runs, limit, pipeline)

    # -- tuning -------------------------------------------------------------------------------
    def tune(self, body: TuneCreate, poll: float) -> TuneResult:
        return tune(load_objective(body.objective), body.space, client=self.client,
                    **body.tune_arguments())  # fmt: skip

    def study_storage(self) -> str:
        return optuna_storage(self.database_url)


class LocalTriggerBackend(StoreCalls, TriggerBackend):
    """Triggers in the store; a firing made here runs its pipeline here.

    Args:
        store: The metadata store.
        client: The tracking client a fired pipeline runs through (see the module docstring).
    """

    def __init__(self, store: Store, client: Any) -> None:
        self.store = store
        self.client = client

    def create_trigger(self, body: TriggerCreate) -> Trigger:
        return self._write(triggers.create_trigger, body, current_user())

    def list_triggers(self) -> list[Trigger]:
        return self._read(triggers.list_triggers)

    def get_trigger(self, name: str) -> Trigger:
        return self._read(triggers.get_trigger, name)

    def delete_trigger(self, name: str) -> None:
        self._write(triggers.delete_trigger, name)

    def fire(self, name: str, key: str | None, params: dict[str, Any] | None, run: bool) -> Firing:
        firing, _ = self._write(
            triggers.fire, name, key and f"webhook:{key}", "fired by hand", params
        )
        if run and firing.status == "pending":
            return triggers.run_firing(self.client, self.store, firing.id) or firing
        return firing

    def list_firings(self, name: str, limit: int) -> list[Firing]:
        return self._read(triggers.list_firings, name, limit)
