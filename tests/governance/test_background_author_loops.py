"""The server's automations record the user they act for (issue 23): the rollout controller
ticks a rollout as the user who started it, the scheduler audits a firing as its trigger's
creator, and the retraining loop works as the user who set it up (its monitor's creator), each
naming the automation alongside (``... via rollout-controller``), never in place of the user."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

import opsloop
from opsloop.governance.acting import run_as
from opsloop.kernel.identity import Principal
from opsloop.kernel.identity import current_principal
from opsloop.kernel.identity import os_user
from opsloop.serving.rollouts import RolloutController
from opsloop.workflows.scheduler import Scheduler
from tests.governance.conftest import UsersServer
from tests.monitoring.test_loop import canary_traffic
from tests.monitoring.test_loop import labelled_shifted_traffic
from tests.monitoring.test_loop import start
from tests.registry.conftest import train
from tests.serving.conftest import COLUMNS
from tests.serving.conftest import cancer  # noqa: F401  (fixtures)
from tests.serving.conftest import weak_model  # noqa: F401  (fixtures)


def _audit(client: Any, resource: str) -> list[tuple[str, str]]:
    return [(e.actor, e.action) for e in client.governance.iter_audit(resource=resource)]


def test_the_rollout_controller_acts_for_who_started_the_rollout(
    users_server: UsersServer,
    cancer: pd.DataFrame,  # noqa: F811
) -> None:
    state = users_server.server.app.state.opsloop
    example = cancer[COLUMNS].head()
    with opsloop.Client(server_url=users_server.url, token=users_server.keys["mona"]) as mona:
        mona.models.register("clf", train(cancer, 0.01), input_example=example)
        mona.models.register("clf", train(cancer, 1.0), input_example=example)
        mona.deployments.deploy("clf@1", name="web")
        mona.deployments.rollout("clf@2", name="web", steps=[{"set_weight": 50}])
        RolloutController(state.store, state.serving.log.window).tick_all()
        assert mona.deployments.rollout_status("web").status == "succeeded"
        events = [(e.actor, e.action, e.reason or "") for e in mona.deployments.events("web")]
    by_controller = [e for e in events if "via rollout-controller" in e[2]]
    assert by_controller and {actor for actor, _, _ in by_controller} == {"mona"}
    assert {actor for actor, _, _ in events} == {"mona"}  # the promotion too
    with opsloop.Client(server_url=users_server.url, token=users_server.keys["root"]) as root:
        audited = _audit(root, "deployments/web/rollout")
    assert ("mona", "rollout succeeded at step 1 via rollout-controller") in audited
    assert current_principal() is None  # the controller's identity stayed in its context


def test_a_firing_is_audited_as_its_triggers_creator(users_server: UsersServer) -> None:
    state = users_server.server.app.state.opsloop
    with opsloop.Client(server_url=users_server.url, token=users_server.keys["mona"]) as mona:
        mona.triggers.create("nightly", "tests.pipelines.example:training", "webhook")
        mona.triggers.fire("nightly", key="one", params={"C": 0.5})
        scheduler = Scheduler(state.client, state.store, None, None)
        try:
            scheduler.run_pending_firings(wait=True)
        finally:
            scheduler.stop()
        (firing,) = mona.triggers.firings("nightly")
    with opsloop.Client(server_url=users_server.url, token=users_server.keys["root"]) as root:
        audited = _audit(root, f"firings/{firing.id}")
    assert audited == [("mona", "firing succeeded via scheduler")]


def test_the_retraining_loop_works_as_the_user_who_set_it_up(
    tmp_path: Path,
    cancer: pd.DataFrame,  # noqa: F811
    weak_model: Any,  # noqa: F811
) -> None:
    # mona sets the loop up; the scheduler then runs in this thread, as the OS user
    mona = Principal(name="mona", role="maintainer", auth="background")
    client = run_as(mona, start, tmp_path, cancer, weak_model)
    labelled_shifted_traffic(client, cancer, 100, seed=3)
    scheduler = client.scheduler()
    scheduler.tick(wait=True)
    canary_traffic(client, cancer)
    scheduler.advance_loops(wait=True)
    scheduler.stop()
    (done,) = client.monitors.loop_runs("cancer")
    assert done.stage == "promoted", done.history
    assert os_user() != "mona" and current_principal() is None

    assert client.get_run(str(done.pipeline_run_id)).info.user_id == "mona"
    (alert,) = client.monitors.alerts(monitor="cancer-watch")
    assert alert.resolved_by == "mona"
    assert client.monitors.references("cancer-watch")[0].created_by == "mona"
    loop_events = _audit(client, f"loops/{done.id}")
    assert loop_events[0] == ("mona", "loop promoted via retraining-loop")
    assert {actor for actor, _ in loop_events} == {"mona"}
    rollout = _audit(client, "deployments/cancer/rollout")
    assert rollout and all(a == "mona" and "via rollout-controller" in x for a, x in rollout)
    client.close()
