"""Reference profiles: what a drift check needs to know about the reference data, computed once.

A monitor compares every window of live traffic with the same reference. Rereading (and
re-sorting) the reference table on every check would cost more than the check, so the reference
is reduced once to a profile that is small enough to store as JSON:

- a **numeric** column keeps its count, missing count, mean, standard deviation, min and max,
  and either its sorted values (up to ``EXACT_LIMIT`` of them, so small references are compared
  exactly, as the tests for small samples expect) or a sketch of ``QUANTILES`` evenly spaced
  quantiles plus finer ones in both tails, from which its distribution function is
  interpolated; and,
  when it has few distinct values, their counts (such a column is tested like a category);
- a **categorical** column keeps the count of each category (``MAX_CATEGORIES`` at most, the
  rest pooled as ``other``) and its missing count.

Infinite values count as missing, as in Evidently.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np

__all__ = [
    "EXACT_LIMIT",
    "ColumnProfile",
    "TableProfile",
    "categorical_counts",
    "column_kind",
    "finite_values",
    "profile_frame",
]

EXACT_LIMIT = 5000
QUANTILES = 1000
FEW_DISTINCT = 64
MAX_CATEGORIES = 10_000
OTHER = "__other__"

Kind = Literal["numeric", "categorical"]


@dataclass
class ColumnProfile:
    """One column of a reference profile (see the module docstring)."""

    name: str
    kind: Kind
    count: int
    missing: int
    # numeric
    mean: float | None = None
    std: float | None = None
    min: float | None = None
    max: float | None = None
    values: list[float] | None = None
    quantiles: list[float] | None = None
    probabilities: list[float] | None = None  # of ``quantiles``
    distinct: dict[str, int] | None = None  # numeric with few distinct values: value -> count
    # categorical
    categories: dict[str, int] = field(default_factory=dict)

    @property
    def exact(self) -> bool:
        return self.values is not None

    def grid(self) -> tuple[np.ndarray, np.ndarray]:
        """(points, cumulative probabilities) of the distribution function, right-continuous:
        the exact sorted values, or the sketch's min, quantiles and max."""
        if self.values is not None:
            points = np.asarray(self.values, dtype=float)
            return points, np.arange(1, len(points) + 1) / len(points)
        q = np.asarray(self.quantiles, dtype=float)
        probs = np.asarray(self.probabilities, dtype=float)
        return np.concatenate([[self.min], q, [self.max]]), np.concatenate([[0.0], probs, [1.0]])

    def cdf(self, x: np.ndarray) -> np.ndarray:
        """The fraction of the reference at or below each ``x`` (interpolated on a sketch)."""
        points, probs = self.grid()
        if self.values is not None:
            return np.searchsorted(points, x, side="right") / len(points)
        j = np.searchsorted(points, x, side="right")
        inside = (j > 0) & (j < len(points))
        out = np.where(j >= len(points), 1.0, 0.0)
        lo, hi = (
            points[np.maximum(j[inside] - 1, 0)],
            points[np.minimum(j[inside], len(points) - 1)],
        )
        plo, phi = (
            probs[np.maximum(j[inside] - 1, 0)],
            probs[np.minimum(j[inside], len(points) - 1)],
        )
        width = np.where(hi > lo, hi - lo, 1.0)
        out[inside] = plo + (x[inside] - lo) / width * (phi - plo)
        return out

    def distinct_counts(self) -> dict[Any, int] | None:
        """Value -> count for a categorical column or a numeric one with few distinct values."""
        if self.kind == "categorical":
            return dict(self.categories)
        if self.distinct is None:
            return None
        return {float(k): v for k, v in self.distinct.items()}

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None and v != {}}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ColumnProfile:
        return cls(**data)


