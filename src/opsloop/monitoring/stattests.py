"""Drift statistics: each compares one reference column (its profile) with the current values.

Six tests, the ones drift tools have converged on, with Evidently's names, thresholds and
conventions so that a team moving over gets the same verdicts:

================  ===========  =========  ======================================================
name              kind         threshold  drift when
================  ===========  =========  ======================================================
``ks``            numeric      0.05       Kolmogorov-Smirnov p-value < threshold
``chisquare``     categorical  0.05       chi-square p-value < threshold
``z``             categorical  0.05       two-proportion Z-test p-value < threshold (2 values)
``wasserstein``   numeric      0.1        Wasserstein distance / reference std >= threshold
``jensenshannon`` both         0.1        Jensen-Shannon distance >= threshold
``psi``           both         0.1        population stability index >= threshold
================  ===========  =========  ======================================================

``default_test`` picks one per column by Evidently's rules: by the reference's size (up to
1,000 rows: the p-value tests; more: the distances), the column's kind, and how many distinct
values the two samples hold together (numbers with five or fewer are tested as categories).

A numeric reference is kept whole, as its distinct values and their counts (``profiles``),
so KS and Wasserstein are computed exactly as SciPy computes them on the raw reference:
the two distribution functions are evaluated at every value of either sample (the reference's
are already sorted and merged with the current window's in one stable sort), KS takes the
largest gap, Wasserstein integrates it. Up to 10,000 rows on both sides KS is SciPy's own
``ks_2samp``'s exact p-value (its compiled kernel, called without importing ``scipy.stats``:
``kolmogorov``); above, the same asymptotic p-value it uses (SciPy's own code, also run
without importing ``scipy.stats``). The chi-square and
Jensen-Shannon tests call the ``scipy.special`` functions SciPy's own would; the Z test computes
``scipy.special.ndtr`` as SciPy does, without importing it (``normal``). A stored
reference with more than 20,000 distinct values is kept on a fine grid, and the Wasserstein
distance then moves by at most the grid's stored mean displacement over the std (about 5e-7).

Profiles stored by older versions may hold a quantile sketch instead; it is compared through
its interpolated distribution function: the current values are counted into the sketch's
quantile intervals, which gives the current distribution function exactly at the sketch's
points; KS takes the largest gap there, Wasserstein integrates the gap, piecewise linear
between points and exact beyond the reference's range.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from opsloop.monitoring.kolmogorov import asymptotic_p_value
from opsloop.monitoring.kolmogorov import exact_p_value
from opsloop.monitoring.normal import ndtr
from opsloop.monitoring.profiles import ColumnProfile

__all__ = ["STATTESTS", "Current", "StatTest", "default_test"]

SMALL_REFERENCE = 1000
SCIPY_EXACT_KS = 10_000  # ks_2samp's 'auto' mode is exact up to this many rows on both sides
FEW_POINTS = 4096  # references with up to this many distinct values try counting first


@dataclass
class Current:
    """The current values of one column: finite numbers, or category counts."""

    values: np.ndarray | None = None
    counts: dict[Any, int] | None = None

    @property
    def count(self) -> int:
        if self.values is not None:
            return len(self.values)
        return sum((self.counts or {}).values())

    def distinct_counts(self) -> dict[Any, int]:
        if self.counts is not None:
            return self.counts
        assert self.values is not None
        keys, counts = np.unique(self.values, return_counts=True)
        return {float(k): int(c) for k, c in zip(keys, counts, strict=True)}


@dataclass(frozen=True)
class StatTest:
    name: str
    kinds: tuple[str, ...]
    threshold: float
    p_value: bool  # True: drift when the statistic < threshold; False: when >= threshold
    compute: Callable[[ColumnProfile, Current, bool], float]

    def drifted(self, statistic: float, threshold: float) -> bool:
        return statistic < threshold if self.p_value else statistic >= threshold


# -- helpers over category counts -------------------------------------------------------------
def _aligned(ref: dict[Any, int], cur: dict[Any, int]) -> tuple[np.ndarray, np.ndarray]:
    keys = list(dict.fromkeys([*ref, *cur]))
    return (
        np.array([ref.get(k, 0) for k in keys], dtype=float),
        np.array([cur.get(k, 0) for k in keys], dtype=float),
    )


def _fill_zeros(percents: np.ndarray) -> np.ndarray:
    """Empty bins get a small share so that logarithms stay finite (Evidently's rule)."""
    nonzero = percents[percents > 0]
    if len(nonzero) == 0:
        return percents
    smallest = nonzero.min()
    filler = smallest / 10**6 if smallest <= 0.0001 else 0.0001
    return np.where(percents == 0, filler, percents)


def _binned(ref: ColumnProfile, cur: Current, as_categories: bool) -> tuple[np.ndarray, np.ndarray]:
    """Shares per bin: categories, or Sturges bins over the two samples' joint range."""
    if as_categories or ref.kind == "categorical" or _few_reference_values(ref):
        r, c = _aligned(ref.distinct_counts() or {}, cur.distinct_counts())
        return r / r.sum(), c / c.sum()
    assert cur.values is not None and ref.min is not None and ref.max is not None
    lo, hi = min(ref.min, float(cur.values.min())), max(ref.max, float(cur.values.max()))
    current, edges = np.histogram(cur.values, bins=_sturges(ref.count + cur.count), range=(lo, hi))
    current = current / len(cur.values)
    at_edges = ref.cdf(edges)
    at_edges[0], at_edges[-1] = 0.0, 1.0
    return np.diff(at_edges), current


def _sturges(n: int) -> int:
    return int(np.ceil(np.log2(n) + 1.0))


def _few_reference_values(ref: ColumnProfile) -> bool:
    """Evidently bins a numeric column by value when the reference has 20 values or fewer."""
    return ref.distinct is not None and len(ref.distinct) <= 20


# -- the tests ----------------------------------------------------------------------------------
def _ks(ref: ColumnProfile, cur: Current, as_categories: bool) -> float:
    assert cur.values is not None
    support = ref.support_values()
    n, m = ref.count, cur.count
    exact = support is not None
    gap = _at_ties(*_exact_gaps(support, cur.values)) if exact else _sketch_gaps(ref, cur)[0]
    if support is not None and max(n, m) <= SCIPY_EXACT_KS:  # ks_2samp's exact mode
        p_value = exact_p_value(gap, n, m)  # its own kernel, without importing scipy.stats
        if p_value is not None:
            return p_value
        from scipy import stats

        return float(stats.ks_2samp(support.repeated(), cur.values).pvalue)
    d = float(np.abs(gap).max())
    p_value = asymptotic_p_value(d, n, m)  # its own code, without importing scipy.stats
    if p_value is not None:
        return p_value
    from scipy import stats

    return float(stats.kstwo.sf(d, np.round(n * m / (n + m))))


def _wasserstein(ref: ColumnProfile, cur: Current, as_categories: bool) -> float:
    assert cur.values is not None and ref.std is not None
    norm = max(ref.std, 0.001)
    support = ref.support_values()
    if support is not None:
        gap, points = _exact_gaps(support, cur.values)
        np.abs(gap, out=gap)
        return float(np.dot(gap[:-1], np.diff(points))) / norm
    right, left, points = _sketch_gaps(ref, cur)
    a, b, width = right[:-1], left[1:], np.diff(points)
    same_sign = a * b >= 0
    total = np.abs(a) + np.abs(b)
    area = np.where(
        same_sign, width * total / 2, width * (a * a + b * b) / (2 * np.where(total > 0, total, 1))
    )
    below = cur.values[cur.values < points[0]]
    above = cur.values[cur.values > points[-1]]
    tails = ((points[0] - below).sum() + (above - points[-1]).sum()) / len(cur.values)
    return float(area.sum() + tails) / norm


def _exact_gaps(support: Any, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """F_ref - F_cur at every value of either sample, in order: what SciPy's
    ``wasserstein_distance`` and ``ks_2samp`` compute, without re-sorting the reference (its
    values are sorted and distinct; the current ones are sorted, then a stable sort merges the
    two runs in one pass, and the two distribution functions are running sums). Where values
    tie, only the last of the run is a right-continuous value (the others span no width, so
    Wasserstein ignores them; KS takes ``_at_ties``)."""
    if len(support.values) <= FEW_POINTS:
        # a discrete reference (Poisson, small integers): when every current value is one of
        # its values, counting them per value gives both functions at every point, no sort
        slot = np.searchsorted(support.values, values)
        if np.array_equal(support.values[np.minimum(slot, len(support.values) - 1)], values):
            current = np.bincount(slot, minlength=len(support.values))
            gap = np.cumsum(support.counts) / support.total - np.cumsum(current) / len(values)
            return gap, support.values
    both = np.concatenate([support.values, np.sort(values)])
    order = np.argsort(both, kind="stable")
    points = both[order]
    del both
    is_current = order >= len(support.values)
    del order
    # running counts, in float64 (exact for integers below 2**53), turned into fractions
    gap = np.zeros(len(points))
    gap[~is_current] = support.counts  # the reference's values come in their sorted order
    np.cumsum(gap, out=gap)
    gap /= support.total
    current = np.cumsum(is_current, dtype=np.float64)
    current /= len(values)
    gap -= current
    return gap, points


def _at_ties(gap: np.ndarray, points: np.ndarray) -> np.ndarray:
    """The gap at the last of each run of equal points: the distribution functions' values."""
    return gap[np.concatenate([points[1:] != points[:-1], [True]])]


def _sketch_gaps(ref: ColumnProfile, cur: Current) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """F_ref - F_cur at an old profile's sketch's distinct points, from the right and from the
    left."""
    assert cur.values is not None
    points, probs = ref.grid()
    last = np.concatenate([points[1:] != points[:-1], [True]])
    first = np.concatenate([[True], points[1:] != points[:-1]])
    grid, ref_right = points[last], probs[last]
    ref_left = probs[first]  # a sketch is continuous between points; ties are atoms
    m = len(cur.values)
    slot = np.searchsorted(grid, cur.values, side="left")  # values in (grid[k-1], grid[k]]
    at_or_below = np.cumsum(np.bincount(slot, minlength=len(grid) + 1))[: len(grid)]
    inside = slot < len(grid)
    equal = np.bincount(slot[inside][cur.values[inside] == grid[slot[inside]]], minlength=len(grid))
    right = ref_right - at_or_below / m
    left = ref_left - (at_or_below - equal) / m
    return right, left, grid


def _chisquare(ref: ColumnProfile, cur: Current, as_categories: bool) -> float:
    from scipy.special import chdtrc  # what stats.chi2.sf computes, without scipy.stats

    r, c = _aligned(ref.distinct_counts() or {}, cur.distinct_counts())
    expected = r * (c.sum() / r.sum())
    if np.any((expected == 0) & (c > 0)):
        return 0.0  # a category the reference never had: as far from it as can be
    keep = expected > 0
    statistic = float((((c - expected) ** 2)[keep] / expected[keep]).sum())
    return float(chdtrc(max(int(keep.sum()) - 1, 1), statistic))


def _z(ref: ColumnProfile, cur: Current, as_categories: bool) -> float:
    ref_counts, cur_counts = ref.distinct_counts() or {}, cur.distinct_counts()
    keys = sorted({*ref_counts, *cur_counts}, key=str)
    if len(keys) == 1:
        return 1.0
    n1, n2 = sum(ref_counts.values()), sum(cur_counts.values())
    p1 = 1 - ref_counts.get(keys[0], 0) / n1
    p2 = 1 - cur_counts.get(keys[0], 0) / n2
    pooled = (p1 * n1 + p2 * n2) / (n1 + n2)
    z = (p1 - p2) / np.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    return float(2 * (1 - ndtr(abs(float(z)))))  # as stats.norm.cdf, without scipy


def _jensenshannon(ref: ColumnProfile, cur: Current, as_categories: bool) -> float:
    """SciPy's ``spatial.distance.jensenshannon``, step for step, without importing
    ``scipy.spatial`` (with ``scipy.sparse`` and ``scipy.linalg``)."""
    from scipy.special import rel_entr

    r, c = _binned(ref, cur, as_categories)
    r, c = r / np.sum(r, axis=0, keepdims=True), c / np.sum(c, axis=0, keepdims=True)
    middle = (r + c) / 2.0
    divergence = np.sum(rel_entr(r, middle), axis=0) + np.sum(rel_entr(c, middle), axis=0)
    return float(np.sqrt(divergence / 2.0))


def _psi(ref: ColumnProfile, cur: Current, as_categories: bool) -> float:
    r, c = _binned(ref, cur, as_categories)
    r, c = _fill_zeros(r), _fill_zeros(c)
    return float(np.sum((r - c) * np.log(r / c)))


STATTESTS: dict[str, StatTest] = {
    t.name: t
    for t in (
        StatTest("ks", ("numeric",), 0.05, True, _ks),
        StatTest("chisquare", ("categorical", "numeric"), 0.05, True, _chisquare),
        StatTest("z", ("categorical", "numeric"), 0.05, True, _z),
        StatTest("wasserstein", ("numeric",), 0.1, False, _wasserstein),
        StatTest("jensenshannon", ("categorical", "numeric"), 0.1, False, _jensenshannon),
        StatTest("psi", ("categorical", "numeric"), 0.1, False, _psi),
    )
}


def joint_distinct(ref: ColumnProfile, cur: Current, cap: int = 5) -> int:
    """How many distinct values the two samples hold together (exactly up to ``cap`` + 1)."""
    ref_counts = ref.distinct_counts()
    if ref_counts is None or len(ref_counts) > cap:
        return cap + 1
    return len({*ref_counts, *cur.distinct_counts()})


def default_test(ref: ColumnProfile, cur: Current) -> tuple[StatTest, bool]:
    """Evidently's choice for the column, and whether its values are tested as categories."""
    few = ref.kind == "categorical" or joint_distinct(ref, cur) <= 5
    if ref.count <= SMALL_REFERENCE:
        if not few:
            return STATTESTS["ks"], False
        name = "chisquare" if joint_distinct(ref, cur, cap=2) > 2 else "z"
        return STATTESTS[name], True
    if not few:
        return STATTESTS["wasserstein"], False
    return STATTESTS["jensenshannon"], True
