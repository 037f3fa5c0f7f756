"""Triggers: cron slots, new data versions, alerts and webhooks each start one run, even with two
schedulers racing over one PostgreSQL database, and every run says what triggered it."""

from __future__ import annotations

import threading
from datetime import UTC
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

import opsloop
from opsloop.client import shared_stores
from opsloop.errors import Conflict
from opsloop.errors import InvalidInput
from opsloop.errors import NotFound
from opsloop.kernel.identity import os_user
from opsloop.pipelines import triggers
from opsloop.workflows.scheduler import Scheduler
from tests.pipelines import example

TARGET = "tests.pipelines.example:training"


@pytest.fixture
def client(database_url: str, tmp_path: Path) -> Any:
    c = opsloop.Client(database_url=database_url, blob_url=str(tmp_path / "blobs"))
    yield c
    c.close()


def _ms(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp() * 1000)


def test_a_cron_slot_fires_once_even_with_two_schedulers(client: Any) -> None:
    client.triggers.create("nightly", TARGET, "cron", cron="0 2 * * *", params={"C": 0.5})
    store = shared_stores(client.settings)[0]
    with store.write() as session:  # as if created yesterday, before last night's slot
        from opsloop.pipelines.tables import TriggerRow

        session.query(TriggerRow).update({"cursor": "2026-11-23T02:00Z"})
    now = _ms("2026-11-24T09:30:00")
    created: list[list[str]] = []
    racers = [
        threading.Thread(target=lambda: created.append(triggers.collect_due(store, now)))
        for _ in range(2)
    ]
    for t in racers:
        t.start()
    for t in racers:
        t.join()
    assert sorted(len(c) for c in created) == [0, 1]  # one firing between them
    assert triggers.collect_due(store, now + 60_000) == []  # the same slot never again
    (firing_id,) = [f for c in created for f in c]
    results = []
    runners = [
        threading.Thread(
            target=lambda: results.append(triggers.run_firing(client, store, firing_id))
        )
        for _ in range(2)
    ]
    for t in runners:
        t.start()
    for t in runners:
        t.join()
    done = [r for r in results if r is not None]
    assert len(done) == 1 and done[0].status == "succeeded"  # one run between them
    run = client.get_run(done[0].run_id)
    assert run.data.tags["opsloop.trigger"] == "cron:2026-11-24T02:00Z"
    assert run.data.params["C"] == "0.5"
    (firing,) = client.triggers.firings("nightly")
    assert firing.reason == "schedule 0 2 * * * (slot 2026-11-24T02:00Z)"


def test_each_new_data_version_fires_once_with_the_version_as_a_param(
    client: Any, tmp_path: Path
) -> None:
    (tmp_path / "a.csv").write_text("x\n1\n")
    client.data.add(str(tmp_path / "a.csv"), name="events")  # before the trigger: ignored
    client.triggers.create("on-events", "tests.pipelines.example:echo", "dataset",
                           dataset="events", param="ref")  # fmt: skip
    store = shared_stores(client.settings)[0]
    assert triggers.collect_due(store) == []
    (tmp_path / "a.csv").write_text("x\n2\n")
    client.data.add(str(tmp_path / "a.csv"), name="events")
    (firing_id,) = triggers.collect_due(store)
    assert triggers.collect_due(store) == []
    done = triggers.run_firing(client, store, firing_id)
    assert done is not None and done.status == "succeeded"
    assert done.message is None  # not "running in process ..." any more
    audited = client.governance.iter_audit(resource=f"firings/{firing_id}")
    assert [(e.actor, e.action) for e in audited] == [(os_user(), "firing succeeded via scheduler")]
    run = client.get_run(done.run_id)
    assert run.data.params["ref"] == "events@2"
    assert run.data.tags["opsloop.trigger"] == "dataset:events@2"


def test_a_webhook_key_fires_once_and_a_failing_pipeline_is_on_record(client: Any) -> None:
    client.triggers.create("hook", TARGET, "webhook")
    first = client.triggers.fire("hook", key="deploy-42")
    again = client.triggers.fire("hook", key="deploy-42")
    assert first.status == "succeeded" and again.id == first.id
    assert len(client.triggers.firings("hook")) == 1
    client.triggers.create("broken", "tests.pipelines.example:broken", "webhook")
    failed = client.triggers.fire("broken")
    assert failed.status == "failed" and "the cluster caught fire" in (failed.message or "")
    assert failed.run_id is not None  # the failed pipeline run, with its traceback


def test_bad_triggers_are_refused(client: Any) -> None:
    with pytest.raises(InvalidInput, match="not a cron expression"):
        client.triggers.create("t", TARGET, "cron", cron="every day")
    with pytest.raises(InvalidInput, match="a dataset trigger needs dataset"):
        client.triggers.create("t", TARGET, "dataset")
    with pytest.raises(InvalidInput, match="MODULE:NAME"):
        client.triggers.create("t", "nocolon", "webhook")
    with pytest.raises(InvalidInput, match="kind"):
        client.triggers.create("t", TARGET, "hourly")
    client.triggers.create("t", TARGET, "webhook")
    with pytest.raises(Conflict, match="already exists"):
        client.triggers.create("t", TARGET, "webhook")
    with pytest.raises(NotFound, match="trigger 'nope'"):
        client.triggers.fire("nope")
    client.triggers.create("missing", "tests.pipelines.example:nope", "webhook")
    assert "has no 'nope'" in (client.triggers.fire("missing").message or "")


def test_the_server_fires_webhooks_and_runs_them(live_server: Any) -> None:
    remote = opsloop.Client(server_url=live_server.url)
    remote.triggers.create("hook", TARGET, "webhook")
    url = f"{live_server.url}/api/triggers/hook/fire"
    first = httpx.post(url, json={"params": {"C": 2.0}}, headers={"Idempotency-Key": "k1"})
    second = httpx.post(url, json={}, headers={"Idempotency-Key": "k1"})
    assert first.status_code == 202 and second.json()["id"] == first.json()["id"]
    assert httpx.post(url, json={"nope": 1}).status_code == 400
    scheduler = Scheduler(live_server.app.state.opsloop.client,
                          live_server.app.state.opsloop.store, None, None)  # fmt: skip
    scheduler.run_pending_firings(wait=True)
    (firing,) = [f for f in remote.triggers.firings("hook") if f.key == "webhook:k1"]
    assert firing.status == "succeeded", firing.message
    assert remote.get_run(firing.run_id).data.params["C"] == "2.0"
    scheduler.stop()
    remote.close()


def test_the_cli_adds_lists_and_fires(tmp_path: Path) -> None:
    import subprocess
    import sys

    cli = str(Path(sys.executable).with_name("opsloop"))
    root = Path(example.__file__).parents[2]

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([cli, "pipelines", "triggers", *args], capture_output=True,
                              text=True, timeout=120, cwd=root)  # fmt: skip

    added = run("add", "hook", "--pipeline", TARGET, "--webhook", "--param", "C=0.25")
    assert added.returncode == 0, added.stderr
    assert "hook" in run("list").stdout
    fired = run("fire", "hook", "--key", "once")
    assert fired.returncode == 0 and "succeeded" in fired.stdout, fired.stderr
    assert "webhook:once" in run("firings", "hook").stdout
    both = run("add", "x", "--pipeline", TARGET, "--webhook", "--cron", "* * * * *")
    assert both.returncode == 2 and "exactly one of" in both.stderr
