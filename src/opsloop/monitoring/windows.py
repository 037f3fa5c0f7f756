"""Windows over the prediction log: the requests a check reads, opened up into feature rows.

The log keeps each request as it came (a body of one or many rows, the answers, the ground
truth joined later by request id). A check needs rows: one per scored record, with its
features, the prediction, the label when there is one, and the serving version. Requests are
selected by DuckDB over the Parquet log (``PredictionLog.requests``); rows come out in time
order whatever order they were written in.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from opsloop.monitoring.entities import Window

__all__ = ["WindowData", "read_window"]


@dataclass
class WindowData:
    start: int | None
    end: int | None
    requests: int = 0
    errors: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    features: Any = None  # DataFrame, one row per scored record
    predictions: list[Any] = field(default_factory=list)
    labels: list[Any] = field(default_factory=list)  # None where no ground truth yet
    versions: list[int] = field(default_factory=list)
    # the classifier's probabilities per row as the server logged them (positive class's for
    # binary, a list for more); None when any request was logged without them (older logs)
    scores: list[Any] | None = None
    last_ts: int | None = None

    @property
    def rows(self) -> int:
        return 0 if self.features is None else len(self.features)


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


def explode(requests: Any, start: int | None, end: int | None) -> WindowData:
    import pandas as pd

    data = WindowData(start=start, end=end, requests=len(requests))
    if not len(requests):
        data.features = pd.DataFrame()
        return data
    data.last_ts = int(requests["ts_ms"].max())
    failed = requests["error"].notna()
    data.errors = int(failed.sum())
    ok = requests[~failed]
    data.latencies_ms = ok["latency_ms"].astype(float).tolist()
    records: list[Any] = []
    probas = ok["proba"] if "proba" in ok.columns else [None] * len(ok)
    scores: list[Any] | None = []
    for inputs, outputs, label, version, proba in zip(
        ok["inputs"], ok["outputs"], ok["label"], ok["version"], probas, strict=True
    ):
        rows = _records(json.loads(inputs))
        records.extend(rows)
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
    data.features = pd.DataFrame.from_records(records) if records else pd.DataFrame()
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
        return explode(log.requests(deployment, since_ms=start, until_ms=end), start, end)
    if window.mode == "sliding":
        frame = log.requests(deployment, last=window.size)
    else:
        since = None if checked_until is None else checked_until + 1
        frame = log.requests(deployment, since_ms=since, first=window.size)
        if len(frame) < window.size:
            return None
    if not len(frame):
        return explode(frame, None, None)
    return explode(frame, int(frame["ts_ms"].min()), int(frame["ts_ms"].max()))
