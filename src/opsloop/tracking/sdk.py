"""The tracking half of :class:`opsloop.Client`: experiments, runs, metrics, artifacts.

Everything here is written once over a :class:`TrackingBackend`, so it behaves the same on the
embedded store and against a server. Metrics go through a :class:`MetricBuffer`; params and
tags are written at once, so a conflicting param fails at the call that logged it.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterable
from collections.abc import Mapping
from math import isfinite
from typing import Any
from typing import TypedDict

from pydantic import ValidationError

from opsloop.config import Settings
from opsloop.errors import InvalidInput
from opsloop.errors import NotFound
from opsloop.kernel.bounds import INT64_MAX
from opsloop.kernel.bounds import INT64_MIN
from opsloop.kernel.bounds import check_int64
from opsloop.kernel.paging import Page
from opsloop.kernel.timeutil import now_ms
from opsloop.tracking.backend import TrackingBackend
from opsloop.tracking.buffer import MetricBuffer
from opsloop.tracking.entities import Experiment
from opsloop.tracking.entities import MetricBatch
from opsloop.tracking.entities import MetricHistory
from opsloop.tracking.entities import MetricSeries
from opsloop.tracking.entities import Run
from opsloop.tracking.entities import RunInfo
from opsloop.tracking.entities import RunStatus
from opsloop.tracking.journal import journal_dir
from opsloop.tracking.run_artifacts import RunArtifacts
from opsloop.tracking.schemas import LogBatch
from opsloop.tracking.schemas import SearchRuns
from opsloop.tracking.validation import check_key
from opsloop.tracking.validation import check_metric_value

__all__ = ["RunSearchOptions", "TrackingClient"]


class RunSearchOptions(TypedDict, total=False):
    """What :meth:`TrackingClient.search_runs` takes besides the experiments and the filter,
    typed for a caller that passes them on (``opsloop.search_runs``): the defaults stay the
    method's, written once."""

    order_by: list[str] | None
    max_results: int
    page_token: str | None
    view: str


