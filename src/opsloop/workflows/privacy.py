"""Retention sweeps and erasures: deleting across tracing, feedback and the prediction log.

Governance keeps the retention settings (:mod:`opsloop.governance.retention`) but sits below
every domain whose data it governs, so the deleting is done here, on the workflows floor, by
calling each domain's own small delete functions. The scheduler, ``opsloop privacy`` and the
``/api/privacy`` routes all come through these two functions.

- :func:`sweep`: for each kind with a retention whose hourly sweep this caller claimed,
  delete what is older than its days, :data:`BATCH` traces or scores per transaction (a write
  transaction on SQLite locks the whole database: a batch is a few milliseconds, one giant
  DELETE could be seconds), then append one audit event with the counts.
- :func:`erase`: one end user's traces (spans, tags and scores follow), the annotation items of
  those traces, and the prediction-log rows whose request names the user; one audit event whose
  digest is the SHA-256 of the user id, so the log proves the erasure without keeping the id.
"""

from __future__ import annotations

import hashlib
import logging
from collections import Counter
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from pydantic import Field

from opsloop.errors import InvalidInput
from opsloop.errors import OpsloopError
from opsloop.governance import audit
from opsloop.governance import retention
from opsloop.governance.roles import DEFAULT_WORKSPACE
from opsloop.kernel.timeutil import now_ms
from opsloop.llm.feedback import privacy as feedback_privacy
from opsloop.llm.tracing import privacy as tracing_privacy
from opsloop.serving import predlog_privacy
from opsloop.store.database import Store

__all__ = [
    "BATCH",
    "ErasureRequest",
    "ErasureResult",
    "SweepResult",
    "check_user_id",
    "erase",
    "sweep",
    "sweep_quietly",
]

log = logging.getLogger("opsloop.privacy")
BATCH = 500  # traces (with their spans) or scores per transaction
RESOURCE_RETENTION = "privacy/retention"
RESOURCE_ERASURE = "privacy/erasures"


class ErasureRequest(BaseModel):
    user_id: str = Field(min_length=1, max_length=250, description="the end user's id")
    dry_run: bool = Field(False, description="count what would be deleted, delete nothing")


class ErasureResult(BaseModel):
    user_id: str
    dry_run: bool
    counts: dict[str, int] = Field(description="rows deleted (or, dry, found) per kind")


class SweepResult(BaseModel):
    swept: dict[str, dict[str, int]] = Field(
        description="per kind swept now: rows deleted per table; kinds not due are absent"
    )


def _folder(predictions: Any, *, flush: bool) -> Path | None:
    """The prediction log's folder, from a folder, an open ``PredictionLog`` (sealed first
    when ``flush``, so its own latest rows are in Parquet) or a ``PredictionReader``."""
    if predictions is None or isinstance(predictions, Path):
        return predictions
    if flush and hasattr(predictions, "flush"):
        predictions.flush()
    return Path(predictions.folder)


def _shared(predictions: Any) -> Any:
    """The log's shared store and stream (every replica's rows), or None: a sweep and an
    erasure reach them too, and every reader's local copies."""
    return getattr(predictions, "shared", None)


def _sweep_traces(store: Store, cutoff: int, batch: int) -> Counter[str]:
    totals: Counter[str] = Counter()
    while True:
        with store.write() as session:
            ids = tracing_privacy.old_trace_ids(session, cutoff, batch)
            totals.update(tracing_privacy.delete_traces(session, ids))
            totals["annotation_items"] += feedback_privacy.delete_items(session, ids)
        if len(ids) < batch:
            return totals


def _sweep_scores(store: Store, cutoff: int, batch: int) -> Counter[str]:
    totals: Counter[str] = Counter()
    while True:
        with store.write() as session:
            deleted = tracing_privacy.delete_scores_before(session, cutoff, batch)
        totals["scores"] += deleted
        if deleted < batch:
            return totals


def _counts_text(counts: dict[str, int]) -> str:
    return ", ".join(f"{n} {kind}" for kind, n in sorted(counts.items())) or "nothing"


