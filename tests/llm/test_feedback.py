"""Feedback on local and HTTP backends over SQLite and PostgreSQL: annotation queues with
claims and typed scores, and rated traces exported as fine-tuning data versions with lineage."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import opsloop
from opsloop.errors import Conflict
from opsloop.errors import InvalidInput
from opsloop.errors import NotFound


def _answer(client: Any, question: str, answer: str, tag: str = "support") -> str:
    tracer = client.traces.tracer
    with tracer.span("support", kind="chain", input=[{"role": "user", "content": question}]) as s:
        s.update(output=answer, tags=[tag])
    return s.trace_id


def test_queue_review_and_exports(client: Any) -> None:
    feedback, traces = client.feedback, client.traces
    good = _answer(client, "How do I reset my password?", "Use the 'Forgot password' link.")
    bad = _answer(client, "How do I reset my password?", "I don't know.")
    other = _answer(client, "Where is my order?", "It ships tomorrow.")
    untagged = _answer(client, "hi", "hello", tag="smalltalk")
    traces.flush()

    queue = feedback.create_queue(
        "support-review",
        scores=[
            {"name": "helpfulness", "min": 1, "max": 5},
            {"name": "tone", "data_type": "categorical", "categories": ["friendly", "rude"]},
        ],
    )
    assert [s.name for s in queue.scores] == ["helpfulness", "tone"]
    with pytest.raises(Conflict):
        feedback.create_queue("support-review", scores=[{"name": "x"}])
    assert feedback.add("support-review", filter={"tags": ["support"]}) == 3
    assert feedback.add("support-review", [good, untagged]) == 1  # good was queued already
    assert feedback.queue("support-review").counts == {"pending": 4, "done": 0, "skipped": 0}

    reviewed: dict[str, float] = {good: 5, bad: 1, other: 4}
    for _ in range(4):
        item = feedback.next("support-review")
        assert item is not None and item.trace is not None
        again = feedback.next("support-review")
        assert again is not None and again.id == item.id  # the reviewer's claim comes back
        if item.trace_id == untagged:
            feedback.skip("support-review", item.id)
            continue
        with pytest.raises(InvalidInput, match=r"within \[1.0, 5.0\]"):
            feedback.submit("support-review", item.id, {"helpfulness": 9})
        with pytest.raises(InvalidInput, match="takes one of"):
            feedback.submit("support-review", item.id, {"tone": "meh"})
        with pytest.raises(InvalidInput, match="has no score 'speed'"):
            feedback.submit("support-review", item.id, {"speed": 1})
        done = feedback.submit(  # the item's id as the tool prints it (8 characters)
            "support-review",
            item.id[:8],
            {"helpfulness": reviewed[item.trace_id], "tone": "friendly"},
        )
        assert done.status == "done"
        with pytest.raises(Conflict, match="already done"):
            feedback.submit("support-review", item.id, {"helpfulness": 3})
    assert feedback.next("support-review") is None
    assert feedback.queue("support-review").counts == {"pending": 0, "done": 3, "skipped": 1}
    scores = traces.scores(trace_id=good)
    assert {(s.name, s.source) for s in scores} == {("helpfulness", "human"), ("tone", "human")}

    sft = feedback.export("support-sft", filter={"scores": ["helpfulness>=4"]})
    assert (sft.ref, sft.rows, sft.traces, sft.created) == ("support-sft@1", 2, 2, True)
    rows = [
        json.loads(line)
        for line in client.data.get("support-sft@1").path().read_text().splitlines()
    ]
    assert {r["messages"][-1]["content"] for r in rows} == {
        "Use the 'Forgot password' link.",
        "It ships tomorrow.",
    }
    assert rows[0]["messages"][0]["role"] == "user"
    same = feedback.export("support-sft", filter={"scores": ["helpfulness>=4"]})
    assert (same.ref, same.created) == ("support-sft@1", False)

    dpo = feedback.export("support-dpo", format="preference", score="helpfulness")
    assert (dpo.rows, dpo.traces) == (1, 2)
    pair = json.loads(client.data.get("support-dpo@1").path().read_text())
    assert pair["prompt"] == [{"role": "user", "content": "How do I reset my password?"}]
    assert pair["chosen"][0]["content"] == "Use the 'Forgot password' link."
    assert pair["rejected"][0]["content"] == "I don't know."
    with pytest.raises(InvalidInput, match="no preference rows"):
        feedback.export("x", format="preference", score="helpfulness", min_margin=10)
    with pytest.raises(InvalidInput, match="needs score=NAME"):
        feedback.export("x", format="preference")
    with pytest.raises(NotFound):
        feedback.add("support-review", ["0" * 31 + "1"])
    with pytest.raises(NotFound):
        feedback.next("nope")


def test_export_lineage_links_each_trace(sqlite_url: str, tmp_path: Path) -> None:
    client = opsloop.Client(database_url=sqlite_url, blob_url=str(tmp_path / "blobs"))
    trace = _answer(client, "q?", "a.")
    client.traces.score(trace, "thumbs", True)
    result = client.feedback.export("thumbs-up", filter={"scores": ["thumbs=true"]})
    from opsloop.schema import lineage_catalog

    with client.models._backend.store.read() as session:  # type: ignore[attr-defined]
        tree = lineage_catalog().lineage(session, "data", result.ref)
    upstream = tree["upstream"]
    assert [n["type"] for n in upstream] == ["trace"]
    assert upstream[0]["id"] == trace and upstream[0]["relation"] == "exported_to"
    client.close()


def test_cli_queue_review_and_export(tmp_path: Path) -> None:
    client = opsloop.Client()
    first = _answer(client, "How?", "Like this.")
    second = _answer(client, "Why?", "Because.")
    client.traces.flush()
    cli = str(Path(sys.executable).with_name("opsloop"))

    def run(*args: str, code: int = 0, stdin: str | None = None) -> str:
        done = subprocess.run([cli, *args], capture_output=True, text=True, timeout=60, input=stdin)
        assert done.returncode == code, done.stderr
        return done.stdout + done.stderr

    run("feedback", "queues", "create", "q1", "--score", "helpfulness:numeric:1:5",
        "--score", "tone:categorical:friendly,rude")  # fmt: skip
    assert "queued 2 new" in run("feedback", "queues", "add", "q1", "--tag", "support")
    out = run("feedback", "review", "q1", stdin="5\nfriendly\n9\n2\nrude\n")
    assert "not saved" in out and "reviewed 2; queue q1 is done" in out
    listed = json.loads(run("feedback", "queues", "list", "--json"))
    assert listed[0]["counts"] == {"pending": 0, "done": 2, "skipped": 0}
    assert "support-sft@1: 1 sft rows from 1 traces" in run(
        "feedback", "export", "support-sft", "--score", "helpfulness>=4"
    )
    assert "is not numeric, boolean" in run(
        "feedback", "queues", "create", "q2", "--score", "x:float", code=2
    )
    assert "does not exist" in run("feedback", "next", "ghost", code=3)
    assert {first, second}
    client.close()
