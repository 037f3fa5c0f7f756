"""Text normalisation, exact keys and word n-gram shingles, for a whole column at once.

Normal form: Unicode NFKC, case-folded, punctuation dropped, whitespace collapsed, so
``"Hello,  World!"`` and ``"hello world"`` are one text. Exact keys are BLAKE3 digests of the
normal form (16 bytes: no accidental collision in any table that fits on disks we know).

Shingles are the word n-grams of the normal form, each hashed once to 32 bits. Python touches
each row once (normalising); the words are found and hashed with numpy over the bytes of the
whole column: a polynomial hash of each word from prefix sums (a word's hash is its slice of
the prefix sums, shifted back to position 0 with the multiplier's inverse modulo 2^64), then
n consecutive word hashes folded into the shingle's hash. A row with fewer than n words is one
shingle of all its words; a row with none is empty and has no shingles.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["Shingles", "exact_keys", "normal_form", "shingle_hashes"]

_NON_ASCII = re.compile(r"[^\x00-\x7f]+")
_SEPARATOR = b"\x00"  # between rows in the joined column: never a word byte
_ASCII = bytes(
    c + 32 if 65 <= c <= 90 else c if chr(c).isalnum() or c == 95 else 32 for c in range(128)
) + bytes(range(128, 256))
_WORD_BYTES = np.zeros(256, dtype=bool)
_WORD_BYTES[[*range(48, 58), *range(65, 91), 95, *range(97, 123)]] = True
_WORD_BYTES[128:] = True  # bytes of multi-byte characters: punctuation was removed already
_P = np.uint64(0x100000001B3)  # odd, so invertible modulo 2^64
_P_INV = np.uint64(pow(0x100000001B3, -1, 1 << 64))
_FOLD = np.uint64(0x9E3779B97F4A7C15)


def normal_form(text: str) -> bytes:
    """``text`` as compared, UTF-8: NFKC, case-folded, no punctuation, single spaces. ASCII
    punctuation goes through a byte table; only the non-ASCII runs are looked at one by one
    (a regular expression over every character measured 8x slower)."""
    if text.isascii():
        return b" ".join(text.encode("ascii").translate(_ASCII).split())
    folded = unicodedata.normalize("NFKC", text).casefold()
    folded = folded.encode("utf-8").translate(_ASCII).decode("utf-8")
    for run in set(_NON_ASCII.findall(folded)):
        kept = "".join(c if c.isalnum() else " " for c in run)
        if kept != run:
            folded = folded.replace(run, kept)
    return " ".join(folded.split()).encode("utf-8")


def exact_keys(normal: Sequence[bytes]) -> list[bytes]:
    """The 16-byte BLAKE3 key of each normalised text."""
    from blake3 import blake3

    return [blake3(t).digest(16) for t in normal]


@dataclass(frozen=True)
class Shingles:
    """Every row's shingle hashes, back to back: row ``i`` owns
    ``hashes[offsets[i]:offsets[i + 1]]`` (none when it is empty)."""

    hashes: np.ndarray  # uint64 values below 2^32
    offsets: np.ndarray  # int64, one more than there are rows

    def counts(self) -> np.ndarray:
        return np.diff(self.offsets)

    def of(self, row: int) -> np.ndarray:
        return self.hashes[self.offsets[row] : self.offsets[row + 1]]


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser: every input bit reaches every output bit."""
    x = x ^ (x >> np.uint64(30))
    x *= np.uint64(0xBF58476D1CE4E5B9)
    x ^= x >> np.uint64(27)
    x *= np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def _word_hashes(normal: Sequence[bytes]) -> tuple[np.ndarray, np.ndarray]:
    """Each word's 64-bit hash and the row it belongs to, in order."""
    joined = _SEPARATOR.join(normal)  # normal forms hold no NUL: it is not a word byte
    data = np.frombuffer(joined, dtype=np.uint8)
    if data.size == 0:
        return np.zeros(0, np.uint64), np.zeros(0, np.int64)
    word = _WORD_BYTES[data]
    edges = np.diff(word.astype(np.int8), prepend=0, append=0)
    starts = np.flatnonzero(edges == 1)
    ends = np.flatnonzero(edges == -1)
    with np.errstate(over="ignore"):
        buffer = np.full(data.size, _P, dtype=np.uint64)  # P^i, then each byte times it
        buffer[0] = 1
        np.cumprod(buffer, out=buffer)
        buffer *= data
        prefix = np.zeros(data.size + 1, dtype=np.uint64)
        np.cumsum(buffer, out=prefix[1:])
        buffer.fill(_P_INV)  # reused for P^-i
        buffer[0] = 1
        np.cumprod(buffer, out=buffer)
        shifted = (prefix[ends] - prefix[starts]) * buffer[starts]
        hashes = _mix(shifted + (ends - starts).astype(np.uint64))
    rows = np.searchsorted(np.flatnonzero(data == 0), starts).astype(np.int64)
    return hashes, rows


def shingle_hashes(normal: Sequence[bytes], ngram: int) -> Shingles:
    """The word ``ngram``-gram hashes of each normalised row (see the module docstring)."""
    words, rows = _word_hashes(normal)
    per_row = np.bincount(rows, minlength=len(normal)).astype(np.int64)
    row_start = np.concatenate([[0], np.cumsum(per_row)])
    with np.errstate(over="ignore"):
        if words.size >= ngram:
            span = words.size - ngram + 1
            folded = words[:span].copy()
            for k in range(1, ngram):
                folded = folded * _FOLD + words[k : k + span]
            whole = rows[:span] == rows[ngram - 1 :]  # the n-gram does not cross rows
            full, owner = folded[whole], rows[:span][whole]
        else:
            full, owner = np.zeros(0, np.uint64), np.zeros(0, np.int64)
        short = np.flatnonzero((per_row > 0) & (per_row < ngram))
        if short.size:
            extra = np.empty(short.size, np.uint64)
            for i, row in enumerate(short):
                acc = np.uint64(0)
                for h in words[row_start[row] : row_start[row + 1]]:
                    acc = acc * _FOLD + h
                extra[i] = acc
            order = np.argsort(np.concatenate([owner, short]), kind="stable")
            full = np.concatenate([full, extra])[order]
            owner = np.concatenate([owner, short])[order]
        hashes = _mix(full) >> np.uint64(32)
    counts = np.bincount(owner, minlength=len(normal)).astype(np.int64)
    return Shingles(hashes, np.concatenate([[0], np.cumsum(counts)]))
