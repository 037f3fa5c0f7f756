"""Read a running MLflow tracking server through its REST API (``/api/2.0/mlflow/...``).

Experiments and runs come from the search endpoints (paged), each metric's full history from
``metrics/get-history``, the registry from ``registered-models/search`` and
``model-versions/search``. Artifacts are not downloaded over HTTP: the runs' artifact URIs
(``mlflow-artifacts:/...`` on a server that proxies them) are resolved under ``--artifacts``,
the server's artifact root. ``MLFLOW_TRACKING_TOKEN`` is sent as a bearer token when set.
"""

from __future__ import annotations

import math
import os
from typing import Any

import httpx

from opsloop.app.mlflow_import.source import RUN_ID
from opsloop.app.mlflow_import.source import MetricPoints
from opsloop.app.mlflow_import.source import RunContent
from opsloop.app.mlflow_import.source import Skipped
from opsloop.app.mlflow_import.source import SourceDataset
from opsloop.app.mlflow_import.source import SourceExperiment
from opsloop.app.mlflow_import.source import SourceModel
from opsloop.app.mlflow_import.source import SourceRun
from opsloop.app.mlflow_import.source import SourceVersion
from opsloop.app.mlflow_import.source import without_password
from opsloop.errors import InvalidInput

__all__ = ["HttpReader"]

_PAGE = 1000


