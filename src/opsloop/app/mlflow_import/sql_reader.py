"""Read an MLflow SQL tracking store (SQLite, PostgreSQL, MySQL) straight from its tables.

The tables are reflected, not declared: mlflow is not a dependency, and reflecting reads the
columns a store of any recent MLflow version has. Rows are loaded in chunks of runs (a few
queries per 500 runs, never one per run). A row that cannot be read (a run id that is not 32
hex characters, a metric without a value, a dataset input whose dataset is gone) is skipped
and recorded with its reason.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import make_url

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

__all__ = ["SqlReader"]

_REQUIRED = ("experiments", "runs", "params", "tags", "metrics")
_OPTIONAL = (
    "experiment_tags",
    "datasets",
    "inputs",
    "input_tags",
    "registered_models",
    "registered_model_tags",
    "model_versions",
    "model_version_tags",
    "registered_model_aliases",
    "logged_models",
)
_CHUNK = 500


class SqlReader:
    """An MLflow database, opened read-only in spirit (nothing is ever written to it)."""

    def __init__(self, uri: str) -> None:
        self.uri = uri
        self.skipped: list[Skipped] = []
        url = _checked_url(uri)
        try:
            self._engine = sa.create_engine(url)
            self._tables = _reflect(self._engine)
        except sa.exc.SQLAlchemyError as error:
            first = str(error.orig if hasattr(error, "orig") else error).splitlines()[0]
            raise InvalidInput(f"cannot read the MLflow database {_shown(uri)}: {first}") from None
        missing = [name for name in _REQUIRED if name not in self._tables]
        if missing:
            raise InvalidInput(
                f"{_shown(uri)} is not an MLflow tracking database: no table {', '.join(missing)}"
            )

    def close(self) -> None:
        self._engine.dispose()

    def _rows(self, statement: Any) -> list[Any]:
        with self._engine.connect() as connection:
            return list(connection.execute(statement).all())

    # -- experiments and runs -----------------------------------------------------------------
    def experiments(self) -> list[SourceExperiment]:
        table = self._tables["experiments"]
        found = {}
        for row in self._rows(sa.select(table).order_by(table.c.experiment_id)):
            if not row.name:
                self.skipped.append(Skipped("experiment", str(row.experiment_id), "it has no name"))
                continue
            found[str(row.experiment_id)] = SourceExperiment(
                experiment_id=str(row.experiment_id),
                name=row.name,
                artifact_location=row.artifact_location,
                lifecycle_stage=row.lifecycle_stage or "active",
                creation_time=row.creation_time,
            )
        tags = self._tables.get("experiment_tags")
        if tags is not None:
            for row in self._rows(sa.select(tags.c.experiment_id, tags.c.key, tags.c.value)):
                if str(row.experiment_id) in found and row.key:
                    found[str(row.experiment_id)].tags[row.key] = row.value or ""
        return list(found.values())

    def runs(self, experiment_ids: list[str]) -> list[SourceRun]:
        table = self._tables["runs"]
        wanted = [int(e) for e in experiment_ids if e.isdigit()]
        query = (
            sa.select(table)
            .where(table.c.experiment_id.in_(wanted))
            .order_by(table.c.start_time, table.c.run_uuid)
        )
        runs = []
        for row in self._rows(query):
            run_id = str(row.run_uuid or "")
            if not RUN_ID.match(run_id):
                self.skipped.append(Skipped("run", run_id or "?", "its id is not 32 hex digits"))
                continue
            if row.start_time is None:
                self.skipped.append(Skipped("run", run_id, "it has no start time"))
                continue
            runs.append(
                SourceRun(
                    run_id=run_id,
                    experiment_id=str(row.experiment_id),
                    name=row.name or None,
                    status=row.status or "FINISHED",
                    start_time=int(row.start_time),
                    end_time=None if row.end_time is None else int(row.end_time),
                    user_id=row.user_id or None,
                    lifecycle_stage=row.lifecycle_stage or "active",
                    artifact_uri=row.artifact_uri,
                )
            )
        return runs

    def run_contents(self, run_ids: list[str]) -> dict[str, RunContent]:
        contents = {run_id: RunContent() for run_id in run_ids}
        for start in range(0, len(run_ids), _CHUNK):
            chunk = run_ids[start : start + _CHUNK]
            self._load_pairs("params", chunk, contents, "params")
            self._load_pairs("tags", chunk, contents, "tags")
            self._load_metrics(chunk, contents)
            self._load_datasets(chunk, contents)
        return contents

    def _load_pairs(
        self, name: str, chunk: list[str], contents: dict[str, RunContent], field: str
    ) -> None:
        table = self._tables[name]
        query = sa.select(table.c.run_uuid, table.c.key, table.c.value).where(
            table.c.run_uuid.in_(chunk)
        )
        for run_id, key, value in self._rows(query):
            if value is None and name == "params":
                self.skipped.append(Skipped("param", f"{run_id}/{key}", "it has no value"))
                continue
            getattr(contents[run_id], field)[key] = "" if value is None else str(value)

    def _load_metrics(self, chunk: list[str], contents: dict[str, RunContent]) -> None:
        table = self._tables["metrics"]
        columns = [table.c.run_uuid, table.c.key, table.c.value, table.c.timestamp, table.c.step]
        is_nan = table.c.get("is_nan")
        query = sa.select(*columns, *([is_nan] if is_nan is not None else [])).where(
            table.c.run_uuid.in_(chunk)
        )
        query = query.order_by(table.c.run_uuid, table.c.key, table.c.step, table.c.timestamp)
        for row in self._rows(query):
            try:
                value = math.nan if is_nan is not None and row.is_nan else float(row.value)
                step, timestamp = int(row.step or 0), int(row.timestamp)
            except (TypeError, ValueError):
                what = f"{row.run_uuid}/{row.key}@{row.step}"
                why = "its value, step or timestamp is not a number"
                self.skipped.append(Skipped("metric value", what, why))
                continue
            points = contents[row.run_uuid].metrics.setdefault(row.key, MetricPoints())
            points.add(step, timestamp, value)

    def _load_datasets(self, chunk: list[str], contents: dict[str, RunContent]) -> None:
        inputs, datasets = self._tables.get("inputs"), self._tables.get("datasets")
        if inputs is None or datasets is None:
            return
        query = (
            sa.select(
                inputs.c.input_uuid,
                inputs.c.destination_id,
                datasets.c.name,
                datasets.c.digest,
                datasets.c.dataset_source_type,
                datasets.c.dataset_source,
            )
            .join(datasets, datasets.c.dataset_uuid == inputs.c.source_id, isouter=True)
            .where(
                inputs.c.destination_id.in_(chunk),
                inputs.c.destination_type == "RUN",
                inputs.c.source_type == "DATASET",
            )
        )
        rows = self._rows(query)
        contexts = self._input_contexts([r.input_uuid for r in rows])
        for row in rows:
            if row.name is None:
                what = f"{row.destination_id}/{row.input_uuid}"
                self.skipped.append(Skipped("dataset", what, "its dataset row is missing"))
                continue
            contents[row.destination_id].datasets.append(
                SourceDataset(
                    name=row.name,
                    digest=row.digest,
                    source_type=row.dataset_source_type,
                    source=row.dataset_source,
                    context=contexts.get(row.input_uuid),
                )
            )

    def _input_contexts(self, input_ids: list[str]) -> dict[str, str]:
        table = self._tables.get("input_tags")
        if table is None or not input_ids:
            return {}
        query = sa.select(table.c.input_uuid, table.c.value).where(
            table.c.input_uuid.in_(input_ids), table.c.name == "mlflow.data.context"
        )
        return {input_id: value for input_id, value in self._rows(query)}

    # -- registry -----------------------------------------------------------------------------
    def models(self) -> list[SourceModel]:
        table = self._tables.get("registered_models")
        if table is None:
            return []
        models = {
            row.name: SourceModel(name=row.name, description=row.description or None)
            for row in self._rows(sa.select(table).order_by(table.c.name))
        }
        tags = self._tables.get("registered_model_tags")
        if tags is not None:
            for row in self._rows(sa.select(tags.c.name, tags.c.key, tags.c.value)):
                if row.name in models:
                    models[row.name].tags[row.key] = row.value or ""
        self._load_versions(models)
        aliases = self._tables.get("registered_model_aliases")
        if aliases is not None:
            for row in self._rows(sa.select(aliases.c.name, aliases.c.alias, aliases.c.version)):
                if row.name in models:
                    models[row.name].aliases[row.alias] = int(row.version)
        return list(models.values())

    def _load_versions(self, models: dict[str, SourceModel]) -> None:
        table = self._tables.get("model_versions")
        if table is None:
            return
        versions: dict[tuple[str, int], SourceVersion] = {}
        query = sa.select(table).order_by(table.c.name, table.c.version)
        for row in self._rows(query):
            if row.name not in models:
                continue
            if (row.current_stage or "") == "Deleted_Internal":
                continue  # MLflow's soft delete: the version is gone for its users too
            version = SourceVersion(
                version=int(row.version),
                description=row.description or None,
                source=row.source,
                storage_location=getattr(row, "storage_location", None),
                run_id=row.run_id or None,
                creation_time=row.creation_time,
            )
            versions[(row.name, version.version)] = version
            models[row.name].versions.append(version)
        tags = self._tables.get("model_version_tags")
        if tags is not None:
            query = sa.select(tags.c.name, tags.c.version, tags.c.key, tags.c.value)
            for row in self._rows(query):
                found = versions.get((row.name, int(row.version or 0)))
                if found is not None:
                    found.tags[row.key] = row.value or ""


def _reflect(engine: sa.Engine) -> dict[str, sa.Table]:
    present = set(sa.inspect(engine).get_table_names())
    metadata = sa.MetaData()
    wanted = [name for name in (*_REQUIRED, *_OPTIONAL) if name in present]
    metadata.reflect(engine, only=wanted)
    return dict(metadata.tables)


def _checked_url(uri: str) -> Any:
    """The SQLAlchemy URL of ``uri``: a SQLite file must exist (SQLite would create an empty
    one), ``postgresql://`` gets the psycopg driver opsloop ships with."""
    from opsloop.store.database import normalize_database_url

    try:
        url = make_url(normalize_database_url(uri))
    except sa.exc.ArgumentError:
        raise InvalidInput(f"not a database URL: {_shown(uri)}") from None
    if url.get_backend_name() == "sqlite":
        if not url.database or url.database == ":memory:":
            raise InvalidInput("give the MLflow SQLite file: sqlite:///path/to/mlflow.db")
        if not Path(url.database).is_file():
            raise InvalidInput(f"no such MLflow database file: {url.database}")
    return url


def _shown(uri: str) -> str:
    """The URI without its password, for messages."""
    try:
        return make_url(uri).render_as_string(hide_password=True)
    except sa.exc.ArgumentError:
        return uri
