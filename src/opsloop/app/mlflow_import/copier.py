"""The import: open the MLflow store, pick its experiments, copy them, their runs (parents
before children) and the registry, and return the :class:`ImportReport`.

Runs are read in chunks (their params, tags, metrics and inputs a chunk at a time) so a store
of any size is copied in bounded memory; what the target already holds is listed once per
experiment, so a second import costs one listing, not one request per run.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from opsloop.app.mlflow_import.artifacts import ArtifactLocator
from opsloop.app.mlflow_import.model_copier import ModelCopier
from opsloop.app.mlflow_import.report import ImportReport
from opsloop.app.mlflow_import.run_copier import ORIGIN_TAG
from opsloop.app.mlflow_import.run_copier import RunCopier
from opsloop.app.mlflow_import.source import RunContent
from opsloop.app.mlflow_import.source import Skipped
from opsloop.app.mlflow_import.source import SourceExperiment
from opsloop.app.mlflow_import.source import SourceReader
from opsloop.app.mlflow_import.source import SourceRun
from opsloop.app.mlflow_import.source import without_password
from opsloop.errors import InvalidInput
from opsloop.errors import NotFound
from opsloop.errors import OpsloopError
from opsloop.tracking.entities import Run
from opsloop.tracking.schemas import SearchRuns
from opsloop.tracking.validation import check_key

__all__ = ["Progress", "open_reader", "run_import"]

_CHUNK = 200  # runs read, and written in one transaction next to an embedded store
_POINTS_PER_TRANSACTION = 200_000

Progress = Callable[[str, int], None]  # ("total", n) once, then ("advance", 1) per run or version


def open_reader(uri: str) -> SourceReader:
    """The reader for a tracking URI: a database URL, or a ``file:`` URI / folder."""
    if "://" in uri and not uri.startswith("file:"):
        if uri.startswith(("http://", "https://")):
            from opsloop.app.mlflow_import.http_reader import HttpReader

            return HttpReader(uri)
        from opsloop.app.mlflow_import.sql_reader import SqlReader

        return SqlReader(uri)
    from opsloop.app.mlflow_import.file_reader import FileReader

    return FileReader(uri)


def run_import(
    client: Any,
    reader: SourceReader,
    *,
    artifacts: Path | None = None,
    experiment: str | None = None,
    progress: Progress | None = None,
) -> ImportReport:
    """Copy what ``reader`` holds (only ``experiment``, by name or id, when given)."""
    report = ImportReport(source=without_password(reader.uri))
    tick = progress or (lambda _what, _n: None)
    experiments = _chosen(reader.experiments(), experiment)
    locator = ArtifactLocator(artifacts)
    runs_by_experiment: dict[str, str] = {}
    for source in experiments:
        target = _experiment(client, source, report)
        if target is not None:
            runs_by_experiment[source.experiment_id] = target
    runs = reader.runs(list(runs_by_experiment))
    models = reader.models() if experiment is None else []
    tick("total", len(runs) + sum(len(m.versions) for m in models))
    copier = _Runs(client, reader, RunCopier(client, locator, report, report.source), runs)
    for source_id, target_id in runs_by_experiment.items():
        copier.existing.update(_runs_there(client, target_id))
        copier.targets[source_id] = target_id
    for start in range(0, len(runs), _CHUNK):
        chunk = runs[start : start + _CHUNK]
        contents = reader.run_contents([r.run_id for r in chunk])
        for run in chunk:
            copier.plan(run, contents[run.run_id])
            if copier.queued_points > _POINTS_PER_TRANSACTION:
                tick("advance", copier.flush())
        tick("advance", copier.flush())
    run_folders = {r.run_id: locator.folder(r.artifact_uri)[0] for r in runs}
    model_copier = ModelCopier(client, locator, report, run_folders, lambda: tick("advance", 1))
    for model in models:
        try:
            model_copier.copy(model)
        except OpsloopError as error:
            report.skipped.append(Skipped("model", model.name, error.message.splitlines()[0]))
    report.skipped[:0] = reader.skipped
    return report


class _Runs:
    """Plans runs so that a parent is written before its children (in an earlier batch or
    earlier in the same one), and writes them a batch at a time."""

    def __init__(
        self, client: Any, reader: SourceReader, copier: RunCopier, runs: list[SourceRun]
    ) -> None:
        self.client = client
        self.reader = reader
        self.copier = copier
        self.source = {r.run_id: r for r in runs}
        self.targets: dict[str, str] = {}  # MLflow experiment id → opsloop's
        self.existing: dict[str, Run] = {}
        self.done: dict[str, bool] = {}  # planned runs: True until their batch says otherwise
        self.queue: list[tuple[Any, ...]] = []
        self.queued_points = 0

    def plan(self, run: SourceRun, content: RunContent) -> None:
        if run.run_id in self.done:
            return
        self.done[run.run_id] = True  # a parent cycle ends here
        parent = content.parent_run_id
        if parent is not None and parent in self.source and parent not in self.done:
            self.plan(self.source[parent], self.reader.run_contents([parent])[parent])
        if parent is not None and not self._parent_there(parent):
            why = f"its parent {parent} is not in opsloop; imported without the link"
            self.copier.report.skipped.append(Skipped("parent link", run.run_id, why))
            parent = None
        target = self.targets[run.experiment_id]
        self.queue.append((run, content, target, self.existing.get(run.run_id), parent))
        self.queued_points += sum(len(p.values) for p in content.metrics.values())

    def flush(self) -> int:
        """Write the planned runs; how many there were."""
        batch, self.queue, self.queued_points = self.queue, [], 0
        for item, ok in zip(batch, self.copier.copy_batch(batch), strict=True):
            self.done[item[0].run_id] = ok
        return len(batch)

    def _parent_there(self, parent: str) -> bool:
        if self.done.get(parent) or parent in self.existing:
            return True
        try:
            self.client.get_run(parent)
        except (NotFound, InvalidInput):
            return False
        return True


def _chosen(experiments: list[SourceExperiment], wanted: str | None) -> list[SourceExperiment]:
    if wanted is None:
        return experiments
    for found in experiments:
        if wanted in (found.name, found.experiment_id):
            return [found]
    names = [e.name for e in experiments]
    near = difflib.get_close_matches(wanted, names, n=3, cutoff=0.5)
    hint = f"; did you mean {', '.join(near)}?" if near else f"; it has {', '.join(names[:10])}"
    raise NotFound(f"the MLflow store has no experiment {wanted!r}{hint}")


def _experiment(client: Any, source: SourceExperiment, report: ImportReport) -> str | None:
    """The opsloop experiment to copy ``source`` into: created (tagged ``opsloop.origin``),
    or the one of that name, which takes the runs and MLflow's experiment tags."""
    if source.lifecycle_stage == "deleted":
        report.skipped.append(Skipped("experiment", source.name, "it is deleted in MLflow"))
        return None
    tags = {k: v for k, v in source.tags.items() if _good_key(k, report, source.name)}
    tags["mlflow.experiment_id"] = source.experiment_id
    try:
        found = client.get_experiment_by_name(source.name)
    except NotFound:
        description = source.tags.get("mlflow.note.content")
        tags[ORIGIN_TAG] = "mlflow"
        found = client.create_experiment(source.name, description=description, tags=tags)
        report.copied["experiments"] += 1
        return str(found.experiment_id)
    if found.lifecycle_stage == "deleted":
        why = "an experiment of that name is deleted in opsloop; restore it to import into it"
        report.skipped.append(Skipped("experiment", source.name, why))
        return None
    for key, value in tags.items():
        if found.tags.get(key) != value:
            client.set_experiment_tag(found.experiment_id, key, value)
    report.already["experiments"] += 1
    return str(found.experiment_id)


def _good_key(key: str, report: ImportReport, owner: str) -> bool:
    try:
        check_key(key)
    except InvalidInput as error:
        reason = error.message.split(";")[0]
        report.skipped.append(Skipped("experiment tag", f"{owner}/{key}", reason))
        return False
    return True


def _runs_there(client: Any, experiment_id: str) -> dict[str, Run]:
    """The experiment's runs in opsloop (deleted ones too), by id."""
    found: dict[str, Run] = {}
    token = None
    while True:
        query = SearchRuns(experiment_ids=[experiment_id], page_token=token, view="all")
        page = client.tracking_backend.search_runs(query)
        found.update((r.info.run_id, r) for r in page.items)
        if not (token := page.next_page_token):
            return found
