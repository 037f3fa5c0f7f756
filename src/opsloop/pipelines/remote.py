"""The REST pipelines backends: each call is a request to an opsloop server's API, which runs the
pipelines, reruns and studies on its launcher's threads and the firings on its scheduler (see
:mod:`opsloop.pipelines.routes` for the paths). Waiting for work to end is polling its run."""

from __future__ import annotations

import time
from typing import Any

from opsloop.errors import Conflict
from opsloop.errors import InvalidInput
from opsloop.kernel.remote_backend import RemoteBackend
from opsloop.pipelines import routes
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

__all__ = ["RemotePipelineBackend", "RemoteTriggerBackend"]


class RemotePipelineBackend(RemoteBackend, PipelineBackend):
    """Pipeline runs, reruns and studies, run by an opsloop server."""

    @property
    def runs_on_server(self) -> bool:
        return True

    # -- runs ---------------------------------------------------------------------------------
    def run(self, body: PipelineRunCreate, wait: bool, poll: float) -> PipelineRunView:
        view = self._post(PipelineRunView, routes.PIPELINE_RUNS.url(), body.model_dump(mode="json"))
        return self._follow(view, wait, poll)

    def resume(self, run_id: str, executor: str | None, wait: bool, poll: float) -> PipelineRunView:
        path = routes.PIPELINE_RUN_RESUME.url(run_id=run_id)
        view = self._post(PipelineRunView, path, {"executor": executor})
        return self._follow(view, wait, poll)

    def reproduce(
        self, run_id: str, executor: str | None, clean_env: bool, poll: float
    ) -> Reproduction:
        path = routes.PIPELINE_RUN_REPRODUCE.url(run_id=run_id)
        body = {"executor": executor, "clean_env": clean_env}
        view = PipelineRunView.model_validate(  # a clean environment is built before it answers
            self.transport.json("POST", path, json=body, idempotent=False, timeout=1800)
        )
        view = self._follow(view, True, poll)
        path = routes.PIPELINE_RUN_REPRODUCTION.url(run_id=view.run_id)
        return self.transport.fetch(Reproduction, "GET", path)

    def _follow(self, view: PipelineRunView, wait: bool, poll: float) -> PipelineRunView:
        while wait and view.status == "RUNNING":
            time.sleep(poll)
            view = self.get_run(view.run_id)
        return view

    def get_run(self, run_id: str) -> PipelineRunView:
        return self.transport.fetch(PipelineRunView, "GET", routes.PIPELINE_RUN.url(run_id=run_id))

    def cancel(self, run_id: str) -> PipelineRunView:
        return self._post(PipelineRunView, routes.PIPELINE_RUN_CANCEL.url(run_id=run_id))

    def logs(self, run_id: str, step: str | None) -> list[StepLogs]:
        path = routes.PIPELINE_RUN_LOGS.url(run_id=run_id)
        params = {"step": step} if step else None
        return self.transport.fetch(list[StepLogs], "GET", path, params=params)

    def list_runs(self, limit: int, pipeline: str | None) -> list[PipelineRunSummary]:
        query: dict[str, Any] = {"limit": limit}
        if pipeline is not None:
            query["pipeline"] = pipeline
        return self.transport.fetch(
            list[PipelineRunSummary], "GET", routes.PIPELINE_RUNS.url(), params=query
        )

    # -- tuning -------------------------------------------------------------------------------
    def tune(self, body: TuneCreate, poll: float) -> TuneResult:
        payload = body.model_dump(mode="json", by_alias=True)
        started = self.transport.json("POST", routes.TUNING.url(), json=payload, idempotent=False)
        path = routes.TUNING_RESULT.url(run_id=started["run_id"])
        while True:
            try:
                return self.transport.fetch(TuneResult, "GET", path)
            except Conflict:  # still running
                time.sleep(poll)

    def study_storage(self) -> str:
        raise InvalidInput("tuning runs next to the database: use it on the server's store")


class RemoteTriggerBackend(RemoteBackend, TriggerBackend):
    """Triggers on an opsloop server, whose scheduler runs their firings."""

    def create_trigger(self, body: TriggerCreate) -> Trigger:
        return self._post(Trigger, routes.TRIGGERS.url(), body.model_dump(mode="json"))

    def list_triggers(self) -> list[Trigger]:
        return self.transport.fetch(list[Trigger], "GET", routes.TRIGGERS.url())

    def get_trigger(self, name: str) -> Trigger:
        return self.transport.fetch(Trigger, "GET", routes.TRIGGER.url(name=name))

    def delete_trigger(self, name: str) -> None:
        self.transport.request("DELETE", routes.TRIGGER.url(name=name))

    def fire(self, name: str, key: str | None, params: dict[str, Any] | None, run: bool) -> Firing:
        headers = {"Idempotency-Key": key} if key else {}
        response = self.transport.json(
            "POST", routes.TRIGGER_FIRE.url(name=name), json={"params": params or {}},
            headers=headers, idempotent=key is not None,
        )  # fmt: skip
        return Firing.model_validate(response)

    def list_firings(self, name: str, limit: int) -> list[Firing]:
        path = routes.TRIGGER_FIRINGS.url(name=name)
        return self.transport.fetch(list[Firing], "GET", path, params={"limit": limit})
