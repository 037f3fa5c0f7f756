"""Reading a table version's rows for deduplication, and writing the rows it keeps.

The table is never held whole: a :class:`TableScan` runs a DuckDB scan of the version's files
once per pass, a record batch at a time, rows in file order. The text column reaches the
engine as a :class:`TextColumn`, converted to Python strings a slice at a time as the engine
reads forward (sketching, then the few rows a report shows); the kept rows are filtered and
written back a batch at a time in the version's own format: Parquet with its schema and
pyarrow's row groups, CSV with a header, JSON lines (the same bytes as the filtered table
written whole). Ten million short rows held as Arrow would take 2 GB, as a list of ``str``
2 GB more. The sketches made of the texts spill to disk past a row budget (:mod:`.sketch`).
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Generator
from collections.abc import Iterator
from collections.abc import Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from typing import overload

import numpy as np

from opsloop.data.tabular import TABLE_VIEW
from opsloop.data.tabular import open_table
from opsloop.errors import InvalidInput
from opsloop.kernel.duckdb_conn import duckdb_connection

__all__ = ["TableScan", "TextColumn", "write_kept"]

SLICE = 10_000  # rows converted to Python strings at a time when iterating
BATCH = 1_000_000  # rows a scan hands over at most at a time (DuckDB's own Arrow batches)
ROW_GROUP = 1 << 20  # rows per Parquet row group (pyarrow's default for a whole table)
Edit = Callable[[Any, int], Any]  # (record batch, its first row number) -> the batch to write


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


class TableScan:
    """A table version's files (``fmt``: csv, parquet or jsonl), scanned afresh for each
    pass. Bytes that are not UTF-8 are ``InvalidInput`` naming the line (CSV, JSON lines:
    checked once here) or DuckDB's message (Parquet: met by the scan)."""

    def __init__(self, files: Sequence[str], fmt: str, label: str) -> None:
        self.files, self.fmt, self.label = list(files), fmt, label
        if fmt in ("csv", "jsonl"):
            for path in files:
                _check_utf8(path, label)
        with self._scan(f"SELECT * FROM {TABLE_VIEW} LIMIT 0") as reader:
            self.schema = reader.schema
        with self._scan(f"SELECT count(*) AS n FROM {TABLE_VIEW}") as reader:
            self.rows = int(reader.read_all().column(0)[0].as_py())

    @contextmanager
    def _scan(self, query: str) -> Iterator[Any]:
        """The query's ``pyarrow.RecordBatchReader`` over a connection of its own."""
        import duckdb

        with open_table(self.files, self.fmt) as con:  # its progress bar is off
            try:
                reader = con.sql(query).to_arrow_reader(BATCH)
            except duckdb.Error as exc:
                raise _read_error(exc, self.label) from None
            yield reader

    def batches(self, columns: Sequence[str] | None = None) -> Generator[Any, None, None]:
        """The rows' record batches in order, all columns or ``columns``."""
        names = "*" if columns is None else ", ".join(_quoted(c) for c in columns)
        with self._scan(f"SELECT {names} FROM {TABLE_VIEW}") as reader:
            yield from _read_through(reader, self.label)

    def _field(self, name: str) -> Any:
        if name not in self.schema.names:
            raise InvalidInput(
                f"{self.label} has no column {name!r}; its columns: {', '.join(self.schema.names)}"
            )
        return self.schema.field(name)

    def text_column(self, name: str) -> TextColumn:
        """The text column ``name``; another type is ``InvalidInput`` naming the text
        columns."""
        import pyarrow as pa

        field = self._field(name)
        if not (pa.types.is_string(field.type) or pa.types.is_large_string(field.type)):
            texts = [
                f.name
                for f in self.schema
                if pa.types.is_string(f.type) or pa.types.is_large_string(f.type)
            ]
            raise InvalidInput(
                f"column {name!r} of {self.label} is {field.type}, not text; "
                f"text columns: {', '.join(texts) or 'none'}"
            )
        return TextColumn(self, name)

    def scores(self, name: str) -> np.ndarray:
        """The numeric column ``name`` as floats (missing values are NaN)."""
        import pyarrow as pa

        field = self._field(name)
        if not (pa.types.is_integer(field.type) or pa.types.is_floating(field.type)):
            raise InvalidInput(
                f"score column {name!r} of {self.label} is {field.type}, not a number"
            )
        out = np.empty(self.rows, dtype=np.float64)
        lo = 0
        for batch in self.batches([name]):
            out[lo : lo + batch.num_rows] = batch.column(0).to_numpy(zero_copy_only=False)
            lo += batch.num_rows
        return out


def _read_through(reader: Any, label: str) -> Iterator[Any]:
    import duckdb

    try:
        yield from reader
    except duckdb.Error as exc:
        raise _read_error(exc, label) from None


