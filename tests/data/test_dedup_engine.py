"""The dedup engine on constructed texts of known Jaccard similarity, and against datasketch
(the MinHash-LSH library people use today) on the same shingles: its estimates, its banding
and its candidate recall."""

from __future__ import annotations

import random

import numpy as np
import pytest

from opsloop.data.duplicates.clusters import components
from opsloop.data.duplicates.clusters import keep_rows
from opsloop.data.duplicates.engine import NearParams
from opsloop.data.duplicates.engine import contamination
from opsloop.data.duplicates.engine import deduplicate
from opsloop.data.duplicates.lsh import BandIndex
from opsloop.data.duplicates.lsh import optimal_bands
from opsloop.data.duplicates.minhash import MinHasher
from opsloop.data.duplicates.minhash import estimated_jaccard
from opsloop.data.duplicates.text import normal_form
from opsloop.data.duplicates.text import shingle_hashes
from opsloop.errors import InvalidInput

WORDS = [f"w{i}" for i in range(20_000)]


def _doc(rng: random.Random, n: int = 200) -> list[str]:
    return [rng.choice(WORDS) for _ in range(n)]


def _shingles(words: list[str], n: int) -> set[str]:
    return {" ".join(words[i : i + n]) for i in range(len(words) - n + 1)}


def _jaccard(a: list[str], b: list[str], n: int = 5) -> float:
    x, y = _shingles(a, n), _shingles(b, n)
    return len(x & y) / len(x | y)


def _pair_at(rng: random.Random, target: float) -> tuple[list[str], list[str], float]:
    """A document and a copy with words replaced until its 5-gram Jaccard falls to
    ``target`` (to within one edit); the true similarity is returned too."""
    source = _doc(rng)
    copy = list(source)
    spots = list(range(len(copy)))
    rng.shuffle(spots)
    for spot in spots:
        if _jaccard(source, copy) <= target:
            break
        copy[spot] = f"edit{rng.randrange(10**9)}"
    return source, copy, _jaccard(source, copy)


def test_normal_form_ignores_case_punctuation_spacing_and_unicode_forms() -> None:
    assert normal_form("Hello,  World!\n") == normal_form("hello world") == b"hello world"
    assert normal_form("Ｃａｆé—ＣＡＦÉ") == normal_form("café café")  # NFKC, case-folded
    assert normal_form(" \t ") == b""


def test_shingles_match_python_sets_and_short_rows_are_one_shingle() -> None:
    rows = [normal_form(t) for t in ["a b c d e f g", "a b", "", "x y z w v"]]
    got = shingle_hashes(rows, 5)
    assert got.counts().tolist() == [3, 1, 0, 1]
    assert len(set(got.of(0).tolist())) == 3
    again = shingle_hashes([normal_form("c d e f g z")], 5)
    assert len(set(got.of(0).tolist()) & set(again.of(0).tolist())) == 1  # "c d e f g"


@pytest.mark.parametrize("target", [0.3, 0.5, 0.7, 0.9])
def test_estimates_track_true_jaccard_like_datasketch(target: float) -> None:
    from datasketch import MinHash

    rng = random.Random(int(target * 100))
    ours, theirs, truth = [], [], []
    hasher = MinHasher(256)
    for _ in range(20):
        a, b, true = _pair_at(rng, target)
        sig = hasher.signatures(shingle_hashes([normal_form(" ".join(x)) for x in (a, b)], 5))
        ours.append(estimated_jaccard(sig[0], sig[1]))
        m1, m2 = MinHash(num_perm=256), MinHash(num_perm=256)
        m1.update_batch([s.encode() for s in _shingles(a, 5)])
        m2.update_batch([s.encode() for s in _shingles(b, 5)])
        theirs.append(m1.jaccard(m2))
        truth.append(true)
    ours_err = np.abs(np.array(ours) - truth)
    theirs_err = np.abs(np.array(theirs) - truth)
    # unbiased, and as tight as datasketch's (std of a 256-permutation estimate is <= 0.032)
    assert abs(np.mean(np.array(ours) - truth)) < 0.02
    assert ours_err.mean() < theirs_err.mean() + 0.015
    assert ours_err.max() < 0.12


def test_banding_is_datasketchs_optimum() -> None:
    from datasketch.lsh import _optimal_param

    for threshold in (0.3, 0.5, 0.75, 0.9):
        for perms in (64, 128, 256):
            assert optimal_bands(threshold, perms) == _optimal_param(threshold, perms, 0.5, 0.5)


