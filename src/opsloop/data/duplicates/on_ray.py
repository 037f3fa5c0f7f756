"""Exact and near-duplicate clusters of a table split into partitions, on Ray: for data
that does not fit one machine (``opsloop data dedup --executor ray``); and the overlap of
an eval table with a train table the same way (``opsloop data overlap --executor ray``).

1. Map, a task per partition: its rows are sketched (:class:`.sketch.Sketch`: exact keys,
   shingles, signatures; kept in Ray's object store) and every non-empty row emits, per band,
   ``(band, 64-bit band hash, global row)``, plus its exact key as one more band; the
   triples are split by hash into ``shards``. The partition's exact keys and empty rows
   (17 bytes a row) go back to the driver.
2. Shuffle by key, a task per shard: it gathers its triples from every partition, sorts them,
   and pairs rows sharing a bucket (each with the bucket's first and its neighbour, as
   :func:`.lsh.self_pairs` does).
3. Verify: exact pairs on the driver (equal keys); a row equal to an earlier one is left out
   of the near search, as on one machine (its first copy stands for it); near pairs by a task
   per pair of partitions, reading the two partitions' sketches from the object store
   (:meth:`.sketch.Sketch.similarity`).
4. Merge: the driver joins the verified pairs into clusters by union-find
   (:func:`.clusters.components`), picks each cluster's kept row and writes the report
   (:func:`.engine.cluster_report`; the similarities it lists are more tasks per pair of
   partitions).

Rows are numbered across partitions in order, and the candidate pairs are those one machine
finds, so the kept rows and the report are those of :func:`.engine.deduplicate` on the
concatenated rows (a test checks it on a local Ray instance).

Overlap (:func:`overlap_on_ray`) reuses the map with the train rows numbered first, then the
eval rows; its near bands are the short keys overlap's index buckets by on one machine
(:func:`.lsh.short_keys`), so the candidates are the same. Its shuffle joins the two sides
instead of pairing rows within a side: each eval row with the first train row of its exact
key, and with every train row of each of its band buckets (:func:`_joins`); verification and
the choice of each eval row's match follow :func:`.engine.contamination`, so the report is
its report. Ray is handed in (:func:`connect` gives one).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

import numpy as np

from opsloop.data.duplicates.clusters import components
from opsloop.data.duplicates.clusters import keep_rows
from opsloop.data.duplicates.clusters import preference
from opsloop.data.duplicates.engine import Jaccard
from opsloop.data.duplicates.engine import NearParams
from opsloop.data.duplicates.engine import best_candidates
from opsloop.data.duplicates.engine import cluster_report
from opsloop.data.duplicates.engine import overlap_report
from opsloop.data.duplicates.engine import text_lengths
from opsloop.data.duplicates.lsh import short_keys
from opsloop.data.duplicates.sketch import Sketch
from opsloop.data.duplicates.sketch import Spill
from opsloop.errors import InvalidInput

__all__ = [
    "PARTITION_ROWS",
    "clusters_on_ray",
    "deduplicate_on_ray",
    "overlap_on_ray",
    "partitions_for",
]

PARTITION_ROWS = 200_000  # rows a partition holds at most by default: its sketches ~260 MiB


def partitions_for(ray: Any, rows: int) -> int:
    """Default partitions: one per cluster CPU, more when that leaves over
    ``PARTITION_ROWS`` rows in one; never more than the rows."""
    cpus = max(1, int(ray.cluster_resources().get("CPU", 1)))
    return max(1, min(rows, max(cpus, math.ceil(rows / PARTITION_ROWS))))


def _map(
    texts: Sequence[str | None],
    near: NearParams,
    offset: int,
    shards: int,
    exact: bool,
    short: bool = False,
) -> list[Any]:
    """The partition's sketch, its exact keys and empty rows, then its ``(band, hash, row)``
    triples for each shard (the exact key as band ``bands`` when ``exact``). ``short``: the
    band hashes cut to the keys overlap's index buckets rows by (:func:`.lsh.short_keys`),
    so the candidates are the ones it finds."""
    with Spill(0) as spill:  # a partition is sized to fit its worker
        sketch = Sketch.build(texts, spill, near, keep_signatures=False)
    assert sketch.bands is not None
    bands = sketch.bands.shape[0]
    rows = sketch.filled
    if short:
        value = short_keys(sketch.bands, rows).T.ravel().astype(np.uint64)
    else:
        value = sketch.bands[:, rows].ravel()
    if exact:
        first_half = np.frombuffer(sketch.keys[rows].tobytes(), dtype="<u8")[::2]
        value = np.concatenate([value, first_half])
    count = bands + 1 if exact else bands
    band = np.repeat(np.arange(count, dtype=np.int64), rows.size)
    row = np.tile(rows + offset, count)
    shard = (value % np.uint64(shards)).astype(np.int64)
    return [sketch, (sketch.keys, sketch.empty)] + [
        np.rec.fromarrays([band[shard == s], value[shard == s], row[shard == s]])
        for s in range(shards)
    ]


def _buckets(parts: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A shard's ``(band, hash, row)`` triples from every partition, sorted: a bucket's rows
    side by side, in row order."""
    band = np.concatenate([p.f0 for p in parts])
    value = np.concatenate([p.f1 for p in parts])
    row = np.concatenate([p.f2 for p in parts])
    order = np.lexsort((row, value, band))
    return band[order], value[order], row[order]


