"""Feedback services: annotation queues, claiming and scoring review items, and exporting
rated traces as a fine-tuning data version with lineage back to each trace used.

Every function takes an open session and never commits. A reviewer's ``next_item`` claims the
oldest pending item nobody else claimed in the last ``CLAIM_S`` seconds, so reviewers working
one queue at once never get the same trace.
"""

from __future__ import annotations

import json
import math
import uuid
from typing import Any

from sqlalchemy import case
from sqlalchemy import func
from sqlalchemy import or_
from sqlalchemy import select
from sqlalchemy.orm import Session

from opsloop.data.versions import create_version
from opsloop.data.versions import manifest_from_rows
from opsloop.errors import Conflict
from opsloop.errors import InvalidInput
from opsloop.errors import NotFound
from opsloop.kernel.refs import check_name
from opsloop.kernel.timeutil import now_ms
from opsloop.lineage import graph
from opsloop.llm.feedback.entities import AnnotationItem
from opsloop.llm.feedback.entities import FeedbackExport
from opsloop.llm.feedback.entities import FeedbackExportResult
from opsloop.llm.feedback.entities import Queue
from opsloop.llm.feedback.entities import QueueCreate
from opsloop.llm.feedback.entities import ReviewSubmit
from opsloop.llm.feedback.entities import ScoreConfig
from opsloop.llm.feedback.finetune import preference_rows
from opsloop.llm.feedback.finetune import sft_rows
from opsloop.llm.feedback.tables import AnnotationItemRow
from opsloop.llm.feedback.tables import AnnotationQueueRow
from opsloop.llm.rows import from_row
from opsloop.llm.tracing import services as traces
from opsloop.llm.tracing.entities import ScoreCreate
from opsloop.llm.tracing.entities import TraceFilter
from opsloop.llm.tracing.tables import TraceRow
from opsloop.store.blobs import BlobStore
from opsloop.store.columns import named_row
from opsloop.store.ids import resolve_id

__all__ = [
    "add_items",
    "check_score_value",
    "create_queue",
    "export_finetuning",
    "get_queue",
    "list_queues",
    "next_item",
    "skip_item",
    "submit_review",
]

CLAIM_S = 30 * 60
TRACE = "trace"


def _queue_row(session: Session, name: str) -> AnnotationQueueRow:
    row: AnnotationQueueRow = named_row(session, AnnotationQueueRow, name, "annotation queue")
    return row


def _queue(session: Session, row: AnnotationQueueRow) -> Queue:
    counts = dict(
        session.execute(
            select(AnnotationItemRow.status, func.count())
            .where(AnnotationItemRow.queue_id == row.id)
            .group_by(AnnotationItemRow.status)
        ).all()
    )
    return from_row(
        Queue,
        row,
        scores=[ScoreConfig(**c) for c in json.loads(row.score_configs)],
        counts={s: counts.get(s, 0) for s in ("pending", "done", "skipped")},
    )


def create_queue(session: Session, body: QueueCreate, created_by: str) -> Queue:
    name = check_name(body.name, "annotation queue")
    if session.scalars(
        select(AnnotationQueueRow.id).where(AnnotationQueueRow.name == name)
    ).first():
        raise Conflict(f"annotation queue {name!r} already exists")
    names = [c.name for c in body.scores]
    if len(set(names)) != len(names):
        raise InvalidInput(f"a queue's score names must differ, got {names}")
    for config in body.scores:
        if config.data_type == "categorical" and not config.categories:
            raise InvalidInput(f"categorical score {config.name!r} needs its categories")
    row = AnnotationQueueRow(
        id=uuid.uuid4().hex,
        name=name,
        description=body.description,
        score_configs=json.dumps([c.model_dump() for c in body.scores]),
        created_at=now_ms(),
        created_by=created_by,
    )
    session.add(row)
    session.flush()
    return _queue(session, row)


def get_queue(session: Session, name: str) -> Queue:
    return _queue(session, _queue_row(session, name))


def list_queues(session: Session) -> list[Queue]:
    rows = session.scalars(select(AnnotationQueueRow).order_by(AnnotationQueueRow.name))
    return [_queue(session, row) for row in rows]


def add_items(
    session: Session, name: str, trace_ids: list[str], flt: TraceFilter | None, limit: int = 1000
) -> int:
    """Queue the given traces and/or up to ``limit`` traces matching ``flt``; returns how many
    were new to the queue."""
    queue = _queue_row(session, name)
    wanted = list(dict.fromkeys(trace_ids))
    if flt is not None:
        wanted += [t.trace_id for t in traces.list_traces(session, flt, limit).items]
    if not wanted:
        raise InvalidInput("nothing to queue: give trace ids or a filter that matches traces")
    known = set(session.scalars(select(TraceRow.trace_id).where(TraceRow.trace_id.in_(wanted))))
    missing = [t for t in wanted if t not in known]
    if missing:
        raise NotFound(f"trace(s) not found: {', '.join(missing[:5])}")
    queued = set(
        session.scalars(
            select(AnnotationItemRow.trace_id).where(
                AnnotationItemRow.queue_id == queue.id, AnnotationItemRow.trace_id.in_(wanted)
            )
        )
    )
    now, added = now_ms(), 0
    for trace_id in dict.fromkeys(wanted):
        if trace_id in queued:
            continue
        session.add(
            AnnotationItemRow(
                id=uuid.uuid4().hex,
                queue_id=queue.id,
                trace_id=trace_id,
                status="pending",
                created_at=now,
            )
        )
        added += 1
    session.flush()
    return added


def _item(session: Session, row: AnnotationItemRow, queue: str, with_trace: bool) -> AnnotationItem:
    return from_row(
        AnnotationItem,
        row,
        queue=queue,
        trace=traces.get_trace(session, row.trace_id) if with_trace else None,
    )


