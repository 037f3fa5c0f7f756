"""The remote tracking backend: the same contract, over the REST API of ``opsloop server``."""

from __future__ import annotations

from typing import Any
from typing import TypeVar

from pydantic import BaseModel
from pydantic import TypeAdapter
from pydantic import ValidationError

from opsloop.errors import InvalidInput
from opsloop.errors import validation_problems
from opsloop.kernel.paging import Page
from opsloop.kernel.paging import page_query
from opsloop.kernel.transport import HttpTransport
from opsloop.store.http_blobs import HttpBlobRemote
from opsloop.tracking import routes
from opsloop.tracking.backend import TrackingBackend
from opsloop.tracking.entities import Artifact
from opsloop.tracking.entities import ArtifactSpec
from opsloop.tracking.entities import Experiment
from opsloop.tracking.entities import MetricHistory
from opsloop.tracking.entities import Run
from opsloop.tracking.entities import RunInfo
from opsloop.tracking.schemas import ArtifactsRegister
from opsloop.tracking.schemas import ExperimentCreate
from opsloop.tracking.schemas import ExperimentUpdate
from opsloop.tracking.schemas import LogBatch
from opsloop.tracking.schemas import LogBatchResult
from opsloop.tracking.schemas import RunCreate
from opsloop.tracking.schemas import RunUpdate
from opsloop.tracking.schemas import SearchRuns
from opsloop.tracking.schemas import TagValue

__all__ = ["RemoteTrackingBackend"]

_ARTIFACT_LIST = TypeAdapter(list[Artifact])

_M = TypeVar("_M", bound=BaseModel)


class RemoteTrackingBackend(TrackingBackend):
    """Tracking over HTTP; errors come back as the same ``OpsloopError`` classes."""

    def __init__(self, transport: HttpTransport) -> None:
        self.http = transport
        self.blobs = HttpBlobRemote(transport)

    # -- experiments --------------------------------------------------------------------------
    def create_experiment(
        self, name: str, description: str | None, tags: dict[str, str] | None
    ) -> Experiment:
        body = ExperimentCreate(name=name, description=description, tags=tags)
        return Experiment.model_validate_json(
            self.http.send("POST", routes.EXPERIMENTS.url(), body, idempotent=False)
        )

    def get_experiment(self, experiment_id: str) -> Experiment:
        return Experiment.model_validate_json(
            self.http.send("GET", routes.EXPERIMENT.url(experiment_id=experiment_id))
        )

    def get_experiment_by_name(self, name: str) -> Experiment:
        return Experiment.model_validate_json(
            self.http.send("GET", routes.EXPERIMENT_BY_NAME.url(name=name))
        )

    def get_or_create_experiment(self, name: str) -> Experiment:
        return Experiment.model_validate_json(
            self.http.send("PUT", routes.EXPERIMENT_BY_NAME.url(name=name))
        )

    def list_experiments(
        self, view: str, max_results: int, page_token: str | None
    ) -> Page[Experiment]:
        params = {"view": view, **page_query(max_results, page_token)}
        return Page[Experiment].model_validate_json(
            self.http.send("GET", routes.EXPERIMENTS.url(), params=params)
        )

    def update_experiment(
        self, experiment_id: str, name: str | None, description: str | None
    ) -> Experiment:
        body = ExperimentUpdate(name=name, description=description)
        return Experiment.model_validate_json(
            self.http.send("PATCH", routes.EXPERIMENT.url(experiment_id=experiment_id), body)
        )

    def set_experiment_lifecycle(self, experiment_id: str, deleted: bool) -> Experiment:
        ids = {"experiment_id": experiment_id}
        urls = routes.EXPERIMENT.url(**ids), routes.EXPERIMENT_RESTORE.url(**ids)
        return Experiment.model_validate_json(self._set_lifecycle(deleted, *urls))

    def set_experiment_tag(self, experiment_id: str, key: str, value: str) -> None:
        self.http.send(
            "PUT",
            routes.EXPERIMENT_TAG.url(experiment_id=experiment_id, key=key),
            TagValue(value=value),
        )

    # -- runs ---------------------------------------------------------------------------------
    def create_run(self, experiment_id: str, **fields: Any) -> Run:
        body = _body(RunCreate, experiment_id=experiment_id, **fields)
        # Safe to retry only when the client chose the id (the server then returns the same run).
        return Run.model_validate_json(
            self.http.send("POST", routes.RUNS.url(), body, idempotent=body.run_id is not None)
        )

    def get_run(self, run_id: str) -> Run:
        return Run.model_validate_json(self.http.send("GET", routes.RUN.url(run_id=run_id)))

    def update_run(self, run_id: str, **fields: Any) -> RunInfo:
        return RunInfo.model_validate_json(
            self.http.send("PATCH", routes.RUN.url(run_id=run_id), _body(RunUpdate, **fields))
        )

    def set_run_lifecycle(self, run_id: str, deleted: bool) -> RunInfo:
        urls = routes.RUN.url(run_id=run_id), routes.RUN_RESTORE.url(run_id=run_id)
        return RunInfo.model_validate_json(self._set_lifecycle(deleted, *urls))

    def _set_lifecycle(self, deleted: bool, url: str, restore_url: str) -> bytes:
        """Delete the resource at ``url`` (out of listings) or restore it through
        ``restore_url``: the answer's bytes, the resource as it now is."""
        return self.http.send("DELETE", url) if deleted else self.http.send("POST", restore_url)

    def log_batch(self, run_id: str, batch: LogBatch) -> int:
        body = LogBatch(**dict(batch))  # built unchecked by the SDK: checked here
        raw = self.http.send("POST", routes.RUN_BATCH.url(run_id=run_id), body)
        return LogBatchResult.model_validate_json(raw).metrics_logged

    def delete_tag(self, run_id: str, key: str) -> None:
        self.http.send("DELETE", routes.RUN_TAG.url(run_id=run_id, key=key))

    def get_metric_history(
        self, run_id: str, key: str, max_points: int | None = None
    ) -> MetricHistory:
        params = {"max_points": max_points} if max_points is not None else None
        raw = self.http.send(
            "GET", routes.RUN_METRIC_HISTORY.url(run_id=run_id, key=key), params=params
        )
        return MetricHistory.model_validate_json(raw)

    def search_runs(self, query: SearchRuns) -> Page[Run]:
        body = _body(SearchRuns, **dict(query))
        return Page[Run].model_validate_json(self.http.send("POST", routes.RUNS_SEARCH.url(), body))

    # -- artifacts ----------------------------------------------------------------------------
    def register_artifacts(self, run_id: str, specs: list[ArtifactSpec]) -> list[Artifact]:
        body = ArtifactsRegister(artifacts=specs)
        raw = self.http.send("POST", routes.RUN_ARTIFACTS.url(run_id=run_id), body)
        return _ARTIFACT_LIST.validate_json(raw)

    def list_artifacts(self, run_id: str, prefix: str | None) -> list[Artifact]:
        params = {"prefix": prefix} if prefix else None
        return _ARTIFACT_LIST.validate_json(
            self.http.send("GET", routes.RUN_ARTIFACTS.url(run_id=run_id), params=params)
        )

    def close(self) -> None:
        self.http.close()


def _body(model: type[_M], **fields: Any) -> _M:
    """A request body, refused here as the server would refuse it (``InvalidInput`` naming the
    field) rather than as pydantic's ``ValidationError``: the same error local or remote."""
    try:
        return model(**fields)
    except ValidationError as exc:
        raise InvalidInput("invalid request: " + "; ".join(validation_problems(exc))) from None
