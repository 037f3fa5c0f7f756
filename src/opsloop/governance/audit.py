"""The audit log: a hash chain of events over a session (never committed here).

Each event is chained to the one before: ``hash = sha256(prev_hash + canonical JSON of the
event)`` (:func:`chain_hash`; the first event's ``prev_hash`` is 64 zeros). ``seq`` is dense:
an append reads the one-row head (:class:`~opsloop.governance.tables.AuditHeadRow`), writes
``seq + 1`` and moves the head, all in the caller's transaction, so:

- writers never fork the chain: on PostgreSQL the head row is read ``FOR UPDATE`` (a second
  writer waits for the first to commit, then sees its head); SQLite's write lock (``BEGIN
  IMMEDIATE``, :mod:`opsloop.store.database`) serialises writers already;
- an edited event no longer hashes to its ``hash``, and an event whose ``hash`` was recomputed
  breaks the next one's ``prev_hash``; a deleted event is a gap in ``seq``; deleted newest
  events leave the head ahead of the last row. :func:`verify` names the first bad ``seq``.

What a chain cannot show is a wholesale rewrite by someone holding the database (every row and
the head recomputed): keep the head hash that ``opsloop audit verify`` prints somewhere else
(a ticket, a log shipper), and a rewrite no longer matches it.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
import weakref
from collections.abc import Iterator
from typing import Any
from typing import NotRequired
from typing import TypedDict
from typing import Unpack

from sqlalchemy import insert
from sqlalchemy import select
from sqlalchemy import update
from sqlalchemy.orm import Session

from opsloop.errors import InvalidInput
from opsloop.governance.entities import AuditEvent
from opsloop.governance.entities import AuditFilter
from opsloop.governance.entities import AuditPage
from opsloop.governance.entities import AuditVerdict
from opsloop.governance.roles import DEFAULT_WORKSPACE
from opsloop.governance.tables import AuditEventRow
from opsloop.governance.tables import AuditHeadRow
from opsloop.kernel.paging import decode_page_token
from opsloop.kernel.paging import encode_page_token
from opsloop.kernel.timeutil import iso_utc
from opsloop.kernel.timeutil import now_ms
from opsloop.store.database import Store
from opsloop.store.database import dialect_insert
from opsloop.store.sql import DriverSql
from opsloop.store.sql import SessionSql

__all__ = [
    "GENESIS",
    "EventFields",
    "append",
    "append_sql",
    "chain_hash",
    "iter_events",
    "list_events",
    "list_page",
    "new_request_id",
    "parse_since",
    "record",
    "verify",
]

GENESIS = "0" * 64
_HEAD = 1  # the head row's id
_FIELDS = ("seq", "at", "actor", "workspace", "action", "resource", "request_id", "outcome",
           "digest")  # fmt: skip
_AGO = re.compile(r"(\d{1,6})([mhdw])")
_UNIT_MS = {"m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 7 * 86_400_000}
_HEAD_QUERY = select(AuditHeadRow.seq, AuditHeadRow.hash).where(AuditHeadRow.id == _HEAD)


def new_request_id() -> str:
    """A request id (what ``X-Request-Id`` answers): 32 hex digits."""
    return uuid.uuid4().hex


def parse_since(text: str) -> int:
    """A ``since`` filter as epoch ms: a duration back from now (``90m``, ``12h``, ``7d``,
    ``2w``) or an ISO date or time (``2026-12-01``, ``2026-12-01T08:00``; UTC unless it says).
    ``InvalidInput`` otherwise."""
    text = text.strip()
    ago = _AGO.fullmatch(text)
    if ago is not None:
        return now_ms() - int(ago.group(1)) * _UNIT_MS[ago.group(2)]
    moment = iso_utc(text)
    if moment is None:
        raise InvalidInput(
            f"since takes a duration (90m, 12h, 7d, 2w) or an ISO date, got {text[:40]!r}"
        )
    return int(moment.timestamp() * 1000)


def chain_hash(prev_hash: str, event: dict[str, Any]) -> str:
    """The hash of ``event`` (its :data:`_FIELDS`) chained after ``prev_hash``: SHA-256 of
    ``prev_hash`` and the event as canonical JSON (sorted keys, no spaces, UTF-8)."""
    canonical = json.dumps(
        {k: event[k] for k in _FIELDS}, sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )
    return hashlib.sha256((prev_hash + canonical).encode()).hexdigest()


# Plain SQL on the transaction's driver connection (:class:`~opsloop.store.sql.DriverSql`,
# which takes ``:name`` parameters on either driver): an append runs on every audited request,
# and SQLAlchemy's statement machinery alone costs several times what SQLite takes to run these.
_COLUMNS = ("seq", "at", "actor", "workspace", "action", "resource", "request_id", "outcome",
            "digest", "prev_hash", "hash")  # fmt: skip
_INSERT = (f"INSERT INTO audit_events ({', '.join(_COLUMNS)}) "
           f"VALUES ({', '.join(':' + c for c in _COLUMNS)})")  # fmt: skip
_MOVE = "UPDATE audit_head SET seq = :seq, hash = :hash WHERE id = 1"
# the head to the event if it is still the one this process last wrote
_MOVE_FROM = _MOVE + " AND seq = :prev_seq AND hash = :prev_hash"
# the first event of a database: racing writers make the head once
_MAKE_HEAD = (
    f"INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, '{GENESIS}') ON CONFLICT DO NOTHING"
)
_HEAD_SQL = {"sqlite": "SELECT seq, hash FROM audit_head WHERE id = 1",
             "postgresql": "SELECT seq, hash FROM audit_head WHERE id = 1 FOR UPDATE"}  # fmt: skip
# The head each store's chain had after this process's last append, by engine: the next append
# moves the head from it in one compare-and-set statement (which also takes the row's lock)
# instead of reading it first. Another writer's append in between (or a rolled-back
# transaction) fails the compare, and the head is read and locked as usual.
_LAST_HEADS: weakref.WeakKeyDictionary[Any, tuple[int, str]] = weakref.WeakKeyDictionary()


def _lock_head(session: Session) -> tuple[int, str]:
    """The chain's head, read through the ORM (and made on first use), locked until the
    caller's transaction ends: for a database without plain statements here (:data:`_HEAD_SQL`)."""
    query = _HEAD_QUERY
    found = session.execute(query).first()
    if found is None:  # the first event of this database; racing writers make it once
        first = dialect_insert(session, AuditHeadRow.__table__).values(
            id=_HEAD, seq=0, hash=GENESIS
        )
        session.execute(first.on_conflict_do_nothing())
        found = session.execute(query).one()
    return int(found[0]), str(found[1])


