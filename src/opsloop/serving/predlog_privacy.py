"""Deleting prediction-log rows for retention and erasure, in the log's sealed Parquet files.

The log (:mod:`opsloop.serving.predlog`) keeps rows in ``{kind}/deployment=D/date=YYYY-MM-DD/
part-*.parquet``, one day per folder, and never writes to a file it has sealed. So retention
deletes whole day folders older than the cutoff's day and rewrites only the files of the
cutoff's own day; an erasure rewrites the files that hold the user's rows. A file is rewritten
to a temporary name and moved over the old one (atomic on POSIX: a reader sees the old or the
new file, never half of one). Each file is one bounded step: no lock is held across files.

The log has no user id column: a request names its end user, if at all, in its body. A row
is the user's when the body has ``"user_id": X`` at the top level or in one of its records
(``records``, ``dataframe_records``, ``instances``, a ``columns`` list, a ``dataframe_split``
column). The whole request row goes, with the labels (ground truth) of its request id, even if
other records of the same batch were another user's: erasure errs on the side of deleting.

Rows still in a live journal (the last ~2 s of another process's traffic) are not reached:
the caller seals its own log first (:meth:`PredictionLog.flush`).

With a shared log (``shared``: every replica's sealed objects on the object store, and its
stream), the same deletions reach the store's objects and the stream's rows not sealed yet.
Objects are rewritten under a new name and the old one deleted (:meth:`SealStore.replace`), so
every reader's mirror drops its copy at its next read (a copy is kept only while its object is
listed). Rows in another replica's journal (no stream: its last seal interval) are sealed after
the erasure: run it again after the interval to reach them.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from opsloop.serving.predlog_rows import KINDS
from opsloop.serving.predlog_rows import day_of

if TYPE_CHECKING:
    from opsloop.serving.predlog_seal import SealStore
    from opsloop.serving.predlog_shared import SharedLog

__all__ = ["delete_older_than", "erase_user", "mentions_user"]

USER_FIELD = "user_id"
_RECORD_LISTS = ("records", "dataframe_records", "instances")


def _rewrite(part: Path, keep: pa.Array | None, *, dry_run: bool = False) -> int:
    """Keep the rows of ``part`` where ``keep`` is true (``None``: none); how many went."""
    table = pq.ParquetFile(part).read()
    kept = 0 if keep is None else int(pc.sum(keep).as_py() or 0)
    removed = table.num_rows - kept
    if removed == 0 or dry_run:
        return removed
    if kept == 0:
        part.unlink(missing_ok=True)
        return removed
    tmp = part.with_suffix(".tmp")
    pq.write_table(table.filter(keep), tmp)
    os.replace(tmp, part)
    return removed


def delete_older_than(
    folder: Path, cutoff_ms: int, *, shared: SharedLog | None = None
) -> dict[str, int]:
    """Delete predictions and labels logged before ``cutoff_ms``, in this folder's files and
    the shared store's objects; the rows deleted per kind.

    Raises:
        StoreError: The shared store did not answer (run the sweep again).
    """
    counts = {kind: 0 for kind in KINDS}
    if shared is not None:
        counts = _shared_older_than(shared.store, cutoff_ms)
    cutoff_day = day_of(cutoff_ms)
    for kind in KINDS:
        for day_dir in sorted((folder / kind).glob("deployment=*/date=*")):
            day = day_dir.name.removeprefix("date=")
            if day > cutoff_day:
                continue
            for part in sorted(day_dir.glob("*.parquet")):
                if day < cutoff_day:  # the whole day is older: no need to read the rows
                    counts[kind] += pq.ParquetFile(part).metadata.num_rows
                    part.unlink(missing_ok=True)
                else:
                    ts = pq.ParquetFile(part).read(columns=["ts_ms"])["ts_ms"]
                    counts[kind] += _rewrite(part, pc.greater_equal(ts, cutoff_ms))
            with contextlib.suppress(OSError):  # not empty: a file arrived meanwhile
                day_dir.rmdir()
    return counts


def _shared_older_than(store: SealStore, cutoff_ms: int) -> dict[str, int]:
    """``delete_older_than`` on the shared store's objects: older days deleted whole (their
    row counts read from the footers), the cutoff's day rewritten."""
    counts = {kind: 0 for kind in KINDS}
    cutoff_day = day_of(cutoff_ms)
    for kind in KINDS:
        for relative in store.keys(kind):
            day = relative.split("/date=", 1)[1].split("/", 1)[0]
            if day > cutoff_day:
                continue
            table = pq.read_table(store.fetch(relative))
            keep = pc.greater_equal(table["ts_ms"], cutoff_ms) if day == cutoff_day else None
            kept = table.filter(keep) if keep is not None else None
            removed = table.num_rows - (kept.num_rows if kept is not None else 0)
            if removed:
                store.replace(relative, kept)
                counts[kind] += removed
    return counts


def _is(value: Any, user_id: str) -> bool:
    return value is not None and not isinstance(value, dict | list) and str(value) == user_id