class HttpReader:
    """An MLflow server at ``uri`` (``http://host:5000``)."""

    def __init__(self, uri: str) -> None:
        self.uri = uri
        self._shown = without_password(uri)
        self.skipped: list[Skipped] = []
        token = os.environ.get("MLFLOW_TRACKING_TOKEN")
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.Client(base_url=uri.rstrip("/"), headers=headers, timeout=60)
        self._runs: dict[str, dict[str, Any]] = {}
        self._call("GET", "experiments/search", params={"max_results": 1})  # reachable at all

    def close(self) -> None:
        self._http.close()

    def _call(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        try:
            response = self._http.request(method, f"/api/2.0/mlflow/{path}", **kwargs)
        except httpx.HTTPError as error:
            where = f"the MLflow server at {self._shown}"
            raise InvalidInput(f"cannot reach {where}: {error}") from None
        if response.status_code != 200:
            try:
                message = response.json().get("message", response.text)
            except ValueError:
                message = response.text[:200]
            raise InvalidInput(
                f"the MLflow server at {self._shown} answered {response.status_code} to {path}: "
                f"{message}"
            )
        return response.json()  # type: ignore[no-any-return]

    def _pages(self, method: str, path: str, field: str, body: dict[str, Any]) -> list[Any]:
        items: list[Any] = []
        token = None
        while True:
            page = {**body, **({"page_token": token} if token else {})}
            kwargs = {"json": page} if method == "POST" else {"params": page}
            answer = self._call(method, path, **kwargs)
            items += answer.get(field, [])
            if not (token := answer.get("next_page_token")):
                return items

    # -- experiments and runs -----------------------------------------------------------------
    def experiments(self) -> list[SourceExperiment]:
        body = {"max_results": _PAGE, "view_type": "ALL"}
        return [
            SourceExperiment(
                experiment_id=str(e["experiment_id"]),
                name=e["name"],
                artifact_location=e.get("artifact_location"),
                lifecycle_stage=e.get("lifecycle_stage", "active"),
                creation_time=_int(e.get("creation_time")),
                tags=_pairs(e.get("tags")),
            )
            for e in self._pages("POST", "experiments/search", "experiments", body)
        ]

    def runs(self, experiment_ids: list[str]) -> list[SourceRun]:
        if not experiment_ids:
            return []
        body = {"experiment_ids": experiment_ids, "max_results": _PAGE, "run_view_type": "ALL"}
        runs = []
        for found in self._pages("POST", "runs/search", "runs", body):
            info = found.get("info", {})
            run_id = str(info.get("run_id", ""))
            if not RUN_ID.match(run_id) or info.get("start_time") is None:
                self.skipped.append(Skipped("run", run_id or "?", "no 32-hex id or start time"))
                continue
            self._runs[run_id] = found
            runs.append(
                SourceRun(
                    run_id=run_id,
                    experiment_id=str(info["experiment_id"]),
                    name=info.get("run_name") or None,
                    status=info.get("status", "FINISHED"),
                    start_time=int(info["start_time"]),
                    end_time=_int(info.get("end_time")),
                    user_id=info.get("user_id") or None,
                    lifecycle_stage=info.get("lifecycle_stage", "active"),
                    artifact_uri=info.get("artifact_uri"),
                )
            )
        return sorted(runs, key=lambda r: (r.start_time, r.run_id))

    def run_contents(self, run_ids: list[str]) -> dict[str, RunContent]:
        contents = {}
        for run_id in run_ids:
            found = (
                self._runs.get(run_id)
                or self._call("GET", "runs/get", params={"run_id": run_id})["run"]
            )
            data = found.get("data", {})
            content = RunContent(params=_pairs(data.get("params")), tags=_pairs(data.get("tags")))
            for key in sorted({m["key"] for m in data.get("metrics", [])}):
                content.metrics[key] = self._history(run_id, key)
            for entry in (found.get("inputs") or {}).get("dataset_inputs", []):
                dataset = entry.get("dataset") or {}
                content.datasets.append(
                    SourceDataset(
                        name=str(dataset.get("name")),
                        digest=str(dataset.get("digest")),
                        source_type=str(dataset.get("source_type")),
                        source=str(dataset.get("source")),
                        context=_pairs(entry.get("tags")).get("mlflow.data.context"),
                    )
                )
            contents[run_id] = content
        return contents

    def _history(self, run_id: str, key: str) -> MetricPoints:
        body = {"run_id": run_id, "metric_key": key, "max_results": 25_000}
        rows = []
        for metric in self._pages("GET", "metrics/get-history", "metrics", body):
            try:
                value = float(metric["value"])  # "NaN", "Infinity" arrive as strings
                rows.append((int(metric.get("step", 0)), int(metric["timestamp"]), value))
            except (KeyError, TypeError, ValueError):
                what = f"{run_id}/{key}@{metric.get('step')}"
                self.skipped.append(Skipped("metric value", what, "unreadable point"))
        points = MetricPoints()
        for step, timestamp, value in sorted(rows, key=lambda r: (r[0], r[1])):
            points.add(step, timestamp, math.nan if value != value else value)
        return points

    # -- registry -----------------------------------------------------------------------------
    def models(self) -> list[SourceModel]:
        body = {"max_results": _PAGE}
        models = []
        for found in self._pages("GET", "registered-models/search", "registered_models", body):
            model = SourceModel(
                name=found["name"],
                description=found.get("description") or None,
                tags=_pairs(found.get("tags")),
                aliases={a["alias"]: int(a["version"]) for a in found.get("aliases", [])},
            )
            name = model.name.replace("'", "\\'")
            query = {"filter": f"name='{name}'", "max_results": _PAGE}
            versions = self._pages("GET", "model-versions/search", "model_versions", query)
            for version in sorted(versions, key=lambda v: int(v["version"])):
                model.versions.append(
                    SourceVersion(
                        version=int(version["version"]),
                        description=version.get("description") or None,
                        source=version.get("source"),
                        storage_location=self._logged_model_location(version.get("source")),
                        run_id=version.get("run_id") or None,
                        creation_time=_int(version.get("creation_timestamp")),
                        tags=_pairs(version.get("tags")),
                    )
                )
            models.append(model)
        return models

    def _logged_model_location(self, source: str | None) -> str | None:
        """Where an MLflow 3 logged model (``models:/m-...``) keeps its files."""
        if not source or not source.startswith("models:/m-"):
            return None
        model_id = source.removeprefix("models:/").split("/")[0]
        try:
            answer = self._call("GET", f"logged-models/{model_id}")
        except InvalidInput:
            return None
        return (answer.get("model", {}).get("info") or {}).get("artifact_uri")


def _pairs(items: Any) -> dict[str, str]:
    return {str(i["key"]): str(i.get("value", "")) for i in items or [] if "key" in i}


def _int(value: Any) -> int | None:
    return None if value is None else int(value)
