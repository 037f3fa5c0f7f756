"""Retention sweeps and erasures (issue 23, data privacy) on a real store (SQLite and
PostgreSQL), a real prediction log (Parquet under a tmp folder), the real CLI and a real server
in ``users`` mode."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy import update

from opsloop.governance import audit
from opsloop.governance import retention
from opsloop.kernel.timeutil import now_ms
from opsloop.llm.feedback import services as feedback
from opsloop.llm.feedback.entities import QueueCreate
from opsloop.llm.feedback.entities import ScoreConfig
from opsloop.llm.feedback.tables import AnnotationItemRow
from opsloop.llm.tracing import services as tracing
from opsloop.llm.tracing.entities import ScoreCreate
from opsloop.llm.tracing.records import SpanRecord
from opsloop.llm.tracing.tables import ScoreRow
from opsloop.llm.tracing.tables import SpanRow
from opsloop.llm.tracing.tables import TraceRow
from opsloop.serving.predlog import PredictionLog
from opsloop.workflows.privacy import erase
from opsloop.workflows.privacy import sweep

DAY = 86_400_000


def _trace(store: Any, n: int, user: str | None, age_days: float, spans: int = 2) -> str:
    """A trace of ``spans`` spans for ``user`` that started ``age_days`` ago, with one score."""
    trace_id = f"{n:032x}"
    start = int((now_ms() - age_days * DAY) * 1_000_000)
    records = [
        SpanRecord(trace_id, f"{n * 100 + i + 1:016x}", f"s{i}", start + i, start + i + 1000,
                   parent_span_id=None if i == 0 else f"{n * 100 + 1:016x}", user_id=user)
        for i in range(spans)
    ]  # fmt: skip
    with store.write() as session:
        tracing.ingest(session, records)
        tracing.add_score(session, ScoreCreate(trace_id=trace_id, name="ok", value=1.0), "t")
    return trace_id


def _count(store: Any, table: Any, *where: Any) -> int:
    with store.read() as session:
        return int(session.scalar(select(func.count()).select_from(table).where(*where)))


def _queue(store: Any, trace_ids: list[str]) -> None:
    body = QueueCreate(name="review", scores=[ScoreConfig(name="good")])
    with store.write() as session:
        feedback.create_queue(session, body, "t")
        feedback.add_items(session, "review", trace_ids, None)


def _predict(log: PredictionLog, request_id: str, age_days: float, body: dict) -> None:
    log.log({"request_id": request_id, "deployment": "churn", "model": "churn", "version": 1,
             "ts_ms": int(now_ms() - age_days * DAY), "latency_ms": 1.0, "inputs": body,
             "outputs": [0], "shadow": False, "error": None})  # fmt: skip


def _predictions(folder: Path) -> list[str]:
    log = PredictionLog(folder)
    try:
        return sorted(log.predictions("churn")["request_id"])
    finally:
        log.close()


def _events(store: Any) -> list[Any]:
    with store.read() as session:
        return audit.list_events(session, limit=100)


def test_retention_deletes_only_what_is_older_and_only_the_kinds_set(
    store: Any, tmp_path: Path
) -> None:
    old = [_trace(store, n, "u", 40) for n in range(1, 6)]
    new = [_trace(store, n, "u", 1) for n in range(6, 8)]
    _queue(store, [old[0], new[0]])
    with store.write() as session:  # a score made long ago on a new trace: scores are not set
        session.execute(update(ScoreRow).where(ScoreRow.trace_id == new[1])
                        .values(created_at=now_ms() - 50 * DAY))  # fmt: skip
    folder = tmp_path / "predictions"
    log = PredictionLog(folder)
    _predict(log, "ancient", 100, {"records": [{"x": 1}]})
    _predict(log, "recent", 40, {"records": [{"x": 2}]})
    log.label("churn", "ancient", 1)
    log.close()
    with store.write() as session:
        retention.set_policy(session, retention.RetentionSet(traces=30, predictions=90), "root")

    commits: list[int] = []
    event.listen(store.engine, "commit", lambda _conn: commits.append(1))
    result = sweep(store, folder, actor="scheduler", batch=2)

    assert set(result.swept) == {"traces", "predictions"}
    assert result.swept["traces"] == {"traces": 5, "spans": 10, "scores": 5,
                                      "annotation_items": 1}  # fmt: skip
    # a label is kept by when it arrived (today), like every row: its own age, not its request's
    assert result.swept["predictions"] == {"predictions": 1, "labels": 0}
    # 5 old traces, 2 per transaction: 3 batches (plus the claims and the audit events)
    assert len(commits) >= 3 + 2 + 2
    assert _count(store, TraceRow) == 2 and _count(store, SpanRow) == 4
    assert _count(store, TraceRow, TraceRow.trace_id.in_(new)) == 2
    assert _count(store, ScoreRow) == 2  # the old score of a new trace stays: no scores retention
    assert _count(store, AnnotationItemRow) == 1
    assert _predictions(folder) == ["recent"]
    events = [e for e in _events(store) if e.resource == "privacy/retention"]
    assert [e.actor for e in events] == ["scheduler", "scheduler"]
    assert any(e.action.startswith("retention sweep traces") and "5 traces" in e.action
               for e in events)  # fmt: skip

    assert sweep(store, folder, actor="scheduler").swept == {}  # this hour's sweep is taken
    again = sweep(store, folder, actor="root", force=True)  # idempotent: nothing more to delete
    assert set(again.swept["traces"].values()) == {0}
    assert again.swept["predictions"] == {"predictions": 0, "labels": 0}
    assert _count(store, TraceRow) == 2 and _predictions(folder) == ["recent"]


def test_score_retention_leaves_traces(store: Any) -> None:
    trace = _trace(store, 1, "u", 40)
    with store.write() as session:
        session.execute(update(ScoreRow).values(created_at=now_ms() - 31 * DAY))
        tracing.add_score(session, ScoreCreate(trace_id=trace, name="fresh", value=0.5), "t")
        retention.set_policy(session, retention.RetentionSet(scores=30), "root")
    result = sweep(store, None, actor="scheduler", batch=1)
    assert result.swept == {"scores": {"scores": 1}}
    assert _count(store, TraceRow) == 1 and _count(store, ScoreRow) == 1


def _two_users(store: Any, folder: Path) -> None:
    for n in (1, 2):
        _trace(store, n, "alice", 3)
    _trace(store, 3, "bob", 3)
    _trace(store, 4, None, 3)
    _queue(store, [f"{1:032x}", f"{3:032x}"])
    log = PredictionLog(folder)
    _predict(log, "a1", 2, {"records": [{"x": 1}], "user_id": "alice"})
    _predict(log, "a2", 1, {"dataframe_split": {"columns": ["user_id", "x"],
                                                "data": [["alice", 3]]}})  # fmt: skip
    _predict(log, "b1", 1, {"records": [{"x": 2, "user_id": "bob"}]})
    _predict(log, "n1", 1, {"records": [{"x": 3, "note": "alice's friend"}]})
    log.label("churn", "a1", 1)
    log.label("churn", "b1", 0)
    log.close()


def test_erasure_removes_exactly_one_users_rows(store: Any, tmp_path: Path) -> None:
    folder = tmp_path / "predictions"
    _two_users(store, folder)
    expected = {"traces": 2, "spans": 4, "scores": 2, "annotation_items": 1, "predictions": 2,
                "labels": 1}  # fmt: skip

    dry = erase(store, folder, "alice", actor="root", dry_run=True)
    assert dry.counts == expected and dry.dry_run
    assert _count(store, TraceRow) == 4 and len(_predictions(folder)) == 4
    assert [e for e in _events(store) if e.resource == "privacy/erasures"] == []

    done = erase(store, folder, "alice", actor="root")
    assert done.counts == expected
    with store.read() as session:
        left = set(session.scalars(select(TraceRow.user_id)))
        assert left == {"bob", None}
        assert session.scalar(select(func.count()).where(SpanRow.user_id == "alice")) == 0
    assert _count(store, SpanRow) == 4 and _count(store, ScoreRow) == 2
    assert _count(store, AnnotationItemRow) == 1
    assert _predictions(folder) == ["b1", "n1"]
    (mine,) = [e for e in _events(store) if e.resource == "privacy/erasures"]
    assert mine.actor == "root" and mine.digest == hashlib.sha256(b"alice").hexdigest()
    assert "alice" not in mine.action and "2 traces" in mine.action

    nobody = erase(store, folder, "nobody-at-all", actor="root")
    assert set(nobody.counts.values()) == {0}
    assert erase(store, folder, "alice", actor="root").counts == dict.fromkeys(expected, 0)


def test_the_routes_are_an_admins(users_server: Any) -> None:
    for user in ("vic", "eddie", "mona"):
        with users_server.http(user) as http:
            answer = http.post("/api/privacy/erasures", json={"user_id": "alice"})
            assert answer.status_code == 403, answer.text
            error = answer.json()["error"]
            assert error["details"]["required_role"] == "admin" and "'admin'" in error["message"]
            assert http.get("/api/privacy/retention").status_code == 403
    with users_server.http("root") as http:
        for bad in ({"traces": -1}, {"traces": "30"}, {"scores": 2.5}, {"traces": 0},
                    {"forever": 3}):  # fmt: skip
            answer = http.put("/api/privacy/retention", json=bad)
            assert answer.status_code == 400, (bad, answer.text)
        assert http.post("/api/privacy/erasures", json={"user_id": ""}).status_code == 400
        set_ = http.put("/api/privacy/retention", json={"traces": 30, "predictions": 90})
        assert set_.status_code == 200 and set_.json()["traces"] == 30
        cleared = http.put("/api/privacy/retention", json={"traces": None}).json()
        assert cleared["traces"] is None and cleared["predictions"] == 90
        swept = http.post("/api/privacy/sweeps").json()["swept"]
        assert swept == {"predictions": {"predictions": 0, "labels": 0}}
        erased = http.post("/api/privacy/erasures", json={"user_id": "ghost"})
        assert erased.status_code == 200 and set(erased.json()["counts"].values()) == {0}
        events = http.get("/api/audit", params={"resource": "privacy/erasures"}).json()["items"]
        assert [e["actor"] for e in events if e["action"].startswith("privacy erase")] == ["root"]


def _cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    from opsloop.app.cli import main

    with pytest.raises(SystemExit) as exit_:
        main(["privacy", *args])
    out = capsys.readouterr()
    return int(exit_.value.code or 0), out.out, out.err


def test_cli_on_the_embedded_store(capsys: pytest.CaptureFixture[str]) -> None:
    for bad in (["--traces", "thirty"], ["--traces", "-5"], ["--scores", "1.5"], []):
        code, _, err = _cli(capsys, "retention", "set", *bad)
        assert code == 2, (bad, err)
        assert err.count("\n") == 1 and "Traceback" not in err, err
    code, out, _ = _cli(capsys, "retention", "set", "--traces", "30", "--scores", "off", "--json")
    assert code == 0 and json.loads(out)["traces"] == 30 and json.loads(out)["scores"] is None
    code, out, _ = _cli(capsys, "retention", "show")
    assert code == 0 and "30 days" in out and "forever" in out
    code, out, _ = _cli(capsys, "sweep", "--json")
    assert code == 0 and list(json.loads(out)["swept"]) == ["traces"]
    code, out, _ = _cli(capsys, "erase", "--user-id", "nobody", "--dry-run", "--json")
    assert code == 0 and json.loads(out)["dry_run"] is True
    assert set(json.loads(out)["counts"].values()) == {0}
    code, out, _ = _cli(capsys, "erase", "--user-id", "nobody")
    assert code == 0 and "deleted" in out and "traces" in out


def test_the_scheduler_sweeps_once_an_hour() -> None:
    from opsloop import Client
    from opsloop.client import shared_stores

    with Client() as client:
        store = shared_stores(client.settings)[0]
        old, new = _trace(store, 1, "u", 40), _trace(store, 2, "u", 1)
        with store.write() as session:
            retention.set_policy(session, retention.RetentionSet(traces=30), "root")
        runner = client.scheduler()
        try:
            runner.tick(wait=True)
            _trace(store, 3, "u", 40)  # arrives after this hour's sweep: kept until the next
            runner._retention_checked = float("-inf")  # ask again now, not in a minute
            runner.tick(wait=True)
        finally:
            runner.stop()
        with store.read() as session:
            assert set(session.scalars(select(TraceRow.trace_id))) == {new, f"{3:032x}"}
        (swept,) = [e for e in _events(store) if e.resource == "privacy/retention"]
        assert swept.actor == "scheduler" and "1 traces" in swept.action
        assert old not in swept.action


@pytest.mark.s3
def test_erasure_and_retention_reach_the_shared_log(
    store: Any, tmp_path: Path, s3_blob_url: tuple[str, dict[str, Any]]
) -> None:
    """With a shared prediction store, the workflow reaches every replica's sealed objects:
    what a reader on another host sees loses the user's rows, and the days past retention."""
    from opsloop.config import Settings
    from opsloop.serving.predlog import PredictionReader
    from opsloop.serving.predlog_shared import shared_log

    url, options = s3_blob_url
    settings = Settings(home=tmp_path, database_url="sqlite://", blob_url=url,
                        storage_options=options)  # fmt: skip
    replica = PredictionLog(tmp_path / "host", shared=shared_log(settings, tmp_path / "host"))
    _predict(replica, "a1", 1, {"records": [{"x": 1, "user_id": "alice"}]})
    _predict(replica, "b1", 1, {"records": [{"x": 2, "user_id": "bob"}]})
    _predict(replica, "old", 40, {"records": [{"x": 3}]})
    replica.close()  # sealed into the store
    other = PredictionReader(tmp_path / "other", shared_log(settings, tmp_path / "other"))
    assert sorted(other.predictions("churn")["request_id"]) == ["a1", "b1", "old"]
    here = PredictionLog(tmp_path / "here", shared=shared_log(settings, tmp_path / "here"))
    assert erase(store, here, "alice", actor="root").counts["predictions"] == 1
    with store.write() as session:
        retention.set_policy(session, retention.RetentionSet(predictions=30), "root")
    assert sweep(store, here, actor="root", force=True).swept["predictions"]["predictions"] == 1
    here.close()
    assert sorted(other.predictions("churn")["request_id"]) == ["b1"]
