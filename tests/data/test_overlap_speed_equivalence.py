"""Overlap's vectorised matching (each candidate pair once, at its first band; strangers ruled
out by :class:`.sketch.JaccardBound` before the true Jaccard) against the band-by-band loop it
replaced, kept here as the reference: on random corpora with planted ties (equally similar
train rows found in different bands, copies of one train row), chance collisions of 16-bit
index keys, short rows, repeated shingles and empty rows, each eval row gets the same match,
similarity and method."""

from __future__ import annotations

import random

import numpy as np
import pytest

from opsloop.data.duplicates.engine import NearParams
from opsloop.data.duplicates.engine import _matches
from opsloop.data.duplicates.lsh import short_keys
from opsloop.data.duplicates.sketch import ROW_BUDGET
from opsloop.data.duplicates.sketch import JaccardBound
from opsloop.data.duplicates.sketch import Sketch
from opsloop.data.duplicates.sketch import Spill
from opsloop.data.duplicates.sketch import true_jaccard
from tests.data.corpora import variant_maker


def _reference(
    ours: Sketch, theirs: Sketch, exact: bool, near: NearParams
) -> tuple[tuple[np.ndarray, np.ndarray, np.ndarray], int]:
    """The loop the engine had: band after band, each eval row's candidates (train rows
    sharing its short key, by brute force) in train order, a row taking a candidate only
    when strictly more similar than its best so far; and how many eval rows had a tie for
    their best (more than one train row at the best similarity)."""
    rows = theirs.keys.size
    match, best = np.full(rows, -1, dtype=np.int64), np.zeros(rows)
    method = np.array([""] * rows, dtype=object)
    first_of: dict[bytes, int] = {}
    for row in ours.filled.tolist():
        first_of.setdefault(bytes(ours.keys[row]), row)
    if exact:
        for row in theirs.filled.tolist():
            if bytes(theirs.keys[row]) in first_of:
                match[row], best[row], method[row] = first_of[bytes(theirs.keys[row])], 1, "exact"
    assert ours.bands is not None and theirs.bands is not None
    train_keys = short_keys(ours.bands, ours.filled)
    eval_keys = short_keys(theirs.bands, theirs.filled)
    tied: set[int] = set()
    for band in range(train_keys.shape[1]):
        shared = eval_keys[:, band][:, None] == train_keys[:, band][None, :]
        for q, t in zip(*np.nonzero(shared), strict=True):
            row, hit = int(theirs.filled[q]), int(ours.filled[t])
            if method[row] == "exact":
                continue
            sim = float(theirs.similarity(np.array([row]), ours, np.array([hit]))[0])
            if sim >= near.threshold and sim == best[row] and hit != match[row]:
                tied.add(row)
            if sim >= near.threshold and sim > best[row]:
                match[row], best[row], method[row] = hit, sim, "near"
    return (match, best, method), len(tied)


def _corpus(seed: int, strangers: int) -> tuple[list[str | None], list[str | None]]:
    """Sources of 40 to 80 words come to eval as a variant and to train as: two variants each
    as similar to the eval one, or exact copies held twice, or a variant with a phrase
    repeated (repeated shingles); ``strangers`` unrelated train rows (chance key collisions),
    rows shorter than a shingle, and empty rows on both sides."""
    rng = random.Random(seed)
    words = [f"w{i}" for i in range(3000)]
    variant = variant_maker()

    train: list[str | None] = []
    evaluation: list[str | None] = []
    for group in range(60):
        source = [rng.choice(words) for _ in range(rng.randrange(40, 80))]
        kind = group % 3
        if kind == 0:  # a tie: two train rows one word off each, the eval row a third
            train += [variant(source, 5), variant(source, 30)]
            evaluation.append(variant(source, 18))
        elif kind == 1:  # copies of one train row: the first is the match
            train += [" ".join(source)] * 2 + [variant(source, 3, 33)]
            evaluation += [" ".join(source).upper(), variant(source, rng.randrange(40))]
        else:  # a phrase said twice: more shingles than distinct ones
            phrase = source[:12]
            train.append(" ".join(source + phrase + phrase))
            evaluation.append(" ".join(source + phrase))
    train += [" ".join(rng.choice(words) for _ in range(60)) for _ in range(strangers)]
    train += ["w1 w2", "", None, "w3"]
    evaluation += [" ".join(rng.choice(words) for _ in range(60)) for _ in range(40)]
    evaluation += ["w1 w2", "  ", None]
    rng.shuffle(train)
    rng.shuffle(evaluation)
    return train, evaluation


@pytest.mark.parametrize(
    ("seed", "threshold", "verify", "exact", "budget"),
    [
        (1, 0.5, "exact", True, ROW_BUDGET),  # 30 bands: 16-bit keys, chance collisions
        (2, 0.5, "exact", False, ROW_BUDGET),
        (3, 0.7, "exact", True, 100),  # spilled: sketches and bitmaps are memory maps
        (4, 0.5, "estimate", True, ROW_BUDGET),
        (5, 0.8, "estimate", False, ROW_BUDGET),
    ],
)
def test_matches_are_the_band_by_band_loops(
    seed: int, threshold: float, verify: str, exact: bool, budget: int
) -> None:
    train, evaluation = _corpus(seed, strangers=2500)
    near = NearParams(threshold=threshold, verify=verify).check()
    with Spill(len(train), budget) as train_spill, Spill(len(evaluation), budget) as eval_spill:
        assert train_spill.spilled == (budget < len(train))
        ours = Sketch.build(train, train_spill, near, keep_signatures=False)
        theirs = Sketch.build(evaluation, eval_spill, near, keep_signatures=False)
        got = _matches(ours, theirs, exact, near, train_spill)
        want, tied = _reference(ours, theirs, exact, near)
    assert tied >= 5  # the tie-breaks were exercised
    assert got[0].tolist() == want[0].tolist()
    assert got[1].tolist() == want[1].tolist()
    assert got[2].tolist() == want[2].tolist()
    assert (got[2] == "near").sum() >= 40 and (got[2] == "exact").sum() == (21 if exact else 0)


def test_jaccard_bound_is_never_below_the_true_jaccard() -> None:
    """Pairs from strangers to copies, with repeated shingles, in bitmaps narrow enough that
    bits collide: the bound is at or above the true Jaccard, and rules strangers out."""
    rng = random.Random(11)
    words = [f"w{i}" for i in range(400)]
    texts: list[str | None] = []
    for _ in range(300):
        source = [rng.choice(words) for _ in range(rng.randrange(1, 120))]
        texts.append(" ".join(source))
        texts.append(" ".join(w if rng.random() > 0.2 else rng.choice(words) for w in source))
    texts += ["", None]
    near = NearParams(threshold=0.5, ngram=2).check()
    with Spill(len(texts)) as spill:
        sketch = Sketch.build(texts, spill, near, keep_signatures=False)
        bound = JaccardBound(sketch, sketch, spill)
        left = np.tile(np.arange(len(texts)), 20)
        pairs = [np.arange(len(texts)) ^ 1] * 10  # each text and its variant
        strangers = [np.array(rng.choices(range(len(texts)), k=len(texts))) for _ in range(10)]
        right = np.concatenate(pairs + strangers)
        true = true_jaccard(sketch.shingles, left, sketch.shingles, right)
        upper = bound(left, right)
    assert (upper >= true).all()
    assert (upper[true < 0.2] < 0.5).mean() > 0.9
