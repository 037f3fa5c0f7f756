"""A column's sketches, built a chunk of rows at a time: exact keys, which rows are empty,
word-shingle hashes, MinHash signatures and their LSH band hashes, and the similarity of two
rows by shingles or signatures.

Memory stays bounded: past ``row_budget`` rows the signatures, the shingle hashes and the
band hashes go to numpy memory-mapped files in a temporary folder (:class:`Spill`), and only
one chunk of rows is normalised and hashed at a time, so the sketches of a table larger
than memory page through the disk instead of killing the process (the texts themselves are
the caller's, read a chunk at a time); below the budget the same arrays are plain ones. The
results are the same either way (a test forces the spill with a budget of a few rows).
A chunk's band hashes are taken from its signatures as they are made, so a caller that
verifies candidates by their shingles (``keep_signatures=False``) never stores the
signatures: at 128 permutations they are 512 bytes a row, the largest sketch of a short text.

The true Jaccard of many pairs is vectorised: each pair's two shingle sets are tagged with
the pair's number, sorted together, and the equal neighbours counted, a chunk of pairs at a
time. That sort is the cost of a check, so where most candidates are strangers (overlap's
index buckets rows by 16 or 32 bits of a band hash: a train table of millions of rows puts
dozens of chance rows in an eval row's buckets) :class:`JaccardBound` rules them out first
from fixed-size bitmaps of the shingles, without a sort.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from collections.abc import Sequence
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import numpy as np

from opsloop.data.duplicates.lsh import band_hashes
from opsloop.data.duplicates.minhash import MinHasher
from opsloop.data.duplicates.minhash import estimated_jaccard
from opsloop.data.duplicates.text import Shingles
from opsloop.data.duplicates.text import exact_keys
from opsloop.data.duplicates.text import normal_forms
from opsloop.data.duplicates.text import shingle_hashes

__all__ = ["ROW_BUDGET", "JaccardBound", "Sketch", "Spill", "true_jaccard"]

# rows whose sketches stay in memory: 200-word rows at 128 permutations and threshold 0.5
# take about 1.3 KiB each (signature 512 B when kept, shingles 800 B, band hashes 240 B)
ROW_BUDGET = 250_000
CHUNK = 10_000  # rows normalised and hashed at a time, at most: their temporaries are ~100 MiB
PAIR_ELEMENTS = 1 << 22  # shingles gathered at a time by true_jaccard
BITMAP_BITS = (64, 4096)  # the narrowest and widest shingle bitmaps of JaccardBound


class Spill:
    """Where a sketch's large arrays live: memory, or ``.npy`` memory maps in a temporary
    folder, removed by :meth:`close` (use it as a context manager)."""

    def __init__(self, rows: int, row_budget: int = ROW_BUDGET) -> None:
        self.folder = (
            Path(tempfile.mkdtemp(prefix="opsloop-dedup-spill-")) if rows > row_budget else None
        )
        self.chunk = max(1, min(CHUNK, row_budget))  # rows normalised and hashed at a time

    @property
    def spilled(self) -> bool:
        return self.folder is not None

    def array(self, name: str, shape: tuple[int, ...], dtype: Any) -> np.ndarray:
        if self.folder is None:
            return np.empty(shape, dtype=dtype)
        return np.lib.format.open_memmap(self.folder / f"{name}.npy", "w+", dtype, shape)

    def close(self) -> None:
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)
            self.folder = None

    def __enter__(self) -> Spill:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Sketch:
    """Exact keys (``S16``), the empty rows, and when near-duplicates are wanted the
    shingles, band hashes (bands x rows, :func:`.lsh.band_hashes`) and signatures (unless
    not kept) of one list of rows (see the module)."""

    def __init__(
        self,
        keys: np.ndarray,
        empty: np.ndarray,
        shingles: Shingles | None = None,
        signatures: np.ndarray | None = None,
        verify: str = "exact",
        bands: np.ndarray | None = None,
    ) -> None:
        self.keys, self.empty = keys, empty
        self.shingles, self.signatures, self.verify = shingles, signatures, verify
        self.bands = bands
        self.filled = np.flatnonzero(~empty)

    @classmethod
    def build(
        cls,
        texts: Sequence[str | None],
        spill: Spill,
        near: Any = None,
        on_rows: Callable[[int], None] | None = None,
        keep_signatures: bool = True,
    ) -> Sketch:
        """Sketch ``texts``; ``near`` (a ``NearParams``) asks for shingles, band hashes and
        signatures (``keep_signatures=False``: only the band hashes of the signatures, for
        a caller that verifies by shingles; ``verify="estimate"`` keeps them regardless)."""
        rows = len(texts)
        keys = np.empty(rows, dtype="S16")
        empty = np.empty(rows, dtype=bool)
        if near is None:
            for lo in range(0, rows, spill.chunk):
                normal = normal_forms(texts[lo : lo + spill.chunk])
                keys[lo : lo + len(normal)] = exact_keys(normal)
                empty[lo : lo + len(normal)] = [not t for t in normal]
            return cls(keys, empty)
        hasher = MinHasher(near.num_perm, near.seed)
        bands, per_band = near.bands()
        banded = spill.array("bands", (bands, rows), np.uint64)
        kept = keep_signatures or near.verify == "estimate"
        signatures = spill.array("signatures", (rows, near.num_perm), np.uint32) if kept else None
        hashes: list[np.ndarray] = []
        counts = np.zeros(rows + 1, dtype=np.int64)
        hash_file = spill.folder / "shingles.bin" if spill.folder is not None else None
        with open(hash_file, "wb") if hash_file is not None else nullcontext() as sink:
            for lo in range(0, rows, spill.chunk):
                normal = normal_forms(texts[lo : lo + spill.chunk])
                hi = lo + len(normal)
                keys[lo:hi] = exact_keys(normal)
                empty[lo:hi] = [not t for t in normal]
                shingles = shingle_hashes(normal, near.ngram)
                signed = hasher.signatures(shingles, on_rows)
                banded[:, lo:hi] = band_hashes(signed, bands, per_band)
                if signatures is not None:
                    signatures[lo:hi] = signed
                counts[lo + 1 : hi + 1] = shingles.counts()
                if sink is not None:
                    sink.write(shingles.hashes.tobytes())
                else:
                    hashes.append(shingles.hashes)
        if hash_file is not None:
            total = int(counts.sum())
            flat = (
                np.memmap(hash_file, np.uint32, "r", shape=(total,))
                if total
                else np.zeros(0, np.uint32)
            )
        else:
            flat = np.concatenate(hashes) if hashes else np.zeros(0, np.uint32)
        shingled = Shingles(flat, np.cumsum(counts))
        return cls(keys, empty, shingled, signatures, near.verify, banded)

    def similarity(self, rows: np.ndarray, other: Sketch, other_rows: np.ndarray) -> np.ndarray:
        """The Jaccard similarity of ``rows`` here and ``other_rows`` of ``other`` (which may
        be this sketch), pair by pair: estimated from the signatures or true (``verify``)."""
        if self.verify == "exact":
            return true_jaccard(self.shingles, rows, other.shingles, other_rows)
        assert self.signatures is not None and other.signatures is not None
        out = np.empty(rows.size)
        step = 1 << 16
        for lo in range(0, rows.size, step):
            left = self.signatures[rows[lo : lo + step]]
            right = other.signatures[other_rows[lo : lo + step]]
            out[lo : lo + step] = estimated_jaccard(left, right)
        return out


def _tagged_sets(shingles: Shingles, rows: np.ndarray) -> np.ndarray:
    """Each row's distinct shingles as ``position << 32 | hash`` (position in ``rows``),
    sorted."""
    starts, ends = shingles.offsets[rows], shingles.offsets[rows + 1]
    counts = ends - starts
    where = np.repeat(starts - np.cumsum(counts) + counts, counts) + np.arange(int(counts.sum()))
    tags = np.repeat(np.arange(rows.size, dtype=np.uint64), counts) << np.uint64(32)
    tagged = tags | np.asarray(shingles.hashes[where]).astype(np.uint64)
    tagged.sort()
    return tagged[np.concatenate([[True], tagged[1:] != tagged[:-1]])] if tagged.size else tagged


def true_jaccard(
    shingles: Shingles | None,
    rows: np.ndarray,
    other: Shingles | None,
    other_rows: np.ndarray,
) -> np.ndarray:
    """The Jaccard similarity of the shingle sets of ``rows`` and ``other_rows``, pair by
    pair (0 when both are empty)."""
    assert shingles is not None and other is not None
    out = np.zeros(rows.size)
    sizes = np.diff(shingles.offsets)[rows] + np.diff(other.offsets)[other_rows]
    ends = np.cumsum(sizes)
    lo = 0
    while lo < rows.size:
        hi = max(lo + 1, int(np.searchsorted(ends, ends[lo] - sizes[lo] + PAIR_ELEMENTS)))
        left = _tagged_sets(shingles, rows[lo:hi])
        right = _tagged_sets(other, other_rows[lo:hi])
        both = np.concatenate([left, right])
        both.sort()
        shared = both[1:][both[1:] == both[:-1]] >> np.uint64(32)
        n = hi - lo
        inter = np.bincount(shared.astype(np.int64), minlength=n)
        union = (
            np.bincount((left >> np.uint64(32)).astype(np.int64), minlength=n)
            + np.bincount((right >> np.uint64(32)).astype(np.int64), minlength=n)
            - inter
        )
        out[lo:hi] = inter / np.maximum(union, 1)
        lo = hi
    return out


class JaccardBound:
    """An upper bound of the true Jaccard similarity of a row of one sketch and a row of
    another, from a bitmap of each row's shingles (a shingle sets bit ``hash mod width``):
    a bit set in one row's bitmap and not the other's comes from a shingle of that row
    alone, so ``d``, the bits the bitmaps differ in, is at most the size of the symmetric
    difference; with ``n`` the two rows' shingle counts (at least the sizes of the sets),
    ``Jaccard = (|A| + |B| - |A ^ B|) / (|A| + |B| + |A ^ B|) <= (n - d) / (n + d)``. A pair
    whose bound is below the threshold is not similar, whatever its true Jaccard; the bound
    is rounded as the true value is (float division of integers), so the comparison is
    exact. Two strangers of ``k`` shingles each in ``4k`` bits differ in about ``1.4k``
    bits: a bound near 0.18. ``width`` is 4 times the ``index`` side's median shingles (a
    power of two, 64 to 4096 bits: at most a byte a shingle), whose bitmaps go where
    ``spill`` puts large arrays."""

    def __init__(self, index: Sketch, queries: Sketch, spill: Spill) -> None:
        assert index.shingles is not None and queries.shingles is not None
        self.index_counts = index.shingles.counts()
        self.query_counts = queries.shingles.counts()
        typical = float(np.median(self.index_counts[index.filled])) if index.filled.size else 1
        low, high = BITMAP_BITS
        width = int(min(high, max(low, 1 << max(0, int(np.ceil(np.log2(4 * typical)))))))
        self.index_bits = _bitmaps(
            index.shingles, width, spill.array("bitmaps", (index.keys.size, width // 64), np.uint64)
        )
        self.query_bits = _bitmaps(
            queries.shingles, width, np.empty((queries.keys.size, width // 64), np.uint64)
        )

    def __call__(self, queries: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """The bound of each pair: row ``queries[i]`` of the query sketch and ``rows[i]`` of
        the index sketch."""
        out = np.empty(queries.size)
        step = max(1, PAIR_ELEMENTS // (8 * self.index_bits.shape[1]))
        for lo in range(0, queries.size, step):
            left, right = queries[lo : lo + step], rows[lo : lo + step]
            differ = np.bitwise_count(self.query_bits[left] ^ self.index_bits[right])
            d = differ.sum(axis=1, dtype=np.int64)
            n = self.query_counts[left] + self.index_counts[right]
            out[lo : lo + step] = (n - d) / np.maximum(n + d, 1)
        return out


def _bitmaps(shingles: Shingles, width: int, out: np.ndarray) -> np.ndarray:
    """Each row's shingles as a bitmap of ``width`` bits into ``out`` (rows x width/64), a
    chunk of rows at a time (a chunk's bits are set in a boolean matrix and packed)."""
    counts = shingles.counts()
    rows = counts.size
    for lo in range(0, rows, CHUNK):
        hi = min(rows, lo + CHUNK)
        hashes = np.asarray(shingles.hashes[shingles.offsets[lo] : shingles.offsets[hi]])
        bits = np.zeros((hi - lo, width), dtype=bool)
        bits[np.repeat(np.arange(hi - lo), counts[lo:hi]), hashes & (width - 1)] = True
        out[lo:hi] = np.packbits(bits, axis=1, bitorder="little").view(np.uint64)
    return out
