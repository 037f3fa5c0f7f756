"""Read an MLflow file store (``./mlruns``, ``file:///...``) by its folder layout.

``<experiment>/meta.yaml`` and ``tags/``; ``<experiment>/<run>/meta.yaml`` with ``params/``,
``tags/``, ``metrics/`` (one ``timestamp value step`` line per point; a key with ``/`` is a
sub-folder) and ``inputs/`` naming datasets under ``<experiment>/datasets/``; deleted
experiments under ``.trash/``; the registry under ``models/<name>/`` (``meta.yaml`` with the
aliases, ``tags/``, ``version-N/``). A file that cannot be read is skipped with its reason.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import unquote
from urllib.parse import urlparse

import yaml

from opsloop.app.mlflow_import.source import RUN_ID
from opsloop.app.mlflow_import.source import MetricPoints
from opsloop.app.mlflow_import.source import RunContent
from opsloop.app.mlflow_import.source import Skipped
from opsloop.app.mlflow_import.source import SourceDataset
from opsloop.app.mlflow_import.source import SourceExperiment
from opsloop.app.mlflow_import.source import SourceModel
from opsloop.app.mlflow_import.source import SourceRun
from opsloop.app.mlflow_import.source import SourceVersion
from opsloop.errors import InvalidInput

__all__ = ["FileReader", "local_path"]

# MLflow's RunStatus enum, as the file store writes it
_STATUSES = {1: "RUNNING", 2: "SCHEDULED", 3: "FINISHED", 4: "FAILED", 5: "KILLED"}


def local_path(uri: str) -> Path:
    """A ``file:`` URI or a plain path as a path."""
    if uri.startswith("file:"):
        return Path(unquote(urlparse(uri).path))
    return Path(uri)


class FileReader:
    """An MLflow ``mlruns`` folder."""

    def __init__(self, uri: str) -> None:
        self.uri = uri
        self.skipped: list[Skipped] = []
        self.root = local_path(uri)
        if not self.root.is_dir():
            raise InvalidInput(f"no such MLflow store folder: {self.root}")
        if not any(self._experiment_dirs()):
            raise InvalidInput(f"{self.root} is not an MLflow file store: no experiment meta.yaml")
        self._run_dirs: dict[str, Path] = {}

    def close(self) -> None:
        pass

    def _experiment_dirs(self) -> list[Path]:
        roots = [self.root, self.root / ".trash"]
        return sorted(
            p for r in roots if r.is_dir() for p in r.iterdir() if (p / "meta.yaml").is_file()
        )

    def _meta(self, path: Path, kind: str, what: str) -> dict[str, Any] | None:
        try:
            meta = yaml.safe_load(path.read_text())
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
            self.skipped.append(Skipped(kind, what, f"unreadable {path.name}: {_first(error)}"))
            return None
        if not isinstance(meta, dict):
            self.skipped.append(Skipped(kind, what, f"{path.name} is not a mapping"))
            return None
        return meta

    # -- experiments and runs -----------------------------------------------------------------
    def experiments(self) -> list[SourceExperiment]:
        found = []
        for folder in self._experiment_dirs():
            meta = self._meta(folder / "meta.yaml", "experiment", folder.name)
            if meta is None:
                continue
            if not meta.get("name"):
                self.skipped.append(Skipped("experiment", folder.name, "it has no name"))
                continue
            found.append(
                SourceExperiment(
                    experiment_id=str(meta.get("experiment_id", folder.name)),
                    name=str(meta["name"]),
                    artifact_location=meta.get("artifact_location"),
                    lifecycle_stage=meta.get("lifecycle_stage") or "active",
                    creation_time=meta.get("creation_time"),
                    tags=self._key_files(folder / "tags", "experiment tag"),
                )
            )
        self._experiments = {e.experiment_id: e for e in found}
        self._folders = {
            str(f.name): f for f in self._experiment_dirs() if f.name in self._experiments
        }
        return found

    def runs(self, experiment_ids: list[str]) -> list[SourceRun]:
        if not hasattr(self, "_folders"):
            self.experiments()
        runs = []
        for experiment_id in experiment_ids:
            folder = self._folders.get(experiment_id)
            for run_dir in sorted(folder.iterdir()) if folder else []:
                if run_dir.is_dir() and (run_dir / "meta.yaml").is_file():
                    run = self._run(experiment_id, run_dir)
                    if run is not None:
                        runs.append(run)
        return sorted(runs, key=lambda r: (r.start_time, r.run_id))

    def _run(self, experiment_id: str, run_dir: Path) -> SourceRun | None:
        meta = self._meta(run_dir / "meta.yaml", "run", run_dir.name)
        if meta is None:
            return None
        run_id = str(meta.get("run_id") or meta.get("run_uuid") or "")
        if not RUN_ID.match(run_id):
            self.skipped.append(Skipped("run", run_dir.name, "its id is not 32 hex digits"))
            return None
        if not isinstance(meta.get("start_time"), int):
            self.skipped.append(Skipped("run", run_id, "it has no start time"))
            return None
        status = meta.get("status")
        self._run_dirs[run_id] = run_dir
        return SourceRun(
            run_id=run_id,
            experiment_id=experiment_id,
            name=meta.get("run_name") or None,
            status=_STATUSES.get(status, str(status)) if isinstance(status, int) else str(status),
            start_time=meta["start_time"],
            end_time=meta.get("end_time"),
            user_id=meta.get("user_id") or None,
            lifecycle_stage=meta.get("lifecycle_stage") or "active",
            artifact_uri=meta.get("artifact_uri"),
        )

    def run_contents(self, run_ids: list[str]) -> dict[str, RunContent]:
        contents = {}
        for run_id in run_ids:
            run_dir = self._run_dirs[run_id]
            content = RunContent(
                params=self._key_files(run_dir / "params", "param", run_id),
                tags=self._key_files(run_dir / "tags", "tag", run_id),
            )
            metrics = run_dir / "metrics"
            for path in sorted(metrics.rglob("*")) if metrics.is_dir() else []:
                if path.is_file():
                    key = path.relative_to(metrics).as_posix()
                    content.metrics[key] = self._points(path, f"{run_id}/{key}")
            content.datasets = self._datasets(run_dir)
            contents[run_id] = content
        return contents

    def _points(self, path: Path, what: str) -> MetricPoints:
        rows = []
        for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
            parts = line.split()
            try:
                timestamp, value = int(parts[0]), float(parts[1])
                step = int(parts[2]) if len(parts) > 2 else 0
            except (IndexError, ValueError):
                self.skipped.append(Skipped("metric value", f"{what} line {number}", "unreadable"))
                continue
            rows.append((step, timestamp, value))
        points = MetricPoints()
        for step, timestamp, value in sorted(rows, key=lambda r: (r[0], r[1])):
            points.add(step, timestamp, value)
        return points

    def _datasets(self, run_dir: Path) -> list[SourceDataset]:
        found = []
        inputs = run_dir / "inputs"
        for folder in sorted(inputs.iterdir()) if inputs.is_dir() else []:
            meta = self._meta(folder / "meta.yaml", "dataset", f"{run_dir.name}/{folder.name}")
            if meta is None or meta.get("source_type") != "DATASET":
                continue
            dataset_meta = run_dir.parent / "datasets" / str(meta.get("source_id")) / "meta.yaml"
            dataset = (
                self._meta(dataset_meta, "dataset", f"{run_dir.name}/{folder.name}")
                if dataset_meta.is_file()
                else None
            )
            if dataset is None:
                what = f"{run_dir.name}/{folder.name}"
                self.skipped.append(Skipped("dataset", what, "its dataset meta.yaml is missing"))
                continue
            found.append(
                SourceDataset(
                    name=str(dataset.get("name")),
                    digest=str(dataset.get("digest")),
                    source_type=str(dataset.get("source_type")),
                    source=str(dataset.get("source")),
                    context=(meta.get("tags") or {}).get("mlflow.data.context"),
                )
            )
        return found

    def _key_files(self, folder: Path, kind: str, owner: str = "") -> dict[str, str]:
        """Files named by key holding the value (``params/``, ``tags/``)."""
        found = {}
        for path in sorted(folder.rglob("*")) if folder.is_dir() else []:
            if path.is_file():
                key = path.relative_to(folder).as_posix()
                try:
                    found[key] = path.read_text()
                except (OSError, UnicodeDecodeError) as error:
                    self.skipped.append(Skipped(kind, f"{owner}/{key}", _first(error)))
        return found

    # -- registry -----------------------------------------------------------------------------
    def models(self) -> list[SourceModel]:
        root = self.root / "models"
        models = []
        for folder in sorted(root.iterdir()) if root.is_dir() else []:
            meta = self._meta(folder / "meta.yaml", "model", folder.name)
            if meta is None:
                continue
            model = SourceModel(
                name=str(meta.get("name") or folder.name),
                description=meta.get("description") or None,
                tags=self._key_files(folder / "tags", "model tag", folder.name),
                aliases={str(k): int(v) for k, v in (meta.get("aliases") or {}).items()},
            )
            for version_dir in sorted(folder.glob("version-*")):
                version = self._version(version_dir, model.name)
                if version is not None:
                    model.versions.append(version)
            model.versions.sort(key=lambda v: v.version)
            models.append(model)
        return models

    def _version(self, folder: Path, name: str) -> SourceVersion | None:
        meta = self._meta(folder / "meta.yaml", "model version", f"{name}/{folder.name}")
        if meta is None:
            return None
        if meta.get("current_stage") == "Deleted_Internal":
            return None
        return SourceVersion(
            version=int(meta.get("version") or folder.name.removeprefix("version-")),
            description=meta.get("description") or None,
            source=meta.get("source"),
            storage_location=meta.get("storage_location"),
            run_id=meta.get("run_id") or None,
            creation_time=meta.get("creation_timestamp"),
            tags=self._key_files(folder / "tags", "model version tag", f"{name}/{folder.name}"),
        )


def _first(error: BaseException) -> str:
    return (str(error).splitlines() or [type(error).__name__])[0]
