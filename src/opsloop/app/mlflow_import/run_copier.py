"""Copy one MLflow run into opsloop, keeping its id and times, resumably.

The ledger is the target itself: a run is created with ``opsloop.origin=mlflow`` and counts as
imported only once ``opsloop.origin.imported_at`` is set, which is written last (after params,
tags, every metric point, the artifacts, the status and end time). A run found with the origin
but not the mark was cut off mid-copy: it is reopened and completed (the metric points already
there are subtracted, point by point, from those to write). A run whose id is taken by
anything else is a conflict, never overwritten.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from typing import Any

from opsloop.app.mlflow_import.artifacts import ArtifactLocator
from opsloop.app.mlflow_import.report import ImportReport
from opsloop.app.mlflow_import.source import RunContent
from opsloop.app.mlflow_import.source import Skipped
from opsloop.app.mlflow_import.source import SourceRun
from opsloop.app.mlflow_import.writes import local_store
from opsloop.app.mlflow_import.writes import session_writes
from opsloop.errors import Conflict
from opsloop.errors import InvalidInput
from opsloop.errors import NotFound
from opsloop.errors import OpsloopError
from opsloop.kernel.timeutil import now_ms
from opsloop.store.blobs import hash_file
from opsloop.tracking.entities import ArtifactSpec
from opsloop.tracking.entities import MetricBatch
from opsloop.tracking.entities import MetricSeries
from opsloop.tracking.entities import Run
from opsloop.tracking.entities import RunStatus
from opsloop.tracking.run_artifacts import walk_files
from opsloop.tracking.schemas import LogBatch
from opsloop.tracking.validation import MAX_PARAM_VALUE_LENGTH
from opsloop.tracking.validation import MAX_TAG_VALUE_LENGTH
from opsloop.tracking.validation import check_key

__all__ = ["COMPLETE_TAG", "ORIGIN_TAG", "RunCopier"]

ORIGIN_TAG = "opsloop.origin"
COMPLETE_TAG = "opsloop.origin.imported_at"
STORE_TAG = "opsloop.origin.store"
INPUTS_TAG = "mlflow.inputs"
_POINTS_PER_BATCH = 20_000
_BOOKKEEPING = {ORIGIN_TAG, COMPLETE_TAG, STORE_TAG}


class RunCopier:
    """Writes runs through the client's tracking backend (local store or server alike)."""

    def __init__(
        self, client: Any, locator: ArtifactLocator, report: ImportReport, store: str
    ) -> None:
        self.backend = client.tracking_backend
        self.writes: Any = self.backend  # or a batch's SessionWrites (see copy_batch)
        self.locator = locator
        self.report = report
        self.store = store

    def copy_batch(self, items: list[tuple[Any, ...]]) -> list[bool]:
        """Copy runs given as ``copy``'s arguments; next to an embedded store in one
        transaction, redone one by one (each in its own) when any of them fails."""
        if local_store(self.backend) is None or len(items) < 2:
            return [self.copy(*item) for item in items]
        before = (Counter(self.report.copied), Counter(self.report.already),
                  len(self.report.skipped), len(self.report.conflicts))  # fmt: skip
        try:
            with session_writes(self.backend) as writes:
                self.writes = writes
                return [self.copy(*item, strict=True) for item in items]
        except OpsloopError:
            self.report.copied, self.report.already = before[0], before[1]
            del self.report.skipped[before[2] :], self.report.conflicts[before[3] :]
        finally:
            self.writes = self.backend
        return [self.copy(*item) for item in items]

    def copy(
        self, run: SourceRun, content: RunContent, experiment_id: str, existing: Run | None,
        parent_run_id: str | None, strict: bool = False,
    ) -> bool:  # fmt: skip
        """Copy the run; True when it is in opsloop (now or already), False when it is not.
        ``strict`` (inside a shared transaction) lets a failed write abort it."""
        what = f"run {run.run_id}"
        if existing is not None and COMPLETE_TAG in existing.data.tags:
            return self._check_same(run, content, experiment_id, existing)
        if existing is not None and existing.data.tags.get(ORIGIN_TAG) != "mlflow":
            why = "the id is taken by an opsloop run not imported from MLflow"
            return self._conflict(what, why)
        try:
            if existing is None:
                existing = self._create(run, experiment_id, parent_run_id)
            elif existing.info.status.is_terminal or existing.info.lifecycle_stage == "deleted":
                self.writes.set_run_lifecycle(run.run_id, deleted=False)
                self.writes.update_run(run.run_id, status=RunStatus.RUNNING)
            self._write(run, content, existing)
        except Conflict as error:
            if strict:
                raise
            return self._conflict(what, error.message)
        except OpsloopError as error:
            if strict:
                raise
            self.report.skipped.append(Skipped("run", run.run_id, error.message.splitlines()[0]))
            return False
        self.report.copied["runs"] += 1
        return True

    def _create(self, run: SourceRun, experiment_id: str, parent_run_id: str | None) -> Run:
        fields = {
            "run_id": run.run_id,
            "run_name": run.name,
            "tags": {ORIGIN_TAG: "mlflow", STORE_TAG: self.store},
            "start_time": run.start_time,
            "user_id": run.user_id,
        }
        try:
            return self.writes.create_run(experiment_id, parent_run_id=parent_run_id, **fields)
        except (InvalidInput, NotFound) as error:
            if parent_run_id is None:
                raise
            why = f"kept without its parent {parent_run_id}: {error.message.splitlines()[0]}"
            self.report.skipped.append(Skipped("parent link", run.run_id, why))
            return self.writes.create_run(experiment_id, parent_run_id=None, **fields)

    def _write(self, run: SourceRun, content: RunContent, existing: Run) -> None:
        params = self._params(run.run_id, content.params, existing.data.params)
        tags = self._tags(run.run_id, content)
        batches = self._metric_batches(run.run_id, content, existing)
        atomic = self.writes is not self.backend  # one transaction: the mark can go first
        marked = {**tags, COMPLETE_TAG: str(now_ms())} if atomic else tags
        first = batches[0] if batches else None
        self.writes.log_batch(run.run_id, LogBatch(metrics=first, params=params, tags=marked))
        for batch in batches[1:]:
            self.writes.log_batch(run.run_id, LogBatch(metrics=batch))
        self.report.copied["params"] += len(params)
        self.report.copied["tags"] += len(tags)
        self.report.copied["datasets"] += len(content.datasets)
        self._artifacts(run)
        status = _status(run.status)
        if status.is_terminal:
            end = run.end_time if run.end_time is not None else run.start_time
            self.writes.update_run(run.run_id, status=status, end_time=end)
        elif status is RunStatus.SCHEDULED:
            self.writes.update_run(run.run_id, status=status)
        if run.lifecycle_stage == "deleted":
            self.writes.set_run_lifecycle(run.run_id, deleted=True)
        if not atomic:
            self.writes.log_batch(run.run_id, LogBatch(tags={COMPLETE_TAG: str(now_ms())}))

    def _params(self, run_id: str, params: dict[str, str], there: dict[str, str]) -> dict[str, str]:
        new = {key: value for key, value in params.items() if there.get(key) != value}
        return self._writable("param", run_id, new, MAX_PARAM_VALUE_LENGTH)

    def _tags(self, run_id: str, content: RunContent) -> dict[str, str]:
        tags = {key: value for key, value in content.tags.items() if key not in _BOOKKEEPING}
        if content.datasets:
            tags[INPUTS_TAG] = _inputs_tag(content)
        return self._writable("tag", run_id, tags, MAX_TAG_VALUE_LENGTH)

    def _writable(
        self, kind: str, run_id: str, pairs: dict[str, str], limit: int
    ) -> dict[str, str]:
        """The ``pairs`` opsloop can store; each other one is reported skipped, with why."""
        out = {}
        for key, value in pairs.items():
            too_long = f"value longer than {limit} characters" if len(value) > limit else None
            reason = _bad_key(key) or too_long
            if reason:
                self.report.skipped.append(Skipped(kind, f"{run_id}/{key}", reason))
            else:
                out[key] = value
        return out

    def _metric_batches(self, run_id: str, content: RunContent, existing: Run) -> list[MetricBatch]:
        """The points to write, as columnar batches of at most ``_POINTS_PER_BATCH``."""
        batches: list[dict[str, dict[str, list[Any]]]] = [{}]
        size = 0
        for key, points in content.metrics.items():
            if reason := _bad_key(key):
                what = f"{run_id}/{key}"
                self.report.skipped.append(Skipped("metric", what, reason))
                continue
            there = self._points_there(run_id, key, existing)
            rows = []
            for step, timestamp, value in zip(
                points.steps, points.timestamps, points.values, strict=True
            ):
                if not math.isfinite(value):
                    what = f"{run_id}/{key}@{step}"
                    why = f"{value} (opsloop stores finite values only)"
                    self.report.skipped.append(Skipped("metric value", what, why))
                elif there and there[(step, timestamp, value)] > 0:
                    there[(step, timestamp, value)] -= 1
                    self.report.already["metric values"] += 1
                else:
                    rows.append((step, timestamp, value))
            for start in range(0, len(rows), _POINTS_PER_BATCH):
                part = rows[start : start + _POINTS_PER_BATCH]
                if size + len(part) > _POINTS_PER_BATCH and batches[-1]:
                    batches.append({})
                    size = 0
                batches[-1][key] = {
                    "steps": [r[0] for r in part],
                    "timestamps": [r[1] for r in part],
                    "values": [r[2] for r in part],
                }
                size += len(part)
                self.report.copied["metric values"] += len(part)
        return [_batch(b) for b in batches if b]

    def _points_there(self, run_id: str, key: str, existing: Run) -> Counter[tuple[Any, ...]]:
        if key not in existing.data.metrics:
            return Counter()
        history = self.backend.get_metric_history(run_id, key)
        return Counter(zip(history.steps, history.timestamps, history.values, strict=True))

    def _artifacts(self, run: SourceRun) -> None:
        folder, why = self.locator.folder(run.artifact_uri)
        if why:
            self.report.skipped.append(Skipped("artifacts", run.run_id, why))
        if folder is None or not folder.is_dir() or not any(folder.iterdir()):
            return
        files = list(walk_files(folder))
        specs = [ArtifactSpec(path=rel, digest=hash_file(path), size=path.stat().st_size)
                 for rel, path in files]  # fmt: skip
        by_digest = {spec.digest: path for spec, (_, path) in zip(specs, files, strict=True)}
        for digest in self.backend.missing_blobs(list(by_digest)):
            self.backend.upload_blob(digest, by_digest[digest])
        self.report.copied["artifacts"] += len(self.writes.register_artifacts(run.run_id, specs))

    def _check_same(
        self, run: SourceRun, content: RunContent, experiment_id: str, existing: Run
    ) -> bool:
        """A completed import of this run: the same run, or a conflict when it changed."""
        if existing.info.experiment_id != experiment_id:
            return self._conflict(f"run {run.run_id}", "it exists in another opsloop experiment")
        changed = [
            k for k, v in content.params.items()
            if not _bad_key(k) and existing.data.params.get(k, v) != v
        ]  # fmt: skip
        if changed:
            return self._conflict(
                f"run {run.run_id}", f"opsloop holds other values for params {changed[:5]}"
            )
        self.report.already["runs"] += 1
        return True

    def _conflict(self, what: str, why: str) -> bool:
        self.report.conflicts.append(Skipped("conflict", what, why))
        return False


def _status(status: str) -> RunStatus:
    try:
        return RunStatus(status)
    except ValueError:
        return RunStatus.FAILED


def _bad_key(key: str) -> str | None:
    try:
        check_key(key)
    except InvalidInput as error:
        return error.message.split(";")[0]
    return None


def _inputs_tag(content: RunContent) -> str:
    """The run's MLflow dataset inputs as JSON: MLflow keeps no dataset bytes, so there is no
    opsloop dataset version to link; the names, digests and sources stay readable here."""
    entries = [
        {"name": d.name, "digest": d.digest, "source_type": d.source_type, "source": d.source,
         "context": d.context}
        for d in content.datasets
    ]  # fmt: skip
    text = json.dumps(entries, separators=(",", ":"))
    while len(text) > MAX_TAG_VALUE_LENGTH and entries:
        entries.pop()
        text = json.dumps(entries, separators=(",", ":"))
    return text


def _batch(columns: dict[str, dict[str, list[Any]]]) -> MetricBatch:
    """Columns already checked here (finite floats, int steps and times): built unvalidated."""
    return MetricBatch(series={k: MetricSeries.model_construct(**v) for k, v in columns.items()})
