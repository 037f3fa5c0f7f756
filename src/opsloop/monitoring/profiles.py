"""Reference profiles: what a drift check needs to know about the reference data, computed once.

A monitor compares every window of live traffic with the same reference. Rereading the
reference table on every check would cost more than the check, so the reference is reduced
once to a profile that is stored as JSON:

- a **numeric** column keeps its count, missing count, mean, standard deviation, min and max,
  and its *support*, every distinct value with its count (``profile_support``: exact in
  memory, and stored exactly up to 20,000 distinct values, above that on a grid whose effect on
  the Wasserstein distance is bounded and stored); and, when it has few distinct values, their
  counts (such a column is tested like a category);
- a **categorical** column keeps the count of each category (``MAX_CATEGORIES`` at most, the
  rest pooled as ``other``) and its missing count;
- a time column or an identifier (``column_roles``) is profiled as above and carries ``skip``,
  the reason drift checks leave it out unless a test is forced on it; timestamps are kept as
  epoch seconds (``time="datetime"``: the current data is converted the same way).

Infinite values count as missing, as in Evidently.

Profiles stored by older versions (no ``format`` key) still read: their numeric columns keep
the sorted values (up to 5,000 rows) or a quantile sketch, which ``stattests`` still handles,
and their ``skip`` is inferred on reading from what they kept (``_legacy_skip``). A sketch
cannot be made exact again: re-profile the reference (a new monitor, or a re-baseline) for that.
"""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import field
from dataclasses import fields
from typing import Any
from typing import Literal

import numpy as np

from opsloop.monitoring import column_roles
from opsloop.monitoring.profile_support import Support
from opsloop.monitoring.profile_support import pack
from opsloop.monitoring.profile_support import unpack

__all__ = [
    "EXACT_LIMIT",
    "ColumnProfile",
    "TableProfile",
    "categorical_counts",
    "column_kind",
    "finite_values",
    "profile_column",
    "profile_frame",
]

FORMAT = 2
EXACT_LIMIT = 5000  # old profiles: sorted values up to this many rows, a sketch above
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
    support: dict[str, Any] | None = None  # packed ``Support`` (profile_support)
    values: list[float] | None = None  # old profiles: sorted values
    quantiles: list[float] | None = None  # old profiles: the sketch
    probabilities: list[float] | None = None  # of ``quantiles``
    distinct: dict[str, int] | None = None  # numeric with few distinct values: value -> count
    time: str | None = None  # "datetime": values are timestamps kept as epoch seconds
    # categorical
    categories: dict[str, int] = field(default_factory=dict)
    skip: str | None = None  # why drift checks leave the column out by default
    _support: Support | None = field(default=None, repr=False, compare=False)

    @property
    def exact(self) -> bool:
        """Whether the whole reference is known (not a quantile sketch of an old profile)."""
        return self.support_values() is not None

    def support_values(self) -> Support | None:
        """Every distinct value with its count, decoded once; None for a sketch."""
        if self._support is None:
            if self.support is not None:
                self._support = unpack(self.support)
            elif self.values is not None:
                self._support = Support.of_sorted(np.asarray(self.values, dtype=float))
        return self._support

    def grid(self) -> tuple[np.ndarray, np.ndarray]:
        """(points, cumulative probabilities) of the distribution function, right-continuous:
        the exact distinct values, or the sketch's min, quantiles and max."""
        support = self.support_values()
        if support is not None:
            return support.values, np.cumsum(support.counts) / support.total
        q = np.asarray(self.quantiles, dtype=float)
        probs = np.asarray(self.probabilities, dtype=float)
        return np.concatenate([[self.min], q, [self.max]]), np.concatenate([[0.0], probs, [1.0]])

    def cdf(self, x: np.ndarray) -> np.ndarray:
        """The fraction of the reference at or below each ``x`` (interpolated on a sketch)."""
        support = self.support_values()
        if support is not None:
            return support.cdf(x)
        points, probs = self.grid()
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
        if self.support is None and self._support is not None and self.values is None:
            self.support = pack(self._support, self.std or 0.0)
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "_support"}
        return {k: v for k, v in out.items() if v is not None and v != {}}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ColumnProfile:
        return cls(**{k: v for k, v in data.items() if k != "_support"})


@dataclass
class TableProfile:
    """The reference profile of a table: one ``ColumnProfile`` per column, and the row count."""

    rows: int
    columns: dict[str, ColumnProfile]

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT, "rows": self.rows,
            "columns": [c.to_dict() for c in self.columns.values()],
        }  # fmt: skip

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TableProfile:
        columns = [ColumnProfile.from_dict(c) for c in data["columns"]]
        if "format" not in data:  # stored before time columns and ids were told apart
            for c in columns:
                c.skip = _legacy_skip(c)
        return cls(rows=int(data["rows"]), columns={c.name: c for c in columns})


def _legacy_skip(c: ColumnProfile) -> str | None:
    """The ``skip`` of an old profile's column, from what it kept: a categorical column's
    category names (ISO timestamps: a time column; nearly all distinct or e-mail addresses: an
    identifier), a numeric one's name and range (epoch times) or its sorted values."""
    if c.kind == "categorical":
        keys = [k for k in c.categories if k != OTHER]
        if column_roles.looks_like_timestamps(keys[: column_roles.SAMPLE]):
            return column_roles.TIME
        return column_roles.id_like(c.name, count=c.count, distinct=len(keys), texts=keys)
    if c.min is None or c.max is None:
        return None
    if column_roles.is_time_name(c.name) and column_roles.epoch_range(c.min, c.max):
        return column_roles.TIME
    if c.values is None:
        return None
    values = np.asarray(c.values, dtype=float)
    distinct = len(Support.of_sorted(values).values)
    return column_roles.id_like(
        c.name, count=c.count, distinct=distinct, integers=bool(np.all(values == np.round(values))),
        span=c.max - c.min + 1,
    )  # fmt: skip