class EventFields(TypedDict):
    """What an event says (:func:`append`): who did what to which resource, how it ended."""

    actor: str
    action: str  # "POST /api/runs/{run_id}/log-batch", "loop promoted via retraining-loop"
    resource: str
    outcome: int  # the HTTP status answered
    request_id: NotRequired[str | None]  # a new one when missing
    digest: NotRequired[str | None]  # the request body's SHA-256
    workspace: NotRequired[str]  # "default" when missing
    at: NotRequired[int | None]  # epoch ms; now when missing


def append(session: Session, **fields: Unpack[EventFields]) -> AuditEvent:
    """Append one event in the session's transaction: two statements when this process wrote
    the head last (move the head from it, insert the event), else three (read and lock the
    head, insert, move it). It is durable when that transaction commits."""
    connection = session.connection()
    if connection.dialect.name in _HEAD_SQL:
        return append_sql(SessionSql(session), connection.engine, **fields)
    event = _new_event(fields)  # another database: the portable, slower way
    _chain(event, _lock_head(session))
    session.execute(insert(AuditEventRow).values(**event))
    session.execute(
        update(AuditHeadRow)
        .where(AuditHeadRow.id == _HEAD)
        .values(seq=event["seq"], hash=event["hash"])
    )
    return AuditEvent.model_construct(**event)


def append_sql(sql: DriverSql, chain: Any, **fields: Unpack[EventFields]) -> AuditEvent:
    """:func:`append` in a plain transaction on SQLite or PostgreSQL (a session's, or
    :meth:`~opsloop.store.database.Store.write_plain`'s); ``chain`` is the store's engine (the
    head this process last wrote there is remembered by it)."""
    event = _new_event(fields)
    last = _LAST_HEADS.get(chain)
    moved = False
    if last is not None:
        _chain(event, last)
        moved = sql.changed(_MOVE_FROM, {**_head_of(event), "prev_seq": last[0]}) == 1
    if not moved:
        found = sql.rows(_HEAD_SQL[sql.dialect.name])
        if not found:
            sql.changed(_MAKE_HEAD, {})
            found = sql.rows(_HEAD_SQL[sql.dialect.name])
        _chain(event, (int(found[0][0]), str(found[0][1])))
        sql.changed(_MOVE, _head_of(event))
    sql.changed(_INSERT, event)
    _LAST_HEADS[chain] = (event["seq"], event["hash"])
    return AuditEvent.model_construct(**event)


def _new_event(fields: EventFields) -> dict[str, Any]:
    at = fields.get("at")
    return {
        "at": now_ms() if at is None else at, "actor": fields["actor"][:250],
        "workspace": fields.get("workspace", DEFAULT_WORKSPACE),
        "action": fields["action"][:500], "resource": fields["resource"][:1000],
        "request_id": fields.get("request_id") or new_request_id(),
        "outcome": int(fields["outcome"]), "digest": fields.get("digest"),
    }  # fmt: skip


