"""Tables inside versions: which versions are tables, and reading them with DuckDB.

A version is a table when it is one CSV / TSV / Parquet / JSON-lines file, or a folder of
Parquet files (a partitioned dataset) read as one table. DuckDB streams every format, so
statistics, validation and profiles work on tables larger than memory.
"""

from __future__ import annotations

from collections.abc import Iterator
from collections.abc import Sequence
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

from opsloop.data.entities import TableColumn
from opsloop.data.entities import TableInfo
from opsloop.errors import InvalidInput
from opsloop.kernel.duckdb_conn import duckdb_connection

__all__ = ["TABLE_VIEW", "describe_table", "open_table", "table_format"]

TABLE_VIEW = "data"
_FORMATS = {
    ".csv": "csv",
    ".tsv": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
}
_STATS = ("min", "max", "approx_unique", "avg", "std", "q25", "q50", "q75", "null_percentage")
_STAT_NAMES = {"approx_unique": "distinct", "avg": "mean", "null_percentage": "null_pct"}


def _suffix(path: str) -> str:
    dot = path.rfind(".")
    return path[dot:].lower() if dot > path.rfind("/") else ""


def table_format(paths: Sequence[str], kind: str) -> str | None:
    """The table format of a version's files, or None when they are not one table."""
    if kind == "file" and len(paths) == 1:
        return _FORMATS.get(_suffix(paths[0]))
    if paths and all(_FORMATS.get(_suffix(p)) == "parquet" for p in paths):
        return "parquet"
    return None


@contextmanager
def open_table(files: Sequence[str], fmt: str) -> Iterator[Any]:
    """A DuckDB connection with the table as the view ``data``; errors name the file."""
    import duckdb

    con = duckdb_connection()
    try:
        try:
            if fmt == "csv":
                relation = con.read_csv(files[0])
            elif fmt == "parquet":
                relation = con.read_parquet(list(files))
            elif fmt == "jsonl":
                relation = con.read_json(files[0], format="newline_delimited")
            else:
                raise InvalidInput(f"unknown table format {fmt!r}")
            relation.create_view(TABLE_VIEW)
        except duckdb.Error as exc:
            shown = files[0] if len(files) == 1 else f"{len(files)} {fmt} files"
            raise InvalidInput(f"cannot read {shown} as {fmt}: {_first_line(exc)}") from None
        yield con
    finally:
        con.close()


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else exc.__class__.__name__


def describe_table(files: Sequence[str], fmt: str) -> TableInfo:
    """Row count, column types and summary statistics (one DuckDB ``SUMMARIZE`` pass)."""
    import duckdb

    with open_table(files, fmt) as con:
        try:
            summary = con.sql(f"SUMMARIZE {TABLE_VIEW}")
            names = summary.columns
            rows = summary.fetchall()
        except duckdb.Error as exc:
            raise InvalidInput(f"cannot summarise the table: {_first_line(exc)}") from None
    columns = []
    count = 0
    for values in rows:
        record = dict(zip(names, values, strict=True))
        count = int(record.get("count") or 0)
        stats = {_STAT_NAMES.get(k, k): _plain(record.get(k)) for k in _STATS}
        columns.append(
            TableColumn(name=record["column_name"], type=record["column_type"], stats=stats)
        )
    return TableInfo(format=fmt, rows=count, columns=columns)


def _plain(value: Any) -> float | int | str | None:
    """A JSON-friendly statistic: numbers stay numbers, numeric strings become floats."""
    if value is None or isinstance(value, int | float):
        return value
    if isinstance(value, Decimal):
        return float(value)
    text = str(value)
    try:
        number = float(text)
    except ValueError:
        return text
    return number if text.strip().lower() not in ("nan", "inf", "-inf", "infinity") else text
