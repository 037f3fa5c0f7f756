"""The prediction log's rows: their kinds, columns and day partitions, shared by the log
(:mod:`.predlog`), its shared store and stream (:mod:`.predlog_seal`, :mod:`.predlog_stream`)
and its privacy sweeps, so that every place that writes or reads a partition agrees on it."""

from __future__ import annotations

import functools
from datetime import UTC
from datetime import datetime
from typing import TYPE_CHECKING
from typing import Any

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["COLUMNS", "KINDS", "day_of", "partitions", "schema_of"]

KINDS = ("predictions", "labels")
# Each kind's columns and their SQL types: the queries need only these, so a process that only
# reads (a monitor check) imports no pyarrow; ``schema_of`` gives them as Arrow's for the writes.
COLUMNS = {
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
def schema_of(kind: str) -> pa.Schema:
    """The Arrow schema of ``kind``'s rows (pyarrow is imported by the first seal or
    ``predictions`` read, not by a serving process before its first prediction: the journal is
    plain JSON lines)."""
    import pyarrow as pa

    types = {"VARCHAR": pa.string(), "BIGINT": pa.int64(), "DOUBLE": pa.float64(),
             "BOOLEAN": pa.bool_()}  # fmt: skip
    return pa.schema([(name, types[sql]) for name, sql in COLUMNS[kind]])


def partitions(kind: str, rows: list[dict[str, Any]]) -> dict[tuple[str, str], pa.Table]:
    """``rows`` as one Arrow table per (deployment, day) partition, without the deployment
    column (the partition's folder names it)."""
    import pyarrow as pa

    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault((row["deployment"], day_of(row["ts_ms"])), []).append(row)
    return {
        key: pa.Table.from_pylist(group, schema=schema_of(kind)).drop_columns(["deployment"])
        for key, group in groups.items()
    }


def day_of(ms: int) -> str:
    """The UTC day (``YYYY-MM-DD``) of ``ms`` milliseconds since the epoch: a partition's."""
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d")