def _chain(event: dict[str, Any], head: tuple[int, str]) -> None:
    """Number ``event`` after ``head`` and hash it into the chain."""
    event["seq"], event["prev_hash"] = head[0] + 1, head[1]
    event["hash"] = chain_hash(head[1], event)


def _head_of(event: dict[str, Any]) -> dict[str, Any]:
    return {"seq": event["seq"], "hash": event["hash"], "prev_hash": event["prev_hash"]}


def record(store: Store, actor: str, action: str, resource: str, outcome: int = 200) -> None:
    """Append an event in a transaction of its own: the server's own actions (the scheduler,
    the rollout controller), after the change they record has committed."""
    with store.write() as session:
        append(session, actor=actor, action=action, resource=resource, outcome=outcome)


def _event(row: AuditEventRow) -> AuditEvent:
    return AuditEvent(**{c: getattr(row, c) for c in (*_FIELDS, "prev_hash", "hash")})


def list_events(
    session: Session,
    *,
    actor: str | None = None,
    resource: str | None = None,
    since: int | None = None,
    before_seq: int | None = None,
    limit: int = 100,
) -> list[AuditEvent]:
    """Events newest first: ``actor`` exactly, ``resource`` as a prefix (``models/churn``
    matches its aliases and versions), at or after ``since`` (epoch ms), below
    ``before_seq`` (the paging cursor)."""
    query = select(AuditEventRow)
    if actor:
        query = query.where(AuditEventRow.actor == actor)
    if resource:
        escaped = resource.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        query = query.where(AuditEventRow.resource.like(escaped + "%", escape="\\"))
    if since is not None:
        query = query.where(AuditEventRow.at >= since)
    if before_seq is not None:
        query = query.where(AuditEventRow.seq < before_seq)
    rows = session.scalars(query.order_by(AuditEventRow.seq.desc()).limit(limit)).all()
    return [_event(row) for row in rows]


def list_page(
    session: Session, flt: AuditFilter, max_results: int, page_token: str | None
) -> AuditPage:
    """One page of the events ``flt`` selects, newest first (see :func:`list_events`); the
    page token holds the ``seq`` to go below. ``InvalidInput`` for a forged token."""
    before = decode_page_token(page_token) or None
    events = list_events(session, actor=flt.actor, resource=flt.resource, since=flt.since,
                         before_seq=before, limit=max_results + 1)  # fmt: skip
    more = len(events) > max_results
    events = events[:max_results]
    token = encode_page_token(events[-1].seq) if more and events else None
    return AuditPage(items=events, next_page_token=token)


def iter_events(session: Session, *, batch: int = 1000) -> Iterator[AuditEvent]:
    """Every event, oldest first, read ``batch`` at a time (for export and verify)."""
    after = 0
    while True:
        rows = session.scalars(
            select(AuditEventRow)
            .where(AuditEventRow.seq > after)
            .order_by(AuditEventRow.seq)
            .limit(batch)
        ).all()
        if not rows:
            return
        for row in rows:
            yield _event(row)
        after = rows[-1].seq


def verify(session: Session) -> AuditVerdict:
    """Walk the chain from the first event: the first ``seq`` that is missing, does not follow
    its predecessor, or does not hash to its ``hash``; then the head against the last event."""
    prev_seq, prev_hash, checked = 0, GENESIS, 0
    head = session.execute(_HEAD_QUERY).first()
    head_seq, head_hash = (int(head[0]), str(head[1])) if head is not None else (0, GENESIS)

    def bad(seq: int, problem: str) -> AuditVerdict:
        return AuditVerdict(ok=False, checked=checked, first_bad_seq=seq, problem=problem,
                            head_seq=head_seq, head_hash=head_hash)  # fmt: skip

    for event in iter_events(session):
        checked += 1
        seq = event.seq
        if seq != prev_seq + 1:
            missing = f"{prev_seq + 1}" + (f"..{seq - 1}" if seq > prev_seq + 2 else "")
            return bad(prev_seq + 1, f"event {missing} is missing (deleted)")
        if event.prev_hash != prev_hash:
            problem = f"event {seq} does not follow event {prev_seq}: its prev_hash is not "
            return bad(seq, problem + "that event's hash (an event was edited)")
        if chain_hash(prev_hash, event.model_dump()) != event.hash:
            return bad(seq, f"event {seq} was edited: its fields no longer hash to its hash")
        prev_seq, prev_hash = seq, event.hash
    if head_seq > prev_seq:
        missing = f"{prev_seq + 1}..{head_seq}" if head_seq > prev_seq + 1 else f"{head_seq}"
        return bad(prev_seq + 1, f"event {missing} is missing (deleted): the head is at {head_seq}")
    if head_seq != prev_seq or head_hash != prev_hash:
        problem = f"the chain's head (seq {head_seq}) does not match the last event ({prev_seq})"
        return bad(head_seq, problem + ": the head was edited")
    return AuditVerdict(ok=True, checked=checked, head_seq=head_seq, head_hash=head_hash)