def _pairs(bands: int, *parts: np.ndarray) -> np.ndarray:
    """Candidate pairs ``(left, right, is_exact)``, left < right, of one shard's buckets."""
    if not parts or sum(p.size for p in parts) == 0:
        return np.zeros((3, 0), dtype=np.int64)
    band, value, row = _buckets(parts)
    same_bucket = (band[1:] == band[:-1]) & (value[1:] == value[:-1])
    same = np.flatnonzero(same_bucket) + 1
    new_bucket = np.concatenate([[True], ~same_bucket])
    first = np.maximum.accumulate(np.where(new_bucket, np.arange(row.size), 0))
    left = np.concatenate([row[same - 1], row[first[same]]])
    right = np.concatenate([row[same], row[same]])
    exact = np.concatenate([band[same], band[same]]) == bands
    keep = left != right
    found = np.unique(np.stack([left[keep], right[keep], exact[keep].astype(np.int64)]), axis=1)
    return np.asarray(found)


def _similarity(left: Sketch, right: Sketch, rows: np.ndarray, others: np.ndarray) -> np.ndarray:
    """The Jaccard similarity of ``rows`` of ``left`` and ``others`` of ``right``."""
    return left.similarity(rows, right, others)


@dataclass(frozen=True)
class _Sketches:
    """The partitions' sketches in Ray's object store, rows numbered across them."""

    ray: Any
    refs: list[Any]
    offsets: np.ndarray

    def jaccard(self, rows: np.ndarray, others: np.ndarray) -> np.ndarray:
        """The similarity of each ``rows[i]`` and ``others[i]`` (global row numbers), a task
        per pair of partitions."""
        where = np.searchsorted(self.offsets, rows, side="right") - 1
        other_where = np.searchsorted(self.offsets, others, side="right") - 1
        task = self.ray.remote(_similarity)
        groups, pending = [], []
        for pa, pb in sorted(set(zip(where.tolist(), other_where.tolist(), strict=True))):
            group = np.flatnonzero((where == pa) & (other_where == pb))
            local = rows[group] - self.offsets[pa], others[group] - self.offsets[pb]
            pending.append(task.remote(self.refs[pa], self.refs[pb], *local))
            groups.append(group)
        out = np.zeros(rows.size)
        for group, similarity in zip(groups, self.ray.get(pending), strict=True):
            out[group] = similarity
        return out


@dataclass(frozen=True)
class RayClusters:
    """What :func:`clusters_on_ray` found: each row's cluster root (its smallest row), the
    exact keys and empty rows, the near candidates checked, and the similarity of row pairs
    (tasks reading the sketches kept in the object store)."""

    roots: np.ndarray
    keys: np.ndarray
    empty: np.ndarray
    checked: int
    jaccard: Jaccard


@dataclass(frozen=True)
class _Mapped:
    """The map step done (:func:`_map` on every partition): the sketches in the object
    store, each shard's triples (a ref per partition), every row's exact key and emptiness."""

    sketches: _Sketches
    shards: list[list[Any]]
    keys: np.ndarray
    empty: np.ndarray


