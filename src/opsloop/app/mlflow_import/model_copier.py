"""Copy MLflow's registered models, their versions and aliases into opsloop's registry.

A model is created with ``opsloop.origin=mlflow`` (one of that name not imported from MLflow is
a conflict). Each version is registered from its files (see :mod:`.model_package`) with the tag
``mlflow.version``: that tag is how a second import knows it is there, since opsloop numbers
versions itself (the same number when MLflow's have no gaps). Aliases follow the versions.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from opsloop.app.mlflow_import.artifacts import ArtifactLocator
from opsloop.app.mlflow_import.model_package import CannotPackage
from opsloop.app.mlflow_import.model_package import package_mlflow_model
from opsloop.app.mlflow_import.report import ImportReport
from opsloop.app.mlflow_import.run_copier import ORIGIN_TAG
from opsloop.app.mlflow_import.source import Skipped
from opsloop.app.mlflow_import.source import SourceModel
from opsloop.app.mlflow_import.source import SourceVersion
from opsloop.errors import NotFound
from opsloop.errors import OpsloopError

__all__ = ["ModelCopier"]

VERSION_TAG = "mlflow.version"


class ModelCopier:
    def __init__(
        self,
        client: Any,
        locator: ArtifactLocator,
        report: ImportReport,
        run_folders: dict[str, Path | None],
        on_version: Any,
    ) -> None:
        self.models = client.models
        self.tracking = client
        self.locator = locator
        self.report = report
        self.run_folders = run_folders  # run id → its artifact folder here (runs imported now)
        self.on_version = on_version

    def copy(self, model: SourceModel) -> None:
        try:
            there = self.models.get(model.name)
        except NotFound:
            tags = {**model.tags, ORIGIN_TAG: "mlflow"}
            there = self.models.create(model.name, description=model.description, tags=tags)
            self.report.copied["models"] += 1
        else:
            if there.tags.get(ORIGIN_TAG) != "mlflow":
                why = "an opsloop model not imported from MLflow has the name"
                self.report.conflicts.append(Skipped("conflict", f"model {model.name}", why))
                for _ in model.versions:
                    self.on_version()
                return
            self.report.already["models"] += 1
        numbers = self._imported_numbers(model.name)
        for version in model.versions:
            if version.version in numbers:
                self.report.already["versions"] += 1
            else:
                number = self._copy_version(model.name, version)
                if number is not None:
                    numbers[version.version] = number
            self.on_version()
        self._copy_aliases(model, numbers, there.aliases)

    def _imported_numbers(self, name: str) -> dict[int, int]:
        """MLflow version number → opsloop's, for the versions imported before."""
        found: dict[int, int] = {}
        token = None
        while True:
            page = self.models.versions(name, max_results=1000, page_token=token)
            for version in page.items:
                tag = version.tags.get(VERSION_TAG, "")
                if tag.isdigit():
                    found[int(tag)] = version.number
            if not (token := page.next_page_token):
                return found

    def _copy_version(self, name: str, version: SourceVersion) -> int | None:
        what = f"{name} v{version.version}"
        folder = self._folder(version)
        if isinstance(folder, str):
            self.report.skipped.append(Skipped("version", what, folder))
            return None
        tags = {**version.tags, VERSION_TAG: str(version.version)}
        if version.source:
            tags["mlflow.source"] = version.source[:8000]
        if version.run_id:
            tags["mlflow.run_id"] = version.run_id
        run_id = version.run_id if self._finished_here(version.run_id) else None
        with tempfile.TemporaryDirectory(prefix="opsloop-mlflow-model-") as tmp:
            try:
                _, kept_as_mlflow = package_mlflow_model(folder, Path(tmp) / "package")
                created = self.models.register(
                    name, path=Path(tmp) / "package", run_id=run_id,
                    description=version.description, tags=tags,
                )  # fmt: skip
            except CannotPackage as error:
                self.report.skipped.append(Skipped("version", what, str(error)))
                return None
            except OpsloopError as error:
                self.report.skipped.append(Skipped("version", what, error.message.splitlines()[0]))
                return None
        self.report.copied["versions"] += 1
        if kept_as_mlflow:
            why = f"kept as an MLflow model, which opsloop does not load: {kept_as_mlflow}"
            self.report.skipped.append(Skipped("version flavor", what, why))
        if created.number != version.version:
            why = f"registered as {created.ref} (opsloop numbers versions without gaps)"
            self.report.skipped.append(Skipped("version number", what, why))
        return int(created.number)

    def _folder(self, version: SourceVersion) -> Path | str:
        """The version's model folder here, or why there is none."""
        source = version.source or ""
        if source.startswith("runs:/"):
            run_id, _, sub = source.removeprefix("runs:/").partition("/")
            base = self.run_folders.get(run_id)
            if base is not None and (base / sub).is_dir():
                return base / sub
        for uri in (version.storage_location, source):
            if uri and not uri.startswith(("runs:/", "models:/")):
                folder, why = self.locator.folder(uri)
                if folder is not None and folder.is_dir():
                    return folder
                if why:
                    return why
        return f"its files ({source or 'no source'}) were not found"

    def _finished_here(self, run_id: str | None) -> bool:
        if not run_id:
            return False
        try:
            return self.tracking.get_run(run_id).info.status.value == "FINISHED"
        except OpsloopError:
            return False

    def _copy_aliases(
        self, model: SourceModel, numbers: dict[int, int], there: dict[str, int]
    ) -> None:
        for alias, mlflow_number in sorted(model.aliases.items()):
            what = f"{model.name}@{alias}"
            number = numbers.get(mlflow_number)
            if number is None:
                why = f"version {mlflow_number} was not imported"
                self.report.skipped.append(Skipped("alias", what, why))
            elif there.get(alias) == number:
                self.report.already["aliases"] += 1
            else:
                try:
                    self.models.set_alias(
                        f"{model.name}@{number}", alias, reason="imported from MLflow"
                    )
                except OpsloopError as error:
                    reason = error.message.splitlines()[0]
                    self.report.skipped.append(Skipped("alias", what, reason))
                    continue
                self.report.copied["aliases"] += 1