def _read_error(exc: Exception, label: str) -> InvalidInput:
    first = str(exc).strip().splitlines()[0]
    if "unicode" in first.lower() or "utf-8" in first.lower():
        return InvalidInput(f"{label} holds bytes that are not UTF-8 text: {first}")
    return InvalidInput(f"cannot read {label}: {first}")


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class TextColumn(Sequence[str | None]):
    """A table's text column as a read-only sequence of ``str``, read forward by one scan:
    a slice is converted when asked for; asking for an earlier row starts a new scan. The
    engine reads forward (a chunk at a time, then the rows a report shows), so one pass
    costs one scan."""

    def __init__(self, table: TableScan, name: str) -> None:
        self.table, self.name = table, name
        self._batches: Generator[Any, None, None] | None = None
        self._held: Any = None  # the current batch's text array, from row _start
        self._start = 0

    def __len__(self) -> int:
        return self.table.rows

    def _restart(self) -> None:
        if self._batches is not None:
            self._batches.close()  # its connection with it
        self._batches = self.table.batches([self.name])
        self._held, self._start = None, 0

    def _forward(self, lo: int, hi: int) -> list[str | None]:
        """Rows ``lo`` to ``hi`` (``lo`` at or past the rows read so far)."""
        values: list[str | None] = []
        while lo < hi:
            if self._held is None or lo >= self._start + len(self._held):
                start = self._start + (len(self._held) if self._held is not None else 0)
                assert self._batches is not None
                batch = next(self._batches, None)
                if batch is None:
                    break
                self._held, self._start = batch.column(0), start
                continue
            end = min(hi, self._start + len(self._held))
            values += self._held.slice(lo - self._start, end - lo).to_pylist()
            lo = end
        return values

    @overload
    def __getitem__(self, index: int) -> str | None: ...

    @overload
    def __getitem__(self, index: slice) -> list[str | None]: ...

    def __getitem__(self, index: int | slice) -> str | list[str | None] | None:
        if isinstance(index, slice):
            lo, hi, step = index.indices(len(self))
            if self._batches is None or lo < self._start:
                self._restart()
            values = self._forward(lo, hi)
            return values if step == 1 else values[::step]
        row = index + len(self) if index < 0 else index
        if not 0 <= row < len(self):
            raise IndexError(f"row {index} of {len(self)}")
        return self[row : row + 1][0]

    def __iter__(self) -> Iterator[str | None]:
        for lo in range(0, len(self), SLICE):
            yield from self[lo : lo + SLICE]


def _kept_batches(table: TableScan, keep: np.ndarray, edit: Edit | None) -> Iterator[Any]:
    """The rows of ``table`` where ``keep`` is true, filtered one of DuckDB's record batches
    at a time (the chunks of the whole table DuckDB would hand over, so the Parquet bytes are
    those of the filtered table written whole), each first passed through ``edit``."""
    import pyarrow as pa

    lo = 0
    for batch in table.batches():
        edited = edit(batch, lo) if edit is not None else batch
        yield edited.filter(pa.array(keep[lo : lo + batch.num_rows]))
        lo += batch.num_rows


def write_kept(table: TableScan, keep: np.ndarray, path: Path, edit: Edit | None = None) -> None:
    """Write the rows of ``table`` where ``keep`` is true at ``path`` in the table's format,
    a batch at a time; Parquet in row groups of ``ROW_GROUP`` rows, as
    ``pyarrow.parquet.write_table`` cuts a whole table. ``edit(batch, first row)`` may
    change a batch's values first (substring dedup's cut texts), never its schema."""
    import pyarrow as pa

    fmt = table.fmt
    batches = _kept_batches(table, keep, edit)
    if fmt == "parquet":
        import pyarrow.parquet as pq

        with pq.ParquetWriter(path, table.schema) as writer:
            group: list[Any] = []
            held = 0
            for batch in batches:
                group.append(batch)
                held += batch.num_rows
                if held >= ROW_GROUP:
                    whole = pa.Table.from_batches(group, table.schema)
                    writer.write_table(whole.slice(0, ROW_GROUP), ROW_GROUP)
                    group, held = whole.slice(ROW_GROUP).to_batches(), held - ROW_GROUP
            if held:
                writer.write_table(pa.Table.from_batches(group, table.schema), ROW_GROUP)
    elif fmt == "csv":
        import pyarrow.csv as pcsv

        with pcsv.CSVWriter(path, table.schema) as writer:
            for batch in batches:
                writer.write_batch(batch)
    elif fmt == "jsonl":
        con = duckdb_connection()
        try:
            con.register("kept", pa.RecordBatchReader.from_batches(table.schema, batches))
            con.execute(f"COPY kept TO '{path.as_posix()}' (FORMAT json)")
        finally:
            con.close()
    else:
        raise InvalidInput(f"cannot write a {fmt} table")
