"""Finding duplicates among rows of text, and rows of one table duplicated in another.

Exact: rows whose normal forms (:mod:`.text`) are equal. Near: MinHash signatures
(:mod:`.minhash`), LSH bands chosen from the threshold (:mod:`.lsh`), each candidate pair
verified by the true Jaccard of its two shingle sets (``verify="exact"``, the default: on the
bench's ground truth, precision 1.000 and recall 0.987 where the MinHash estimate,
``verify="estimate"``, gives 0.977 and 0.943); an exact copy is left to its first copy, so a
text repeated a million times is one row to the near search, not a million. Semantic:
SemDeDup over sentence embeddings (:mod:`.semantic`).
The pairs every method finds are clustered by union-find (:mod:`.clusters`). Empty and
whitespace-only rows are never a duplicate of anything; they are counted.

Nothing here reads or writes a table: the inputs are sequences of texts read a chunk of rows
at a time (a list, a Ray partition: :mod:`.on_ray`, or a table's column converted from Arrow
a slice at a time: :class:`.rows.TextColumn`). What is kept per row is fixed-size: exact
keys, band hashes, shingle hashes (spilled to disk past ``row_budget`` rows: :mod:`.sketch`),
lengths, cluster roots; a report lists its clusters from arrays and makes dicts and previews
only for the rows it shows.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

import numpy as np

from opsloop.data.duplicates.clusters import components
from opsloop.data.duplicates.clusters import keep_rows
from opsloop.data.duplicates.clusters import preference
from opsloop.data.duplicates.lsh import BandIndex
from opsloop.data.duplicates.lsh import optimal_bands
from opsloop.data.duplicates.lsh import self_pairs
from opsloop.data.duplicates.ports import Embedder
from opsloop.data.duplicates.semantic import NO_EMBEDDER
from opsloop.data.duplicates.semantic import SemanticParams
from opsloop.data.duplicates.semantic import embed_rows
from opsloop.data.duplicates.semantic import semantic_duplicates
from opsloop.data.duplicates.sketch import CHUNK
from opsloop.data.duplicates.sketch import ROW_BUDGET
from opsloop.data.duplicates.sketch import JaccardBound
from opsloop.data.duplicates.sketch import Sketch
from opsloop.data.duplicates.sketch import Spill
from opsloop.errors import InvalidInput

__all__ = [
    "NearParams",
    "best_candidates",
    "cluster_report",
    "contamination",
    "deduplicate",
    "near_pairs",
    "overlap_report",
    "preview",
    "text_lengths",
]

VERIFY = ("estimate", "exact")
PREVIEW = 160  # characters of a row's text shown in a report
MAX_CLUSTERS = 1000  # clusters a report lists (all are counted)
MAX_DROPPED = 50  # dropped rows listed per cluster (all are counted)
CANDIDATES = 1 << 22  # overlap's candidate pairs gathered at a time, about
# the Jaccard similarity of pairs of rows (left rows, right rows), wherever their sketches are
Jaccard = Callable[[np.ndarray, np.ndarray], np.ndarray]
# Banding weighs a missed duplicate 4x a needless candidate: every candidate is verified, so a
# false positive costs one signature comparison, a false negative a duplicate left in the data.
FP_WEIGHT, FN_WEIGHT = 0.2, 0.8


@dataclass(frozen=True)
class NearParams:
    """How near-duplicates are found; ``check`` refuses values that make no sense."""

    threshold: float = 0.8
    ngram: int = 5
    num_perm: int = 128
    verify: str = "exact"
    seed: int = 1

    def check(self) -> NearParams:
        if not 0 < self.threshold <= 1:
            raise InvalidInput(f"threshold must be in (0, 1], not {self.threshold}")
        if not 1 <= self.ngram <= 64:
            raise InvalidInput(f"ngram must be between 1 and 64 words, not {self.ngram}")
        if not 2 <= self.num_perm <= 1024:
            raise InvalidInput(f"num_perm must be between 2 and 1024, not {self.num_perm}")
        if self.verify not in VERIFY:
            raise InvalidInput(f"verify must be one of {', '.join(VERIFY)}, not {self.verify!r}")
        return self

    def bands(self) -> tuple[int, int]:
        """``(bands, rows_per_band)`` for this threshold (see ``FP_WEIGHT``)."""
        return optimal_bands(self.threshold, self.num_perm, FP_WEIGHT, FN_WEIGHT)

    def describe(self) -> dict[str, Any]:
        bands, rows = self.bands()
        return {
            "threshold": self.threshold,
            "ngram": self.ngram,
            "num_perm": self.num_perm,
            "bands": bands,
            "rows_per_band": rows,
            "verify": self.verify,
        }


def preview(text: str | None) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= PREVIEW else text[: PREVIEW - 1] + "…"


def _exact_pairs(sketch: Sketch) -> tuple[np.ndarray, np.ndarray]:
    """(first row, later row) for every non-empty row whose normal form came earlier."""
    rows = sketch.filled
    if rows.size == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    _, first, inverse = np.unique(sketch.keys[rows], return_index=True, return_inverse=True)
    kept = rows[first][inverse.ravel()]
    later = kept != rows
    return kept[later], rows[later]


def near_pairs(sketch: Sketch, skip: np.ndarray | None = None) -> np.ndarray:
    """The candidate pairs of non-empty rows not in ``skip``, (2 x pairs) with the smaller
    row first, each once: rows that agree on a whole band. Pairs are merged into one sorted
    set every few million, so a popular text's bucket does not pile up copies of its pairs."""
    assert sketch.bands is not None
    rows = sketch.keys.size
    out = sketch.empty if skip is None else sketch.empty | skip
    hashes = sketch.bands
    found, batch, held = np.zeros(0, np.int64), [], 0
    for left, right in self_pairs(hashes):
        filled = ~out[left] & ~out[right]
        low, high = np.minimum(left, right)[filled], np.maximum(left, right)[filled]
        batch.append(low.astype(np.int64) * rows + high)
        held += low.size
        if held > 1 << 22:
            found, batch, held = np.unique(np.concatenate([found, *batch])), [], 0
    found = np.unique(np.concatenate([found, *batch]))
    return np.stack([found // rows, found % rows]) if rows else np.zeros((2, 0), np.int64)


def deduplicate(
    texts: Sequence[str | None],
    *,
    exact: bool = True,
    near: NearParams | None = NearParams(),
    semantic: SemanticParams | None = None,
    embedder: Embedder | None = None,
    keep: str = "first",
    scores: np.ndarray | None = None,
    on_rows: Callable[[int], None] | None = None,
    row_budget: int = ROW_BUDGET,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Which rows to keep (a boolean mask) and the report: rows, empty rows, rows removed by
    each method, and the clusters (the row kept, the rows dropped with their method and
    similarity to the kept row); row numbers count from 0. ``semantic`` needs ``embedder``.
    Past ``row_budget`` rows the sketches spill to disk (:mod:`.sketch`)."""
    if not exact and near is None and semantic is None:
        raise InvalidInput("choose a method: exact, near, semantic, or several")
    # only keep="longest" reads lengths: the others save a pass over the texts
    lengths = text_lengths(texts) if keep == "longest" else np.zeros(len(texts), np.int64)
    rank = preference(keep, lengths, scores)  # refuses a bad policy before any work
    near = near.check() if near is not None else None
    semantic = semantic.check() if semantic is not None else None
    if semantic is not None and embedder is None:
        raise InvalidInput(NO_EMBEDDER)
    with Spill(len(texts), row_budget) as spill:
        sketch = Sketch.build(texts, spill, near, on_rows, keep_signatures=False)
        left: list[np.ndarray] = []
        right: list[np.ndarray] = []
        copies = np.zeros(len(texts), dtype=bool)
        if exact:
            first, later = _exact_pairs(sketch)
            left.append(first)
            right.append(later)
            copies[later] = True  # its first copy stands for it below
        checked = 0
        if near is not None:
            pairs = near_pairs(sketch, copies)
            checked = pairs.shape[1]
            similar = sketch.similarity(pairs[0], sketch, pairs[1]) >= near.threshold
            left.append(pairs[0][similar])
            right.append(pairs[1][similar])
        meaning = None
        if semantic is not None and embedder is not None:
            meaning = _Meaning(texts, sketch.empty, embedder)
            kept, dropped, _ = semantic_duplicates(meaning.vectors, rank[meaning.filled], semantic)
            left.append(meaning.filled[kept])
            right.append(meaning.filled[dropped])
        rows = len(texts)
        edges = (np.concatenate(left), np.concatenate(right)) if left else (np.zeros(0, int),) * 2
        roots = components(rows, *edges)
        winner = keep_rows(roots, keep, lengths, scores)
        keep_mask = winner == np.arange(rows)

        def jaccard(rows: np.ndarray, others: np.ndarray) -> np.ndarray:
            return sketch.similarity(rows, sketch, others)

        report = cluster_report(
            texts, sketch.keys, sketch.empty, winner, keep_mask,
            jaccard if near is not None else None, near, meaning,
        )  # fmt: skip
        spilled = spill.spilled
    methods = (("exact", exact), ("near", near is not None), ("semantic", meaning is not None))
    report.update(
        methods=[m for m, on in methods if on],
        keep=keep,
        near=near.describe() if near is not None else None,
        semantic=semantic.describe(meaning.filled.size) if meaning and semantic else None,
        candidates_checked=checked,
        spilled=spilled,
    )
    return keep_mask, report


def text_lengths(texts: Sequence[str | None]) -> np.ndarray:
    """Each row's length in characters (what ``keep="longest"`` ranks by)."""
    return np.fromiter((len(t or "") for t in texts), dtype=np.int64, count=len(texts))


def _texts_of(texts: Sequence[str | None], rows: np.ndarray) -> list[str | None]:
    """The texts of ``rows`` (ascending), read a chunk of rows at a time: a table's column
    is converted from Arrow a slice at a time (:class:`.rows.TextColumn`), never whole."""
    out: list[str | None] = []
    bounds = np.searchsorted(rows, np.arange(0, len(texts) + CHUNK, CHUNK)).tolist()
    for (lo, hi), start in zip(pairwise(bounds), range(0, len(texts), CHUNK), strict=True):
        if hi > lo:
            chunk = texts[start : start + CHUNK]
            out += [chunk[i] for i in (rows[lo:hi] - start).tolist()]
    return out


class _Meaning:
    """Unit embeddings of the non-empty rows (``filled``), and the cosine of two rows."""

    def __init__(self, texts: Sequence[str | None], empty: np.ndarray, embed: Embedder) -> None:
        self.filled = np.flatnonzero(~empty)
        self.vectors = embed_rows(embed, [t or "" for t in _texts_of(texts, self.filled)])
        self.index = np.full(len(texts), -1, dtype=np.int64)
        self.index[self.filled] = np.arange(self.filled.size)

    def cosine(self, rows: np.ndarray, others: np.ndarray) -> np.ndarray:
        left, right = self.vectors[self.index[rows]], self.vectors[self.index[others]]
        return np.asarray(np.sum(left * right, axis=1), dtype=np.float64)


def _methods(
    dropped: np.ndarray,
    kept_of: np.ndarray,
    similarity: Jaccard | None,
    threshold: float,
    meaning: _Meaning | None,
) -> tuple[np.ndarray, np.ndarray]:
    """For rows that are not exact copies of the row kept: "near" or "semantic", and the
    similarity to the kept row by that method (near when both would do; a row joined by a
    chain of pairs gets the method that judges it closer)."""
    jaccard = similarity(dropped, kept_of) if similarity is not None else None
    cosine = meaning.cosine(dropped, kept_of) if meaning is not None else None
    if cosine is None:
        return np.full(dropped.size, "near", dtype=object), np.asarray(jaccard)
    if jaccard is None:
        return np.full(dropped.size, "semantic", dtype=object), cosine
    near = (jaccard >= threshold) | (cosine < jaccard)
    return np.where(near, "near", "semantic").astype(object), np.where(near, jaccard, cosine)


def cluster_report(
    texts: Sequence[str | None],
    keys: np.ndarray,
    empty: np.ndarray,
    winner: np.ndarray,
    keep_mask: np.ndarray,
    jaccard: Jaccard | None,
    near: NearParams | None,
    meaning: _Meaning | None = None,
) -> dict[str, Any]:
    """Rows, rows kept, empty rows, rows removed per method and the clusters, from each row's
    exact key, emptiness and kept row (``winner``); ``jaccard`` gives the near similarity of
    row pairs wherever the sketches are (here, or in a Ray object store: :mod:`.on_ray`)."""
    dropped = np.flatnonzero(~keep_mask)
    kept_of = winner[dropped]
    is_exact = keys[dropped] == keys[kept_of]
    similarity = np.ones(dropped.size)
    method = np.full(dropped.size, "exact", dtype=object)
    other = ~is_exact
    if other.any():
        threshold = near.threshold if near is not None else 1.0
        method[other], similarity[other] = _methods(
            dropped[other], kept_of[other], jaccard, threshold, meaning
        )
    # dropped rows grouped by kept row, in row order within a group; clusters by size, then
    # kept row: only the listed clusters and their listed rows become dicts (a row's dict
    # and preview take about 500 bytes: a tenth of ten million rows dropped is 500 MB)
    order = np.argsort(kept_of, kind="stable")
    heads, starts, sizes = np.unique(kept_of[order], return_index=True, return_counts=True)
    listed = np.lexsort((heads, -sizes))[:MAX_CLUSTERS]
    members = [order[starts[c] : starts[c] + min(sizes[c], MAX_DROPPED)] for c in listed]
    listed_rows = dropped[np.concatenate([np.zeros(0, np.int64), *members])]
    shown = np.unique(np.concatenate([heads[listed], listed_rows]))
    text_of = dict(zip(shown.tolist(), map(preview, _texts_of(texts, shown)), strict=True))
    return {
        "rows": len(texts),
        "rows_kept": int(keep_mask.sum()),
        "empty_rows": int(empty.sum()),
        "removed": {m: int((method == m).sum()) for m in ("exact", "near", "semantic")},
        "clusters_total": int(heads.size),
        "clusters": [
            {
                "kept": int(heads[c]),
                "text": text_of[int(heads[c])],
                "size": 1 + int(sizes[c]),
                "dropped": [
                    {
                        "row": int(dropped[i]),
                        "method": method[i],
                        "similarity": round(float(similarity[i]), 4),
                        "text": text_of[int(dropped[i])],
                    }
                    for i in rows.tolist()
                ],
            }
            for c, rows in zip(listed.tolist(), members, strict=True)
        ],
    }


def _matches(
    ours: Sketch, theirs: Sketch, exact: bool, near: NearParams | None, spill: Spill
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each row of ``theirs``: its best match in ``ours`` (-1: none), the similarity
    and the method: "exact" first, else "near" at or above the threshold, the most similar,
    then the one found at the earliest band, then the first row of ``ours``."""
    rows = theirs.keys.size
    match = np.full(rows, -1, dtype=np.int64)
    best = np.zeros(rows)
    method = np.array([""] * rows, dtype=object)
    if exact and ours.filled.size and theirs.filled.size:
        # the first train row of each key, found by binary search (a dict of ten million
        # keys would take 1.5 GB)
        keys, first = np.unique(ours.keys[ours.filled], return_index=True)
        asked = theirs.keys[theirs.filled]
        at = np.minimum(np.searchsorted(keys, asked), keys.size - 1)
        hit = keys[at] == asked
        found = theirs.filled[hit]
        match[found], best[found], method[found] = ours.filled[first[at[hit]]], 1.0, "exact"
    if near is not None:
        assert ours.bands is not None and theirs.bands is not None
        index = BandIndex.of_hashes(ours.bands, near.bands()[1], ours.filled)
        searched = theirs.filled[method[theirs.filled] != "exact"]
        queries = index.keys_for(theirs.bands, searched)
        bound = JaccardBound(ours, theirs, spill) if near.verify == "exact" else None
        # eval rows a block at a time, so that their candidates (chance ones included: an
        # eval row meets about bands * train rows / 2**key_bits strangers) stay near
        # CANDIDATES, each pair with all its bands at once
        strangers = index.rows / 2.0**index.key_bits
        block = max(1, int(CANDIDATES / (queries.shape[1] * (1 + strangers))))
        for lo in range(0, searched.size, block):
            q, t, band = index.candidates(queries[lo : lo + block])
            found, hits = searched[lo + q], ours.filled[t]
            if bound is not None:  # strangers out before the sort of the true Jaccard
                possible = bound(found, hits) >= near.threshold
                found, hits, band = found[possible], hits[possible], band[possible]
            sim = theirs.similarity(found, ours, hits)
            won = best_candidates(found, hits, band, sim, near.threshold)
            match[found[won]], best[found[won]], method[found[won]] = hits[won], sim[won], "near"
    return match, best, method


def contamination(
    train: Sequence[str | None],
    evaluation: Sequence[str | None],
    *,
    exact: bool = True,
    near: NearParams | None = NearParams(),
    samples: int = 20,
) -> dict[str, Any]:
    """How many rows of ``evaluation`` have an exact or near duplicate in ``train``: counts
    per method (a row counts once, as exact when it is one) and up to ``samples`` examples
    (eval row, train row, similarity)."""
    if not exact and near is None:
        raise InvalidInput("choose a method: exact, near, or both")
    near = near.check() if near is not None else None
    with Spill(len(train)) as train_spill, Spill(len(evaluation)) as eval_spill:
        ours = Sketch.build(train, train_spill, near, keep_signatures=False)
        theirs = Sketch.build(evaluation, eval_spill, near, keep_signatures=False)
        matches = _matches(ours, theirs, exact, near, train_spill)
    return overlap_report(len(train), evaluation, theirs.empty, matches, exact, near, samples)


def overlap_report(
    train_rows: int,
    evaluation: Sequence[str | None],
    eval_empty: np.ndarray,
    matches: tuple[np.ndarray, np.ndarray, np.ndarray],
    exact: bool,
    near: NearParams | None,
    samples: int = 20,
) -> dict[str, Any]:
    """:func:`contamination`'s report from each eval row's best train match, similarity and
    method (``matches``, as :func:`_matches` gives them, here or from Ray: :mod:`.on_ray`)."""
    match, best, method = matches
    found = np.flatnonzero(match >= 0)
    counted = len(evaluation) - int(eval_empty.sum())
    return {
        "eval_rows": len(evaluation),
        "train_rows": train_rows,
        "empty_eval_rows": int(eval_empty.sum()),
        "contaminated": int(found.size),
        "by_method": {m: int((method == m).sum()) for m in ("exact", "near")},
        "rate": found.size / counted if counted else 0.0,
        "methods": [m for m, on in (("exact", exact), ("near", near is not None)) if on],
        "near": near.describe() if near is not None else None,
        "samples": [
            {
                "eval_row": int(r),
                "train_row": int(match[r]),
                "method": method[r],
                "similarity": round(float(best[r]), 4),
                "text": preview(evaluation[r]),
            }
            for r in found[:samples]
        ],
    }


def best_candidates(
    evals: np.ndarray, trains: np.ndarray, bands: np.ndarray, similarity: np.ndarray,
    threshold: float,
) -> np.ndarray:  # fmt: skip
    """The index of each eval row's match among candidate pairs (``evals[i]``, ``trains[i]``,
    found in ``bands[i]``, with ``similarity[i]``) at or above ``threshold``: the most similar,
    then the earliest band, then the first train row (the order the band-by-band search met
    them in), locally and on Ray alike."""
    similar = np.flatnonzero(similarity >= threshold)
    ranks = (trains[similar], bands[similar], -similarity[similar], evals[similar])
    order = similar[np.lexsort(ranks)]  # each eval row's best candidate first
    leads = np.ones(order.size, dtype=bool)
    leads[1:] = evals[order][1:] != evals[order][:-1]
    return order[leads]
