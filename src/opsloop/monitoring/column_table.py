"""A check's window as named columns, NumPy where every value is a number.

A monitor check tests each column of its window against the reference. Numbers (most models'
features, and their predictions) need nothing but NumPy, and importing pandas to hold them was
a quarter of the check's CPU. ``ColumnTable`` gives a column whose values are all numbers as
the array pandas would hold (int64 when every value is an integer in its range, else float64),
and any other column (text, booleans, missing values, nested values) from the pandas DataFrame
of the same rows, built the first time such a column is asked for: a window of numbers never
imports pandas, and every other column is the one it was.
"""

from __future__ import annotations

from itertools import chain
from typing import Any

import numpy as np

__all__ = ["ColumnTable"]

_INT64 = (-(2**63), 2**63 - 1)


class ColumnTable:
    """The rows (mappings of column to value) as columns, in pandas' order (first seen first).

    ``table[name]`` is a NumPy array or a pandas Series; ``table[name] = values`` sets a
    column as ``DataFrame.__setitem__`` does (a new one goes last). ``KeyError`` for a column
    it does not have.
    """

    def __init__(self, records: list[dict[str, Any]]) -> None:
        self._records = records
        self._values: dict[str, list[Any] | None] = {}  # None: some row lacks it (NaN there)
        # keys in the order first seen, as pandas orders them (taken in C: 300,000 keys of a
        # 10,000-row window of 30 features)
        for name in dict.fromkeys(chain.from_iterable(records)):
            try:
                self._values[name] = [record[name] for record in records]
            except KeyError:
                self._values[name] = None
        self._set: dict[str, list[Any]] = {}
        self._columns: dict[str, Any] = {}
        self._frame: Any = None

    @property
    def columns(self) -> list[str]:
        return list(self._values)

    def __len__(self) -> int:
        return len(self._records)

    def __setitem__(self, name: str, values: list[Any]) -> None:
        self._values[name] = self._set[name] = list(values)
        self._columns.pop(name, None)
        self._frame = None

    def __getitem__(self, name: str) -> Any:
        if name not in self._columns:
            numbers = _numbers(self._values[name])
            self._columns[name] = numbers if numbers is not None else self._pandas()[name]
        return self._columns[name]

    def _pandas(self) -> Any:
        """The DataFrame of the rows with the columns set since, built once."""
        if self._frame is None:
            import pandas as pd

            frame = pd.DataFrame.from_records(self._records) if self._records else pd.DataFrame()
            for name, values in self._set.items():
                frame[name] = values
            self._frame = frame
        return self._frame


def _numbers(values: list[Any] | None) -> np.ndarray | None:
    """The column as pandas holds it when every value is a number (booleans are not): int64
    when all are integers, float64 when some are floats; None for any other column."""
    if not values:
        return None
    kinds = set(map(type, values))
    if not kinds <= {int, float}:
        return None
    if kinds == {int}:
        try:
            return np.array(values, dtype=np.int64)
        except OverflowError:
            return None  # pandas holds such integers as uint64 or objects
    if int in kinds:
        integers = [v for v in values if type(v) is int]
        if min(integers) < _INT64[0] or max(integers) > _INT64[1]:
            return None
    return np.array(values, dtype=np.float64)
