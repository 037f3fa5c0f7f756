"""Reading the prediction log: ``PredictionReader``, the queries alone (no journal of its own,
no sealing thread), what a process that only reads opens (``opsloop monitors check``), and what
:class:`opsloop.serving.predlog.PredictionLog` reads with. It reads the sealed Parquet files and
the rows not sealed yet (every process's journals in the log's folder and, with a shared log,
the shared stream) together, so a row is visible as soon as it is logged; with a shared log the
sealed files are every replica's (:mod:`.predlog_seal`).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING
from typing import Any

from opsloop.kernel.duckdb_conn import duckdb_connection
from opsloop.serving.predlog_rows import COLUMNS
from opsloop.serving.predlog_rows import day_of
from opsloop.serving.predlog_rows import schema_of

if TYPE_CHECKING:
    import pyarrow as pa

    from opsloop.serving.predlog_shared import SharedLog

__all__ = ["PredictionReader"]


class PredictionReader:
    """The queries over the log under ``folder``: its sealed Parquet files and every process's
    live journal, read as they are. Opens no journal and starts no thread, so a process that
    only reads (a monitor check) pays for none of the writing side; the rows it sees are the
    ones a ``PredictionLog`` on the same folder sees. With ``shared`` (every replica's
    sealed partitions on an object store, and its stream if one is configured), the rows of
    every replica: theirs sealed or in the stream, this host's in its journals too."""

    def __init__(self, folder: Path, shared: SharedLog | None = None) -> None:
        self.folder = folder
        self.shared = shared

    def _rows(self, kind: str, deployment: str) -> pa.Table:
        """Sealed (Parquet) and live (journal) rows of one deployment, as one Arrow table."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        schema = schema_of(kind)
        stored = schema.remove(schema.get_field_index("deployment"))
        live = [r for r in self._live_rows(kind) if r.get("deployment") == deployment]
        tables = [pq.read_table(p, schema=stored) for p in self._sealed_files(kind, deployment)]
        if live:
            tables.append(pa.Table.from_pylist(live, schema=schema).drop_columns(["deployment"]))
        table = pa.concat_tables(tables) if tables else stored.empty_table()
        return table.append_column("deployment", pa.array([deployment] * table.num_rows))

    def _sealed_files(self, kind: str, deployment: str, first_day: str = "") -> list[Path]:
        """The deployment's sealed Parquet files of ``kind`` from ``first_day`` on: this
        folder's, and every replica's on the shared store (each file in one place only)."""
        folder = self.folder / kind / f"deployment={deployment}"
        files = [p for p in sorted(folder.glob("date=*/*.parquet"))
                 if p.parent.name.removeprefix("date=") >= first_day]  # fmt: skip
        if self.shared is not None:
            files += self.shared.store.files(kind, deployment, first_day)
        return files

    def _live_rows(self, kind: str) -> list[dict[str, Any]]:
        """Rows not sealed yet: this host's journals, and the shared stream's entries."""
        rows = list(self._journal_rows(kind))
        if self.shared is not None and self.shared.stream is not None:
            rows += self.shared.stream.rows(kind)
        return rows

    def _journal_rows(self, kind: str) -> Iterator[dict[str, Any]]:
        for path in self.folder.glob(f"{kind}-*"):
            with contextlib.suppress(FileNotFoundError), open(path, encoding="utf-8") as f:
                for line in f:
                    if line.endswith("\n"):  # a line being written right now is skipped
                        yield json.loads(line)

    def predictions(self, deployment: str, *, with_labels: bool = True) -> Any:
        """Every logged prediction of ``deployment`` (a pandas DataFrame, oldest first), with
        the latest ground-truth ``label`` joined by request id."""
        preds = self._rows("predictions", deployment)
        con = duckdb_connection()
        con.register("preds", preds)
        if not with_labels:
            return con.sql("SELECT DISTINCT * FROM preds ORDER BY ts_ms").df()
        con.register("labels", self._rows("labels", deployment))
        return con.sql(
            """
            SELECT p.*, l.label
            FROM (SELECT DISTINCT * FROM preds) p
            LEFT JOIN (
                SELECT request_id, arg_max(label, ts_ms) AS label FROM labels GROUP BY request_id
            ) l USING (request_id)
            ORDER BY p.ts_ms
            """
        ).df()

    def requests(
        self, deployment: str, *, since_ms: int | None = None, until_ms: int | None = None,
        last: int | None = None, first: int | None = None,
    ) -> Any:  # fmt: skip
        """Answered (non-shadow) requests of ``deployment`` with ``since_ms <= ts_ms <
        until_ms``, oldest first, with labels joined (a pandas DataFrame): all of them, the
        newest ``last`` or the oldest ``first``. DuckDB reads only the days' Parquet files the
        range touches."""
        con = duckdb_connection()
        return self._requests(con, deployment, since_ms, until_ms, last, first).df()

    def request_columns(
        self, deployment: str, *, since_ms: int | None = None, until_ms: int | None = None,
        last: int | None = None, first: int | None = None,
    ) -> dict[str, list[Any]]:  # fmt: skip
        """The rows ``requests`` gives, as Python lists by column name (a missing value is
        None): what a monitor check reads. Neither pandas nor pyarrow is imported for it: the
        columns come out as NumPy arrays (masked where values are missing), as fast as
        through Arrow and faster than row by row."""
        con = duckdb_connection()
        relation = self._requests(con, deployment, since_ms, until_ms, last, first)
        return {name: values.tolist() for name, values in relation.fetchnumpy().items()}

    def _requests(
        self, con: Any, deployment: str, since_ms: int | None, until_ms: int | None,
        last: int | None, first: int | None,
    ) -> Any:  # fmt: skip
        """The DuckDB relation of ``requests``."""
        predictions, params = self._stored(
            con, "predictions", deployment, day_of(since_ms) if since_ms is not None else ""
        )
        labels, label_params = self._stored(con, "labels", deployment)
        where = ["NOT shadow"]
        if since_ms is not None:
            where.append("ts_ms >= ?")
            params.append(since_ms)
        if until_ms is not None:
            where.append("ts_ms < ?")
            params.append(until_ms)
        order, limit = "ASC", ""
        if last is not None:
            order, limit = "DESC", f"LIMIT {int(last)}"
        elif first is not None:
            limit = f"LIMIT {int(first)}"
        return con.sql(
            f"""
            SELECT p.*, l.label FROM (
                SELECT DISTINCT * FROM ({predictions})
                WHERE {" AND ".join(where)} ORDER BY ts_ms {order}, request_id {order} {limit}
            ) p
            LEFT JOIN (
                SELECT request_id, arg_max(label, ts_ms) AS label FROM ({labels})
                GROUP BY request_id
            ) l USING (request_id)
            ORDER BY p.ts_ms, p.request_id
            """,
            params=[*params, *label_params],
        )

    def _stored(
        self, con: Any, kind: str, deployment: str, first_day: str = ""
    ) -> tuple[str, list[Any]]:
        """A ``SELECT`` of the deployment's rows of ``kind`` (its sealed Parquet files from
        ``first_day`` on, then its live journal rows), and the parameters it takes: the live
        rows go in as values (a registered Python table, or one built by pyarrow, imports
        pandas)."""
        stored = [(name, sql) for name, sql in COLUMNS[kind] if name != "deployment"]
        # journals first, then files: a seal in between shows its rows twice (DISTINCT keeps
        # one), never zero times, as listing the files first could
        live = [r for r in self._live_rows(kind) if r.get("deployment") == deployment]
        files = [str(p) for p in self._sealed_files(kind, deployment, first_day)]
        values = ", ".join(f"unnest(?::{sql}[]) AS {name}" for name, sql in stored)
        params = [[row.get(name) for row in live] for name, _ in stored]
        sealed = _select_sealed(con, files, [name for name, _ in stored])
        return f"{sealed}SELECT {values}", params

    def window(self, deployment: str, version: int, since_ms: int) -> dict[str, Any]:
        """What a rollout analysis reads: the version's answered (non-shadow) requests since
        ``since_ms``: count, errors, latency quantiles, and quality where labels were joined."""
        frame = self.predictions(deployment)
        if len(frame):
            frame = frame[
                (frame["version"] == version) & ~frame["shadow"] & (frame["ts_ms"] >= since_ms)
            ]
        out: dict[str, Any] = {"requests": len(frame), "errors": 0}
        if not len(frame):
            return out
        out["errors"] = int(frame["error"].notna().sum())
        ok = frame[frame["error"].isna()]
        if len(ok):
            out["latency_p50_ms"] = float(ok["latency_ms"].quantile(0.5))
            out["latency_p99_ms"] = float(ok["latency_ms"].quantile(0.99))
        pairs = []
        for outputs, label in zip(ok["outputs"], ok["label"], strict=True):
            if label is None or label != label:  # no ground truth (None or NaN)
                continue
            predicted, truth = json.loads(outputs), json.loads(label)
            predicted = predicted if isinstance(predicted, list) else [predicted]
            truth = truth if isinstance(truth, list) else [truth]
            pairs.extend(zip(predicted, truth, strict=False))
        out["labeled"] = len(pairs)
        if pairs:
            out["accuracy"] = sum(p == t for p, t in pairs) / len(pairs)
            numeric = [
                (p, t)
                for p, t in pairs
                if isinstance(p, int | float) and isinstance(t, int | float)
            ]
            if len(numeric) == len(pairs):
                errors = [float(p) - float(t) for p, t in numeric]
                out["mae"] = sum(abs(e) for e in errors) / len(errors)
                out["rmse"] = (sum(e * e for e in errors) / len(errors)) ** 0.5
        return out


def _select_sealed(con: Any, files: list[str], columns: list[str]) -> str:
    """``SELECT ... UNION ALL`` over the sealed files, or ""; files written before a column
    existed (``proba``) give it as NULL, so old logs stay readable. DuckDB reads the files'
    column names (``parquet_schema``), so a query imports no pyarrow."""
    if not files:
        return ""
    found = con.execute(
        "SELECT file_name, list(name) FROM parquet_schema(?) GROUP BY file_name", [files]
    ).fetchall()
    names_of = {path: set(names) for path, names in found}
    groups: dict[tuple[str, ...], list[str]] = {}
    for path in files:
        names = names_of[path]
        missing = tuple(c for c in columns if c not in names)
        groups.setdefault(missing, []).append(path)
    parts = []
    for missing, paths in groups.items():
        picked = ", ".join(f"NULL::VARCHAR AS {c}" if c in missing else c for c in columns)
        parts.append(f"SELECT {picked} FROM read_parquet({paths!r}, hive_partitioning = false)")
    return " UNION ALL ".join(parts) + " UNION ALL "