class TrackingClient(RunArtifacts):
    """Experiment tracking over a backend; mixed into :class:`opsloop.Client`."""

    _tracking: TrackingBackend
    _metrics: MetricBuffer

    @property
    def tracking_backend(self) -> TrackingBackend:
        """The backend runs are written through: code that writes whole runs in bulk next to a
        local store (a pipeline's step journal, its cache index) checks for a
        ``LocalTrackingBackend`` and uses its ``store`` and ``blobs``."""
        return self._tracking

    def _init_tracking(self, backend: TrackingBackend, settings: Settings | None = None) -> None:
        """``settings`` give the metric journal its folder: under the home, per store or
        server, so that points a killed process left there are sent where they were bound."""
        self._tracking = backend
        target = settings and (settings.server_url or settings.database_url)
        self._metrics = MetricBuffer(
            lambda run_id, metrics: backend.log_batch(
                run_id, LogBatch.model_construct(metrics=metrics)
            ),
            journal_dir=journal_dir(settings.home, target) if settings and target else None,
        )
        self._validated_keys: set[str] = set()

    # -- experiments --------------------------------------------------------------------------
    def create_experiment(
        self, name: str, *, description: str | None = None, tags: dict[str, str] | None = None
    ) -> Experiment:
        """Create an experiment. Raises ``Conflict`` if the name is taken."""
        return self._tracking.create_experiment(name, description, tags)

    def get_experiment(self, experiment_id: str) -> Experiment:
        return self._tracking.get_experiment(experiment_id)

    def get_experiment_by_name(self, name: str) -> Experiment:
        return self._tracking.get_experiment_by_name(name)

    def set_experiment(self, name: str) -> Experiment:
        """The experiment named ``name``, created if it does not exist yet."""
        return self._tracking.get_or_create_experiment(name)

    def resolve_experiment(self, name_or_id: str) -> Experiment:
        """An experiment by name, or else by id. Raises ``NotFound``."""
        try:
            return self._tracking.get_experiment_by_name(name_or_id)
        except NotFound:
            try:
                return self._tracking.get_experiment(name_or_id)
            except NotFound:
                raise NotFound(f"no experiment named or with id {name_or_id!r}") from None

    def list_experiments(
        self, *, view: str = "active", max_results: int = 1000, page_token: str | None = None
    ) -> Page[Experiment]:
        return self._tracking.list_experiments(view, max_results, page_token)

    def rename_experiment(self, experiment_id: str, new_name: str) -> Experiment:
        return self._tracking.update_experiment(experiment_id, new_name, None)

    def delete_experiment(self, experiment_id: str) -> Experiment:
        return self._tracking.set_experiment_lifecycle(experiment_id, deleted=True)

    def restore_experiment(self, experiment_id: str) -> Experiment:
        return self._tracking.set_experiment_lifecycle(experiment_id, deleted=False)

    def set_experiment_tag(self, experiment_id: str, key: str, value: Any) -> None:
        self._tracking.set_experiment_tag(experiment_id, key, str(value))

    # -- runs ---------------------------------------------------------------------------------
    def create_run(
        self,
        experiment_id: str,
        *,
        run_name: str | None = None,
        tags: dict[str, Any] | None = None,
        parent_run_id: str | None = None,
        capture_env: bool = True,
    ) -> Run:
        """Start a RUNNING run; with ``capture_env`` also record git, command, packages, host."""
        run = self._tracking.create_run(
            experiment_id,
            run_id=uuid.uuid4().hex,
            run_name=run_name,
            tags={k: str(v) for k, v in (tags or {}).items()},
            parent_run_id=parent_run_id,
            start_time=now_ms(),
        )
        if capture_env and os.environ.get("OPSLOOP_CAPTURE_ENV", "1") != "0":
            self.capture_environment(run.info.run_id)
            run = self.get_run(run.info.run_id)
        return run

    def capture_environment(self, run_id: str) -> None:
        """Record this process's reproducibility info on a run: tags, and the lock, diff and
        source tree as artifacts."""
        from opsloop.tracking.reproducibility import capture_environment

        env = capture_environment()
        self.set_tags(run_id, env.tags)
        self._tracking.register_artifacts(run_id, env.store(self._tracking.blobs))

    def get_run(self, run_id: str) -> Run:
        return self._tracking.get_run(run_id)

    def end_run(self, run_id: str, status: str | RunStatus = RunStatus.FINISHED) -> RunInfo:
        """Flush the run's metrics, then mark it finished (or FAILED / KILLED)."""
        try:
            self._metrics.flush(run_id)
        finally:
            info = self._tracking.update_run(run_id, status=RunStatus(status))
        self._metrics.release(run_id)  # its journal is delivered: deleted
        return info

    def update_run(
        self,
        run_id: str,
        *,
        status: str | RunStatus | None = None,
        run_name: str | None = None,
        notes: str | None = None,
    ) -> RunInfo:
        return self._tracking.update_run(
            run_id, status=RunStatus(status) if status else None, run_name=run_name, notes=notes
        )

    def delete_run(self, run_id: str) -> RunInfo:
        return self._tracking.set_run_lifecycle(run_id, deleted=True)

    def restore_run(self, run_id: str) -> RunInfo:
        return self._tracking.set_run_lifecycle(run_id, deleted=False)

    # -- params, tags, metrics ----------------------------------------------------------------
    def log_param(self, run_id: str, key: str, value: Any) -> None:
        """Log one param (written at once). Raises ``Conflict`` if it has another value."""
        self._tracking.log_batch(run_id, LogBatch.model_construct(params={key: value}))

    def log_params(self, run_id: str, params: Mapping[str, Any]) -> None:
        self._tracking.log_batch(run_id, LogBatch.model_construct(params=dict(params)))

    def set_tag(self, run_id: str, key: str, value: Any) -> None:
        self._tracking.log_batch(run_id, LogBatch.model_construct(tags={key: value}))

    def set_tags(self, run_id: str, tags: Mapping[str, Any]) -> None:
        self._tracking.log_batch(run_id, LogBatch.model_construct(tags=dict(tags)))

    def delete_tag(self, run_id: str, key: str) -> None:
        self._tracking.delete_tag(run_id, key)

    def _check_metric_key(self, key: str) -> None:
        if key not in self._validated_keys:
            check_key(key, "metric key")
            self._validated_keys.add(key)

    def log_metric(
        self,
        run_id: str,
        key: str,
        value: float,
        step: int | None = None,
        timestamp: int | None = None,
    ) -> None:
        """Log one metric point: journaled before this returns (it survives the process being
        killed; see ``opsloop.tracking.journal``), written to the store in the background.

        The key and value are checked here (NaN/inf raise ``InvalidInput`` now); store-side
        refusals (a run finished elsewhere) surface from the next ``flush`` or ``end_run``.
        """
        if key not in self._validated_keys:
            self._check_metric_key(key)
        if type(value) is not float or not isfinite(value):  # the fast path is one type check
            value = check_metric_value(key, value)
        if (step is not None and not _MIN <= step <= _MAX) or timestamp is not None:
            _check_point(step, timestamp)  # the common call (a small step, no timestamp) skips it
        self._metrics.add(run_id, key, value, step or 0, timestamp or now_ms())

    def log_metrics(
        self,
        run_id: str,
        metrics: Mapping[str, float],
        step: int | None = None,
        timestamp: int | None = None,
    ) -> None:
        """Queue several metrics at one step."""
        _check_point(step, timestamp)
        ts = timestamp or now_ms()
        clean = {}
        for key, value in metrics.items():
            self._check_metric_key(key)
            clean[key] = check_metric_value(key, value)
        self._metrics.add_many(run_id, clean, step or 0, ts)

    def log_batch(
        self,
        run_id: str,
        metrics: Iterable[tuple[str, float, int, int]] | Mapping[str, Any] | None = None,
        params: Mapping[str, Any] | None = None,
        tags: Mapping[str, Any] | None = None,
    ) -> int:
        """Write metrics, params and tags in one round trip, synchronously.

        ``metrics`` is either ``(key, value, step, timestamp)`` tuples or a mapping of key to
        ``{"values": [...], "steps": [...], "timestamps": [...]}`` columns.
        """
        batch = LogBatch.model_construct(
            metrics=_to_batch(metrics) if metrics is not None else None,
            params=dict(params) if params else None,
            tags=dict(tags) if tags else None,
        )
        return self._tracking.log_batch(run_id, batch)

    def flush(self, run_id: str | None = None) -> None:
        """Write every queued metric point now; raise any error a background write met."""
        self._metrics.flush(run_id)

    def get_metric_history(
        self, run_id: str, key: str, max_points: int | None = None
    ) -> MetricHistory:
        """Every point of a metric (flushes this run's queued points first).

        ``max_points`` thins a long history for plotting: it keeps the first and last point
        and each bucket's minimum and maximum, so spikes survive.
        """
        self._metrics.flush(run_id)
        return self._tracking.get_metric_history(run_id, key, max_points)

    def search_runs(
        self,
        experiments: str | list[str] | None,
        filter: str | None = None,
        *,
        order_by: list[str] | None = None,
        max_results: int = 1000,
        page_token: str | None = None,
        view: str = "active",
    ) -> Page[Run]:
        """Runs matching a filter in one or more experiments (names or ids), or in every
        experiment when ``experiments`` is None (the active ones for ``view="active"``).

        Example:
            >>> client.search_runs("churn", "metrics.f1 > 0.8 and params.model = 'rf'",
            ...                    order_by=["metrics.f1 DESC"], max_results=10)
        """
        if experiments is None:  # every experiment: the same search over all their ids
            ids: list[str] = []
            token: str | None = None
            while True:
                listed = self._tracking.list_experiments(
                    "active" if view == "active" else "all", 1000, token
                )
                ids += [e.experiment_id for e in listed.items]
                if not (token := listed.next_page_token):
                    break
            if not ids:
                return Page[Run](items=[])
        else:
            names = [experiments] if isinstance(experiments, str) else list(experiments)
            ids = [self.resolve_experiment(n).experiment_id for n in names]
        query = SearchRuns.model_construct(
            experiment_ids=ids, filter=filter, order_by=order_by, max_results=max_results,
            page_token=page_token, view=view,
        )  # fmt: skip
        return self._tracking.search_runs(query)

    def close(self) -> None:
        """Flush queued metrics and release connections."""
        try:
            self._metrics.close()
        finally:
            self._tracking.close()


