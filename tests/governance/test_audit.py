"""The audit chain on SQLite and PostgreSQL: verify names the first edited or deleted event,
concurrent writers keep one chain, and a live ``users`` server records who did what over HTTP
(a write, a refused write) with ``opsloop audit verify|list|export`` run as an operator would."""

from __future__ import annotations

import hashlib
import json
import threading
from pathlib import Path

import pytest
import sqlalchemy as sa

from opsloop.governance import audit
from opsloop.schema import open_store
from tests.governance.conftest import UsersServer
from tests.governance.test_cli_and_ui import run


def _fill(url: str, n: int) -> None:
    store = open_store(url)
    try:
        for i in range(n):
            audit.record(store, "tester", "POST /api/things", f"things/{i + 1}", 201)
    finally:
        store.dispose()


def _sql(url: str, statement: str) -> None:
    from opsloop.store.database import normalize_database_url

    engine = sa.create_engine(normalize_database_url(url))
    with engine.begin() as conn:
        conn.execute(sa.text(statement))
    engine.dispose()


def _verify(url: str) -> audit.AuditVerdict:  # type: ignore[name-defined]
    store = open_store(url)
    try:
        with store.read() as session:
            return audit.verify(session)
    finally:
        store.dispose()


def test_an_intact_chain_verifies(database_url: str) -> None:
    assert _verify(database_url).ok  # empty: nothing to break
    _fill(database_url, 5)
    verdict = _verify(database_url)
    assert verdict.ok and verdict.checked == 5 and verdict.head_seq == 5


@pytest.mark.parametrize(
    "statement",
    ["UPDATE audit_events SET outcome = 200 WHERE seq = 3",
     "UPDATE audit_events SET actor = 'someone-else' WHERE seq = 3",
     "UPDATE audit_events SET resource = 'things/other' WHERE seq = 3"],
)  # fmt: skip
def test_an_edited_event_is_named(database_url: str, statement: str) -> None:
    _fill(database_url, 5)
    _sql(database_url, statement)
    verdict = _verify(database_url)
    assert not verdict.ok and verdict.first_bad_seq == 3
    assert "event 3 was edited" in (verdict.problem or "")


def test_an_edit_that_rehashes_its_event_breaks_the_next(database_url: str) -> None:
    _fill(database_url, 5)
    store = open_store(database_url)
    with store.read() as session:
        third = audit.list_events(session, before_seq=4, limit=1)[0]
    store.dispose()
    forged = third.model_copy(update={"outcome": 200}).model_dump()
    rehashed = audit.chain_hash(third.prev_hash, forged)
    _sql(database_url, f"UPDATE audit_events SET outcome = 200, hash = '{rehashed}' WHERE seq = 3")
    verdict = _verify(database_url)
    assert not verdict.ok and verdict.first_bad_seq == 4
    assert "does not follow event 3" in (verdict.problem or "")


def test_a_deleted_event_is_named_by_its_gap(database_url: str) -> None:
    _fill(database_url, 6)
    _sql(database_url, "DELETE FROM audit_events WHERE seq IN (3, 4)")
    verdict = _verify(database_url)
    assert not verdict.ok and verdict.first_bad_seq == 3
    assert verdict.problem == "event 3..4 is missing (deleted)"


def test_deleted_newest_events_are_named_by_the_head(database_url: str) -> None:
    _fill(database_url, 4)
    _sql(database_url, "DELETE FROM audit_events WHERE seq = 4")
    verdict = _verify(database_url)
    assert not verdict.ok and verdict.first_bad_seq == 4 and "head is at 4" in verdict.problem


