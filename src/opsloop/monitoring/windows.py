"""Windows over the prediction log: the requests a check reads, opened up into feature rows.

The log keeps each request as it came (a body of one or many rows, the answers, the ground
truth joined later by request id). A check needs rows: one per scored record, with its
features, the prediction, the label when there is one, and the serving version. Requests are
selected by DuckDB over the Parquet log (``PredictionLog.request_table``, an Arrow table); rows
come out in time order whatever order they were written in. The check reads the rows as
columns (``WindowData.table``: NumPy where every value is a number, no pandas);
``WindowData.features`` gives them as a pandas DataFrame.
"""

from __future__ import annotations

import functools
import json
import math
from dataclasses import dataclass
from dataclasses import field
from typing import Any

from opsloop.monitoring.column_table import ColumnTable
from opsloop.monitoring.entities import Window

__all__ = ["WindowData", "read_window"]


@dataclass
class WindowData:
    start: int | None
    end: int | None
    requests: int = 0
    errors: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    records: list[Any] = field(default_factory=list)  # one per scored row, as the body held it
    predictions: list[Any] = field(default_factory=list)
    labels: list[Any] = field(default_factory=list)  # None where no ground truth yet
    versions: list[int] = field(default_factory=list)
    # the classifier's probabilities per row as the server logged them (positive class's for
    # binary, a list for more); None when any request was logged without them (older logs)
    scores: list[Any] | None = None
    last_ts: int | None = None

    @property
    def rows(self) -> int:
        return len(self.records)

    @functools.cached_property
    def features(self) -> Any:
        """The rows as a pandas DataFrame, one column per feature (built once)."""
        import pandas as pd

        return pd.DataFrame.from_records(self.records) if self.records else pd.DataFrame()

    def table(self) -> Any:
        """The rows as a new table a drift check reads: a ``ColumnTable`` (no pandas) when
        every row is a mapping, else a copy of ``features``."""
        if all(isinstance(r, dict) for r in self.records):
            return ColumnTable(self.records)
        return self.features.copy()


def _records(body: dict[str, Any]) -> list[Any]:
    """The rows of a request body, in any of the shapes the inference endpoint accepts."""
    for key in ("records", "dataframe_records", "instances"):
        if key in body:
            return list(body[key])
    if "columns" in body:
        columns = body["columns"]
        return [
            dict(zip(columns, values, strict=True))
            for values in zip(*columns.values(), strict=True)
        ]
    split = body.get("dataframe_split") or {}
    return [dict(zip(split.get("columns", []), row, strict=False)) for row in split.get("data", [])]


def _per_row(value: Any, count: int) -> list[Any]:
    if isinstance(value, list) and len(value) == count:
        return value
    return [value] * count


def _lists(requests: Any) -> dict[str, list[Any]]:
    """The columns of a table of requests as lists: an Arrow table (``request_table``) or a
    pandas DataFrame (``requests``)."""
    if hasattr(requests, "column_names"):
        return {name: requests.column(name).to_pylist() for name in requests.column_names}
    return {str(name): requests[name].tolist() for name in requests.columns}


def _present(value: Any) -> bool:
    return value is not None and value == value  # NaN: missing, as pandas reads it


def explode(requests: Any, start: int | None, end: int | None) -> WindowData:
    """The window's rows from its requests (an Arrow table or a pandas DataFrame)."""
    data = WindowData(start=start, end=end, requests=len(requests))
    if not len(requests):
        return data
    columns = _lists(requests)
    data.last_ts = int(max(columns["ts_ms"]))
    ok = [not _present(error) for error in columns["error"]]
    data.errors = ok.count(False)
    latencies = zip(columns["latency_ms"], ok, strict=True)
    data.latencies_ms = [math.nan if v is None else float(v) for v, good in latencies if good]
    probas = columns.get("proba") or [None] * len(ok)
    scores: list[Any] | None = []
    for good, inputs, outputs, label, version, proba in zip(
        ok, columns["inputs"], columns["outputs"], columns["label"], columns["version"], probas,
        strict=True,
    ):  # fmt: skip
        if not good:
            continue
        rows = _records(json.loads(inputs))
        data.records.extend(rows)
        data.predictions.extend(_per_row(json.loads(outputs), len(rows)))
        truth = json.loads(label) if isinstance(label, str) else None
        data.labels.extend(_per_row(truth, len(rows)))
        data.versions.extend([int(version)] * len(rows))
        if scores is not None:
            logged = json.loads(proba) if isinstance(proba, str) else None
            if isinstance(logged, list) and len(logged) == len(rows):
                scores.extend(logged)
            else:
                scores = None  # one request without them: the check falls back to the model
    data.scores = scores
    return data


def read_window(
    log: Any, deployment: str, window: Window, *, now_ms: int, checked_until: int | None
) -> WindowData | None:
    """The window to check now, or None when a tumbling window is not complete yet."""
    if window.by == "time":
        size_ms = window.size * 1000
        if window.mode == "sliding":
            start, end = now_ms - size_ms, now_ms + 1
        else:
            end = now_ms // size_ms * size_ms
            start = end - size_ms
            if checked_until is not None and end <= checked_until:
                return None  # this period was checked already
        return explode(log.request_table(deployment, since_ms=start, until_ms=end), start, end)
    if window.mode == "sliding":
        table = log.request_table(deployment, last=window.size)
    else:
        since = None if checked_until is None else checked_until + 1
        table = log.request_table(deployment, since_ms=since, first=window.size)
        if len(table) < window.size:
            return None
    if not len(table):
        return explode(table, None, None)
    times = table.column("ts_ms").to_pylist()
    return explode(table, int(min(times)), int(max(times)))