@dataclass
class TableProfile:
    """The reference profile of a table: one ``ColumnProfile`` per column, and the row count."""

    rows: int
    columns: dict[str, ColumnProfile]

    def to_dict(self) -> dict[str, Any]:
        return {"rows": self.rows, "columns": [c.to_dict() for c in self.columns.values()]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TableProfile:
        columns = [ColumnProfile.from_dict(c) for c in data["columns"]]
        return cls(rows=int(data["rows"]), columns={c.name: c for c in columns})


def column_kind(series: Any) -> Kind:
    """Numbers (not booleans) are numeric; strings, booleans and categories are categorical."""
    import pandas as pd

    dtype = series.dtype
    if pd.api.types.is_bool_dtype(dtype):
        return "categorical"
    return "numeric" if pd.api.types.is_numeric_dtype(dtype) else "categorical"


def finite_values(series: Any) -> np.ndarray:
    """The column's finite values as float64 (NaN, None and infinities dropped)."""
    values = np.asarray(series.to_numpy(dtype=float, na_value=np.nan), dtype=float)
    return values[np.isfinite(values)]


def categorical_counts(series: Any) -> dict[str, int]:
    """Category -> count, missing values left out; categories compared by their text."""
    counts = series.value_counts(dropna=True, sort=False)
    out: dict[str, int] = {}
    for key, count in zip(counts.index, counts.to_numpy(), strict=True):
        text = str(key)
        out[text] = out.get(text, 0) + int(count)
    return out


def sketch_probabilities(n: int) -> np.ndarray:
    """``QUANTILES`` evenly spaced probabilities, plus tails halving towards ``1 / n``: a long
    tail (incomes, latencies) spans a wide range in its last thousandth, which a straight line
    between the last quantile and the maximum would misjudge."""
    even = (np.arange(QUANTILES) + 0.5) / QUANTILES
    tail = 0.5 / QUANTILES / 2.0 ** np.arange(1, 64)
    tail = tail[tail * n >= 1]
    return np.concatenate([tail[::-1], even, 1 - tail])


def _numeric_profile(name: str, series: Any) -> ColumnProfile:
    values = np.sort(finite_values(series))
    n = len(values)
    profile = ColumnProfile(name=name, kind="numeric", count=n, missing=len(series) - n)
    if n == 0:
        return profile
    profile.mean, profile.std = float(values.mean()), float(values.std())
    profile.min, profile.max = float(values[0]), float(values[-1])
    if n <= EXACT_LIMIT:
        profile.values = values.tolist()
    else:
        probs = sketch_probabilities(n)
        index = np.minimum((probs * n).astype(np.int64), n - 1)
        profile.quantiles, profile.probabilities = values[index].tolist(), probs.tolist()
    starts = np.flatnonzero(np.concatenate([[True], values[1:] != values[:-1]]))
    if len(starts) <= FEW_DISTINCT:
        counts = np.diff(np.concatenate([starts, [n]]))
        profile.distinct = {
            repr(float(values[s])): int(c) for s, c in zip(starts, counts, strict=True)
        }
    return profile


def _categorical_profile(name: str, series: Any) -> ColumnProfile:
    counts = categorical_counts(series)
    if len(counts) > MAX_CATEGORIES:
        ranked = sorted(counts.items(), key=lambda kv: -kv[1])
        counts = dict(ranked[:MAX_CATEGORIES])
        counts[OTHER] = sum(c for _, c in ranked[MAX_CATEGORIES:])
    count = sum(counts.values())
    return ColumnProfile(
        name=name, kind="categorical", count=count, missing=len(series) - count, categories=counts
    )


def profile_frame(frame: Any, column_types: dict[str, Kind] | None = None) -> TableProfile:
    """The profile of a pandas DataFrame; ``column_types`` overrides the inferred kinds."""
    column_types = column_types or {}
    columns = {}
    for name in frame.columns:
        series = frame[name]
        kind = column_types.get(str(name)) or column_kind(series)
        build = _numeric_profile if kind == "numeric" else _categorical_profile
        columns[str(name)] = build(str(name), series)
    return TableProfile(rows=len(frame), columns=columns)
