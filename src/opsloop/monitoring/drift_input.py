"""Reading a table file for a drift check, refusing the malformed ones with one clear line.

pandas accepts more than it should: a row with fewer fields than the header is padded with
missing values, a header one field short makes the first column the index, and a file
separated by semicolons reads as one column named ``a;b;c``; drift would then be computed on
the wrong table (or on no column at all) without a word. It also fails with a traceback on
binary bytes or an empty file. ``read_table`` answers each with ``InvalidInput`` naming the
file and the line.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from opsloop.errors import InvalidInput

__all__ = ["check_columns", "read_table"]

SCAN_LIMIT = 256 * 2**20  # bytes; larger CSVs are checked for ragged rows in their first part
_SEPARATORS = {";": "semicolons", "\t": "tabs", "|": "bars"}


def _ragged_line(data: bytes, sep: bytes) -> tuple[int, int, int] | None:
    """(line number, its field count, the header's) of the first row whose field count differs
    from the header's, counting separators per line (vectorised); None when all agree. Files
    with quoted fields are checked by the csv module over their first 10,000 records."""
    if b'"' in data:
        import csv

        reader = csv.reader(
            io.StringIO(data.decode("utf-8", errors="replace")), delimiter=sep.decode()
        )
        header: int | None = None
        for number, row in enumerate(reader, 1):
            if number > 10_000:
                break
            if not row:
                continue
            if header is None:
                header = len(row)
            elif len(row) != header:
                return reader.line_num, len(row), header
        return None
    buf = np.frombuffer(data, dtype=np.uint8)
    ends = np.flatnonzero(buf == ord("\n"))
    if not len(buf) or buf[-1] != ord("\n"):
        ends = np.concatenate([ends, [len(buf)]])
    starts = np.concatenate([[0], ends[:-1] + 1])
    seps = np.flatnonzero(buf == sep[0])
    fields = np.searchsorted(seps, ends) - np.searchsorted(seps, starts) + 1
    width = ends - starts - (buf[np.maximum(ends - 1, 0)] == ord("\r"))
    rows = np.flatnonzero(width > 0)  # pandas skips blank lines
    if len(rows) < 2:
        return None
    header = fields[rows[0]]
    bad = rows[1:][fields[rows[1:]] != header]
    if not len(bad):
        return None
    return int(bad[0]) + 1, int(fields[bad[0]]), int(header)


def _read_csv(path: Path, sep: str) -> Any:
    import pandas as pd

    data = path.read_bytes()
    if not data.strip():
        raise InvalidInput(f"{path}: empty file, not a table (a CSV needs a header line)")
    if b"\x00" in data[:65536]:
        raise InvalidInput(f"{path}: binary data, not a CSV text file")
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise InvalidInput(
            f"{path}: not a UTF-8 text CSV (byte {e.start} is {data[e.start]:#04x})"
        ) from None
    ragged = _ragged_line(data[:SCAN_LIMIT], sep.encode())
    if ragged is not None:
        line, got, want = ragged
        raise InvalidInput(
            f"{path}: line {line} has {got} fields, the header has {want}: not a well-formed CSV"
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", pd.errors.ParserWarning)
            frame = pd.read_csv(io.BytesIO(data), sep=sep, index_col=False)
    except (pd.errors.ParserError, pd.errors.ParserWarning, pd.errors.EmptyDataError) as e:
        detail = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise InvalidInput(f"{path}: not a well-formed CSV: {detail}") from None
    if len(frame.columns) == 1:
        used = [
            word for mark, word in _SEPARATORS.items() if mark != sep and mark in frame.columns[0]
        ]
        if used:
            raise InvalidInput(
                f"{path}: reads as one column named {str(frame.columns[0])[:60]!r}: is it "
                f"separated by {used[0]} instead of {'tabs' if sep == chr(9) else 'commas'}?"
            )
    return frame


def read_table(path: Path) -> Any:
    """A DataFrame from a .csv, .tsv, .parquet (or a folder of them) or .jsonl file."""
    import pandas as pd

    suffix = path.suffix.lower()
    if suffix in (".csv", ".tsv"):
        return _read_csv(path, "\t" if suffix == ".tsv" else ",")
    try:
        if path.is_dir() or suffix in (".parquet", ".pq"):
            return pd.read_parquet(path)
        if suffix in (".jsonl", ".ndjson"):
            return pd.read_json(path, lines=True)
    except (OSError, ValueError) as e:  # pyarrow's ArrowInvalid is a ValueError
        detail = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        kind = "JSON lines" if suffix in (".jsonl", ".ndjson") else "Parquet"
        raise InvalidInput(f"{path}: not a readable {kind} file: {detail}") from None
    raise InvalidInput(f"{path}: not a table file (use .csv, .tsv, .parquet or .jsonl)")


def check_columns(frame: Any, wanted: list[str], source: Any) -> None:
    """Refuse a current table that shares no column with the ones to test: a file with one
    column named ``a;b;c`` is a CSV with another separator, not a table without features."""
    if len(frame.columns) == 0 or any(c in frame.columns for c in wanted):
        return
    names = [str(c) for c in frame.columns]
    shown = ", ".join(repr(n[:40]) for n in names[:5]) + (", ..." if len(names) > 5 else "")
    raise InvalidInput(
        f"{source}: has none of the reference's columns (it has {len(names)}: {shown})"
    )
