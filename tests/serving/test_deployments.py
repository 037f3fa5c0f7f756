"""Deployments on local and HTTP backends over SQLite and PostgreSQL: traffic policies, promote
and rollback with their history, lineage that protects served versions, and bad requests."""

from __future__ import annotations

import functools
from typing import Any

import pytest

from opsloop.errors import Conflict
from opsloop.errors import InvalidInput
from opsloop.errors import NotFound
from opsloop.serving.entities import TrafficPolicy
from tests.serving.conftest import register_two


def test_deploy_canary_promote_rollback_and_history(
    client: Any, weak_model: Any, strong_model: Any, cancer: Any
) -> None:
    register_two(client, weak_model, strong_model, cancer)
    deployments = client.deployments
    first = deployments.deploy("cancer-clf@1")
    assert (first.name, first.policy.describe(), first.revision) == (
        "cancer-clf", "all traffic to v1", 1,
    )  # fmt: skip
    canary = deployments.deploy("cancer-clf@2", canary=10)
    assert canary.policy.describe() == "90% v1, 10% v2" and canary.revision == 2
    with pytest.raises(Conflict, match="served by deployment"):
        client.models.delete_version("cancer-clf@2")
    assert deployments.set_traffic("cancer-clf", 50).policy.weight == 50
    promoted = deployments.promote("cancer-clf")
    assert promoted.policy == TrafficPolicy(stable=2)
    assert client.models.version("cancer-clf@champion").number == 2
    client.models.delete_version("cancer-clf@1")  # no longer served, no alias: allowed
    with pytest.raises(InvalidInput, match="no candidate to roll back"):
        deployments.rollback("cancer-clf")
    events = [e.action for e in deployments.events("cancer-clf")]
    assert events == ["create", "traffic", "traffic", "promote"]
    assert [d.name for d in deployments.list()] == ["cancer-clf"]
    deployments.delete("cancer-clf")
    with pytest.raises(NotFound):
        deployments.get("cancer-clf")


def test_rollback_ab_shadow_policies_and_bad_requests(
    client: Any, weak_model: Any, strong_model: Any, cancer: Any
) -> None:
    register_two(client, weak_model, strong_model, cancer)
    deployments = client.deployments
    deployments.deploy("cancer-clf@1", name="clf")
    with pytest.raises(InvalidInput, match="needs sticky"):
        deployments.deploy("cancer-clf@2", name="clf", ab=20)
    ab = deployments.deploy("cancer-clf@2", name="clf", ab=20, sticky={"header": "X-User-Id"})
    assert ab.policy.describe() == "80% v1, 20% sticky v2"
    back = deployments.rollback("clf", reason="error rate 3%")
    assert back.policy == TrafficPolicy(stable=1)
    assert deployments.events("clf")[-1].reason == "error rate 3%"
    shadow = deployments.deploy("cancer-clf@2", name="clf", shadow=True)
    assert shadow.policy.describe() == "v1 answers, v2 shadows"
    with pytest.raises(InvalidInput, match="candidate must differ"):
        deployments.deploy("cancer-clf@1", name="clf", canary=5)
    with pytest.raises(InvalidInput, match="choose one of canary, ab or shadow"):
        deployments.deploy("cancer-clf@2", name="clf", canary=5, shadow=True)
    with pytest.raises(NotFound):
        deployments.deploy("cancer-clf@9", name="clf")
    with pytest.raises(InvalidInput, match="does not exist yet"):
        deployments.deploy("cancer-clf@2", name="new", canary=5)
    with pytest.raises(Conflict, match="revision"):  # two changes at once: the second loses
        deployments._backend.set_policy("clf", TrafficPolicy(stable=2), 1, "stale")
    with pytest.raises(InvalidInput, match="no canary or A/B candidate"):
        deployments.set_traffic("clf", 30)
    assert deployments.get("clf").policy.mode == "shadow"  # nothing refused above changed it


def test_cli(
    weak_model: Any, strong_model: Any, cancer: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """The commands in this process; one refusal through the installed command, where its
    exit code is the point."""
    import json
    import subprocess
    import sys
    from pathlib import Path

    import opsloop
    from tests.finetune.support import cli_checked

    client = opsloop.Client()  # the embedded store of this test's OPSLOOP_HOME
    register_two(client, weak_model, strong_model, cancer)

    run = functools.partial(cli_checked, capsys)

    assert "all traffic to v1" in run("deploy", "cancer-clf@1", "--name", "clf")
    assert "90% v1, 10% v2" in run("deploy", "cancer-clf@2", "--name", "clf", "--canary", "10")
    assert "75% v1, 25% v2" in run("deployments", "traffic", "clf", "25", "--reason", "healthy")
    listed = json.loads(run("deployments", "list", "--json"))
    assert listed[0]["policy"]["weight"] == 25
    assert "all traffic to v2" in run("deployments", "promote", "clf")
    shown = run("deployments", "show", "clf")
    assert "promote" in shown and "healthy" in shown
    assert "no candidate to roll back" in run("deployments", "rollback", "clf", code=2)
    assert "needs sticky" in run("deploy", "cancer-clf@1", "--name", "clf", "--ab", "5", code=2)
    ghost = subprocess.run([str(Path(sys.executable).with_name("opsloop")), "deployments", "show",
                            "ghost"], capture_output=True, text=True, timeout=60)  # fmt: skip
    assert ghost.returncode == 3, ghost.stdout + ghost.stderr
    assert "does not exist" in ghost.stdout + ghost.stderr
    assert "POST /v1/deployments/NAME/predict" in run("serve", "--help")
    run("deployments", "delete", "clf")
    client.close()
