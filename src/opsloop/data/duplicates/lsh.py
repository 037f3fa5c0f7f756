"""LSH banding: which rows to compare, chosen from the similarity threshold.

A signature of ``b * r`` values is cut into ``b`` bands of ``r``; two rows become candidates
when they agree on a whole band, which happens with probability ``1 - (1 - s^r)^b`` for rows of
Jaccard similarity ``s`` (the S-curve). ``(b, r)`` is chosen to minimise the weighted area of
the curve's mistakes: above it left of the threshold (false positives, pairs compared for
nothing) plus below it right of the threshold (false negatives, duplicates never compared).
The integrals are taken numerically for every ``(b, r)`` at once (Simpson's rule on a fixed
grid), the way datasketch's ``_optimal_param`` does it one pair at a time with scipy.

Deduplicating a table buckets rows by a 64-bit hash of each band's values, one band at a
time (:func:`self_pairs`). The index another table is queried with (overlap) keeps one key
per band and row: the hash's high 32 bits when the bands fit 64 bytes per row, else 16 (a
chance collision only adds a candidate, which verification then rejects).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

__all__ = ["BandIndex", "band_hashes", "optimal_bands", "self_pairs", "short_keys"]

INDEX_BYTES = 64  # per row, for the band keys
_GRID = np.linspace(0.0, 1.0, 2001)
_FOLD = np.uint64(0x9E3779B97F4A7C15)


def _simpson(values: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """Simpson's rule over the last axis (an odd number of evenly spaced points)."""
    h = (grid[-1] - grid[0]) / (grid.size - 1)
    weights = np.ones(grid.size)
    weights[1:-1:2], weights[2:-1:2] = 4, 2
    return np.asarray(values @ weights * h / 3)


