"""Text normalisation, exact keys and word n-gram shingles, for a whole column at once.

Normal form: Unicode NFKC, case-folded, punctuation dropped, whitespace collapsed, so
``"Hello,  World!"`` and ``"hello world"`` are one text. Exact keys are BLAKE3 digests of the
normal form (16 bytes: no accidental collision in any table that fits on disks we know).

Python never walks a column's characters or words one by one: the rows are joined with NUL
(never a word byte) into one buffer, normalised with C string methods and numpy (a byte table
for ASCII; the distinct multi-byte characters found with one ``unique`` and judged once each;
runs of spaces collapsed with boolean masks), and split back into rows only for the exact
keys. Profiled on 10,000 200-word rows, the per-row normaliser this replaced cost as much as
the MinHash.

Shingles are the word n-grams of the normal form, each hashed once to 32 bits. A word's 64-bit
hash reads its bytes eight at a time through an unaligned ``uint64`` view of the buffer (one
gather for the words of up to 8 bytes, a shrinking loop for the longer ones, each step a
splitmix64 round); n consecutive word hashes are folded into the shingle's hash. A row with
fewer than n words is one shingle of all its words; a row with none has no shingles.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["Shingles", "exact_keys", "normal_form", "normal_forms", "shingle_hashes"]

_NUL, _SPACE = 0, 32
# ASCII letters lower-cased, digits and "_" kept, NUL kept (the row separator), the rest space;
# bytes of multi-byte characters pass through (their characters are judged in _fold_and_blank)
_ASCII = bytes(
    c + 32 if 65 <= c <= 90 else c if chr(c).isalnum() or c in (_NUL, 95) else _SPACE
    for c in range(128)
) + bytes(range(128, 256))
_FOLD = np.uint64(0x9E3779B97F4A7C15)
_LOW_BYTES = np.array([(1 << (8 * n)) - 1 for n in range(9)], dtype=np.uint64)
_FOLD_ONE_BY_ONE = 16  # distinct characters that case-fold, replaced one at a time


def _characters(data: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """The multi-byte characters of a UTF-8 buffer: where each starts, its length in bytes,
    which distinct character it is (an index into the list returned last). One gather of four
    bytes per character through an unaligned ``uint32`` view, one ``unique``."""
    lead = np.flatnonzero(data >= 0xC0)
    first = data[lead]
    size = 2 + (first >= 0xE0).astype(np.int64) + (first >= 0xF0)
    padded = np.concatenate([data, np.zeros(4, np.uint8)])
    fours = np.ndarray((data.size + 1,), dtype="<u4", buffer=padded, strides=(1,))
    keys = fours[lead] & ((np.uint32(1) << (8 * size).astype(np.uint32)) - np.uint32(1))
    distinct, which = np.unique(keys, return_inverse=True)
    # a multi-byte character holds no zero byte: the masked-off bytes are the only zeros
    chars = [int(k).to_bytes(4, "little").rstrip(b"\x00").decode() for k in distinct]
    return lead, size, which, chars


def _fold_and_blank(column: str) -> bytes:
    """``column`` (not ASCII) case-folded, as UTF-8, with every multi-byte character that is
    not a letter or digit made spaces. Only the distinct characters are judged by Python;
    the few that fold are replaced one by one (a whole-column ``casefold`` measured as slow
    as the rest of the normaliser), unless there are many."""
    data = np.frombuffer(column.encode("utf-8"), dtype=np.uint8)
    lead, size, which, chars = _characters(data)
    folding = [c for c in chars if c.casefold() != c]
    if folding:
        if len(folding) > _FOLD_ONE_BY_ONE:
            column = column.casefold()
        else:
            for c in folding:
                column = column.replace(c, c.casefold())
        data = np.frombuffer(column.encode("utf-8"), dtype=np.uint8)
        lead, size, which, chars = _characters(data)
    symbol = np.array([not c.isalnum() for c in chars], dtype=bool)
    if not symbol.any():
        return data.tobytes()
    data = data.copy()
    hit = symbol[which]
    for k in range(4):
        data[lead[hit & (size > k)] + k] = _SPACE
    return data.tobytes()


def _squeeze(data: np.ndarray) -> np.ndarray:
    """Separators of a NUL-joined buffer made single: no space after a space, and none
    beside a NUL or at either end."""
    space = data == _SPACE
    data = data[~(space & np.concatenate([[True], space[:-1]]))]  # first of each run
    word = data > _SPACE
    lonely = (data == _SPACE) & ~(
        np.concatenate([[False], word[:-1]]) & np.concatenate([word[1:], [False]])
    )
    return data[~lonely]


def _normal_buffer(texts: Sequence[str | None]) -> np.ndarray:
    """The normal forms of ``texts`` as one uint8 buffer, rows separated by NUL."""
    rows = [
        (t if t.isascii() else unicodedata.normalize("NFKC", t)).replace("\x00", " ") if t else ""
        for t in texts
    ]
    column = "\x00".join(rows)
    raw = column.encode("ascii") if column.isascii() else _fold_and_blank(column)
    raw = raw.translate(_ASCII)
    return _squeeze(np.frombuffer(raw, dtype=np.uint8)) if raw else np.zeros(0, np.uint8)


def normal_forms(texts: Sequence[str | None]) -> list[bytes]:
    """Each text as compared, UTF-8: NFKC, case-folded, no punctuation, single spaces
    (``None`` is empty)."""
    if not texts:
        return []
    return _normal_buffer(texts).tobytes().split(b"\x00")


def normal_form(text: str) -> bytes:
    """One text's normal form (see :func:`normal_forms`, which a column should go through)."""
    return normal_forms([text])[0]


