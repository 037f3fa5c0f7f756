"""The prediction log: every answer (and every shadow answer) as a row, queryable with DuckDB,
joinable with ground truth that arrives later by request id.

Writing never waits on Parquet: a row is appended as a JSON line to this process's journal
(written through to the OS before the response goes out, so a killed or restarted server
loses nothing it acknowledged), and a background thread seals journals into Parquet files
partitioned by deployment and day (``predictions/deployment=NAME/date=YYYY-MM-DD/*.parquet``).
Journals a dead process left behind are sealed when the next log opens. Labels (ground truth)
follow the same path under ``labels/``. Queries read the Parquet files and the live journals
together, so a row is visible as soon as it is logged.

Reading needs none of the writing side: ``PredictionReader`` is the queries alone (no journal
of its own, no sealing thread), what a process that only reads opens (``opsloop monitors
check``); ``PredictionLog`` is a reader that also writes.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING
from typing import Any

from opsloop.kernel.periodic import Periodic
from opsloop.kernel.processes import pid_exists

if TYPE_CHECKING:
    import pyarrow as pa

    from opsloop.governance.masker import IngestMasking

__all__ = ["PredictionLog", "PredictionReader"]

_KINDS = ("predictions", "labels")
# Each kind's columns and their SQL types: the queries need only these, so a process that only
# reads (a monitor check) imports no pyarrow; ``_schema`` gives them as Arrow's for the writes.
_COLUMNS = {
    "labels": (("request_id", "VARCHAR"), ("deployment", "VARCHAR"), ("ts_ms", "BIGINT"),
               ("label", "VARCHAR")),
    "predictions": (
        ("request_id", "VARCHAR"), ("deployment", "VARCHAR"), ("model", "VARCHAR"),
        ("version", "BIGINT"), ("ts_ms", "BIGINT"), ("latency_ms", "DOUBLE"),
        ("inputs", "VARCHAR"), ("outputs", "VARCHAR"), ("shadow", "BOOLEAN"),
        ("error", "VARCHAR"), ("proba", "VARCHAR"),
    ),
}  # fmt: skip


@functools.cache
def _schema(kind: str) -> pa.Schema:
    """The Arrow schema of ``kind``'s rows (pyarrow is imported by the first seal or
    ``predictions`` read, not by a serving process before its first prediction: the journal is
    plain JSON lines)."""
    import pyarrow as pa

    types = {"VARCHAR": pa.string(), "BIGINT": pa.int64(), "DOUBLE": pa.float64(),
             "BOOLEAN": pa.bool_()}  # fmt: skip
    return pa.schema([(name, types[sql]) for name, sql in _COLUMNS[kind]])


class _Journal:
    """One process's append-only JSON-lines file for one kind of row."""

    def __init__(self, folder: Path, kind: str) -> None:
        self.folder, self.kind = folder, kind
        self.lock = threading.Lock()
        self.count = 0
        self._open()

    def _open(self) -> None:
        self.path = self.folder / f"{self.kind}-{os.getpid()}-{uuid.uuid4().hex[:8]}.journal"
        self.file = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - lives with the log
        self.count = 0

    def append(self, line: str) -> None:
        with self.lock:
            self.file.write(line)
            self.file.flush()  # into the OS: survives the process
            self.count += 1

    def seal(self) -> Path | None:
        """Close the current file (if it has rows) and start a new one; the sealed path."""
        with self.lock:
            if self.count == 0:
                return None
            self.file.close()
            sealed = self.path.with_suffix(".sealed")
            os.replace(self.path, sealed)
            self._open()
            return sealed