def mentions_user(body: Any, user_id: str) -> bool:
    """Whether a logged request body names ``user_id`` (see the module docstring)."""
    if not isinstance(body, dict):
        return False
    if _is(body.get(USER_FIELD), user_id):
        return True
    for key in _RECORD_LISTS:
        rows = body.get(key)
        if isinstance(rows, list) and any(
            isinstance(r, dict) and _is(r.get(USER_FIELD), user_id) for r in rows
        ):
            return True
    columns = body.get("columns")
    values = columns.get(USER_FIELD) if isinstance(columns, dict) else None
    if isinstance(values, list) and any(_is(v, user_id) for v in values):
        return True
    split = body.get("dataframe_split")
    if isinstance(split, dict) and isinstance(split.get("columns"), list):
        names = split["columns"]
        if USER_FIELD in names:
            at = names.index(USER_FIELD)
            data = split.get("data") if isinstance(split.get("data"), list) else []
            return any(isinstance(r, list) and len(r) > at and _is(r[at], user_id) for r in data)
    return False


def _user_mask(table: pa.Table, user_id: str) -> tuple[pa.Array, set[str]]:
    """Which rows to keep (not the user's), and the request ids of those that are."""
    needle = json.dumps(user_id)[1:-1]  # as the body's JSON text spells it
    hits = pc.match_substring(table["inputs"], needle).to_pylist()
    keep, erased = [True] * table.num_rows, set()
    if any(hits):
        texts, ids = table["inputs"].to_pylist(), table["request_id"].to_pylist()
        for i, hit in enumerate(hits):
            if hit and mentions_user(_load(texts[i]), user_id):
                keep[i] = False
                erased.add(ids[i])
    return pa.array(keep), erased


def _load(text: str | None) -> Any:
    try:
        return json.loads(text) if text else None
    except ValueError:
        return None


def _each_file(folder: Path, kind: str, deployment: str = "*") -> list[Path]:
    return sorted((folder / kind).glob(f"deployment={deployment}/date=*/*.parquet"))


def erase_user(
    folder: Path, user_id: str, *, dry_run: bool = False, shared: SharedLog | None = None
) -> dict[str, int]:
    """Delete (``dry_run``: count) the user's prediction rows and their labels, in this
    folder's files and, with ``shared``, the shared store's objects and stream.

    Raises:
        StoreError: The shared store or stream did not answer (run the erasure again).
    """
    counts = {kind: 0 for kind in KINDS}
    erased: dict[str, set[str]] = {}
    if shared is not None:
        counts, erased = _erase_shared(shared, user_id, dry_run)
    for part in _each_file(folder, "predictions"):
        table = pq.ParquetFile(part).read(columns=["request_id", "inputs"])
        keep, ids = _user_mask(table, user_id)
        if ids:
            counts["predictions"] += _rewrite(part, keep, dry_run=dry_run)
            deployment = part.parent.parent.name.removeprefix("deployment=")
            erased.setdefault(deployment, set()).update(ids)
    for deployment, ids in erased.items():
        value_set = pa.array(sorted(ids), pa.string())
        for part in _each_file(folder, "labels", deployment):
            labelled = pq.ParquetFile(part).read(columns=["request_id"])["request_id"]
            keep = pc.invert(pc.is_in(labelled, value_set=value_set))
            counts["labels"] += _rewrite(part, keep, dry_run=dry_run)
    return counts


def _erase_shared(
    shared: SharedLog, user_id: str, dry_run: bool
) -> tuple[dict[str, int], dict[str, set[str]]]:
    """``erase_user`` on the shared stream's rows and the shared store's objects; the counts
    and the erased request ids by deployment."""
    counts = {kind: 0 for kind in KINDS}
    erased: dict[str, set[str]] = {}
    if shared.stream is not None:
        gone = shared.stream.delete_rows(
            "predictions", lambda row: mentions_user(_load(row.get("inputs")), user_id),
            dry_run=dry_run,
        )  # fmt: skip
        for row in gone:
            erased.setdefault(row["deployment"], set()).add(row["request_id"])
        counts["predictions"] += len(gone)
    store = shared.store
    for relative in store.keys("predictions"):
        table = pq.read_table(store.fetch(relative))
        keep, ids = _user_mask(table, user_id)
        if ids:
            deployment = relative.split("/deployment=", 1)[1].split("/", 1)[0]
            erased.setdefault(deployment, set()).update(ids)
            counts["predictions"] += table.num_rows - int(pc.sum(keep).as_py() or 0)
            if not dry_run:
                store.replace(relative, table.filter(keep))
    for deployment, ids in erased.items():
        if shared.stream is not None:
            labelled = shared.stream.delete_rows(
                "labels", _labels_of(deployment, ids), dry_run=dry_run
            )
            counts["labels"] += len(labelled)
        value_set = pa.array(sorted(ids), pa.string())
        for relative in store.keys("labels", deployment):
            table = pq.read_table(store.fetch(relative))
            keep = pc.invert(pc.is_in(table["request_id"], value_set=value_set))
            removed = table.num_rows - int(pc.sum(keep).as_py() or 0)
            counts["labels"] += removed
            if removed and not dry_run:
                store.replace(relative, table.filter(keep))
    return counts, erased


def _labels_of(deployment: str, ids: set[str]) -> Callable[[dict[str, Any]], bool]:
    """Whether a label row is one of ``ids``' in ``deployment`` (a predicate per deployment,
    bound now, not to a loop variable)."""
    return lambda row: row.get("deployment") == deployment and row.get("request_id") in ids