def exact_keys(normal: Sequence[bytes]) -> list[bytes]:
    """The 16-byte BLAKE3 key of each normalised text."""
    from blake3 import blake3

    return [blake3(t).digest(16) for t in normal]


@dataclass(frozen=True)
class Shingles:
    """Every row's shingle hashes, back to back: row ``i`` owns
    ``hashes[offsets[i]:offsets[i + 1]]`` (none when it is empty)."""

    hashes: np.ndarray  # uint32
    offsets: np.ndarray  # int64, one more than there are rows

    def counts(self) -> np.ndarray:
        return np.diff(self.offsets)

    def of(self, row: int) -> np.ndarray:
        return self.hashes[self.offsets[row] : self.offsets[row + 1]]


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser (every input bit reaches every output bit), into a new array
    with one scratch array: these run over millions of words."""
    y = x >> np.uint64(30)
    y ^= x
    y *= np.uint64(0xBF58476D1CE4E5B9)
    t = y >> np.uint64(27)
    y ^= t
    y *= np.uint64(0x94D049BB133111EB)
    np.right_shift(y, np.uint64(31), out=t)
    y ^= t
    return y


def _low_bytes(value: np.ndarray, count: np.ndarray) -> np.ndarray:
    """``value`` with only its lowest ``count`` bytes (0 to 8 and more) kept."""
    value &= _LOW_BYTES[np.minimum(count, 8)]
    return value


def _word_hashes(data: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each word's 64-bit hash and the row it belongs to, in order, from a normal buffer."""
    cuts = np.flatnonzero(data <= _SPACE)  # every separator: a space or a row's NUL
    starts = np.concatenate([[0], cuts + 1])
    lengths = np.concatenate([cuts, [data.size]]) - starts
    rows = np.concatenate([[0], np.cumsum(data[cuts] == _NUL)])
    filled = lengths > 0  # an empty row is an empty word between two NULs
    starts, lengths, rows = starts[filled], lengths[filled], rows[filled]
    padded = np.concatenate([data, np.zeros(8, np.uint8)])  # every 8-byte read stays inside
    eights = np.ndarray((data.size + 1,), dtype="<u8", buffer=padded, strides=(1,))
    with np.errstate(over="ignore"):
        first = _low_bytes(eights[starts], lengths)
        first ^= lengths.astype(np.uint64) * _FOLD
        hashes = _mix(first)
        longer = np.flatnonzero(lengths > 8)
        step = 8
        while longer.size:
            chunk = _low_bytes(eights[starts[longer] + step], lengths[longer] - step)
            hashes[longer] = _mix(hashes[longer] ^ chunk)
            step += 8
            longer = longer[lengths[longer] > step]
    return hashes, rows.astype(np.int64)


def shingle_hashes(normal: Sequence[bytes], ngram: int) -> Shingles:
    """The word ``ngram``-gram hashes of each normalised row (see the module docstring)."""
    joined = b"\x00".join(normal)
    words, rows = _word_hashes(np.frombuffer(joined, dtype=np.uint8))
    per_row = np.bincount(rows, minlength=len(normal)).astype(np.int64)
    row_start = np.concatenate([[0], np.cumsum(per_row)])
    with np.errstate(over="ignore"):
        if words.size >= ngram:
            span = words.size - ngram + 1
            folded = words[:span].copy()
            for k in range(1, ngram):
                folded *= _FOLD
                folded += words[k : k + span]
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
        hashes = (_mix(full) >> np.uint64(32)).astype(np.uint32)
    counts = np.bincount(owner, minlength=len(normal)).astype(np.int64)
    return Shingles(hashes, np.concatenate([[0], np.cumsum(counts)]))
