"""The in-process tracking backend: each call is one transaction over the services."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from opsloop.kernel.paging import Page
from opsloop.store.blobs import BlobStore
from opsloop.store.database import Store
from opsloop.tracking import artifacts, experiments, run_data, runs, search
from opsloop.tracking.backend import TrackingBackend
from opsloop.tracking.entities import (
    Artifact,
    ArtifactSpec,
    Experiment,
    MetricBatch,
    MetricHistory,
    Run,
    RunInfo,
)

__all__ = ["LocalTrackingBackend"]


class LocalTrackingBackend(TrackingBackend):
    """Talks to the metadata store and blob store directly (the embedded default)."""

    def __init__(self, store: Store, blobs: BlobStore) -> None:
        self.store = store
        self.blobs = blobs

    def create_experiment(
        self, name: str, description: str | None, tags: dict[str, str] | None
    ) -> Experiment:
        with self.store.write() as s:
            return experiments.create_experiment(s, name, description=description, tags=tags)

    def get_experiment(self, experiment_id: str) -> Experiment:
        with self.store.read() as s:
            return experiments.get_experiment(s, experiment_id)

    def get_experiment_by_name(self, name: str) -> Experiment:
        with self.store.read() as s:
            return experiments.get_experiment_by_name(s, name)

    def get_or_create_experiment(self, name: str) -> Experiment:
        with self.store.write() as s:
            return experiments.get_or_create_experiment(s, name)

    def list_experiments(
        self, view: str, max_results: int, page_token: str | None
    ) -> Page[Experiment]:
        with self.store.read() as s:
            return experiments.list_experiments(
                s, view=view, max_results=max_results, page_token=page_token
            )

    def update_experiment(
        self, experiment_id: str, name: str | None, description: str | None
    ) -> Experiment:
        with self.store.write() as s:
            return experiments.update_experiment(
                s, experiment_id, name=name, description=description
            )

    def set_experiment_lifecycle(self, experiment_id: str, deleted: bool) -> Experiment:
        change = experiments.delete_experiment if deleted else experiments.restore_experiment
        with self.store.write() as s:
            return change(s, experiment_id)

    def set_experiment_tag(self, experiment_id: str, key: str, value: str) -> None:
        with self.store.write() as s:
            experiments.set_experiment_tag(s, experiment_id, key, value)

    def create_run(self, experiment_id: str, **fields: Any) -> Run:
        with self.store.write() as s:
            return runs.create_run(s, experiment_id, **fields)

    def get_run(self, run_id: str) -> Run:
        with self.store.read() as s:
            return runs.get_run(s, run_id)

    def update_run(self, run_id: str, **fields: Any) -> RunInfo:
        with self.store.write() as s:
            return runs.update_run(s, run_id, **fields)

    def set_run_lifecycle(self, run_id: str, deleted: bool) -> RunInfo:
        with self.store.write() as s:
            return (runs.delete_run if deleted else runs.restore_run)(s, run_id)

    def log_batch(
        self,
        run_id: str,
        metrics: MetricBatch | None,
        params: dict[str, Any] | None,
        tags: dict[str, Any] | None,
    ) -> int:
        with self.store.write() as s:
            return run_data.log_batch(s, run_id, metrics=metrics, params=params, tags=tags)

    def delete_tag(self, run_id: str, key: str) -> None:
        with self.store.write() as s:
            run_data.delete_tag(s, run_id, key)

    def get_metric_history(
        self, run_id: str, key: str, max_points: int | None = None
    ) -> MetricHistory:
        with self.store.read() as s:
            return run_data.get_metric_history(s, run_id, key, max_points)

    def search_runs(
        self,
        experiment_ids: list[str],
        filter: str | None,
        order_by: list[str] | None,
        max_results: int,
        page_token: str | None,
        view: str,
    ) -> Page[Run]:
        with self.store.read() as s:
            return search.search_runs(
                s,
                experiment_ids,
                filter=filter,
                order_by=order_by,
                max_results=max_results,
                page_token=page_token,
                view=view,
            )

    def missing_blobs(self, digests: list[str]) -> list[str]:
        return self.blobs.missing(digests)

    def upload_blob(self, digest: str, path: Path) -> None:
        self.blobs.put_file(path, digest)

    def download_blob(self, digest: str, dest: Path) -> None:
        self.blobs.get_file(digest, dest)

    def register_artifacts(self, run_id: str, specs: list[ArtifactSpec]) -> list[Artifact]:
        with self.store.write() as s:
            return artifacts.register_artifacts(s, self.blobs, run_id, specs)

    def list_artifacts(self, run_id: str, prefix: str | None) -> list[Artifact]:
        with self.store.read() as s:
            return artifacts.list_artifacts(s, run_id, prefix)
