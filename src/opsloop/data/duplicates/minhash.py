"""MinHash signatures of many rows at once, as numpy matrices.

Permutation ``i`` maps a 32-bit shingle hash ``x`` to ``(a_i * x + b_i) mod 2^32`` with random
odd ``a_i`` and random ``b_i``: a bijection of the 32-bit values, and, since ``x`` is already
a well-mixed hash (splitmix64's finaliser, :mod:`.text`), the least image over a row's
shingles falls on a uniformly drawn shingle, so two rows agree on a permutation with
probability their Jaccard similarity. The high bits that decide the minimum depend on every
bit of ``x``; ``bench/dedup.py`` and the tests check the estimates against datasketch's.

32-bit lanes, not 64: AVX2 multiplies eight 32-bit integers in one instruction and has no
64-bit multiply at all, so numpy's uint64 product (the Dietzfelbinger multiply-add-shift form
this replaced) ran twice as long for the same signatures.

The work is a (permutations x shingles) matrix, taken a block of shingles at a time so it
stays in cache, reduced per row with ``minimum.reduceat`` along the contiguous axis; a row
split across blocks is merged with ``minimum``. Memory is bounded by the block whatever the
row lengths.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from opsloop.data.duplicates.text import Shingles

__all__ = ["EMPTY", "MinHasher", "estimated_jaccard"]

BLOCK = 8192  # shingles per block: 128 permutations x 8192 x 4 bytes = 4 MiB
EMPTY = np.uint32(0xFFFFFFFF)  # the signature value of a row without shingles


class MinHasher:
    """``num_perm`` permutations drawn from ``seed``: the same seed gives the same
    signatures on any machine, so signatures from two tables can be compared.

    Example:
        >>> from opsloop.data.duplicates.text import normal_forms, shingle_hashes
        >>> rows = normal_forms(["a b c d e f", "a b c d e g"])
        >>> sig = MinHasher(128).signatures(shingle_hashes(rows, 3))
        >>> 0.2 < estimated_jaccard(sig[0], sig[1]) < 0.9
        True
    """

    def __init__(self, num_perm: int = 128, seed: int = 1) -> None:
        rng = np.random.default_rng(seed)
        self.num_perm = num_perm
        self.a = (rng.integers(0, 2**32, num_perm, dtype=np.uint32) | np.uint32(1))[:, None]
        self.b = rng.integers(0, 2**32, num_perm, dtype=np.uint32)[:, None]

    def signatures(
        self, shingles: Shingles, on_rows: Callable[[int], None] | None = None
    ) -> np.ndarray:
        """A (rows x num_perm) uint32 matrix; a row without shingles is all :data:`EMPTY`.
        ``on_rows(n)`` is told as rows are finished (a progress bar)."""
        counts = shingles.counts()
        rows = counts.size
        best = np.full((self.num_perm, rows), EMPTY, dtype=np.uint32)
        owner = np.repeat(np.arange(rows), counts)
        x = shingles.hashes.astype(np.uint32)
        scratch = np.empty((self.num_perm, BLOCK), dtype=np.uint32)
        done = 0
        with np.errstate(over="ignore"):
            for lo in range(0, x.size, BLOCK):
                hi = min(lo + BLOCK, x.size)
                block = scratch[:, : hi - lo]
                np.multiply(self.a, x[None, lo:hi], out=block)
                block += self.b
                own = owner[lo:hi]
                cuts = np.flatnonzero(np.diff(own, prepend=-1))
                mins = np.minimum.reduceat(block, cuts, axis=1)
                who = own[cuts]
                best[:, who] = np.minimum(best[:, who], mins)
                if on_rows is not None:
                    finished = int(own[-1]) + (hi == x.size)
                    on_rows(finished - done)
                    done = finished
        if on_rows is not None and rows > done:
            on_rows(rows - done)
        out = best.T.copy()
        out[counts == 0] = EMPTY
        return out


def estimated_jaccard(left: np.ndarray, right: np.ndarray) -> np.ndarray | float:
    """The share of permutations on which two signatures (or two stacks of them, row by
    row) agree: an unbiased estimate of the rows' Jaccard similarity."""
    agree = np.mean(left == right, axis=-1)
    return float(agree) if np.ndim(agree) == 0 else agree
