"""Windows over the prediction log: the requests a check reads, opened up into feature rows.

The log keeps each request as it came (a body of one or many rows, the answers, the ground
truth joined later by request id). A check needs rows: one per scored record, with its
features, the prediction, the label when there is one, and the serving version. Requests are
selected by DuckDB over the Parquet log (``PredictionReader.request_columns``: Python lists by
column, neither pandas nor pyarrow); rows come out in time order whatever order they were
written in. Each column of JSON texts (bodies, answers, labels, probabilities) is parsed in one
``json.loads`` call, not one per request. The check reads the rows as columns
(``WindowData.table``: NumPy where every value is a number, no pandas); ``WindowData.features``
gives them as a pandas DataFrame.
"""

from __future__ import annotations

import functools
import json
import math
from dataclasses import dataclass
from dataclasses import field
from typing import TYPE_CHECKING
from typing import Any

from opsloop.monitoring.column_table import ColumnTable

if TYPE_CHECKING:
    from opsloop.monitoring.entities import Window
    from opsloop.monitoring.measure import WindowShape

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
    """The columns of a table of requests as lists: already so (``request_columns``), or a
    pandas DataFrame (``requests``)."""
    if isinstance(requests, dict):
        return requests
    return {str(name): requests[name].tolist() for name in requests.columns}


def _present(value: Any) -> bool:
    return value is not None and value == value  # NaN: missing, as pandas reads it


def _parsed(texts: list[Any]) -> list[Any]:
    """``json.loads`` of each JSON text, None where there is no text (None, or NaN as pandas
    reads a missing one). The texts are parsed as one JSON array: one call instead of one per
    text, whose keys are made once (10,000 bodies of 30 features: ~2/3 of the time). The log
    writes each text with ``json.dumps``, one value apiece; should the array not hold one
    value per text, each is parsed alone, as before, and fails as it would have."""
    given = [t for t in texts if isinstance(t, str)]
    values: list[Any] = []
    if given:
        try:
            values = json.loads("[" + ",".join(given) + "]")
        except ValueError:
            values = []
        if len(values) != len(given):
            values = [json.loads(t) for t in given]
    found = iter(values)
    return [next(found) if isinstance(t, str) else None for t in texts]


def explode(requests: Any, start: int | None, end: int | None) -> WindowData:
    """The window's rows from its requests (lists by column, or a pandas DataFrame)."""
    columns = _lists(requests)
    data = WindowData(start=start, end=end, requests=len(columns.get("ts_ms", ())))
    if not data.requests:
        return data
    data.last_ts = int(max(columns["ts_ms"]))
    ok = [not _present(error) for error in columns["error"]]
    data.errors = ok.count(False)
    latencies = zip(columns["latency_ms"], ok, strict=True)
    data.latencies_ms = [math.nan if v is None else float(v) for v, good in latencies if good]
    probas = columns.get("proba") or [None] * len(ok)
    kept = [i for i, good in enumerate(ok) if good]
    bodies, answers, truths, logged_scores = (
        _parsed([column[i] for i in kept])
        for column in (columns["inputs"], columns["outputs"], columns["label"], probas)
    )
    versions = [columns["version"][i] for i in kept]
    scores: list[Any] | None = []
    for body, outputs, truth, version, logged in zip(
        bodies, answers, truths, versions, logged_scores, strict=True
    ):
        rows = _records(body)
        data.records.extend(rows)
        data.predictions.extend(_per_row(outputs, len(rows)))
        data.labels.extend(_per_row(truth, len(rows)))
        data.versions.extend([int(version)] * len(rows))
        if scores is not None:
            if isinstance(logged, list) and len(logged) == len(rows):
                scores.extend(logged)
            else:
                scores = None  # one request without them: the check falls back to the model
    data.scores = scores
    return data


def read_window(
    log: Any,
    deployment: str,
    window: Window | WindowShape,
    *,
    now_ms: int,
    checked_until: int | None,
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
        return explode(log.request_columns(deployment, since_ms=start, until_ms=end), start, end)
    if window.mode == "sliding":
        columns = log.request_columns(deployment, last=window.size)
    else:
        since = None if checked_until is None else checked_until + 1
        columns = log.request_columns(deployment, since_ms=since, first=window.size)
        if len(columns["ts_ms"]) < window.size:
            return None
    times = columns["ts_ms"]
    if not times:
        return explode(columns, None, None)
    return explode(columns, int(min(times)), int(max(times)))
