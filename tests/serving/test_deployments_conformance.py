"""The ``DeploymentBackend`` contract through ``client.deployments``, in-process (SQLite and
PostgreSQL) and over HTTP against a live server: the same answers, the same error classes, and
nothing changed by a refused request. Every abstract method of the contract is reached by some
test here (``test_every_contract_method_has_a_conformance_test``)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from opsloop.errors import Conflict
from opsloop.errors import InvalidInput
from opsloop.errors import NotFound
from opsloop.serving.backend import DeploymentBackend
from opsloop.serving.entities import DeploymentCreate
from opsloop.serving.entities import Sticky
from opsloop.serving.entities import TrafficPolicy
from opsloop.serving.rollout_entities import RolloutSpec
from tests.serving.conftest import COLUMNS
from tests.serving.conftest import register_two
from tests.serving.conftest import rows
from tests.serving.contract import Recorder
from tests.serving.contract import covers
from tests.serving.contract import uncovered


@pytest.fixture
def deployments(client: Any, request: pytest.FixtureRequest) -> Iterator[Any]:
    """``client.deployments`` over a recorder of its backend: the test must reach every
    contract method it names with ``@covers``."""
    sdk = client.deployments
    recorder = Recorder(sdk._backend, DeploymentBackend)
    sdk._backend = recorder
    failed_before = request.session.testsfailed
    yield sdk
    if request.session.testsfailed == failed_before:  # a failed test reached less: say so once
        missing = recorder.missing(getattr(request.function, "covers", frozenset()))
        assert not missing, f"named in @covers, never reached: {sorted(missing)}"


def test_every_contract_method_has_a_conformance_test() -> None:
    assert uncovered(globals(), DeploymentBackend) == set()


@covers("create", "get", "list", "set_policy", "promote", "rollback", "delete", "events")
def test_deployments_traffic_and_their_history(
    client: Any, deployments: Any, weak_model: Any, strong_model: Any, cancer: Any
) -> None:
    register_two(client, weak_model, strong_model, cancer)
    created = deployments.deploy("cancer-clf@1", name="clf", description="triage")
    assert (created.name, created.model, created.status, created.revision) == (
        "clf", "cancer-clf", "active", 1,
    )  # fmt: skip
    assert created.policy == TrafficPolicy(stable=1) and created.description == "triage"
    assert deployments.get("clf") == created  # the same snapshot, field for field
    deployments.deploy("cancer-clf@2", name="aaa")
    assert [d.name for d in deployments.list()] == ["aaa", "clf"]  # by name

    canary = deployments.deploy("cancer-clf@2", name="clf", canary=10)
    assert canary.policy.describe() == "90% v1, 10% v2" and canary.revision == 2
    ab = TrafficPolicy(mode="ab", stable=1, candidate=2, weight=30, sticky=Sticky(header="X-U"))
    changed = deployments.set_policy("clf", ab, reason="a/b test")
    assert changed.policy == ab and changed.revision == 3
    back = deployments.rollback("clf", reason="too slow")
    assert back.policy == TrafficPolicy(stable=1) and back.revision == 4
    deployments.deploy("cancer-clf@2", name="clf", canary=50)
    promoted = deployments.promote("clf", alias="champion")
    assert promoted.policy == TrafficPolicy(stable=2) and promoted.revision == 6
    assert client.models.version("cancer-clf@champion").number == 2
    assert deployments.get("clf") == promoted

    events = deployments.events("clf")
    assert [e.action for e in events] == [
        "create", "traffic", "traffic", "rollback", "traffic", "promote",
    ]  # fmt: skip
    assert [e.reason for e in events[2:4]] == ["a/b test", "too slow"]
    assert events[0].from_policy is None
    assert events[0].to_policy == TrafficPolicy(stable=1).model_dump(mode="json")
    assert events[-1].from_policy == events[-2].to_policy
    assert events[-1].to_policy == TrafficPolicy(stable=2).model_dump(mode="json")
    assert len({e.actor for e in events}) == 1 and events[0].actor == created.created_by

    deployments.delete("aaa")
    assert [d.name for d in deployments.list()] == ["clf"]
    for call in (deployments.get, deployments.events, deployments.delete):
        with pytest.raises(NotFound, match="deployment 'aaa' does not exist"):
            call("aaa")


@covers("create", "get", "set_policy", "promote", "rollback", "events")
def test_refused_changes_raise_the_same_errors_and_change_nothing(
    client: Any, deployments: Any, weak_model: Any, strong_model: Any, cancer: Any
) -> None:
    register_two(client, weak_model, strong_model, cancer)
    deployments.deploy("cancer-clf@1", name="clf")
    backend = deployments._backend

    def body(name: str, model: str = "cancer-clf", stable: int = 1) -> DeploymentCreate:
        return DeploymentCreate(name=name, model=model, policy=TrafficPolicy(stable=stable))

    with pytest.raises(Conflict, match="already exists"):
        backend.create(body("clf"))
    with pytest.raises(NotFound, match="no version 9"):
        backend.create(body("new", stable=9))
    with pytest.raises(NotFound):
        backend.create(body("new", model="no-such-model"))
    with pytest.raises(InvalidInput, match="invalid deployment name"):
        backend.create(body("bad name!"))
    for name in ("new", "bad name!"):
        with pytest.raises(NotFound):
            deployments.get(name)  # a refused create left nothing behind

    with pytest.raises(NotFound, match="deployment 'ghost' does not exist"):
        deployments.set_policy("ghost", TrafficPolicy(stable=1))
    with pytest.raises(NotFound, match="no version 9"):
        deployments.set_policy("clf", TrafficPolicy(mode="canary", stable=1, candidate=9, weight=5))
    with pytest.raises(Conflict, match="revision"):  # someone else changed it first
        backend.set_policy("clf", TrafficPolicy(stable=2), 7, "stale")
    for call in (deployments.promote, deployments.rollback):
        with pytest.raises(NotFound, match="deployment 'ghost' does not exist"):
            call("ghost")
        with pytest.raises(InvalidInput, match="no candidate"):
            call("clf")
    with pytest.raises(InvalidInput, match="no canary or A/B candidate"):
        deployments.set_traffic("clf", 20)

    unchanged = deployments.get("clf")
    assert (unchanged.policy, unchanged.revision) == (TrafficPolicy(stable=1), 1)
    assert [e.action for e in deployments.events("clf")] == ["create"]
    assert "champion" not in client.models.get("cancer-clf").aliases


@covers("start_rollout", "rollout", "abort_rollout", "advance", "get", "events")
def test_rollouts_start_wait_and_abort(
    client: Any, deployments: Any, weak_model: Any, strong_model: Any, cancer: Any
) -> None:
    register_two(client, weak_model, strong_model, cancer)
    deployments.deploy("cancer-clf@1", name="clf")
    # a first step that waits ten minutes: neither this process nor a server's controller
    # can move it on during the test, so both backends hold the same state
    steps = [{"pause_seconds": 600}, {"set_weight": 100}]

    for call in (deployments.rollout_status, deployments.advance):
        with pytest.raises(NotFound, match="has had no rollout"):
            call("clf")
        with pytest.raises(NotFound, match="deployment 'ghost' does not exist"):
            call("ghost")
    with pytest.raises(InvalidInput, match="no rollout running"):
        deployments.abort_rollout("clf")
    with pytest.raises(NotFound, match="deployment 'ghost' does not exist"):
        deployments.abort_rollout("ghost")
    with pytest.raises(InvalidInput, match="already the stable version"):
        deployments.rollout("cancer-clf@1", name="clf", steps=steps)
    with pytest.raises(NotFound, match="deployment 'ghost' does not exist"):
        deployments.rollout("cancer-clf@2", name="ghost", steps=steps)
    with pytest.raises(NotFound, match="no version 9"):
        deployments._backend.start_rollout("clf", RolloutSpec(candidate=9, steps=steps))
    assert [e.action for e in deployments.events("clf")] == ["create"]

    started = deployments.rollout(
        "cancer-clf@2", name="clf", steps=steps, promote_alias=None,
        checks=[{"metric": "error_rate", "max": 0.05, "min_samples": 5}],
    )  # fmt: skip
    assert (started.deployment, started.status, started.step, started.failures) == (
        "clf", "running", 0, 0,
    )  # fmt: skip
    assert started.spec.candidate == 2 and started.spec.checks[0].min_samples == 5
    assert deployments.get("clf").policy == TrafficPolicy(mode="canary", stable=1, candidate=2)
    with pytest.raises(Conflict, match="already has a rollout running"):
        deployments.rollout("cancer-clf@2", name="clf", steps=steps)

    waiting = deployments.advance("clf")
    assert (waiting.id, waiting.status, waiting.step) == (started.id, "running", 0)
    assert all(a.verdict == "inconclusive" for a in waiting.analyses)  # no traffic: no pass
    status = deployments.rollout_status("clf")
    assert (status.id, status.status, status.spec) == (started.id, "running", started.spec)

    aborted = deployments.abort_rollout("clf", reason="changed my mind")
    assert (aborted.id, aborted.status, aborted.message) == (
        started.id, "aborted", "changed my mind",
    )  # fmt: skip
    assert deployments.get("clf").policy == TrafficPolicy(stable=1)
    assert deployments.advance("clf").status == "aborted"  # a finished rollout stays as it is
    assert deployments.rollout_status("clf").status == "aborted"
    with pytest.raises(InvalidInput, match="no rollout running"):
        deployments.abort_rollout("clf")
    events = deployments.events("clf")
    assert [e.action for e in events] == ["create", "rollout", "rollback"]
    assert events[-1].reason == "changed my mind"


@covers("predict", "feedback", "predictions", "prediction_log")
def test_inference_feedback_and_the_prediction_log(
    client: Any, deployments: Any, weak_model: Any, strong_model: Any, cancer: Any
) -> None:
    register_two(client, weak_model, strong_model, cancer)
    deployments.deploy("cancer-clf@2", name="clf")
    first, second = rows(cancer, 1, start=0), rows(cancer, 1, start=20)

    answer = deployments.predict("clf", first, headers={"X-Request-Id": "req-1"})
    expected = strong_model.predict(pd.DataFrame(first)[COLUMNS]).tolist()
    assert answer == {
        "request_id": "req-1", "deployment": "clf", "model": "cancer-clf@2",
        "predictions": expected,
    }  # fmt: skip
    other = deployments.predict("clf", {"records": second})  # a body as the endpoint takes it
    assert other["model"] == "cancer-clf@2" and other["request_id"] not in ("", "req-1")
    assert other["predictions"] == strong_model.predict(pd.DataFrame(second)[COLUMNS]).tolist()

    with pytest.raises(NotFound, match="deployment 'ghost' does not exist"):
        deployments.predict("ghost", first)
    with pytest.raises(InvalidInput, match="missing"):
        deployments.predict("clf", [{"mean radius": 12.0}])

    assert deployments.feedback("clf", {"req-1": 1}) == 1
    with pytest.raises(NotFound, match="deployment 'ghost' does not exist"):
        deployments.feedback("ghost", {"req-1": 1})
    with pytest.raises(InvalidInput, match="needs request_id"):
        deployments.feedback("clf", {"": 0})

    logged = deployments.predictions("clf")  # the refused request was not logged
    assert list(logged["request_id"]) == ["req-1", other["request_id"]]
    assert list(logged["deployment"]) == ["clf", "clf"] and list(logged["version"]) == [2, 2]
    labels = list(logged["label"])  # the log keeps each label JSON-encoded
    assert json.loads(labels[0]) == 1 and pd.isna(labels[1])
    assert deployments.predictions("ghost").empty

    if client.settings.is_remote:  # the contract: a server keeps its own log
        with pytest.raises(InvalidInput, match="the server keeps the prediction log"):
            deployments.prediction_log  # noqa: B018 - the property is what is tested
    else:
        own = deployments.prediction_log.predictions("clf")
        assert list(own["request_id"]) == list(logged["request_id"])


@covers("record_batch")
def test_batch_inference_records_its_lineage(
    client: Any, deployments: Any, weak_model: Any, strong_model: Any, cancer: Any, tmp_path: Path
) -> None:
    register_two(client, weak_model, strong_model, cancer)
    table = tmp_path / "patients.csv"
    cancer[COLUMNS].head(20).to_csv(table, index=False)
    client.data.add(table, "patients")
    result = deployments.predict_batch("cancer-clf@2", "patients@1", "scored", chunk_rows=10)
    assert (result.output, result.rows, result.chunks) == ("scored@1", 20, 2)
    scored = client.data.get("scored@1").to_pandas()
    assert scored["prediction"].tolist() == strong_model.predict(cancer[COLUMNS].head(20)).tolist()
    upstream = client.models.lineage("scored@1", kind="data")["upstream"]
    assert {(n["type"], n["relation"]) for n in upstream} == {
        ("model_version", "predicted"), ("dataset_version", "scored"),
    }  # fmt: skip

    backend = deployments._backend
    backend.record_batch("cancer-clf@1", None, "scored@1")  # a second scorer, no input version
    upstream = client.models.lineage("scored@1", kind="data")["upstream"]
    assert sorted(n["relation"] for n in upstream) == ["predicted", "predicted", "scored"]
    with pytest.raises(NotFound):
        backend.record_batch("cancer-clf@9", "patients@1", "scored@1")
    with pytest.raises(NotFound):
        backend.record_batch("cancer-clf@1", "patients@7", "scored@1")
    with pytest.raises(NotFound):
        backend.record_batch("cancer-clf@1", None, "nothing@1")
    upstream = client.models.lineage("scored@1", kind="data")["upstream"]
    assert len(upstream) == 3  # the refused records added no edge