def _map_partitions(
    ray: Any,
    partitions: Sequence[Sequence[str | None]],
    near: NearParams,
    shards: int,
    exact: bool,
    short: bool = False,
) -> _Mapped:
    """A :func:`_map` task per partition, rows numbered across them in order."""
    offsets = np.concatenate([[0], np.cumsum([len(p) for p in partitions])]).astype(np.int64)
    mapper = ray.remote(num_returns=shards + 2)(_map)
    mapped = [
        mapper.remote(list(p), near, int(offsets[i]), shards, exact, short)
        for i, p in enumerate(partitions)
    ]
    marks = ray.get([m[1] for m in mapped])
    return _Mapped(
        _Sketches(ray, [m[0] for m in mapped], offsets),
        [[m[2 + s] for m in mapped] for s in range(shards)],
        np.concatenate([k for k, _ in marks]) if marks else np.zeros(0, "S16"),
        np.concatenate([e for _, e in marks]) if marks else np.zeros(0, bool),
    )


def clusters_on_ray(
    ray: Any,
    partitions: Sequence[Sequence[str | None]],
    near: NearParams,
    shards: int = 4,
    exact: bool = True,
) -> RayClusters:
    """Exact (when ``exact``) and near-duplicate clusters of the rows of ``partitions``,
    numbered across them in order, computed by Ray tasks (see the module)."""
    near = near.check()
    bands = near.bands()[0]
    mapped = _map_partitions(ray, partitions, near, shards, exact)
    keys, empty = mapped.keys, mapped.empty
    rows = keys.size
    reducer = ray.remote(_pairs)
    found = ray.get([reducer.remote(bands, *refs) for refs in mapped.shards])
    pairs = np.unique(np.concatenate(found, axis=1), axis=1) if found else np.zeros((3, 0), int)
    whole = pairs[2] == 1
    left, right = pairs[0, whole], pairs[1, whole]
    same = keys[left] == keys[right]
    copies = np.zeros(rows, dtype=bool)
    copies[right[same]] = True  # its first copy stands for it in the near search
    near_left, near_right = pairs[0, ~whole], pairs[1, ~whole]
    searched = ~copies[near_left] & ~copies[near_right]
    near_left, near_right = near_left[searched], near_right[searched]
    sketches = mapped.sketches
    similar = sketches.jaccard(near_left, near_right) >= near.threshold
    edges = (
        np.concatenate([left[same], near_left[similar]]),
        np.concatenate([right[same], near_right[similar]]),
    )
    roots = components(rows, *edges)
    return RayClusters(roots, keys, empty, int(near_left.size), sketches.jaccard)


def _bounds(rows: int, partitions: int) -> list[tuple[int, int]]:
    """``rows`` cut into ``partitions`` contiguous parts of (nearly) equal size."""
    if not 1 <= partitions <= max(1, rows):
        raise InvalidInput(f"partitions must be between 1 and the rows, not {partitions}")
    return list(pairwise(np.linspace(0, rows, partitions + 1).astype(np.int64).tolist()))


def deduplicate_on_ray(
    ray: Any,
    texts: Sequence[str | None],
    *,
    partitions: int,
    exact: bool = True,
    near: NearParams | None = NearParams(),
    keep: str = "first",
    scores: np.ndarray | None = None,
) -> tuple[np.ndarray, dict[str, Any]]:
    """:func:`.engine.deduplicate` (without its semantic method) on Ray: ``texts`` cut into
    ``partitions`` contiguous parts; the same kept rows and report, plus ``partitions``."""
    if near is None:
        raise InvalidInput("on Ray, dedup finds near duplicates: ask for near (--near)")
    bounds = _bounds(len(texts), partitions)
    lengths = text_lengths(texts)
    preference(keep, lengths, scores)  # refuses a bad policy before any work
    near = near.check()
    parts = [texts[lo:hi] for lo, hi in bounds]
    found = clusters_on_ray(ray, parts, near, shards=partitions, exact=exact)
    winner = keep_rows(found.roots, keep, lengths, scores)
    keep_mask = winner == np.arange(len(texts))
    report = cluster_report(texts, found.keys, found.empty, winner, keep_mask, found.jaccard, near)
    report.update(
        methods=["exact", "near"] if exact else ["near"],
        keep=keep,
        near=near.describe(),
        semantic=None,
        candidates_checked=found.checked,
        spilled=False,  # each partition is held whole by its worker
        partitions=partitions,
    )
    return keep_mask, report