def column_kind(series: Any) -> Kind:
    """Numbers (not booleans) are numeric; strings, booleans and categories are categorical."""
    import pandas as pd

    dtype = series.dtype
    if pd.api.types.is_bool_dtype(dtype):
        return "categorical"
    return "numeric" if pd.api.types.is_numeric_dtype(dtype) else "categorical"


def finite_values(series: Any) -> np.ndarray:
    """The column's (a pandas Series or a NumPy array of numbers) finite values as float64
    (NaN, None and infinities dropped)."""
    if isinstance(series, np.ndarray):
        values = series.astype(float)
    else:
        values = np.asarray(series.to_numpy(dtype=float, na_value=np.nan), dtype=float)
    return values[np.isfinite(values)]


def categorical_counts(series: Any) -> dict[str, int]:
    """Category -> count, missing values left out; categories compared by their text. The
    column is a pandas Series or a NumPy array of numbers, counted as ``value_counts`` does
    (in order of first appearance; 0.0 and -0.0 are one value)."""
    if isinstance(series, np.ndarray):
        counted: dict[Any, int] = {}
        for value in series.tolist():
            if value == value:  # NaN is missing
                counted[value] = counted.get(value, 0) + 1
        pairs: Any = counted.items()
    else:
        counts = series.value_counts(dropna=True, sort=False)
        pairs = zip(counts.index, counts.to_numpy(), strict=True)
    out: dict[str, int] = {}
    for key, count in pairs:
        text = str(key)
        out[text] = out.get(text, 0) + int(count)
    return out


def sketch_probabilities(n: int) -> np.ndarray:
    """The probabilities of an old profile's sketch (kept for reference: new profiles keep the
    support): ``QUANTILES`` evenly spaced, plus tails halving towards ``1 / n``."""
    even = (np.arange(QUANTILES) + 0.5) / QUANTILES
    tail = 0.5 / QUANTILES / 2.0 ** np.arange(1, 64)
    tail = tail[tail * n >= 1]
    return np.concatenate([tail[::-1], even, 1 - tail])


def _numeric_profile(name: str, series: Any, time: str | None = None) -> ColumnProfile:
    raw = column_roles.to_epoch(series) if time == "datetime" else series
    values = np.sort(finite_values(raw))
    n = len(values)
    profile = ColumnProfile(name=name, kind="numeric", count=n, missing=len(series) - n)
    profile.time = "datetime" if time == "datetime" else None
    if time is not None:
        profile.skip = column_roles.TIME
    if n == 0:
        return profile
    profile.mean, profile.std = float(values.mean()), float(values.std())
    profile.min, profile.max = float(values[0]), float(values[-1])
    support = profile._support = Support.of_sorted(values)
    if len(support.values) <= FEW_DISTINCT:
        profile.distinct = {
            repr(float(v)): int(c) for v, c in zip(support.values, support.counts, strict=True)
        }
    if profile.skip is None:
        integers = bool(np.all(support.values == np.round(support.values)))
        profile.skip = column_roles.id_like(
            name, count=n, distinct=len(support.values), integers=integers,
            span=profile.max - profile.min + 1,
        )  # fmt: skip
    return profile


def _categorical_profile(name: str, series: Any, time: str | None = None) -> ColumnProfile:
    counts = categorical_counts(series)
    count = sum(counts.values())
    if time is not None:
        skip = column_roles.TIME
    else:
        texts = series.dropna().head(column_roles.SAMPLE).tolist()
        texts = texts if all(isinstance(t, str) for t in texts) else None
        skip = column_roles.id_like(name, count=count, distinct=len(counts), texts=texts)
    if len(counts) > MAX_CATEGORIES:
        ranked = sorted(counts.items(), key=lambda kv: -kv[1])
        counts = dict(ranked[:MAX_CATEGORIES])
        counts[OTHER] = sum(c for _, c in ranked[MAX_CATEGORIES:])
    return ColumnProfile(
        name=name, kind="categorical", count=count, missing=len(series) - count,
        categories=counts, skip=skip,
    )  # fmt: skip


def profile_column(name: str, series: Any, kind: Kind | None = None) -> ColumnProfile:
    """The profile of one column; ``kind`` overrides the inferred one. Timestamps (datetime,
    dates, ISO text) are numeric unless ``kind`` says otherwise."""
    time = column_roles.time_kind(name, series)
    kind = kind or ("numeric" if time else column_kind(series))
    build = _numeric_profile if kind == "numeric" else _categorical_profile
    return build(name, series, time)


def profile_frame(frame: Any, column_types: dict[str, Kind] | None = None) -> TableProfile:
    """The profile of a pandas DataFrame; ``column_types`` overrides the inferred kinds."""
    column_types = column_types or {}
    columns = {
        str(name): profile_column(str(name), frame[name], column_types.get(str(name)))
        for name in frame.columns
    }
    return TableProfile(rows=len(frame), columns=columns)