def _series(key: str, columns: Any) -> MetricSeries:
    """One key's columns; ``steps`` default to 0.., ``timestamps`` to now."""
    if not isinstance(columns, Mapping) or "values" not in columns:
        raise InvalidInput(f"metric {key!r}: expected {{'values': [...], 'steps': [...]}} columns")
    values = list(columns["values"])
    steps = columns.get("steps")
    timestamps = columns.get("timestamps")
    try:
        return MetricSeries(
            values=values,
            steps=list(range(len(values))) if steps is None else list(steps),
            timestamps=[now_ms()] * len(values) if timestamps is None else list(timestamps),
        )
    except ValidationError as error:
        raise InvalidInput(f"metric {key!r}: {error.errors()[0]['msg']}") from None


def _to_batch(metrics: Iterable[tuple[str, float, int, int]] | Mapping[str, Any]) -> MetricBatch:
    if isinstance(metrics, Mapping):
        return MetricBatch(series={k: _series(k, v) for k, v in metrics.items()})
    columns: dict[str, tuple[list[Any], list[int], list[int]]] = {}
    for key, value, step, timestamp in metrics:
        column = columns.get(key)
        if column is None:
            column = columns[key] = ([], [], [])
        column[0].append(value)
        column[1].append(step)
        column[2].append(timestamp)
    return MetricBatch(
        series={
            key: MetricSeries.model_construct(
                values=_finite_values(key, values), steps=steps, timestamps=timestamps
            )
            for key, (values, steps, timestamps) in columns.items()
        }
    )


def _finite_values(key: str, values: list[Any]) -> list[float]:
    """The values as floats, checked all at once; the first bad one is named as
    ``check_metric_value`` names it."""
    import numpy as np

    try:
        array = np.asarray(values, dtype=np.float64)
        if array.ndim == 1 and np.isfinite(array).all():
            return array.tolist()  # type: ignore[no-any-return]
    except (TypeError, ValueError):
        pass
    return [check_metric_value(key, v) for v in values]


_MIN, _MAX = INT64_MIN, INT64_MAX


def _check_point(step: int | None, timestamp: int | None) -> None:
    """Refuse a step or timestamp the store cannot hold now, not at a background flush (where
    it would fail the batch it is written with)."""
    if step is not None and not INT64_MIN <= step <= INT64_MAX:
        check_int64(step, "step")
    if timestamp is not None and not INT64_MIN <= timestamp <= INT64_MAX:
        check_int64(timestamp, "timestamp")
