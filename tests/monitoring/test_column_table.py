"""A check's window as ``ColumnTable`` columns reads as the pandas DataFrame of the same rows
did: the same columns in the same order, number columns as the arrays pandas holds, every other
column pandas' own, and the same drift report (issue 22: a check of numbers imports no pandas).
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pandas as pd
import pytest

from opsloop.monitoring.column_table import ColumnTable
from opsloop.monitoring.drift import drift
from opsloop.monitoring.profiles import categorical_counts
from opsloop.monitoring.profiles import finite_values
from opsloop.monitoring.profiles import profile_frame
from opsloop.monitoring.windows import _records
from opsloop.monitoring.windows import explode

ROWS: dict[str, list[dict[str, Any]]] = {
    "numbers": [{"i": 1, "f": 0.5, "m": 2}, {"i": -3, "f": 2.0, "m": 2.5},
                {"i": 0, "f": -0.0, "m": 7}],
    "special floats": [{"x": math.nan, "y": math.inf}, {"x": 1.0, "y": -0.0}, {"x": 0.0, "y": 0}],
    "big integers": [{"a": 2**63, "b": 2**70, "c": -(2**63)}, {"a": 1, "b": 1.5, "c": 1.5}],
    "text and flags": [{"s": "a", "t": True, "u": None}, {"s": "b", "t": False, "u": 1}],
    "mixed": [{"m": 1, "n": "1"}, {"m": True, "n": 1}],
    "missing keys": [{"a": 1, "b": 2.0}, {"b": 3.0, "c": 4}, {"a": 5, "c": 6}],
    "nested": [{"v": [1, 2], "d": {"k": 1}}, {"v": [3], "d": {}}],
}  # fmt: skip


@pytest.mark.parametrize("name", list(ROWS))
def test_columns_read_as_the_dataframe_of_the_rows(name: str) -> None:
    records = ROWS[name]
    frame = pd.DataFrame.from_records(records)
    table = ColumnTable(records)
    assert table.columns == list(frame.columns) and len(table) == len(frame)
    for column in frame.columns:
        ours, theirs = table[column], frame[column]
        if isinstance(ours, np.ndarray):  # a column of numbers: pandas' dtype and values
            assert ours.dtype == theirs.dtype
            np.testing.assert_array_equal(ours, theirs.to_numpy())
        else:
            pd.testing.assert_series_equal(ours, theirs)
        assert categorical_counts(ours) == categorical_counts(theirs)
        assert list(categorical_counts(ours)) == list(categorical_counts(theirs))  # order
        try:
            expected = finite_values(theirs)
        except (TypeError, ValueError):
            continue
        np.testing.assert_array_equal(finite_values(ours), expected)


def test_a_column_set_later_reads_as_pandas_sets_it() -> None:
    records = [{"x": 1.5, "prediction": "old"}, {"x": 2.5, "prediction": "old"}]
    frame, table = pd.DataFrame.from_records(records), ColumnTable(records)
    for name, values in (("prediction", [1, 0]), ("label", ["cat", None])):
        frame[name], table[name] = values, values
    assert table.columns == list(frame.columns)
    assert table["prediction"].dtype == frame["prediction"].dtype
    pd.testing.assert_series_equal(table["label"], frame["label"])


def test_a_drift_report_over_the_table_is_the_dataframes() -> None:
    rng = np.random.default_rng(5)

    def rows(n: int, shift: float) -> list[dict[str, Any]]:
        return [
            {"x": float(rng.normal(shift)), "k": int(rng.integers(0, 4)),
             "b": int(rng.integers(0, 2)), "c": str(rng.choice(["a", "b", "c"])),
             "flag": bool(rng.integers(0, 2))}
            for _ in range(n)
        ]  # fmt: skip

    reference = profile_frame(pd.DataFrame.from_records(rows(600, 0.0)))
    current = rows(900, 0.2)
    frame, table = pd.DataFrame.from_records(current), ColumnTable(current)
    frame["prediction"] = table["prediction"] = [r["b"] for r in current]
    ours, theirs = drift(reference, table), drift(reference, frame)
    assert ours.to_dict() == theirs.to_dict()
    assert {c.stattest for c in ours.columns} >= {"ks", "z", "chisquare"}


def test_explode_reads_columns_and_pandas_alike() -> None:
    requests = {
        "request_id": ["a", "b", "c"], "ts_ms": [3, 1, 2], "version": [1, 2, 1],
        "latency_ms": [1.5, 2.5, None], "error": [None, None, "boom"],
        "inputs": ['{"records": [{"x": 1}, {"x": 2}]}', '{"instances": [{"x": 3.5}]}', "{}"],
        "outputs": ["[1, 0]", "1", "null"], "proba": ["[0.9, 0.2]", None, None],
        "label": ["[1, 1]", None, None],
    }  # fmt: skip
    ours, theirs = explode(requests, 1, 3), explode(pd.DataFrame(requests), 1, 3)
    assert ours.records == theirs.records == [{"x": 1}, {"x": 2}, {"x": 3.5}]
    for key in ("requests", "errors", "latencies_ms", "predictions", "labels", "versions",
                "scores", "last_ts", "rows"):  # fmt: skip
        assert getattr(ours, key) == getattr(theirs, key), key
    assert (ours.errors, ours.last_ts, ours.scores, ours.labels) == (1, 3, None, [1, 1, None])
    pd.testing.assert_frame_equal(ours.features, pd.DataFrame({"x": [1.0, 2.0, 3.5]}))


def test_explode_parses_each_column_as_one_text_at_a_time_would() -> None:
    """The JSON texts of a column are parsed in one call; the values are the ones
    ``json.loads`` gives text by text, and a text that is not one JSON value fails as it did."""
    inputs = ['{"records": [{"x": 1, "y": "a"}, {"x": NaN, "y": null}]}',
              '{"columns": {"x": [2.5e-3], "y": ["b"]}}', '{"instances": [{"x": -0.0}]}',
              '{"dataframe_split": {"columns": ["x"], "data": [[7]]}}']  # fmt: skip
    requests = {
        "ts_ms": [1, 2, 3, 4], "version": [1, 1, 2, 2], "latency_ms": [1.0, 2.0, 3.0, 4.0],
        "error": [None] * 4, "inputs": inputs, "outputs": ["[1, 0]", "[[1, 2]]", '"a"', "3.25"],
        "label": [None, "[0]", "null", '"b"'], "proba": ["[0.5, 0.5]", "[0.1]", "[0.2]", None],
    }  # fmt: skip
    window = explode(requests, None, None)
    records = [row for text in inputs for row in _records(json.loads(text))]
    assert repr(window.records) == repr(records)  # NaN and -0.0 kept as they were
    assert window.predictions == [1, 0, [1, 2], "a", 3.25]
    assert window.labels == [None, None, 0, None, "b"] and window.scores is None
    with pytest.raises(json.JSONDecodeError):
        explode({**requests, "outputs": ["1, 2", "3", "4", "5"]}, None, None)
