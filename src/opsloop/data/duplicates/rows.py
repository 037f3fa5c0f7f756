"""Reading a table version's rows for deduplication, and writing the rows it keeps.

The table is read whole into Arrow (one DuckDB scan; the text column and every other column
stay aligned row for row) and the kept rows are written back in the version's own format:
Parquet with its schema, CSV with a header, JSON lines. The sketches made of the texts
spill to disk past a row budget (:mod:`.sketch`); the table itself is held whole (reading it
in batches is the next slice's).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from opsloop.data.tabular import TABLE_VIEW
from opsloop.data.tabular import open_table
from opsloop.errors import InvalidInput

__all__ = ["read_table", "score_values", "text_values", "write_table"]


def _check_utf8(path: str, label: str) -> None:
    """``InvalidInput`` naming the line of the first byte that is not UTF-8 (DuckDB's own
    error says only "CSV Error on Line: 3")."""
    import codecs

    decoder = codecs.getincrementaldecoder("utf-8")()
    line = 1
    with open(path, "rb") as fh:
        while True:
            chunk = fh.read(1 << 22)
            try:
                decoder.decode(chunk, final=not chunk)
            except UnicodeDecodeError as exc:
                line += chunk[: exc.start].count(b"\n")
                bad = chunk[exc.start : exc.start + 1]
                what = f"byte 0x{bad.hex()} on line {line}" if bad else "a cut character at the end"
                raise InvalidInput(
                    f"{label} is not UTF-8 text: {what}; "
                    "re-encode it (iconv -t UTF-8) and add it again"
                ) from None
            if not chunk:
                return
            line += chunk.count(b"\n")


def read_table(files: Sequence[str], fmt: str, label: str) -> Any:
    """The table as a ``pyarrow.Table``; bytes that are not UTF-8 are ``InvalidInput``."""
    import duckdb

    if fmt in ("csv", "jsonl"):
        for path in files:
            _check_utf8(path, label)
    with open_table(files, fmt) as con:
        try:
            return con.sql(f"SELECT * FROM {TABLE_VIEW}").to_arrow_table()
        except duckdb.Error as exc:
            first = str(exc).strip().splitlines()[0]
            if "unicode" in first.lower() or "utf-8" in first.lower():
                raise InvalidInput(
                    f"{label} holds bytes that are not UTF-8 text: {first}"
                ) from None
            raise InvalidInput(f"cannot read {label}: {first}") from None


def _column(table: Any, name: str, label: str) -> Any:
    if name not in table.column_names:
        raise InvalidInput(
            f"{label} has no column {name!r}; its columns: {', '.join(table.column_names)}"
        )
    return table.column(name)


def text_values(table: Any, name: str, label: str) -> list[str | None]:
    """The text column ``name``; another type is ``InvalidInput`` naming the text columns."""
    import pyarrow as pa

    column = _column(table, name, label)
    if not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
        texts = [
            f.name
            for f in table.schema
            if pa.types.is_string(f.type) or pa.types.is_large_string(f.type)
        ]
        raise InvalidInput(
            f"column {name!r} of {label} is {column.type}, not text; "
            f"text columns: {', '.join(texts) or 'none'}"
        )
    values: list[str | None] = column.to_pylist()
    return values


def score_values(table: Any, name: str, label: str) -> np.ndarray:
    """The numeric column ``name`` as floats (missing values are NaN)."""
    import pyarrow as pa

    column = _column(table, name, label)
    if not (pa.types.is_integer(column.type) or pa.types.is_floating(column.type)):
        raise InvalidInput(f"score column {name!r} of {label} is {column.type}, not a number")
    return np.asarray(column.to_numpy(zero_copy_only=False), dtype=np.float64)


def write_table(table: Any, fmt: str, path: Path) -> None:
    """Write ``table`` at ``path`` as ``fmt`` (parquet, csv or jsonl)."""
    if fmt == "parquet":
        import pyarrow.parquet as pq

        pq.write_table(table, path)
    elif fmt == "csv":
        import pyarrow.csv as pcsv

        pcsv.write_csv(table, path)
    elif fmt == "jsonl":
        import duckdb

        con = duckdb.connect()
        try:
            con.register("kept", table)
            con.execute(f"COPY kept TO '{path.as_posix()}' (FORMAT json)")
        finally:
            con.close()
    else:
        raise InvalidInput(f"cannot write a {fmt} table")