def _first_band(found: np.ndarray, bands: int) -> np.ndarray:
    """``(eval row, train row, band)`` candidates, each once: an exact one (band ``bands``)
    as it is, a near pair at the first band that found it."""
    whole = found[2] == bands
    near = found[:, ~whole]
    near = near[:, np.lexsort((near[2], near[1], near[0]))]
    first = np.ones(near.shape[1], dtype=bool)
    first[1:] = (near[0, 1:] != near[0, :-1]) | (near[1, 1:] != near[1, :-1])
    return np.concatenate([found[:, whole], near[:, first]], axis=1)


def _joins(bands: int, train_rows: int, *parts: np.ndarray) -> np.ndarray:
    """Candidate ``(eval row, train row, band)`` of one shard's buckets, train rows numbered
    first: an eval row with the first train row sharing its exact key (band ``bands``), and
    with every train row sharing one of its band keys, as :meth:`.lsh.BandIndex.query`
    pairs them on one machine."""
    if not parts or sum(p.size for p in parts) == 0:
        return np.zeros((3, 0), dtype=np.int64)
    band, value, row = _buckets(parts)
    new_bucket = np.ones(row.size, dtype=bool)
    new_bucket[1:] = (band[1:] != band[:-1]) | (value[1:] != value[:-1])
    starts = np.flatnonzero(new_bucket)
    bucket = np.cumsum(new_bucket) - 1
    trains = np.add.reduceat((row < train_rows).astype(np.int64), starts)[bucket]
    # a bucket's train rows come first (smaller numbers): an eval row takes its bucket's
    # first ``count`` rows
    count = np.where(band == bands, np.minimum(trains, 1), trains)
    count[row < train_rows] = 0
    evals = np.repeat(row, count)
    step = np.arange(evals.size) - np.repeat(np.cumsum(count) - count, count)
    train = row[np.repeat(starts[bucket], count) + step]
    return _first_band(np.stack([evals, train, np.repeat(band, count)]), bands)


def overlap_on_ray(
    ray: Any,
    train: Sequence[str | None],
    evaluation: Sequence[str | None],
    *,
    partitions: int,
    exact: bool = True,
    near: NearParams | None = NearParams(),
    samples: int = 20,
) -> dict[str, Any]:
    """:func:`.engine.contamination` on Ray, the same report plus ``partitions``: the train
    rows then the eval rows, cut into ``partitions`` contiguous parts, are sketched per part
    (:func:`_map`, near bands as the overlap index's short keys); a task per shard joins the
    two sides' buckets (:func:`_joins`); the driver checks exact keys whole, has the near
    candidates verified by tasks per pair of parts, and keeps each eval row's best match as
    one machine does: exact first, else the most similar, the earlier band, the first train
    row."""
    if near is None:
        raise InvalidInput("on Ray, overlap finds near duplicates: ask for near (near=True)")
    first = len(train)
    bounds = _bounds(first + len(evaluation), partitions)
    near = near.check()
    bands = near.bands()[0]
    parts = []
    for lo, hi in bounds:
        part = list(train[lo:hi]) if lo < first else []
        if hi > first:
            part += evaluation[max(lo - first, 0) : hi - first]
        parts.append(part)
    mapped = _map_partitions(ray, parts, near, partitions, exact, short=True)
    joiner = ray.remote(_joins)
    found = ray.get([joiner.remote(bands, first, *refs) for refs in mapped.shards])
    pairs = _first_band(np.concatenate(found, axis=1), bands)
    match = np.full(len(evaluation), -1, dtype=np.int64)
    best = np.zeros(len(evaluation))
    method = np.array([""] * len(evaluation), dtype=object)
    whole = pairs[2] == bands
    evals, trains = pairs[0, whole], pairs[1, whole]
    same = mapped.keys[evals] == mapped.keys[trains]  # the shuffle keyed 8 of 16 bytes
    hit = evals[same] - first
    match[hit], best[hit], method[hit] = trains[same], 1.0, "exact"
    evals, trains, band = pairs[:, ~whole]
    searched = method[evals - first] != "exact"
    evals, trains, band = evals[searched], trains[searched], band[searched]
    similarity = mapped.sketches.jaccard(evals, trains)
    best_of = best_candidates(evals, trains, band, similarity, near.threshold)
    hit = evals[best_of] - first
    match[hit], best[hit], method[hit] = trains[best_of], similarity[best_of], "near"
    report = overlap_report(
        first, evaluation, mapped.empty[first:], (match, best, method), exact, near, samples
    )
    report["partitions"] = partitions
    return report
