"""Exact and near-duplicate clusters of a table split into partitions, on Ray: for data
that does not fit one machine (``opsloop data dedup --executor ray``).

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
concatenated rows (a test checks it on a local Ray instance). Ray is handed in
(:func:`connect` gives one).
"""

from __future__ import annotations

import importlib.util
import math
import os
import socket
import sys
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
from opsloop.data.duplicates.engine import cluster_report
from opsloop.data.duplicates.engine import text_lengths
from opsloop.data.duplicates.sketch import Sketch
from opsloop.data.duplicates.sketch import Spill
from opsloop.errors import InvalidInput
from opsloop.errors import UpstreamFailed
from opsloop.kernel.ray_cluster import connect_ray

__all__ = ["PARTITION_ROWS", "clusters_on_ray", "connect", "deduplicate_on_ray", "partitions_for"]

PARTITION_ROWS = 200_000  # rows a partition holds at most by default: its sketches ~260 MiB
PROBE_SECONDS = 5.0


def connect(needs: str) -> Any:
    """The ``ray`` module, connected (:func:`opsloop.kernel.ray_cluster.connect_ray`: the
    cluster at ``RAY_ADDRESS``, else a local instance). ``ray.init`` waits minutes on an
    address nobody answers, so a ``host:port`` one is tried first: ``UpstreamFailed`` in
    seconds, with the address, when it does not answer."""
    running = "ray" in sys.modules and sys.modules["ray"].is_initialized()
    address = os.environ.get("RAY_ADDRESS") or ""
    if not running and address and importlib.util.find_spec("ray") is not None:
        host, _, port = address.split("://")[-1].rpartition(":")
        if host and port.isdigit():
            try:
                socket.create_connection((host, int(port)), timeout=PROBE_SECONDS).close()
            except OSError as exc:
                reason = exc.strerror or type(exc).__name__
                raise UpstreamFailed(
                    f"Ray at {address} (RAY_ADDRESS) cannot be reached: {reason}"
                ) from None
    return connect_ray(needs)


def partitions_for(ray: Any, rows: int) -> int:
    """Default partitions: one per cluster CPU, more when that leaves over
    ``PARTITION_ROWS`` rows in one; never more than the rows."""
    cpus = max(1, int(ray.cluster_resources().get("CPU", 1)))
    return max(1, min(rows, max(cpus, math.ceil(rows / PARTITION_ROWS))))


def _map(
    texts: Sequence[str | None], near: NearParams, offset: int, shards: int, exact: bool
) -> list[Any]:
    """The partition's sketch, its exact keys and empty rows, then its ``(band, hash, row)``
    triples for each shard (the exact key as band ``bands`` when ``exact``)."""
    with Spill(0) as spill:  # a partition is sized to fit its worker
        sketch = Sketch.build(texts, spill, near, keep_signatures=False)
    assert sketch.bands is not None
    bands = sketch.bands.shape[0]
    rows = sketch.filled
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


def _pairs(bands: int, *parts: np.ndarray) -> np.ndarray:
    """Candidate pairs ``(left, right, is_exact)``, left < right, of one shard's buckets."""
    if not parts or sum(p.size for p in parts) == 0:
        return np.zeros((3, 0), dtype=np.int64)
    band = np.concatenate([p.f0 for p in parts])
    value = np.concatenate([p.f1 for p in parts])
    row = np.concatenate([p.f2 for p in parts])
    order = np.lexsort((row, value, band))
    band, value, row = band[order], value[order], row[order]
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
    offsets = np.concatenate([[0], np.cumsum([len(p) for p in partitions])]).astype(np.int64)
    rows = int(offsets[-1])
    mapper = ray.remote(num_returns=shards + 2)(_map)
    mapped = [
        mapper.remote(list(p), near, int(offsets[i]), shards, exact)
        for i, p in enumerate(partitions)
    ]
    reducer = ray.remote(_pairs)
    shuffled = [reducer.remote(bands, *[m[2 + s] for m in mapped]) for s in range(shards)]
    marks = ray.get([m[1] for m in mapped])
    keys = np.concatenate([k for k, _ in marks]) if marks else np.zeros(0, "S16")
    empty = np.concatenate([e for _, e in marks]) if marks else np.zeros(0, bool)
    found = ray.get(shuffled)
    pairs = np.unique(np.concatenate(found, axis=1), axis=1) if found else np.zeros((3, 0), int)
    whole = pairs[2] == 1
    left, right = pairs[0, whole], pairs[1, whole]
    same = keys[left] == keys[right]
    copies = np.zeros(rows, dtype=bool)
    copies[right[same]] = True  # its first copy stands for it in the near search
    near_left, near_right = pairs[0, ~whole], pairs[1, ~whole]
    searched = ~copies[near_left] & ~copies[near_right]
    near_left, near_right = near_left[searched], near_right[searched]
    sketches = _Sketches(ray, [m[0] for m in mapped], offsets)
    similar = sketches.jaccard(near_left, near_right) >= near.threshold
    edges = (
        np.concatenate([left[same], near_left[similar]]),
        np.concatenate([right[same], near_right[similar]]),
    )
    roots = components(rows, *edges)
    return RayClusters(roots, keys, empty, int(near_left.size), sketches.jaccard)


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
    if not 1 <= partitions <= max(1, len(texts)):
        raise InvalidInput(f"partitions must be between 1 and the rows, not {partitions}")
    lengths = text_lengths(texts)
    preference(keep, lengths, scores)  # refuses a bad policy before any work
    near = near.check()
    bounds = np.linspace(0, len(texts), partitions + 1).astype(np.int64).tolist()
    parts = [texts[lo:hi] for lo, hi in pairwise(bounds)]
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