def test_lsh_candidate_recall_and_precision_match_datasketch() -> None:
    """Pairs at Jaccard ~0.7 among unrelated documents, threshold 0.5: both find nearly all
    pairs, and ours never pairs unrelated documents."""
    from datasketch import MinHash
    from datasketch import MinHashLSH

    rng = random.Random(5)
    docs, pairs = [], []
    for i in range(60):
        a, b, _ = _pair_at(rng, 0.7)
        docs += [a, b]
        pairs.append((2 * i, 2 * i + 1))
    docs += [_doc(rng) for _ in range(200)]
    texts = [" ".join(d) for d in docs]
    keep, report = deduplicate(texts, exact=False, near=NearParams(threshold=0.5))
    found = {(c["kept"], d["row"]) for c in report["clusters"] for d in c["dropped"]}
    ours = len(found & set(pairs)) / len(pairs)
    assert found <= set(pairs)  # no unrelated pair survived verification
    lsh = MinHashLSH(threshold=0.5, num_perm=128)
    sketches = []
    for i, d in enumerate(docs):
        m = MinHash(num_perm=128)
        m.update_batch([s.encode() for s in _shingles(d, 5)])
        lsh.insert(i, m)
        sketches.append(m)
    theirs = sum(b in lsh.query(sketches[a]) for a, b in pairs) / len(pairs)
    assert ours >= 0.95 and ours >= theirs - 0.05
    assert keep.sum() == len(docs) - len(found)


def test_exact_dedup_clusters_keep_first_longest_or_best_scored() -> None:
    texts = ["Hello world", "hello, WORLD!", "other text", "Hello   world.", "", None, "  "]
    keep, report = deduplicate(texts, near=None)
    assert keep.tolist() == [True, False, True, False, True, True, True]
    assert report["removed"] == {"exact": 2, "near": 0, "semantic": 0}
    assert report["empty_rows"] == 3
    assert report["clusters"][0]["kept"] == 0
    assert [d["row"] for d in report["clusters"][0]["dropped"]] == [1, 3]
    keep, _ = deduplicate(texts, near=None, keep="longest")
    assert np.flatnonzero(~keep).tolist() == [0, 1]  # "Hello   world." is longest
    scores = np.array([0.1, 0.9, 0.5, np.nan, 0, 0, 0])
    keep, _ = deduplicate(texts, near=None, keep="best-scored", scores=scores)
    assert np.flatnonzero(~keep).tolist() == [0, 3]


def test_near_clusters_chain_through_union_find() -> None:
    rng = random.Random(9)
    base = _doc(rng)
    variants = [list(base)]
    for k in range(1, 4):  # each copy one word further from the original
        v = list(base)
        v[k * 40] = f"x{k}"
        variants.append(v)
    texts = [" ".join(v) for v in variants] + [" ".join(_doc(rng))]
    keep, report = deduplicate(texts, exact=True, near=NearParams(threshold=0.8))
    assert keep.tolist() == [True, False, False, False, True]
    (cluster,) = report["clusters"]
    assert cluster["kept"] == 0 and cluster["size"] == 4
    for dropped in cluster["dropped"]:
        truth = _jaccard(base, variants[dropped["row"]])
        assert dropped["method"] == "near" and abs(dropped["similarity"] - truth) < 0.15


def test_exact_verification_reports_true_jaccard() -> None:
    rng = random.Random(3)
    a, b, truth = _pair_at(rng, 0.85)
    _, report = deduplicate(
        [" ".join(a), " ".join(b)], exact=False, near=NearParams(0.7, verify="exact")
    )
    assert report["clusters"][0]["dropped"][0]["similarity"] == pytest.approx(truth, abs=1e-4)


def test_union_find_components() -> None:
    roots = components(7, np.array([5, 1, 3, 6]), np.array([6, 2, 2, 5]))
    assert roots.tolist() == [0, 1, 1, 1, 4, 5, 5]
    assert keep_rows(roots, "first", np.ones(7), None).tolist() == roots.tolist()


def test_overlap_counts_exact_and_near_contamination() -> None:
    rng = random.Random(4)
    train = [" ".join(_doc(rng)) for _ in range(50)]
    a, b, _ = _pair_at(rng, 0.9)
    train.append(" ".join(a))
    evaluation = [train[3].upper(), " ".join(b), " ".join(_doc(rng)), ""]
    report = contamination(train, evaluation, near=NearParams(threshold=0.7))
    assert report["by_method"] == {"exact": 1, "near": 1}
    assert report["contaminated"] == 2 and report["rate"] == pytest.approx(2 / 3)
    assert [(s["eval_row"], s["train_row"]) for s in report["samples"]] == [(0, 3), (1, 50)]


def test_index_stays_within_64_bytes_per_row_for_128_permutations() -> None:
    sig = MinHasher(128).signatures(shingle_hashes([b"a b c d e f"] * 10, 5))
    for threshold in (0.5, 0.8, 0.9):
        index = BandIndex.build(sig, *NearParams(threshold).bands())
        assert index.bytes_per_row <= 64


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"near": NearParams(threshold=0)}, "threshold must be in (0, 1]"),
        ({"near": NearParams(threshold=1.2)}, "threshold must be in (0, 1]"),
        ({"near": NearParams(ngram=0)}, "ngram must be"),
        ({"near": NearParams(verify="maybe")}, "verify must be"),
        ({"keep": "last"}, "keep must be one of"),
        ({"keep": "best-scored"}, "needs a score column"),
        ({"exact": False, "near": None}, "choose a method"),
    ],
)
def test_bad_options_are_invalid_input(options: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidInput, match=message.replace("(", r"\(").replace(")", r"\)")):
        deduplicate(["a b c", "a b c"], **options)  # type: ignore[arg-type]