@lru_cache(maxsize=64)
def optimal_bands(
    threshold: float, num_perm: int, fp_weight: float = 0.5, fn_weight: float = 0.5
) -> tuple[int, int]:
    """The ``(bands, rows_per_band)`` with ``bands * rows_per_band <= num_perm`` that minimise
    ``fp_weight * false positives + fn_weight * false negatives`` (see the module)."""
    pairs = np.array([(b, r) for b in range(1, num_perm + 1) for r in range(1, num_perm // b + 1)])
    b, r = pairs[:, :1].astype(float), pairs[:, 1:].astype(float)
    split = int(np.searchsorted(_GRID, threshold))
    split += (split % 2) == 1  # Simpson's rule needs an even number of intervals each side
    left, right = _GRID[: split + 1], _GRID[split:]
    fp = _simpson(1 - (1 - left[None, :] ** r) ** b, left) if left.size > 2 else 0.0
    fn = _simpson((1 - right[None, :] ** r) ** b, right) if right.size > 2 else 0.0
    best = int(np.argmin(fp_weight * fp + fn_weight * fn))
    return int(pairs[best, 0]), int(pairs[best, 1])


def band_hashes(
    signatures: np.ndarray, bands: int, rows_per_band: int, out: np.ndarray | None = None
) -> np.ndarray:
    """A 64-bit hash of each row's values in each band, (bands x rows), into ``out`` when
    given (a memory-mapped file past the row budget); read a band of rows at a time, so a
    memory-mapped ``signatures`` is read once."""
    rows = signatures.shape[0]
    out = np.empty((bands, rows), dtype=np.uint64) if out is None else out
    step = 1 << 16
    with np.errstate(over="ignore"):
        for lo in range(0, rows, step):
            part = np.asarray(signatures[lo : lo + step])
            for band in range(bands):
                acc = np.zeros(part.shape[0], dtype=np.uint64)
                for c in range(band * rows_per_band, (band + 1) * rows_per_band):
                    acc = (acc ^ part[:, c].astype(np.uint64)) * _FOLD
                acc ^= acc >> np.uint64(29)
                out[band, lo : lo + step] = acc
    return out


def self_pairs(hashes: np.ndarray) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Per band of :func:`band_hashes`, pairs of rows with equal hashes: each member of a
    bucket with the bucket's first and with its neighbour, so a bucket of ``m`` gives at most
    ``2m`` pairs (a thousand copies of one text cost a thousand checks, not half a million).
    The full 64 bits, not the index's short keys: a key shared by chance would split a
    bucket's true members apart."""
    for band in range(hashes.shape[0]):
        column = np.asarray(hashes[band])
        order = np.argsort(column, kind="stable")
        sorted_hashes = column[order]
        same = np.flatnonzero(sorted_hashes[1:] == sorted_hashes[:-1]) + 1
        if same.size == 0:
            continue
        new_bucket = np.concatenate([[True], sorted_hashes[1:] != sorted_hashes[:-1]])
        first = np.maximum.accumulate(np.where(new_bucket, np.arange(order.size), 0))
        yield order[same - 1], order[same]
        far = same[first[same] != same - 1]
        yield order[first[far]], order[far]


@dataclass(frozen=True)
class BandIndex:
    """Band keys of many rows, the high bits of :func:`band_hashes`, sorted band by band,
    with the rows they belong to: the index a table is queried with (overlap). The sorted
    keys are kept, not recomputed per query, so querying a block of rows at a time costs
    no pass over the index."""

    sorted_keys: np.ndarray  # (bands x rows): each band's keys, ascending
    order: np.ndarray  # (bands x rows): the row of each sorted key (ties: row order)
    rows_per_band: int

    @classmethod
    def build(cls, signatures: np.ndarray, bands: int, rows_per_band: int) -> BandIndex:
        """Index ``signatures`` (rows without shingles are left out by the caller)."""
        return cls.of_hashes(band_hashes(signatures, bands, rows_per_band), rows_per_band)

    @classmethod
    def of_hashes(
        cls, hashes: np.ndarray, rows_per_band: int, rows: np.ndarray | None = None
    ) -> BandIndex:
        """Index ``rows`` (default all) of :func:`band_hashes`' (bands x rows) output,
        a band at a time: no copy of the hashes is made, memory-mapped or not."""
        bands = hashes.shape[0]
        count = hashes.shape[1] if rows is None else len(rows)
        order = np.empty((bands, count), dtype=np.int64)
        sorted_keys = np.empty((bands, count), dtype=_key_type(bands))
        for band in range(bands):
            keys = _band_keys(hashes, band, rows)
            order[band] = np.argsort(keys, kind="stable")
            sorted_keys[band] = keys[order[band]]
        return cls(sorted_keys, order, rows_per_band)

    @property
    def rows(self) -> int:
        return self.order.shape[1]

    @property
    def bytes_per_row(self) -> int:
        return self.sorted_keys.shape[0] * self.sorted_keys.itemsize

    @property
    def key_bits(self) -> int:
        return 8 * self.sorted_keys.itemsize

    def query(self, keys: np.ndarray) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
        """Per band with a hit, ``(band, query rows, indexed rows)``: the pairs sharing that
        band's key, for query keys built with the same signature width (:meth:`keys_for`),
        by query row, then indexed row."""
        for band in range(self.sorted_keys.shape[0]):
            sorted_keys = self.sorted_keys[band]
            lo = np.searchsorted(sorted_keys, keys[:, band], side="left")
            hi = np.searchsorted(sorted_keys, keys[:, band], side="right")
            counts = hi - lo
            hit = np.flatnonzero(counts)
            if hit.size == 0:
                continue
            queries = np.repeat(hit, counts[hit])
            starts = np.repeat(lo[hit] - np.cumsum(counts[hit]) + counts[hit], counts[hit])
            yield band, queries, self.order[band][np.arange(queries.size) + starts]

    def candidates(self, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(query rows, indexed rows, bands)``: every pair :meth:`query` finds, once, at
        the first band that finds it, by query row, then indexed row (a near copy shares
        most bands with its source: its pair is verified once, not once a band)."""
        parts = [(q, t, np.full(q.size, band)) for band, q, t in self.query(keys)]
        if not parts:
            return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int64)
        queries, rows, bands = (np.concatenate(column) for column in zip(*parts, strict=True))
        # bands come in order: a pair's first occurrence is at its first band
        _, first = np.unique(queries * max(self.rows, 1) + rows, return_index=True)
        return queries[first], rows[first], bands[first]

    def keys_for(self, hashes: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
        """The band keys of ``rows`` (default all) of other rows' :func:`band_hashes`, to
        :meth:`query` this index with."""
        return short_keys(hashes, rows)


def _key_type(bands: int) -> type[np.unsignedinteger]:
    """The index keys' type: 32 bits when ``bands`` of them fit ``INDEX_BYTES``, else 16."""
    return np.uint32 if 4 * bands <= INDEX_BYTES else np.uint16


def _band_keys(hashes: np.ndarray, band: int, rows: np.ndarray | None) -> np.ndarray:
    """One band's index keys of ``rows`` (default all): the high bits of its hashes."""
    dtype = _key_type(hashes.shape[0])
    column = np.asarray(hashes[band])
    picked = column if rows is None else column[rows]
    return (picked >> np.uint64(64 - 8 * np.dtype(dtype).itemsize)).astype(dtype)


def short_keys(hashes: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
    """(rows x bands) index keys: the high bits of each band hash (see the module)."""
    bands = hashes.shape[0]
    count = hashes.shape[1] if rows is None else len(rows)
    keys = np.empty((count, bands), dtype=_key_type(bands))
    for band in range(bands):
        keys[:, band] = _band_keys(hashes, band, rows)
    return keys
