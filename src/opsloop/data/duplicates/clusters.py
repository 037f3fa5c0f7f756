"""Duplicate clusters: union-find over verified pairs, and which row of each cluster stays.

The union-find is vectorised: every edge hooks the larger of its two roots under the smaller,
then pointers are jumped until each row points at its root, repeated until no edge joins two
roots. Each round at least halves the distance to a root, so a handful of numpy passes settle
millions of edges. A cluster's root is its smallest row number.
"""

from __future__ import annotations

import numpy as np

from opsloop.errors import InvalidInput

__all__ = ["KEEP_POLICIES", "components", "keep_rows", "preference"]

KEEP_POLICIES = ("first", "longest", "best-scored")


def components(rows: int, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Each row's cluster root (its smallest member) given the edges ``left[i]-right[i]``."""
    parent = np.arange(rows, dtype=np.int64)
    left, right = left.astype(np.int64), right.astype(np.int64)
    while True:
        a, b = parent[left], parent[right]
        moving = a != b
        if not moving.any():
            return parent
        low, high = np.minimum(a[moving], b[moving]), np.maximum(a[moving], b[moving])
        np.minimum.at(parent, high, low)
        while True:  # pointer jumping: every row straight to its root
            jumped = parent[parent]
            if np.array_equal(jumped, parent):
                break
            parent = jumped


def preference(policy: str, lengths: np.ndarray, scores: np.ndarray | None) -> np.ndarray:
    """Each row's claim to be kept under ``policy``, higher first (ties go to the first row):
    none for ``first``, the text's length, or its score (a missing score ranks last)."""
    if policy not in KEEP_POLICIES:
        raise InvalidInput(f"keep must be one of {', '.join(KEEP_POLICIES)}, not {policy!r}")
    if policy == "first":
        return np.zeros(lengths.size)
    if policy == "longest":
        return lengths.astype(np.float64)
    if scores is None:
        raise InvalidInput("keep best-scored needs a score column (--score-column)")
    return np.where(np.isnan(scores), -np.inf, scores)


def keep_rows(
    roots: np.ndarray, policy: str, lengths: np.ndarray, scores: np.ndarray | None
) -> np.ndarray:
    """For each row, the row its cluster keeps: the first, the longest text, or the best
    score (ties and missing scores go to the first row)."""
    rank = preference(policy, lengths, scores)
    if policy == "first":
        return roots
    rows = np.arange(roots.size)
    # sort by cluster, then best rank first, then row: the first of each cluster wins
    order = np.lexsort((rows, -rank, roots))
    first = np.concatenate([[True], roots[order][1:] != roots[order][:-1]])
    winner = np.empty(roots.size, dtype=np.int64)
    winner[roots[order][first]] = order[first]
    return winner[roots]