def test_concurrent_writers_keep_one_chain(database_url: str) -> None:
    """Six threads append at once, half through sessions and half in plain transactions
    (``Store.write_plain``, MLflow's hot routes): one dense chain."""
    store = open_store(database_url)
    errors: list[BaseException] = []
    start = threading.Barrier(6)

    def write(worker: int) -> None:
        try:
            start.wait()
            for i in range(20):
                fields = {"actor": f"w{worker}", "action": "POST /api/things",
                          "resource": f"things/{worker}/{i}", "outcome": 200}  # fmt: skip
                if worker % 2:
                    with store.write_plain() as sql:
                        audit.append_sql(sql, store.engine, **fields)
                else:
                    audit.record(store, **fields)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(w,)) for w in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with store.read() as session:
        verdict = audit.verify(session)
        seqs = [e.seq for e in audit.iter_events(session)]
    store.dispose()
    assert verdict.ok and verdict.checked == 120
    assert seqs == list(range(1, 121))


def test_a_users_server_records_who_did_what(users_server: UsersServer, tmp_path: Path) -> None:
    body = json.dumps({"name": "audited"}).encode()
    with users_server.http("eddie") as eddie:
        made = eddie.post("/api/experiments", content=body,
                          headers={"content-type": "application/json"})  # fmt: skip
        assert made.status_code == 201
    with users_server.http("vic") as vic:
        refused = vic.post("/api/experiments", json={"name": "nope"})
        assert refused.status_code == 403
    with users_server.http("vic") as vic:
        assert vic.get("/api/audit").status_code == 403  # an admin's to read
    with users_server.http("root") as root:
        events = {e["request_id"]: e for e in root.get("/api/audit").json()["items"]}
    ok, no = events[made.headers["x-request-id"]], events[refused.headers["x-request-id"]]
    assert (ok["actor"], ok["action"], ok["outcome"]) == ("eddie", "POST /api/experiments", 201)
    assert ok["digest"] == hashlib.sha256(body).hexdigest()
    assert (no["actor"], no["outcome"]) == ("vic", 403)

    env = {"OPSLOOP_SERVER_URL": users_server.url, "OPSLOOP_TOKEN": users_server.keys["root"]}
    verified = run("audit", "verify", **env)
    assert verified.returncode == 0 and verified.stdout.startswith("ok: ")
    listed = run("audit", "list", "--actor", "eddie", "--since", "1h", "--json", **env)
    assert [e["request_id"] for e in json.loads(listed.stdout)] == [ok["request_id"]]
    out = tmp_path / "audit.jsonl"
    assert run("audit", "export", "--out", str(out), **env).returncode == 0
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [e["seq"] for e in lines] == sorted(e["seq"] for e in lines)
    assert ok in lines
    bad = run("audit", "list", "--since", "yesterday", **env)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "--since" not in bad.stdout

    _sql(
        users_server.database_url, f"UPDATE audit_events SET outcome = 201 WHERE seq = {no['seq']}"
    )
    tampered = run("audit", "verify", **env)
    assert tampered.returncode == 1
    assert f"TAMPERED at event {no['seq']}" in tampered.stderr


def test_two_processes_stores_and_a_rolled_back_append_keep_one_chain(database_url: str) -> None:
    """An append moves the head from the one this process last wrote, in one compare-and-set:
    another store's append in between, or a rolled-back transaction, fails the compare and the
    head is read again, so the chain stays whole."""
    first, second = open_store(database_url), open_store(database_url)  # two engines
    try:
        for i in range(3):
            audit.record(first, "a", "POST /api/things", f"things/a{i}")
            audit.record(second, "b", "POST /api/things", f"things/b{i}")
        with pytest.raises(RuntimeError), first.write() as session:
            audit.append(session, actor="a", action="POST /api/x", resource="x", outcome=200)
            raise RuntimeError("the route failed: its transaction rolls back")
        audit.record(second, "b", "POST /api/things", "things/b3")
        audit.record(first, "a", "POST /api/things", "things/a3")
        with first.read() as session:
            verdict = audit.verify(session)
            events = list(audit.iter_events(session))
    finally:
        first.dispose()
        second.dispose()
    assert verdict.ok and verdict.checked == 8
    assert [e.seq for e in events] == list(range(1, 9))
    assert [e.resource for e in events][-2:] == ["things/b3", "things/a3"]
