"""The in-process tracking backend: each call is one transaction over the services.

The store is opened when first needed: on the embedded store, the everyday reads (experiments,
a run listing without filter or order) are answered by :mod:`~opsloop.tracking.quick_reads`
without SQLAlchemy, so a process that only lists never imports it. The services (and
SQLAlchemy with them) are imported by the methods that call them.
"""

from __future__ import annotations

from typing import Any

from opsloop.kernel.paging import Page
from opsloop.store.on_need import StoresOnNeed
from opsloop.tracking.backend import TrackingBackend
from opsloop.tracking.entities import Artifact
from opsloop.tracking.entities import ArtifactSpec
from opsloop.tracking.entities import Experiment
from opsloop.tracking.entities import MetricHistory
from opsloop.tracking.entities import Run
from opsloop.tracking.entities import RunInfo
from opsloop.tracking.quick_reads import QUICK_PAGE_LIMIT
from opsloop.tracking.quick_reads import QuickReads
from opsloop.tracking.schemas import LogBatch
from opsloop.tracking.schemas import SearchRuns

__all__ = ["LocalTrackingBackend"]


class LocalTrackingBackend(StoresOnNeed[QuickReads], TrackingBackend):
    """Talks to the metadata store and blob store directly (the embedded default); the stores
    and quick reads are held as :class:`~opsloop.store.on_need.StoresOnNeed` holds them."""

    def create_experiment(
        self, name: str, description: str | None, tags: dict[str, str] | None
    ) -> Experiment:
        from opsloop.tracking import experiments

        with self.store.write() as s:
            return experiments.create_experiment(s, name, description=description, tags=tags)

    def get_experiment(self, experiment_id: str) -> Experiment:
        if self._quick is not None:
            return self._quick.get_experiment(experiment_id)
        from opsloop.tracking import experiments

        with self.store.read() as s:
            return experiments.get_experiment(s, experiment_id)

    def get_experiment_by_name(self, name: str) -> Experiment:
        if self._quick is not None:
            return self._quick.get_experiment_by_name(name)
        from opsloop.tracking import experiments

        with self.store.read() as s:
            return experiments.get_experiment_by_name(s, name)

    def get_or_create_experiment(self, name: str) -> Experiment:
        from opsloop.tracking import experiments

        with self.store.write() as s:
            return experiments.get_or_create_experiment(s, name)

    def list_experiments(
        self, view: str, max_results: int, page_token: str | None
    ) -> Page[Experiment]:
        if self._quick is not None and 0 < max_results <= QUICK_PAGE_LIMIT:
            return self._quick.list_experiments(view, max_results, page_token)
        from opsloop.tracking import experiments

        with self.store.read() as s:
            return experiments.list_experiments(
                s, view=view, max_results=max_results, page_token=page_token
            )

    def update_experiment(
        self, experiment_id: str, name: str | None, description: str | None
    ) -> Experiment:
        from opsloop.tracking import experiments

        with self.store.write() as s:
            return experiments.update_experiment(
                s, experiment_id, name=name, description=description
            )

    def set_experiment_lifecycle(self, experiment_id: str, deleted: bool) -> Experiment:
        from opsloop.tracking import experiments

        change = experiments.delete_experiment if deleted else experiments.restore_experiment
        with self.store.write() as s:
            return change(s, experiment_id)

    def set_experiment_tag(self, experiment_id: str, key: str, value: str) -> None:
        from opsloop.tracking import experiments

        with self.store.write() as s:
            experiments.set_experiment_tag(s, experiment_id, key, value)

    def create_run(self, experiment_id: str, **fields: Any) -> Run:
        from opsloop.tracking import runs

        with self.store.write() as s:
            return runs.create_run(s, experiment_id, **fields)

    def get_run(self, run_id: str) -> Run:
        from opsloop.tracking import runs

        with self.store.read() as s:
            return runs.get_run(s, run_id)

    def update_run(self, run_id: str, **fields: Any) -> RunInfo:
        from opsloop.tracking import runs

        with self.store.write() as s:
            return runs.update_run(s, run_id, **fields)

    def set_run_lifecycle(self, run_id: str, deleted: bool) -> RunInfo:
        from opsloop.tracking import runs

        with self.store.write() as s:
            return (runs.delete_run if deleted else runs.restore_run)(s, run_id)

    def log_batch(self, run_id: str, batch: LogBatch) -> int:
        from opsloop.tracking import run_data

        with self.store.write() as s:
            return run_data.log_batch(s, run_id, **dict(batch))

    def delete_tag(self, run_id: str, key: str) -> None:
        from opsloop.tracking import run_data

        with self.store.write() as s:
            run_data.delete_tag(s, run_id, key)

    def get_metric_history(
        self, run_id: str, key: str, max_points: int | None = None
    ) -> MetricHistory:
        from opsloop.tracking import run_data

        with self.store.read() as s:
            return run_data.get_metric_history(s, run_id, key, max_points)

    def search_runs(self, query: SearchRuns) -> Page[Run]:
        quick = self._quick if query.filter is None and not query.order_by else None
        if quick is not None and 0 < query.max_results <= QUICK_PAGE_LIMIT:
            return quick.search_runs(
                query.experiment_ids, query.max_results, query.page_token, query.view
            )
        from opsloop.tracking import search

        with self.store.read() as s:
            return search.search_runs(s, **dict(query))

    def register_artifacts(self, run_id: str, specs: list[ArtifactSpec]) -> list[Artifact]:
        from opsloop.tracking import artifacts

        with self.store.write() as s:
            return artifacts.register_artifacts(s, self.blobs, run_id, specs)

    def list_artifacts(self, run_id: str, prefix: str | None) -> list[Artifact]:
        from opsloop.tracking import artifacts

        with self.store.read() as s:
            return artifacts.list_artifacts(s, run_id, prefix)