def next_item(session: Session, name: str, reviewer: str) -> AnnotationItem | None:
    """Claim the oldest pending item (or the one this reviewer already holds), with its trace."""
    queue = _queue_row(session, name)
    now = now_ms()
    row = session.scalars(
        select(AnnotationItemRow)
        .where(
            AnnotationItemRow.queue_id == queue.id,
            AnnotationItemRow.status == "pending",
            or_(
                AnnotationItemRow.claimed_by.is_(None),
                AnnotationItemRow.claimed_by == reviewer,
                AnnotationItemRow.claimed_at < now - CLAIM_S * 1000,
            ),
        )
        .order_by(
            case((AnnotationItemRow.claimed_by == reviewer, 0), else_=1),
            AnnotationItemRow.created_at,
        )
        .limit(1)
        .with_for_update(skip_locked=True)
    ).first()
    if row is None:
        return None
    row.claimed_by, row.claimed_at = reviewer, now
    session.flush()
    return _item(session, row, name, with_trace=True)


def _item_row(session: Session, name: str, item_id: str) -> AnnotationItemRow:
    queue = _queue_row(session, name)
    row = session.get(AnnotationItemRow, resolve_id(session, AnnotationItemRow.id, item_id, "item"))
    if row is None or row.queue_id != queue.id:
        raise NotFound(f"item {item_id} is not in annotation queue {name!r}")
    if row.status != "pending":
        raise Conflict(f"item {item_id} is already {row.status}")
    return row


def check_score_value(config: ScoreConfig, value: Any) -> Any:
    """``value`` if it fits ``config`` (type, range, categories), else ``InvalidInput``."""
    kind = config.data_type
    if kind == "numeric":
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
        ):
            raise InvalidInput(f"score {config.name!r} takes a number, got {value!r}")
        if (config.min is not None and value < config.min) or (
            config.max is not None and value > config.max
        ):
            raise InvalidInput(
                f"score {config.name!r} must be within [{config.min}, {config.max}], got {value}"
            )
    elif kind == "boolean" and not isinstance(value, bool):
        raise InvalidInput(f"score {config.name!r} takes true or false, got {value!r}")
    elif kind == "categorical" and value not in config.categories:
        raise InvalidInput(f"score {config.name!r} takes one of {config.categories}, got {value!r}")
    elif kind == "text" and not isinstance(value, str):
        raise InvalidInput(f"score {config.name!r} takes text, got {value!r}")
    return value


def submit_review(
    session: Session, name: str, item_id: str, body: ReviewSubmit, reviewer: str
) -> AnnotationItem:
    """Record the reviewer's scores on the item's trace (source ``human``) and close it."""
    row = _item_row(session, name, item_id)
    configs = {c.name: c for c in _queue(session, _queue_row(session, name)).scores}
    unknown = sorted(set(body.scores) - set(configs))
    if unknown:
        raise InvalidInput(
            f"queue {name!r} has no score {unknown[0]!r}; it takes {sorted(configs)}"
        )
    for score_name, value in body.scores.items():
        config = configs[score_name]
        traces.add_score(
            session,
            ScoreCreate(
                trace_id=row.trace_id,
                name=score_name,
                value=check_score_value(config, value),
                data_type=config.data_type,
                comment=body.comment,
                source="human",
            ),
            author=reviewer,
        )
    row.status, row.completed_by, row.completed_at = "done", reviewer, now_ms()
    session.flush()
    return _item(session, row, name, with_trace=False)


def skip_item(session: Session, name: str, item_id: str, reviewer: str) -> AnnotationItem:
    row = _item_row(session, name, item_id)
    row.status, row.completed_by, row.completed_at = "skipped", reviewer, now_ms()
    session.flush()
    return _item(session, row, name, with_trace=False)


def export_finetuning(
    session: Session, blobs: BlobStore, body: FeedbackExport, created_by: str
) -> FeedbackExportResult:
    """Write the selected traces as ``train.jsonl`` in the next version of ``body.dataset``,
    with a ``trace -exported_to-> dataset_version`` lineage edge per trace used."""
    if body.format == "preference" and not body.score:
        raise InvalidInput("a preference export needs score=NAME, the score that ranks outputs")
    listed: list[Any] = []
    token = None
    while len(listed) < body.max_traces:
        page = traces.list_traces(session, body.filter, min(1000, body.max_traces), token)
        listed.extend(page.items)
        token = page.next_page_token
        if token is None:
            break
    if body.format == "sft":
        rows, used = sft_rows(listed)
    else:
        rows, used = preference_rows(listed, str(body.score), body.min_margin)
    if not rows:
        raise InvalidInput(
            f"no {body.format} rows: {len(listed)} trace(s) matched, none with an input and an "
            "output" + (f" and differing {body.score!r} scores" if body.score else "")
        )
    data = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode()
    digest = blobs.put_bytes(data)
    version, created = create_version(
        session,
        body.dataset,
        manifest_from_rows([("train.jsonl", digest, len(data))]),
        kind="file",
        created_by=created_by,
        message=body.message or f"{body.format} rows from {len(used)} rated traces",
        source="opsloop feedback export",
        tags={"opsloop.format": f"chat-{body.format}", "opsloop.traces": len(used)},
    )
    from opsloop.data.versions import version_row

    _, row = version_row(session, version.ref)
    for trace_id in dict.fromkeys(used):
        graph.add_edge(session, (TRACE, trace_id), (graph.DATASET_VERSION, row.id), "exported_to")
    return FeedbackExportResult(
        ref=str(version.ref), created=created, format=body.format, rows=len(rows),
        traces=len(set(used)),
    )  # fmt: skip
