"""Columns a drift check should not test by default: time columns and identifiers.

A timestamp (a datetime column, ISO timestamps as text, or epoch numbers in a column named like
``created_at``, ``*time*`` or ``ts`` that increase row after row) takes new values in every new
window by construction, and an identifier (uuids, row ids, e-mail addresses: nearly every value
distinct) never repeats: tested as categories or numbers, either flags drift in every window,
which is a false alarm. Such a column is profiled as usual (so that a test can still be forced
on it with ``column_stattests``) and marked with the reason it is skipped, which the drift
report prints: ``skipped: time column``, ``skipped: id-like, 99.8% distinct``.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np

__all__ = [
    "TIME",
    "epoch_range",
    "id_like",
    "is_time_name",
    "looks_like_timestamps",
    "time_kind",
    "to_epoch",
]

TIME = "time column"
MIN_ROWS = 50  # below this, "nearly all distinct" says nothing
ID_SHARE = 0.95
SAMPLE = 1000
_TIME_NAME = re.compile(r"(_at$|time|date|^ts$|^ts_|_ts$|^t$|^epoch|_epoch$)", re.IGNORECASE)
_ID_NAME = re.compile(r"(^|_)(id|uuid|guid|key|pk|index|idx|row)$|^id_", re.IGNORECASE)
_ID_CAMEL = re.compile(r"[a-z](Id|ID)$")  # userId, orderID; not "paid"
_ISO = re.compile(
    r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?\s*(Z|[+-]\d{2}(:?\d{2})?)?)?$"
)
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[A-Za-z]{2,}$")
# epoch seconds, milliseconds, microseconds, nanoseconds between 2001 and 2286
_EPOCH_RANGES = ((1e9, 1e10), (1e12, 1e13), (1e15, 1e16), (1e18, 1e19))


def is_time_name(name: str) -> bool:
    return bool(_TIME_NAME.search(name))


def epoch_range(lo: float, hi: float) -> bool:
    """Whether numbers from ``lo`` to ``hi`` read as epoch times (s, ms, us or ns) of 2001-2286."""
    return any(a <= lo and hi < b for a, b in _EPOCH_RANGES)


def _sample(series: Any) -> list[Any]:
    return series.dropna().head(SAMPLE).tolist()


def looks_like_timestamps(texts: list[Any]) -> bool:
    """At least 95% of the (non-missing) values are ISO dates or timestamps."""
    texts = [t for t in texts if t is not None]
    if not texts:
        return False
    hits = sum(bool(_ISO.match(str(t).strip())) for t in texts)
    return hits >= 0.95 * len(texts)


def time_kind(name: str, series: Any) -> str | None:
    """``"datetime"`` for timestamps to convert (datetime dtype, dates, ISO text), ``"epoch"``
    for numbers that are already times, None for anything else."""
    import datetime as dt

    import pandas as pd

    dtype = series.dtype
    if pd.api.types.is_datetime64_any_dtype(dtype):
        return "datetime"
    if pd.api.types.is_bool_dtype(dtype):
        return None
    if pd.api.types.is_numeric_dtype(dtype):
        if not is_time_name(name):
            return None
        values = series.to_numpy(dtype=float, na_value=np.nan)
        values = values[np.isfinite(values)]
        if len(values) < 3:
            return None
        increasing = bool(np.all(np.diff(values) >= 0)) and values[-1] > values[0]
        epoch = epoch_range(float(values.min()), float(values.max()))
        return "epoch" if increasing or epoch else None
    sample = _sample(series)
    if sample and all(isinstance(v, dt.date | pd.Timestamp) for v in sample):
        return "datetime"
    if looks_like_timestamps([v for v in sample if isinstance(v, str)]) and all(
        isinstance(v, str) for v in sample
    ):
        return "datetime"
    return None


def to_epoch(series: Any) -> Any:
    """Timestamps (datetime, dates, ISO text) as float seconds since 1970 (UTC; naive ones are
    taken as UTC); what does not parse becomes NaN, so it counts as missing. ``series``: a
    pandas Series, or a NumPy array (a monitor check's column of numbers)."""
    import pandas as pd

    if isinstance(series, np.ndarray):
        series = pd.Series(series)
    if pd.api.types.is_datetime64_any_dtype(series.dtype):
        parsed = series
        if getattr(series.dt, "tz", None) is None:
            parsed = series.dt.tz_localize("UTC")
    else:
        parsed = pd.to_datetime(series, utc=True, errors="coerce", format="ISO8601")
    seconds = (parsed - pd.Timestamp(0, tz="UTC")).dt.total_seconds()
    return seconds.astype(float)


def _distinct_reason(share: float, emails: bool) -> str:
    what = "id-like (e-mail addresses)" if emails else "id-like"
    return f"{what}, {share:.1%} distinct"


def id_like(
    name: str, *, count: int, distinct: int, texts: list[Any] | None = None,
    integers: bool = False, span: float | None = None,
) -> str | None:  # fmt: skip
    """Why a column is an identifier (``"id-like, 99.8% distinct"``), or None.

    Text: e-mail addresses (95% of a sample), or nearly all values distinct. Numbers: whole
    numbers, nearly all distinct, and either named like an id (``id``, ``user_id``, ``key``) or
    spanning a range hardly wider than their count (row numbers): a float feature, or whole
    numbers spread thin (incomes in dollars), is nearly all distinct too and is a feature.
    """
    if count < MIN_ROWS:
        return None
    share = distinct / count
    if texts is not None:
        sample = [str(t) for t in texts[:SAMPLE] if t is not None]
        emails = any("@" in t for t in sample[:20]) and sum(
            bool(_EMAIL.match(t)) for t in sample
        ) >= 0.95 * len(sample)
        if emails or share >= ID_SHARE:
            return _distinct_reason(share, emails)
        return None
    if not integers or share < ID_SHARE:
        return None
    if (
        _ID_NAME.search(name)
        or _ID_CAMEL.search(name)
        or (span is not None and span <= 2 * distinct)
    ):
        return _distinct_reason(share, False)
    return None