def sweep(
    store: Store, predictions: Any, *, actor: str, now: int | None = None, force: bool = False,
    batch: int = BATCH, workspace: str = DEFAULT_WORKSPACE,
) -> SweepResult:  # fmt: skip
    """Sweep each kind whose retention is due (``force``: each kind with a retention), see
    the module docstring. ``predictions``: the prediction log or its folder (None: skipped)."""
    now = now_ms() if now is None else now
    with store.read() as session:
        due = retention.KINDS if force else retention.due_kinds(session, now, workspace)
    swept: dict[str, dict[str, int]] = {}
    for kind in retention.KINDS:
        if kind not in due or (kind == "predictions" and predictions is None):
            continue
        with store.write() as session:
            days = retention.claim_sweep(session, kind, now, force=force, workspace=workspace)
        if days is None:  # no retention, or another scheduler swept it this hour
            continue
        cutoff = now - days * retention.DAY_MS
        if kind == "traces":
            counts: dict[str, int] = dict(_sweep_traces(store, cutoff, batch))
        elif kind == "scores":
            counts = dict(_sweep_scores(store, cutoff, batch))
        else:
            folder = _folder(predictions, flush=False)
            counts = (
                predlog_privacy.delete_older_than(folder, cutoff, shared=_shared(predictions))
                if folder
                else {}
            )
        with store.write() as session:
            audit.append(session, actor=actor, workspace=workspace, resource=RESOURCE_RETENTION,
                         action=f"retention sweep {kind}: older than {days} days, deleted "
                         f"{_counts_text(counts)}", outcome=200)  # fmt: skip
        swept[kind] = counts
    return SweepResult(swept=swept)


def sweep_quietly(store: Store, predictions: Any) -> SweepResult | None:
    """The scheduler's sweep: a database that is away is logged, and tried next time."""
    try:
        return sweep(store, predictions, actor="scheduler")
    except OpsloopError as exc:
        log.warning("retention sweep: %s", exc.message)
        return None


def check_user_id(user_id: str) -> str:
    """The user id, stripped; ``InvalidInput`` unless it is 1 to 250 characters."""
    user_id = user_id.strip() if isinstance(user_id, str) else ""
    if not user_id or len(user_id) > 250:
        raise InvalidInput("a user id is 1 to 250 characters")
    return user_id


def erase(
    store: Store, predictions: Any, user_id: str, *, actor: str, dry_run: bool = False,
    batch: int = BATCH, workspace: str = DEFAULT_WORKSPACE,
) -> ErasureResult:  # fmt: skip
    """Delete (``dry_run``: count) everything kept about one end user (see the module
    docstring). An id nothing mentions erases nothing: every count is 0, not an error."""
    user_id = check_user_id(user_id)
    with store.read() as session:
        ids = tracing_privacy.user_trace_ids(session, user_id)
        if dry_run:
            counts: Counter[str] = Counter(tracing_privacy.count_traces(session, ids))
            counts["annotation_items"] = feedback_privacy.count_items(session, ids)
    if not dry_run:
        counts = Counter({"traces": 0, "spans": 0, "scores": 0, "annotation_items": 0})
        for start in range(0, len(ids), batch):
            chunk = ids[start : start + batch]
            with store.write() as session:
                counts.update(tracing_privacy.delete_traces(session, chunk))
                counts["annotation_items"] += feedback_privacy.delete_items(session, chunk)
    folder = _folder(predictions, flush=not dry_run)
    shared = _shared(predictions)
    found = (
        predlog_privacy.erase_user(folder, user_id, dry_run=dry_run, shared=shared)
        if folder
        else {}
    )
    counts.update({"predictions": 0, "labels": 0, **found})
    if not dry_run:
        digest = hashlib.sha256(user_id.encode()).hexdigest()
        with store.write() as session:
            audit.append(session, actor=actor, workspace=workspace, resource=RESOURCE_ERASURE,
                         action=f"privacy erase user (sha256 in digest): deleted "
                         f"{_counts_text(counts)}", outcome=200, digest=digest)  # fmt: skip
    return ErasureResult(user_id=user_id, dry_run=dry_run, counts=dict(counts))
