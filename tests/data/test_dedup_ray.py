"""Dedup on Ray: a table split into partitions, sketched per partition, bands shuffled by key,
pairs verified, clusters merged, on a local Ray instance; the clusters must be the ones
deduplicating the whole table on one machine finds."""

from __future__ import annotations

import random

import numpy as np
import pytest

from opsloop.data.duplicates.engine import NearParams
from opsloop.data.duplicates.engine import deduplicate
from opsloop.data.duplicates.on_ray import clusters_on_ray


def _corpus() -> list[str | None]:
    """Sources with near copies (a few words replaced) and exact copies (other case), some
    copies far from their source so they land in another partition; unrelated rows; empties."""
    rng = random.Random(4)
    words = [f"w{i}" for i in range(5000)]
    texts: list[str | None] = []
    for _ in range(15):
        source = [rng.choice(words) for _ in range(60)]
        near = list(source)
        near[rng.randrange(60)] = "edited"
        texts += [" ".join(source), " ".join(near), " ".join(source).title()]
    texts += [" ".join(rng.choice(words) for _ in range(60)) for _ in range(30)]
    texts += ["", None]
    rng.shuffle(texts)
    return texts


def _groups(roots: np.ndarray) -> set[frozenset[int]]:
    members: dict[int, set[int]] = {}
    for row, root in enumerate(roots.tolist()):
        members.setdefault(root, set()).add(row)
    return {frozenset(m) for m in members.values() if len(m) > 1}


def test_clusters_on_ray_are_the_local_ones() -> None:
    ray = pytest.importorskip("ray")
    texts = _corpus()
    near = NearParams(threshold=0.6)
    _, report = deduplicate(texts, near=near)
    local = {frozenset([c["kept"], *(d["row"] for d in c["dropped"])]) for c in report["clusters"]}
    assert len(local) == 15
    ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False)
    try:
        parts = [texts[i : i + 23] for i in range(0, len(texts), 23)]
        roots = clusters_on_ray(ray, parts, near, shards=3)
    finally:
        ray.shutdown()
    assert _groups(roots) == local
