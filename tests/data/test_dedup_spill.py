"""Bounded memory: past the row budget a column's sketches (signatures, shingles, band
hashes) go to memory-mapped files and rows are hashed a chunk at a time; the answer must be
the one computed in memory, and the files must be gone afterwards."""

from __future__ import annotations

import random
import tempfile
from pathlib import Path

import numpy as np
import pytest

from opsloop.data.duplicates.engine import NearParams
from opsloop.data.duplicates.engine import deduplicate
from opsloop.data.duplicates.sketch import Sketch
from opsloop.data.duplicates.sketch import Spill
from opsloop.data.duplicates.sketch import true_jaccard


def _corpus() -> list[str | None]:
    """Documents with near copies (a few words replaced), exact copies in other case and
    punctuation, empty rows, and unrelated documents, shuffled."""
    rng = random.Random(11)
    words = [f"w{i}" for i in range(5000)]
    texts: list[str | None] = []
    for _ in range(12):
        source = [rng.choice(words) for _ in range(80)]
        near = list(source)
        for spot in rng.sample(range(80), 3):
            near[spot] = "edited"
        texts += [" ".join(source), " ".join(near), " ".join(source).upper() + "!"]
    texts += [" ".join(rng.choice(words) for _ in range(80)) for _ in range(20)]
    texts += ["", "   ", None]
    rng.shuffle(texts)
    return texts


@pytest.mark.parametrize("verify", ["exact", "estimate"])
def test_a_tiny_row_budget_spills_and_finds_the_same_duplicates(
    verify: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    texts = _corpus()
    near = NearParams(threshold=0.5, verify=verify)
    held, in_memory = deduplicate(texts, near=near, keep="longest")
    spilled, on_disk = deduplicate(texts, near=near, keep="longest", row_budget=7)
    assert not in_memory.pop("spilled") and on_disk.pop("spilled")
    assert np.array_equal(held, spilled)
    assert in_memory == on_disk
    assert in_memory["removed"]["exact"] + in_memory["removed"]["near"] == 24  # 2 of 3 each
    assert in_memory["empty_rows"] == 3
    assert list(tmp_path.iterdir()) == []  # the spill folder is removed


def test_spilled_sketches_are_memory_maps_equal_to_the_held_ones(tmp_path: Path) -> None:
    texts = _corpus()
    near = NearParams(threshold=0.7)
    with Spill(len(texts)) as memory, Spill(len(texts), row_budget=5) as disk:
        held = Sketch.build(texts, memory, near)
        spilled = Sketch.build(texts, disk, near)
        assert disk.spilled and not memory.spilled
        assert isinstance(spilled.signatures, np.memmap)
        assert isinstance(spilled.shingles.hashes, np.memmap)  # type: ignore[union-attr]
        assert np.array_equal(held.signatures, spilled.signatures)  # type: ignore[arg-type]
        assert np.array_equal(held.keys, spilled.keys)
        rows = np.arange(len(texts) - 1)
        pairs = (held.shingles, rows, spilled.shingles, rows + 1)
        assert np.allclose(true_jaccard(*pairs), true_jaccard(held.shingles, rows, *pairs[2:]))


def test_true_jaccard_matches_python_sets() -> None:
    texts = ["a b c d e f g h", "a b c d e f x y", "q r s t u v w z", "a b c d e f g h a b c d e"]
    with Spill(len(texts)) as spill:
        sketch = Sketch.build(texts, spill, NearParams(ngram=2))
    rows, others = np.array([0, 0, 0, 2]), np.array([1, 2, 3, 2])
    got = true_jaccard(sketch.shingles, rows, sketch.shingles, others)

    def grams(t: str) -> set[str]:
        w = t.split()
        return {" ".join(w[i : i + 2]) for i in range(len(w) - 1)}

    want = [
        len(grams(texts[a]) & grams(texts[b])) / len(grams(texts[a]) | grams(texts[b]))
        for a, b in zip(rows, others, strict=True)
    ]
    assert np.allclose(got, want)
