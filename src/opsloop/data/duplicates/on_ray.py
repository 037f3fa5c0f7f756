"""Exact and near-duplicate clusters of a table split into partitions, on Ray: for data
that does not fit one machine.

1. Map, a task per partition: its rows are sketched (:class:`.sketch.Sketch`: exact keys,
   shingles, signatures; kept in Ray's object store) and every non-empty row emits, per band,
   ``(band, 64-bit band hash, global row)``, plus its exact key as one more band; the
   triples are split by hash into ``shards``.
2. Shuffle by key, a task per shard: it gathers its triples from every partition, sorts them,
   and pairs rows sharing a bucket (each with the bucket's first and its neighbour, as
   :func:`.lsh.self_pairs` does).
3. Verify, a task per pair of partitions: exact-key pairs must have equal keys, near pairs
   the Jaccard similarity ``verify`` asks for (:meth:`.sketch.Sketch.similarity`), reading
   the two partitions' sketches from the object store.
4. Merge: the driver joins the verified pairs into clusters by union-find
   (:func:`.clusters.components`).

Rows are numbered across partitions in order, so the clusters are those of one machine's
:func:`.engine.deduplicate` on the concatenated rows (a test checks it on a local Ray
instance), but for one difference: on one machine an exact copy is left out of the near
search, here it is searched too (its signature is its first copy's, so it only adds checks,
which can join a cluster a chain of failed checks split on one machine). Ray is handed in
(``opsloop.kernel.ray_cluster.connect_ray`` gives one).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from opsloop.data.duplicates.clusters import components
from opsloop.data.duplicates.engine import NearParams
from opsloop.data.duplicates.lsh import band_hashes
from opsloop.data.duplicates.sketch import Sketch
from opsloop.data.duplicates.sketch import Spill

__all__ = ["clusters_on_ray"]


def _map(texts: Sequence[str | None], near: NearParams, offset: int, shards: int) -> list[Any]:
    """The partition's sketch, then its ``(band, hash, row)`` triples for each shard."""
    with Spill(0) as spill:  # a partition is sized to fit its worker
        sketch = Sketch.build(texts, spill, near)
    assert sketch.signatures is not None
    bands, per_band = near.bands()
    rows = sketch.filled
    hashes = band_hashes(sketch.signatures[rows], bands, per_band)
    exact = np.frombuffer(sketch.keys[rows].tobytes(), dtype="<u8")[::2]  # first 8 bytes
    value = np.concatenate([hashes.ravel(), exact])
    band = np.repeat(np.arange(bands + 1, dtype=np.int64), rows.size)
    row = np.tile(rows + offset, bands + 1)
    shard = (value % np.uint64(shards)).astype(np.int64)
    return [sketch] + [
        np.rec.fromarrays([band[shard == s], value[shard == s], row[shard == s]])
        for s in range(shards)
    ]


def _pairs(bands: int, *parts: np.ndarray) -> np.ndarray:
    """Candidate pairs ``(left, right, is_exact)`` of one shard's buckets."""
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


def _verify(near: NearParams, left: Sketch, right: Sketch, pairs: np.ndarray) -> np.ndarray:
    """The verified ones of ``pairs`` (rows local to ``left`` and ``right``, is_exact)."""
    a, b, exact = pairs
    ok = np.zeros(a.size, dtype=bool)
    whole = exact == 1
    ok[whole] = left.keys[a[whole]] == right.keys[b[whole]]
    if (~whole).any():
        ok[~whole] = left.similarity(a[~whole], right, b[~whole]) >= near.threshold
    return ok


def clusters_on_ray(
    ray: Any,
    partitions: Sequence[Sequence[str | None]],
    near: NearParams,
    shards: int = 4,
) -> np.ndarray:
    """Each row's cluster root (its cluster's smallest row, rows numbered across
    ``partitions`` in order) by exact and near duplicates, computed by Ray tasks (see the
    module)."""
    near = near.check()
    bands = near.bands()[0]
    offsets = np.concatenate([[0], np.cumsum([len(p) for p in partitions])]).astype(np.int64)
    mapper = ray.remote(num_returns=shards + 1)(_map)
    mapped = [
        mapper.remote(list(p), near, int(offsets[i]), shards) for i, p in enumerate(partitions)
    ]
    sketches = [m[0] for m in mapped]
    reducer = ray.remote(_pairs)
    shuffled = [reducer.remote(bands, *[m[1 + s] for m in mapped]) for s in range(shards)]
    pairs = np.unique(np.concatenate(ray.get(shuffled), axis=1), axis=1)
    left_part = np.searchsorted(offsets, pairs[0], side="right") - 1
    right_part = np.searchsorted(offsets, pairs[1], side="right") - 1
    verifier = ray.remote(_verify)
    checks, groups = [], []
    for pa, pb in sorted(set(zip(left_part.tolist(), right_part.tolist(), strict=True))):
        group = np.flatnonzero((left_part == pa) & (right_part == pb))
        local = np.stack(
            [pairs[0, group] - offsets[pa], pairs[1, group] - offsets[pb], pairs[2, group]]
        )
        checks.append(verifier.remote(near, sketches[pa], sketches[pb], local))
        groups.append(group)
    verified = np.zeros(pairs.shape[1], dtype=bool)
    for group, ok in zip(groups, ray.get(checks), strict=True):
        verified[group] = ok
    return components(int(offsets[-1]), pairs[0, verified], pairs[1, verified])
