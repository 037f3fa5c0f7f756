"""Optuna tuning, tracked: trials as nested runs, the study stored beside the opsloop database
(resumable), pruning, best params and plots on the study's run, the best model registered as a
candidate; bad spaces are refused."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import opsloop
from opsloop.errors import InvalidInput
from opsloop.pipelines import tune
from tests.finetune.support import cli
from tests.pipelines import tuning_example

ROOT = Path(__file__).resolve().parents[2]
SPACE = {"C": {"type": "float", "low": 1e-3, "high": 10.0, "log": True},
         "penalty": {"type": "categorical", "choices": ["l2"]}}  # fmt: skip


@pytest.fixture
def client(database_url: str, tmp_path: Path) -> Any:
    c = opsloop.Client(database_url=database_url, blob_url=str(tmp_path / "blobs"))
    yield c
    c.close()


def test_trials_are_nested_runs_and_the_best_model_is_a_candidate(client: Any) -> None:
    result = tune(tuning_example.objective, SPACE, n_trials=6, parallel=2, client=client,
                  register="cancer-tuned", input_example=tuning_example.X.head(),
                  study="cancer")  # fmt: skip
    assert result.trials == 6 and 0.85 < result.best_score <= 1.0
    study_run = client.get_run(result.run_id)
    assert study_run.data.metrics["best_score"] == pytest.approx(result.best_score)
    assert float(study_run.data.params["best.C"]) == pytest.approx(result.best_params["C"])
    trials = client.search_runs("tune-cancer", f"attributes.parent_run_id = '{result.run_id}'")
    assert len(trials.items) == 6
    best = client.get_run(result.best_run_id)
    assert best.data.metrics["score"] == pytest.approx(result.best_score)
    files = {a.path for a in client.list_artifacts(result.run_id, "tuning")}
    assert {"tuning/history.png", "tuning/space.json"} <= files
    assert result.model_version == "cancer-tuned@1"
    assert client.models.get("cancer-tuned").aliases["candidate"] == 1
    assert client.models.version("cancer-tuned@1").run_id == result.best_run_id
    again = tune(tuning_example.objective, SPACE, n_trials=2, client=client, study="cancer")
    assert again.trials == 8  # the stored study resumed


def test_the_median_pruner_stops_poor_trials(client: Any) -> None:
    space = {"quality": {"type": "float", "low": 0.0, "high": 1.0},
             "noise": {"type": "int", "low": 1, "high": 3}}  # fmt: skip
    result = tune(tuning_example.curve, space, n_trials=14, client=client, study="curve")
    assert result.pruned > 0
    pruned = client.search_runs("tune-curve", "tags.`opsloop.trial.state` = 'pruned'").items
    assert len(pruned) == result.pruned and all(r.info.status == "KILLED" for r in pruned)
    assert set(result.importances) == {"quality", "noise"}
    assert result.importances["quality"] > result.importances["noise"]


@pytest.mark.parametrize(
    ("space", "message"),
    [
        ({}, "non-empty mapping"),
        ({"C": {"type": "float", "low": 1, "high": 1}}, "needs low < high"),
        ({"C": {"type": "float", "low": 0, "high": 1, "log": True}}, "log scale needs low > 0"),
        ({"k": {"type": "categorical"}}, "list of choices"),
        ({"k": {"type": "uniform", "low": 0, "high": 1}}, "float, int or categorical"),
    ],
)
def test_bad_spaces_are_refused(client: Any, space: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        tune(tuning_example.objective, space, client=client)


def test_several_objectives_give_a_pareto_front(client: Any) -> None:
    """x trades one objective against the other: every trial is on the front but those a
    duplicate or a worse y beats."""

    def trade(params: dict[str, Any], trial: Any) -> list[float]:
        return [params["x"] + params["y"], 10 - params["x"] + params["y"]]

    space = {"x": {"type": "int", "low": 0, "high": 5}, "y": {"type": "int", "low": 0, "high": 2}}
    result = tune(trade, space, n_trials=8, client=client, study="trade",
                  directions=["minimize", "minimize"], objectives=["loss", "cost"])  # fmt: skip
    assert result.best_score is None and result.front
    trials = client.search_runs("tune-trade", f"attributes.parent_run_id = '{result.run_id}'")
    values = {r.info.run_id: (r.data.metrics["loss"], r.data.metrics["cost"])
              for r in trials.items}  # fmt: skip
    on_front = {t.run_id for t in result.front}
    for run_id, (loss, cost) in values.items():
        beaten = any(a <= loss and b <= cost and (a, b) != (loss, cost) for a, b in values.values())
        assert beaten == (run_id not in on_front)
    table = json.loads(client.read_artifact(result.run_id, "tuning/pareto_front.json"))
    assert table["columns"] == ["trial", "loss", "cost", "x", "y", "run_id"]
    assert len(table["data"]) == len(result.front)
    with pytest.raises(InvalidInput, match="one distinct name per direction"):
        tune(trade, space, client=client, directions=["minimize"], objectives=["a", "b"])
    with pytest.raises(InvalidInput, match="no trial of study 'one-value' completed"):
        tune(lambda p, t: 1.0, space, n_trials=1, client=client, study="one-value",
             directions=["minimize", "minimize"])  # fmt: skip
    failed = client.search_runs("tune-one-value", "attributes.status = 'FAILED'").items
    assert "must return 2 values (objective_0, objective_1)" in failed[0].data.tags["opsloop.error"]


def test_a_study_whose_trials_all_fail_says_so(client: Any) -> None:
    def broken(params: dict[str, Any], trial: Any) -> float:
        raise RuntimeError("no data")

    with pytest.raises(InvalidInput, match="no trial of study 'broken' completed"):
        tune(broken, SPACE, n_trials=2, client=client)


def test_opsloop_tune_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The study in this process; the refusal through the installed command (exit code 2)."""
    space = tmp_path / "space.yaml"
    space.write_text(json.dumps(SPACE))
    root = Path(tuning_example.__file__).parents[2]
    monkeypatch.chdir(root)
    code, out = cli("tune", "tests.pipelines.tuning_example:objective", "--space", str(space),
                    "--trials", "3", "--register", "cli-tuned")  # fmt: skip
    assert code == 0, out
    assert "3 trials" in out and "registered cli-tuned@1 as candidate" in out
    command = [str(Path(sys.executable).with_name("opsloop")), "tune",
               "tests.pipelines.tuning_example:X", "--space", str(space)]  # fmt: skip
    bad = subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=root)
    assert bad.returncode == 2 and "not a function" in bad.stderr


