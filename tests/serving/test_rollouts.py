"""Progressive rollouts: a candidate walked through weights and pauses, judged on its own
traffic (errors, latency, accuracy from joined ground truth), then promoted to champion or rolled
back with an alert in the deployment's history; no traffic is never a pass; one rollout at a
time; the server's controller drives them by itself."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pytest

import opsloop
from opsloop.errors import Conflict
from opsloop.errors import InvalidInput
from opsloop.serving.entities import TrafficPolicy
from tests.conftest import LiveServer
from tests.serving.conftest import COLUMNS
from tests.serving.conftest import OTHER_COLUMNS
from tests.serving.conftest import register_two


def _traffic(
    client: Any, cancer: Any, n: int, *, label: bool = True, name: str = "clf"
) -> list[dict[str, Any]]:
    answers = []
    sample = cancer.sample(n, random_state=len(client.deployments.events(name)) + n)
    for _, row in sample.iterrows():
        answer = client.deployments.predict(name, [row[COLUMNS].to_dict()])
        if label:
            client.deployments.feedback(name, {answer["request_id"]: int(row["target"])})
        answers.append(answer)
    return answers


@pytest.fixture
def local(sqlite_url: str, tmp_path: Path, weak_model: Any, strong_model: Any, cancer: Any) -> Any:
    client = opsloop.Client(database_url=sqlite_url, blob_url=str(tmp_path / "blobs"))
    register_two(client, strong_model, weak_model, cancer)  # v1 strong, v2 weak
    client.models.register(
        "cancer-clf",
        strong_model,
        input_example=cancer[COLUMNS].head(),
        description="v3, a retrain",
    )
    client.deployments.deploy("cancer-clf@1", name="clf")
    yield client
    client.close()


CHECKS = [
    {"metric": "error_rate", "max": 0.05, "min_samples": 10},
    {"metric": "accuracy", "min": 0.85, "min_samples": 10},
]


def test_a_good_candidate_is_promoted(local: Any, cancer: Any) -> None:
    deployments = local.deployments
    started = deployments.rollout(
        "cancer-clf@3", name="clf", checks=CHECKS,
        steps=[{"set_weight": 100}, {"pause_requests": 15}, {"analysis": True}],
    )  # fmt: skip
    assert started.status == "running"
    waiting = deployments.advance("clf")  # weight applied, no traffic yet: inconclusive
    assert waiting.status == "running" and waiting.analyses[-1].verdict == "inconclusive"
    assert deployments.get("clf").policy.weight == 100
    with pytest.raises(Conflict, match="already has a rollout running"):
        deployments.rollout("cancer-clf@2", name="clf", steps=[{"set_weight": 5}])
    _traffic(local, cancer, 20)
    done = deployments.advance("clf")
    assert done.status == "succeeded", done.analyses[-1]
    assert deployments.get("clf").policy == TrafficPolicy(stable=3)
    assert local.models.version("cancer-clf@champion").number == 3
    actions = [e.action for e in deployments.events("clf")]
    assert actions[-1] == "promote" and "rollout" in actions
    moves = [e.action for e in local.governance.iter_audit(resource="deployments/clf/rollout")]
    assert moves[0] == "rollout succeeded at step 3 via rollout-controller"
    assert local.governance.verify_audit().ok


def test_a_worse_candidate_is_rolled_back_with_an_alert(local: Any, cancer: Any) -> None:
    deployments = local.deployments
    deployments.rollout(
        "cancer-clf@2",
        name="clf",
        checks=CHECKS,
        steps=[{"set_weight": 100}, {"pause_requests": 15}],
    )
    deployments.advance("clf")
    _traffic(local, cancer, 20)
    failed = deployments.advance("clf")
    assert failed.status == "degraded"
    assert any("accuracy" in reason for reason in failed.analyses[-1].reasons)
    deployment = deployments.get("clf")
    assert deployment.policy == TrafficPolicy(stable=1) and deployment.status == "degraded"
    events = deployments.events("clf")
    assert [e.action for e in events[-2:]] == ["rollback", "alert"]
    assert "rolled back" in (events[-1].reason or "")
    assert all("champion" not in v.aliases for v in local.models.versions("cancer-clf").items)


def test_no_traffic_is_inconclusive_then_a_failure(local: Any) -> None:
    deployments = local.deployments
    deployments.rollout(
        "cancer-clf@3", name="clf", checks=CHECKS, max_inconclusive_seconds=0.3,
        steps=[{"set_weight": 10}, {"pause_seconds": 0}],
    )  # fmt: skip
    assert deployments.advance("clf").status == "running"
    time.sleep(0.4)
    failed = deployments.advance("clf")
    assert failed.status == "degraded" and "inconclusive for" in failed.message


def test_a_crashing_candidate_never_reaches_callers_and_is_rolled_back(
    local: Any, cancer: Any, other_columns_model: Any
) -> None:
    from sklearn.datasets import load_breast_cancer

    example = load_breast_cancer(as_frame=True).frame[OTHER_COLUMNS].head()
    local.models.register("cancer-clf", other_columns_model, input_example=example)  # v4
    deployments = local.deployments
    deployments.rollout(
        "cancer-clf@4", name="clf", checks=CHECKS[:1],
        steps=[{"set_weight": 100}, {"pause_requests": 10}],
    )  # fmt: skip
    deployments.advance("clf")
    answers = _traffic(local, cancer, 12, label=False)
    assert {a["model"] for a in answers} == {"cancer-clf@1"}  # the stable version answered
    assert {a["fallback_from"] for a in answers} == {"cancer-clf@4"}
    failed = deployments.advance("clf")
    assert failed.status == "degraded" and "error_rate 1 > max 0.05" in failed.message


def test_bad_rollouts_are_refused(local: Any) -> None:
    deployments = local.deployments
    with pytest.raises(InvalidInput, match="exactly one of set_weight"):
        deployments.rollout("cancer-clf@3", name="clf", steps=[{"set_weight": 5, "analysis": True}])
    with pytest.raises(InvalidInput, match="invalid rollout"):
        deployments.rollout(
            "cancer-clf@3",
            name="clf",
            steps=[{"set_weight": 5}],
            checks=[{"metric": "vibes", "max": 1}],
        )
    with pytest.raises(InvalidInput, match="already the stable version"):
        deployments.rollout("cancer-clf@1", name="clf", steps=[{"set_weight": 5}])
    with pytest.raises(InvalidInput, match="no rollout running"):
        deployments.abort_rollout("clf")
    deployments.rollout(
        "cancer-clf@3", name="clf", steps=[{"set_weight": 5}, {"pause_seconds": 60}]
    )
    aborted = deployments.abort_rollout("clf", reason="changed my mind")
    assert aborted.status == "aborted" and deployments.get("clf").policy == TrafficPolicy(stable=1)


def test_the_server_controller_drives_a_rollout(
    database_url: str, tmp_path: Path, weak_model: Any, strong_model: Any, cancer: Any
) -> None:
    with LiveServer(database_url, str(tmp_path / "blobs")) as server:
        client = opsloop.Client(server_url=server.url)
        register_two(client, weak_model, strong_model, cancer)
        client.deployments.deploy("cancer-clf@1", name="clf")
        client.deployments.rollout(
            "cancer-clf@2", name="clf", steps=[{"set_weight": 100}, {"pause_requests": 5}],
            checks=[{"metric": "error_rate", "max": 0.1, "min_samples": 5}],
        )  # fmt: skip
        second = httpx.post(
            f"{server.url}/api/deployments/clf/rollouts",
            json={"candidate": 2, "steps": [{"set_weight": 1}]},
        )
        assert second.status_code == 409
        deadline = time.monotonic() + 20
        while client.deployments.rollout_status("clf").status == "running":
            assert time.monotonic() < deadline, client.deployments.rollout_status("clf")
            client.deployments.predict("clf", cancer[COLUMNS].head(1).to_dict(orient="records"))
            time.sleep(0.2)
        assert client.deployments.rollout_status("clf").status == "succeeded"
        assert client.models.version("cancer-clf@champion").number == 2
        client.close()
