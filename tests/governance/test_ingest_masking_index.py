"""Migration 0020 (masking columns, ``ix_spans_user``) on SQLite and PostgreSQL: erasure's
look-up of one end user's traces reads ``ix_spans_user`` and ``ix_traces_user``, as the
databases' own EXPLAIN says for the very statements erasure runs, and the migration reverts."""

from __future__ import annotations

from typing import Any

from sqlalchemy import event
from sqlalchemy import inspect

from opsloop.llm.tracing import privacy
from opsloop.llm.tracing import services
from opsloop.llm.tracing.records import SpanRecord
from opsloop.store.database import Store
from opsloop.store.migrate import downgrade
from opsloop.store.migrate import upgrade

REVISION, BEFORE = "0020_ingest_masking", "0019_oidc"


def _spans(n: int) -> list[SpanRecord]:
    return [
        SpanRecord(
            trace_id=f"{i + 1:032x}",
            span_id=f"{i + 1:016x}",
            name="s",
            start_ns=1 + i,
            end_ns=2 + i,
            user_id=f"user-{i % 50}",
        )
        for i in range(n)
    ]


def _plans(store: Store, user_id: str) -> list[tuple[str, str]]:
    """(statement, plan) for each SELECT erasure's ``user_trace_ids`` runs."""
    seen: list[tuple[str, Any]] = []

    def capture(conn: Any, cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            seen.append((statement, parameters))

    event.listen(store.engine, "before_cursor_execute", capture)
    try:
        with store.read() as session:
            assert privacy.user_trace_ids(session, user_id)
    finally:
        event.remove(store.engine, "before_cursor_execute", capture)
    postgres = store.engine.dialect.name == "postgresql"
    out = []
    with store.engine.begin() as conn:
        if postgres:  # a tiny table is cheaper to scan: ask whether an index can answer at all
            conn.exec_driver_sql("SET LOCAL enable_seqscan = off")
        for statement, parameters in seen:
            explain = "EXPLAIN " if postgres else "EXPLAIN QUERY PLAN "
            rows = conn.exec_driver_sql(explain + statement, parameters).all()
            out.append((statement, " | ".join(" ".join(map(str, row)) for row in rows)))
    return out


def test_erasure_by_user_reads_the_user_indexes(database_url: str) -> None:
    store = Store(database_url)
    try:
        upgrade(store.engine)  # every revision replayed, as an existing install migrates
        with store.write() as session:
            services.ingest(session, _spans(400))
        plans = _plans(store, "user-7")
        by_table = {("spans" if "FROM spans" in sql else "traces"): plan for sql, plan in plans}
        assert set(by_table) == {"spans", "traces"}, plans
        assert "ix_spans_user" in by_table["spans"], by_table["spans"]
        assert "ix_traces_user" in by_table["traces"], by_table["traces"]
        if store.engine.dialect.name == "sqlite":  # the index alone answers: no table read
            assert "COVERING INDEX ix_spans_user" in by_table["spans"], by_table["spans"]

        downgrade(store.engine, BEFORE)
        found = inspect(store.engine)
        assert "ix_spans_user" not in {ix["name"] for ix in found.get_indexes("spans")}
        columns = {c["name"] for c in found.get_columns("retention_policies")}
        assert not columns & {"mask_entities", "mask_mode", "mask_key"}
        upgrade(store.engine, REVISION)
        found = inspect(store.engine)
        assert "ix_spans_user" in {ix["name"] for ix in found.get_indexes("spans")}
    finally:
        store.dispose()
