"""Exact-substring deduplication (Lee et al., "Deduplicating Training Data Makes Language
Models Better": ExactSubstr): every span of at least ``min_length`` bytes of UTF-8 that
occurred earlier in the column is cut from the row, so boilerplate repeated inside long
documents (licences, navigation, a quoted paragraph) goes where whole-row methods keep the row.

What is cut, exactly: a byte is cut when it lies in a window of ``min_length`` bytes whose
content starts earlier somewhere in the column (rows in table order, then offset), so the first
occurrence of a repeated span stays and every later one goes, overlapping repeats included.
Spans are then shrunk to whole characters (a match may start inside a multi-byte character
whose other bytes differ), so the rows stay valid UTF-8. Empty and whitespace-only rows are
never looked at; rows the cut leaves empty or whitespace-only are dropped and counted.

How: the rows are joined into one byte buffer, each followed by 0xFF (a byte UTF-8 never
uses); its suffix array (libdivsufsort, through ``pydivsufsort``) and LCP array (Kasai) put
every suffix next to those sharing its longest prefix, so the suffixes starting with one
``min_length``-byte window are a run of neighbours with LCP >= ``min_length``; within a run,
every start but the smallest is a repeat. A window holding 0xFF is no window: as no row holds
that byte, two suffixes sharing ``min_length`` bytes of one row cannot have a suffix between
them whose window crosses a row's end, so the runs are exact. The repeated starts, sorted and
merged, are the cut spans (a test checks them against a brute-force search on random corpora).

Memory: the buffer (1 byte a byte of text), the suffix and LCP arrays (4 bytes a byte each,
8 past 2 GiB) and Kasai's rank array: about ``PEAK_PER_BYTE`` bytes a byte at the peak, so a
column is refused, in one line, above ``memory_limit()`` (there is no cutting a suffix array
into parts: a repeat across two parts would be missed).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from dataclasses import field
from typing import Any

import numpy as np

from opsloop.data.duplicates.engine import preview
from opsloop.errors import InvalidInput

__all__ = ["SubstringCut", "SubstringParams", "add_cut", "cut_repeats", "memory_limit"]

SEPARATOR = 0xFF  # ends every row in the buffer: never a byte of UTF-8
MAX_MIN_LENGTH = 1 << 20  # a repeat of a megabyte is a duplicated row: the row methods' job
PEAK_PER_BYTE = 14  # measured peak (bench/dedup.py --substring): buffer, SA, LCP, ranks
MAX_TEXT_BYTES = (1 << 31) - (1 << 20)  # 32-bit suffix array; past it, 8 bytes a byte each
MAX_SPANS = 20  # repeated spans a report lists (all are counted)
INSTALL = "substring dedup needs pydivsufsort: pip install pydivsufsort (or 'opsloop[llm]')"


def memory_limit() -> int:
    """Bytes of text one run may take: what fits in the memory free now, at most
    ``MAX_TEXT_BYTES``."""
    import psutil

    return min(MAX_TEXT_BYTES, psutil.virtual_memory().available // PEAK_PER_BYTE)


@dataclass(frozen=True)
class SubstringParams:
    """How long a repeat must be (bytes of UTF-8) and how much text a run may hold (``None``:
    :func:`memory_limit`); ``check`` refuses values that make no sense."""

    min_length: int = 100
    max_bytes: int | None = None

    def check(self) -> SubstringParams:
        if not 1 <= self.min_length <= MAX_MIN_LENGTH:
            raise InvalidInput(
                f"min_length must be between 1 and {MAX_MIN_LENGTH:,} bytes, not {self.min_length}"
            )
        return self


@dataclass
class SubstringCut:
    """What the cut did: the rows whose text changed and stay (``rows``, ascending, with
    their new ``texts``), the rows it left empty (``dropped``) and the report."""

    rows: np.ndarray
    texts: Any  # pyarrow.LargeStringArray, one text per row of ``rows``
    dropped: np.ndarray
    report: dict[str, Any] = field(default_factory=dict)

    def apply(self, batch: Any, start: int, column: str) -> Any:
        """``batch`` (a ``pyarrow.RecordBatch`` of the table's rows from ``start``) with the
        new texts of its changed rows in ``column``."""
        import pyarrow as pa
        import pyarrow.compute as pc

        lo, hi = np.searchsorted(self.rows, [start, start + batch.num_rows])
        if lo == hi:
            return batch
        at = batch.schema.get_field_index(column)
        mask = np.zeros(batch.num_rows, dtype=bool)
        mask[self.rows[lo:hi] - start] = True
        old = batch.column(at)
        new = pc.replace_with_mask(old, pa.array(mask), self.texts[lo:hi].cast(old.type))
        return batch.set_column(at, batch.schema.field(at), new)


def _is_blank(array: Any) -> np.ndarray:
    """Null, empty or whitespace-only, per row of a string array."""
    import pyarrow.compute as pc

    blank = pc.or_kleene(pc.equal(pc.utf8_length(array), 0), pc.utf8_is_space(array))
    return np.asarray(pc.fill_null(blank, True).to_numpy(zero_copy_only=False), dtype=bool)


def _size(count: float) -> str:
    if count >= 1 << 30:
        return f"{count / 2**30:.1f} GiB"
    return f"{count / 2**20:.1f} MiB" if count >= 1 << 20 else f"{count:,.0f} bytes"


def _join(
    arrays: Iterable[Any], keep: np.ndarray, limit: int, why: str, label: str
) -> tuple[np.ndarray, np.ndarray, int]:
    """The buffer of the kept non-blank rows, each followed by ``SEPARATOR``; their row
    numbers; the count of blank kept rows. ``InvalidInput`` as soon as the text passes
    ``limit`` bytes (``why``: where the limit comes from)."""
    import pyarrow as pa

    parts: list[np.ndarray] = []
    rows: list[np.ndarray] = []
    size = blank_rows = start = 0
    for array in arrays:
        n = len(array)
        blank = _is_blank(array)
        looked = keep[start : start + n]
        blank_rows += int((blank & looked).sum())
        chosen = looked & ~blank
        texts = array.filter(pa.array(chosen)).cast(pa.large_string())
        offsets = np.frombuffer(texts.buffers()[1], np.int64)[texts.offset :][: len(texts) + 1]
        data = np.frombuffer(texts.buffers()[2] or b"", np.uint8)[offsets[0] : offsets[-1]]
        size += data.size + len(texts)
        if size > limit:
            raise InvalidInput(
                f"substring dedup of {label} needs over {_size(size * PEAK_PER_BYTE)} of memory "
                f"for over {_size(size)} of text; the limit here is {_size(limit)} of text{why}"
            )
        parts.append(np.insert(data, offsets[1:] - offsets[0], SEPARATOR))
        rows.append(np.flatnonzero(chosen) + start)
        start += n
    buffer = np.concatenate([np.zeros(0, np.uint8), *parts])
    return buffer, np.concatenate([np.zeros(0, np.int64), *rows]), blank_rows


def _repeated_starts(buffer: np.ndarray, min_length: int) -> np.ndarray:
    """Every start (ascending) of a ``min_length``-byte window, inside one row of
    ``buffer``, whose content starts earlier in the buffer (see the module)."""
    try:
        from pydivsufsort import divsufsort
        from pydivsufsort import kasai
    except ImportError:
        raise InvalidInput(INSTALL) from None
    if buffer.size == 0:
        return np.zeros(0, np.int64)
    suffixes = divsufsort(buffer)
    lcp = kasai(buffer, suffixes)  # lcp[i]: prefix shared by suffixes i and i + 1
    link = lcp >= min_length
    del lcp
    pairs = np.flatnonzero(link)
    ends = np.flatnonzero(buffer == SEPARATOR)
    starts = suffixes[pairs]
    inside = ends[np.searchsorted(ends, starts)] - starts >= min_length
    link[pairs[~inside]] = False  # a shared prefix through a row's end: no window
    del pairs, starts, inside
    member = link.copy()
    member[1:] |= link[:-1]
    runs = np.flatnonzero(member)
    first = np.ones(runs.size, dtype=bool)
    first[1:] = ~link[runs[1:] - 1]
    del link, member
    positions = suffixes[runs]
    del suffixes
    heads = np.flatnonzero(first)
    earliest = np.repeat(np.minimum.reduceat(positions, heads), np.diff(heads, append=runs.size))
    return np.sort(positions[positions != earliest]).astype(np.int64)


def _cut_spans(buffer: np.ndarray, starts: np.ndarray, min_length: int) -> np.ndarray:
    """The repeated windows at ``starts`` merged into spans (2 x spans: start, end), each
    shrunk to whole characters; empty ones left out."""
    if starts.size == 0:
        return np.zeros((2, 0), np.int64)
    new = np.ones(starts.size, dtype=bool)
    new[1:] = starts[1:] > starts[:-1] + min_length
    lo = starts[new]
    hi = starts[np.flatnonzero(np.append(new[1:], True))] + min_length
    padded = np.append(buffer, np.uint8(SEPARATOR))
    for _ in range(3):  # a UTF-8 character has at most 3 continuation bytes (10xxxxxx)
        lo += (padded[lo] & 0xC0) == 0x80
        hi -= (padded[hi] & 0xC0) == 0x80
    wide = lo < hi
    return np.stack([lo[wide], hi[wide]])


def cut_repeats(
    arrays: Iterable[Any],
    keep: np.ndarray,
    params: SubstringParams = SubstringParams(),
    label: str = "the column",
) -> SubstringCut:
    """Cut the repeated spans from the rows of a text column where ``keep`` is true (the
    column as ``pyarrow`` string arrays in row order; other rows are neither cut nor looked
    at). The report: rows looked at, blank rows, spans and bytes and characters removed,
    rows changed and dropped, and the ``MAX_SPANS`` spans that removed most bytes (text,
    bytes, times cut, first row cut)."""
    import pyarrow as pa

    params = params.check()
    if params.max_bytes is not None:
        limit, why = params.max_bytes, ""
    else:
        limit = memory_limit()
        why = f" (the free memory / {PEAK_PER_BYTE}, at most 2 GiB): use the row methods alone"
    buffer, rows, blank_rows = _join(arrays, keep, limit, why, label)
    spans = _cut_spans(buffer, _repeated_starts(buffer, params.min_length), params.min_length)
    mark = np.zeros(buffer.size + 1, np.int8)
    np.add.at(mark, spans[0], 1)
    np.add.at(mark, spans[1], -1)
    cut = np.cumsum(mark[:-1], dtype=np.int8).astype(bool)
    del mark
    characters = int(np.count_nonzero(cut & ((buffer & 0xC0) != 0x80)))
    left = buffer[~cut]
    del cut
    ends = np.flatnonzero(left == SEPARATOR)
    offsets = np.concatenate([[0], ends - np.arange(ends.size)]).astype(np.int64)
    data = left[left != SEPARATOR]
    del left
    new_texts = pa.LargeStringArray.from_buffers(
        rows.size, pa.py_buffer(offsets), pa.py_buffer(data)
    )
    doc_ends = np.flatnonzero(buffer == SEPARATOR)
    doc_of_span = np.searchsorted(doc_ends, spans[0])
    changed = np.unique(doc_of_span)
    texts = new_texts.take(pa.array(changed))
    emptied = _is_blank(texts)
    stays = changed[~emptied]
    report = {
        "min_length": params.min_length,
        "unit": "bytes of UTF-8",
        "rows_looked_at": int(rows.size),
        "blank_rows": blank_rows,
        "bytes_scanned": int(buffer.size - rows.size),
        "spans_removed": int(spans.shape[1]),
        "bytes_removed": int((spans[1] - spans[0]).sum()),
        "characters_removed": characters,
        "rows_changed": int(changed.size),
        "rows_dropped": int(emptied.sum()),
        "spans": _biggest(buffer, spans, rows[doc_of_span]),
    }
    return SubstringCut(
        rows=rows[stays],
        texts=texts.filter(pa.array(~emptied)),
        dropped=rows[changed[emptied]],
        report=report,
    )


def _biggest(buffer: np.ndarray, spans: np.ndarray, rows: np.ndarray) -> list[dict[str, Any]]:
    """The ``MAX_SPANS`` cut texts that removed most bytes in all (length x times cut), each
    with its length, times cut and first row; spans are told apart by a 64-bit hash of their
    bytes, so only the listed ones become strings."""
    seen: dict[int, list[int]] = {}  # hash -> [times cut, first span]
    for i, (lo, hi) in enumerate(zip(spans[0].tolist(), spans[1].tolist(), strict=True)):
        entry = seen.setdefault(hash(buffer[lo:hi].tobytes()), [0, i])
        entry[0] += 1
    lengths = spans[1] - spans[0]
    by_bytes = sorted(seen.values(), key=lambda entry: (-entry[0] * lengths[entry[1]], entry[1]))
    return [
        {
            "text": preview(buffer[spans[0, i] : spans[1, i]].tobytes().decode()),
            "bytes": int(lengths[i]),
            "cuts": count,
            "row": int(rows[i]),
        }
        for count, i in by_bytes[:MAX_SPANS]
    ]


def add_cut(
    report: dict[str, Any] | None, keep: np.ndarray, cut: SubstringCut, policy: str
) -> tuple[np.ndarray, dict[str, Any]]:
    """The rows kept after the cut, and the row methods' report (``None``: none ran, so no
    row was clustered; ``policy`` is the ``keep`` asked) with the cut's: its rows dropped
    under ``removed["substring"]``, its figures under ``"substring"``."""
    keep = keep.copy()
    keep[cut.dropped] = False
    if report is None:
        report = {
            "rows": keep.size,
            "empty_rows": cut.report["blank_rows"],
            "removed": {"exact": 0, "near": 0, "semantic": 0},
            "clusters_total": 0,
            "clusters": [],
            "methods": [],
            "keep": policy,
        }
    report["rows_kept"] = int(keep.sum())
    report["removed"]["substring"] = int(cut.dropped.size)
    report["methods"] = [*report["methods"], "substring"]
    report["substring"] = cut.report
    return keep, report