class PredictionReader:
    """The queries over the log under ``folder``: its sealed Parquet files and every process's
    live journal, read as they are. Opens no journal and starts no thread, so a process that
    only reads (a monitor check) pays for none of the writing side; the rows it sees are the
    ones a ``PredictionLog`` on the same folder sees."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def _rows(self, kind: str, deployment: str) -> pa.Table:
        """Sealed (Parquet) and live (journal) rows of one deployment, as one Arrow table."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        schema = _schema(kind)
        stored = schema.remove(schema.get_field_index("deployment"))
        folder = self.folder / kind / f"deployment={deployment}"
        tables = [pq.read_table(p, schema=stored) for p in sorted(folder.glob("date=*/*.parquet"))]
        live = [r for r in self._journal_rows(kind) if r.get("deployment") == deployment]
        if live:
            tables.append(pa.Table.from_pylist(live, schema=schema).drop_columns(["deployment"]))
        table = pa.concat_tables(tables) if tables else stored.empty_table()
        return table.append_column("deployment", pa.array([deployment] * table.num_rows))

    def _journal_rows(self, kind: str) -> Iterator[dict[str, Any]]:
        for path in self.folder.glob(f"{kind}-*"):
            with contextlib.suppress(FileNotFoundError), open(path, encoding="utf-8") as f:
                for line in f:
                    if line.endswith("\n"):  # a line being written right now is skipped
                        yield json.loads(line)

    def predictions(self, deployment: str, *, with_labels: bool = True) -> Any:
        """Every logged prediction of ``deployment`` (a pandas DataFrame, oldest first), with
        the latest ground-truth ``label`` joined by request id."""
        import duckdb

        preds = self._rows("predictions", deployment)
        con = duckdb.connect()
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
        import duckdb

        con = duckdb.connect()
        return self._requests(con, deployment, since_ms, until_ms, last, first).df()

    def request_columns(
        self, deployment: str, *, since_ms: int | None = None, until_ms: int | None = None,
        last: int | None = None, first: int | None = None,
    ) -> dict[str, list[Any]]:  # fmt: skip
        """The rows ``requests`` gives, as Python lists by column name (a missing value is
        None): what a monitor check reads. Neither pandas nor pyarrow is imported for it: the
        columns come out as NumPy arrays (masked where values are missing), as fast as
        through Arrow and faster than row by row."""
        import duckdb

        con = duckdb.connect()
        relation = self._requests(con, deployment, since_ms, until_ms, last, first)
        return {name: values.tolist() for name, values in relation.fetchnumpy().items()}

    def _requests(
        self, con: Any, deployment: str, since_ms: int | None, until_ms: int | None,
        last: int | None, first: int | None,
    ) -> Any:  # fmt: skip
        """The DuckDB relation of ``requests``."""
        predictions, params = self._stored(
            con, "predictions", deployment, _day(since_ms) if since_ms is not None else ""
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
        stored = [(name, sql) for name, sql in _COLUMNS[kind] if name != "deployment"]
        folder = self.folder / kind / f"deployment={deployment}"
        # journals first, then files: a seal in between shows its rows twice (DISTINCT keeps
        # one), never zero times, as listing the files first could
        live = [r for r in self._journal_rows(kind) if r.get("deployment") == deployment]
        files = [str(p) for p in sorted(folder.glob("date=*/*.parquet"))
                 if p.parent.name.removeprefix("date=") >= first_day]  # fmt: skip
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


class PredictionLog(PredictionReader):
    """The log under ``folder``, read and written; ``masking`` (the workspace's masking at
    ingest) masks each row's inputs, outputs and error before it is written (None: nothing is
    masked)."""

    def __init__(
        self, folder: Path, *, interval: float = 2.0, masking: IngestMasking | None = None
    ) -> None:
        super().__init__(folder)
        self.interval = interval
        self.masking = masking
        folder.mkdir(parents=True, exist_ok=True)
        self._recover()
        self._journals = {kind: _Journal(folder, kind) for kind in _KINDS}
        self._seal_lock = threading.Lock()
        # Sealing in the background; a disk hiccup (OSError) is retried at the next pass.
        self._sealer = Periodic(self.flush, interval, "opsloop-predlog", retry_on=(OSError,))
        self._sealer.start()

    # -- writing ------------------------------------------------------------------------------
    def log(self, row: dict[str, Any]) -> None:
        """Append one answer; ``inputs``, ``outputs`` and ``proba`` are stored as JSON text.

        ``proba`` (optional) holds a classifier's probabilities per row, as the serving side
        had them: the positive class's for a binary model, the list for more classes. A
        monitor check reads them instead of loading the model (seconds of imports)."""
        masker = self.masking.masker("predictions") if self.masking is not None else None
        if masker is not None:  # never mutates the request body: shadow copies still read it
            for column in ("inputs", "outputs", "error"):
                row[column] = masker.value(row.get(column), column)
        row["inputs"] = json.dumps(row["inputs"], default=str)
        row["outputs"] = json.dumps(row["outputs"], default=str)
        if row.get("proba") is not None:
            row["proba"] = json.dumps(row["proba"])
        self._journals["predictions"].append(json.dumps(row, default=str) + "\n")

    def label(self, deployment: str, request_id: str, label: Any) -> None:
        row = {"request_id": request_id, "deployment": deployment,
               "ts_ms": int(time.time() * 1000), "label": json.dumps(label)}  # fmt: skip
        self._journals["labels"].append(json.dumps(row) + "\n")

    def flush(self) -> None:
        """Seal this process's journals into Parquet now."""
        with self._seal_lock:
            for journal in self._journals.values():
                sealed = journal.seal()
                if sealed is not None:
                    self._to_parquet(sealed, journal.kind)

    def close(self) -> None:
        """Stop the background sealing, seal what is left, and remove the empty journals."""
        self._sealer.stop(timeout=5)
        self.flush()
        for journal in self._journals.values():
            with journal.lock:
                journal.file.close()
                if journal.count == 0:
                    journal.path.unlink(missing_ok=True)

    # -- internals ----------------------------------------------------------------------------
    def _recover(self) -> None:
        """Seal what earlier processes left: journals of dead writers and unfinished seals.
        Several processes may open at once (workers, Ray Serve replicas): what another one
        sealed first is skipped, and a live writer's seal is left to it."""
        for path in self.folder.glob("*-*.journal"):
            pid = int(path.name.split("-")[1])
            if pid != os.getpid() and not pid_exists(pid):
                with contextlib.suppress(FileNotFoundError):
                    os.replace(path, path.with_suffix(".sealed"))
        for sealed in self.folder.glob("*.sealed"):
            pid = int(sealed.name.split("-")[1])
            if pid != os.getpid() and pid_exists(pid):
                continue
            with contextlib.suppress(FileNotFoundError):
                self._to_parquet(sealed, sealed.name.split("-")[0])

    def _to_parquet(self, sealed: Path, kind: str) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        schema = _schema(kind)
        with open(sealed, encoding="utf-8") as f:
            rows = [json.loads(line) for line in f if line.endswith("\n")]
        groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for row in rows:
            day = _day(row["ts_ms"])
            groups.setdefault((row["deployment"], day), []).append(row)
        for (deployment, day), group in groups.items():
            folder = self.folder / kind / f"deployment={deployment}" / f"date={day}"
            folder.mkdir(parents=True, exist_ok=True)
            table = pa.Table.from_pylist(group, schema=schema).drop_columns(["deployment"])
            final = folder / f"part-{sealed.stem}.parquet"  # one name per sealed file: idempotent
            tmp = final.with_suffix(f".{os.getpid()}.tmp")  # a writer's own, if two convert
            pq.write_table(table, tmp)
            os.replace(tmp, final)
        sealed.unlink()


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


def _day(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d")