@pytest.fixture
def ray_instance(local_ray: Any) -> Any:
    """The test process's local Ray instance."""
    return local_ray


def test_trials_as_ray_tasks(client: Any, ray_instance: Any) -> None:
    space = {"quality": {"type": "float", "low": 0.0, "high": 1.0},
             "noise": {"type": "int", "low": 1, "high": 3}}  # fmt: skip
    result = tune(tuning_example.curve, space, n_trials=10, parallel=2, executor="ray",
                  client=client, study="on-ray")  # fmt: skip
    assert result.trials == 10 and result.best_score > 0.5
    trials = client.search_runs("tune-on-ray", f"attributes.parent_run_id = '{result.run_id}'")
    best = next(r for r in trials.items if r.info.run_id == result.best_run_id)
    history = client.get_metric_history(result.best_run_id, "score")
    assert best.info.status == "FINISHED" and len(history.values) >= 10  # reported remotely
    assert result.pruned == sum(r.info.status == "KILLED" for r in trials.items)


def test_a_client_of_a_server_tunes_on_the_server(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Tuning needs the database next to it: over REST the study runs on the server."""
    import httpx

    from opsloop.errors import NotFound
    from tests.conftest import LiveServer

    with LiveServer(f"sqlite:///{tmp_path / 'server.db'}", str(tmp_path / "blobs")) as server:
        remote = opsloop.Client(server_url=server.url)
        result = remote.pipelines.tune("tests.pipelines.tuning_example:objective", SPACE,
                                       n_trials=3, study="remote", register="remote-tuned",
                                       poll=0.2)  # fmt: skip
        assert result.trials == 3 and 0.85 < result.best_score <= 1.0
        assert result.model_version == "remote-tuned@1"
        assert remote.get_run(result.best_run_id).info.parent_run_id == result.run_id
        again = httpx.get(f"{server.url}/api/tuning/{result.run_id}").json()
        assert again["best_params"] == result.best_params

        api = f"{server.url}/api/tuning"
        for body, message in (
            ({"objective": "tests.pipelines.tuning_example:X", "space": SPACE}, "not a function"),
            ({"objective": "nowhere:objective", "space": SPACE}, "cannot import nowhere"),
            ({"objective": "tests.pipelines.tuning_example:objective",
              "space": {"C": {"type": "float"}}}, "C"),
            ({"objective": "tests.pipelines.tuning_example:objective", "space": SPACE,
              "trials": 3}, "trials"),
        ):  # fmt: skip
            answer = httpx.post(api, json=body)
            assert answer.status_code == 400 and message in answer.text, answer.text
        plain = remote.create_run(remote.set_experiment("plain").experiment_id)
        answer = httpx.get(f"{api}/{plain.info.run_id}")
        assert answer.status_code == 400 and "not a tuning study" in answer.text
        with pytest.raises(NotFound):
            remote.get_run("0" * 32)
        assert httpx.get(f"{api}/{'0' * 32}").status_code == 404

        space = tmp_path / "space.yaml"
        space.write_text(json.dumps(SPACE))
        monkeypatch.setenv("OPSLOOP_SERVER_URL", server.url)
        monkeypatch.chdir(ROOT)
        code, out = cli("tune", "tests.pipelines.tuning_example:objective", "--space", str(space),
                        "--trials", "2", "--on-server")  # fmt: skip
        assert code == 0, out
        assert "2 trials" in out
        remote.close()
