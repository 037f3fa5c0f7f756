"""Pipelines end to end: steps as nested tracked runs, outputs as artifacts, hash-based caching
with the reason for each miss, failures that keep finished steps cached, and bad graphs."""

from __future__ import annotations

import functools
import json
from typing import Any

import pytest

import opsloop
from opsloop.errors import InvalidInput
from opsloop.errors import NotFound
from opsloop.pipelines.runner import PipelineFailed
from tests.pipelines import example


@pytest.fixture
def client(sqlite_url: str, tmp_path: Any) -> Any:
    c = opsloop.Client(database_url=sqlite_url, blob_url=str(tmp_path / "blobs"))
    example.CALLS.clear()
    yield c
    c.close()


def test_run_cache_and_miss_reasons(client: Any) -> None:
    first = example.training.run(client=client, C=1.0)
    assert first.status == "FINISHED"
    assert [s.name for s in first.steps] == ["load", "split", "train", "evaluate"]
    assert all(not s.cached and s.reason == "first run of this step" for s in first.steps)
    assert first.outputs["evaluate"]["accuracy"] > 0.8
    assert example.CALLS == ["load", "split", "train", "evaluate"]
    parent = client.get_run(first.run_id)
    assert parent.data.params == {"C": "1.0", "rows": "400"}
    children = client.search_runs(
        "pipeline-training", f"attributes.parent_run_id = '{first.run_id}'"
    )
    assert len(children.items) == 4
    train_run = client.get_run(first.step("train").run_id)
    assert train_run.data.params == {"C": "1.0"} and "duration_s" in train_run.data.metrics
    outputs = json.loads(train_run.data.tags["opsloop.outputs"])
    assert outputs["output"]["kind"] == "skops" and outputs["output"]["file"] == "output.skops"

    example.CALLS.clear()
    again = example.training.run(client=client, C=1.0)
    assert all(s.cached for s in again.steps) and example.CALLS == []
    assert again.outputs["evaluate"] == first.outputs["evaluate"]
    assert again.step("train").reason == f"cached from run {first.step('train').run_id[:8]}"

    changed = example.training.run(client=client, C=0.01)
    cached = {s.name: s.cached for s in changed.steps}
    assert cached == {"load": True, "split": True, "train": False, "evaluate": False}
    assert changed.step("train").reason.startswith("params changed")
    assert changed.step("evaluate").reason.startswith("inputs changed")

    fresh = example.training.run(client=client, no_cache=True)
    assert {s.reason for s in fresh.steps} == {"--no-cache"}


def test_a_failing_step_fails_the_run_and_keeps_the_rest_cached(client: Any) -> None:
    with pytest.raises(PipelineFailed, match="the cluster caught fire") as caught:
        example.broken.run(client=client)
    failure = caught.value.details
    assert failure["step"] == "explode" and "RuntimeError" in failure["traceback"]
    assert failure["pipeline"].status == "FAILED"
    step_run = client.get_run(failure["run_id"])
    assert step_run.info.status == "FAILED"
    assert (
        "the cluster caught fire"
        in client.read_artifact(failure["run_id"], "traceback.txt").decode()
    )
    with pytest.raises(PipelineFailed):
        example.broken.run(client=client)
    assert example.CALLS == ["load"]  # the second run took load from the cache


def test_bad_graphs_and_params_are_refused_before_anything_runs(client: Any) -> None:
    with pytest.raises(InvalidInput, match="param 'C' of step 'train' expects float, got str"):
        example.training.run(client=client, C="high")
    with pytest.raises(
        InvalidInput, match="takes model: LogisticRegression, but 'load' returns DataFrame"
    ):
        example.mistyped.run(client=client)
    with pytest.raises(InvalidInput, match="unexpected keyword argument 'epochs'"):
        example.training.run(client=client, epochs=3)
    assert example.CALLS == []
    with pytest.raises(NotFound):  # no run was even started
        client.search_runs("pipeline-training")
    example.leaking.build()
    with pytest.raises(InvalidInput, match="takes data from 'load', which is not a step called"):
        example.borrowing.run(client=client)
    with pytest.raises(InvalidInput, match=r"takes data from 'split'.*has no cycle"):
        example.looping.run(client=client)
    frame = example.load(rows=5)  # outside a pipeline a step is its plain function
    assert len(frame) == 5


def test_code_hash_follows_project_helpers(tmp_path: Any, monkeypatch: Any) -> None:
    import importlib

    from opsloop.pipelines.hashing import code_hash

    hashes = []
    for version, body in enumerate(["return x + 1", "return x + 2"]):
        package = tmp_path / f"proj{version}"
        package.mkdir()
        (package / "__init__.py").write_text("")
        (package / "steps.py").write_text(
            f"import numpy\n\ndef helper(x):\n    {body}\n\n"
            "def my_step(x):\n    return numpy.sqrt(helper(x))\n"
        )
        monkeypatch.syspath_prepend(str(tmp_path))
        module = importlib.import_module(f"proj{version}.steps")
        digest, libraries = code_hash(module.my_step)
        hashes.append(digest)
        assert libraries == {"numpy"}  # a library is covered by its version, not its source
    assert hashes[0] != hashes[1]  # only the helper differs


def test_cli_run_show_and_errors(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The commands in this process; one refusal through the installed command, where its exit
    code is the point."""
    import subprocess
    import sys
    from pathlib import Path

    from tests.finetune.support import cli_checked

    root = Path(__file__).parents[2]
    monkeypatch.chdir(root)

    run = functools.partial(cli_checked, capsys)

    first = run("pipelines", "run", "tests.pipelines.example:training", "--param", "C=0.5")
    assert "pipeline training: FINISHED" in first and "first run of this step" in first
    second = run("pipelines", "run", "tests.pipelines.example:training", "--param", "C=0.5")
    assert second.count("cached") >= 4
    run_id = second.split("(run ")[1].split(")")[0]
    shown = json.loads(run("pipelines", "show", run_id, "--json"))
    steps = {s["name"]: s for s in shown["steps"]}
    assert steps["train"]["inputs"] == ["split"] and steps["evaluate"]["inputs"] == [
        "train",
        "split",
    ]
    assert all(s["cache"] == "hit" for s in steps.values())
    failed = run("pipelines", "run", "tests.pipelines.example:broken", code=8)
    assert "the cluster caught fire" in failed and "Traceback" in failed
    assert "is not a @pipeline" in run("pipelines", "run", "tests.pipelines.example:load", code=2)
    command = [str(Path(sys.executable).with_name("opsloop")), "pipelines", "run", "nothing"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=root)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "MODULE:NAME" in done.stdout + done.stderr


def test_independent_steps_run_side_by_side_and_timeouts_fail(client: Any) -> None:
    example.NAPS.clear()
    result = example.fan_out.run(client=client)
    assert result.outputs["join"] == "ab"
    assert [s.name for s in result.steps] == ["nap", "nap_2", "join"]
    (start_a, end_a), (start_b, end_b) = example.NAPS
    assert max(start_a, start_b) < min(end_a, end_b)  # the two naps ran at the same time
    with pytest.raises(PipelineFailed, match=r"longer than its timeout of 0\.3 s"):
        example.too_slow.run(client=client)


def test_multi_output_steps_and_registered_models(client: Any) -> None:
    first = example.registered.run(client=client, C=1.0)
    assert first.outputs["score"]["accuracy"] > 0.8
    train, test = first.outputs["holdout"]["train"], first.outputs["holdout"]["test"]
    assert len(train) == 300 and len(test) == 100 and not set(train.index) & set(test.index)
    holdout_run = client.get_run(first.step("holdout").run_id)
    described = json.loads(holdout_run.data.tags["opsloop.outputs"])
    assert {d["file"] for d in described.values()} == {"train.parquet", "test.parquet"}
    score_run = client.get_run(first.step("score").run_id)
    assert score_run.data.tags["opsloop.step.inputs"] == "fit,holdout.test"

    # the model is a registry package, registered and linked to the step's run
    fit_step = first.step("fit")
    assert fit_step.model_version == "pipeline-clf@1"
    version = client.models.version("pipeline-clf@1")
    assert version.run_id == fit_step.run_id
    assert version.tags["opsloop.pipeline.step_run"] == fit_step.run_id
    served = client.models.load("pipeline-clf@1")
    assert served.predict(train[example.FEATURES].head(3)).shape == (3,)

    # a cached re-run registers nothing new and hands the same version on
    example.CALLS.clear()
    again = example.registered.run(client=client, C=1.0)
    assert all(s.cached for s in again.steps) and example.CALLS == []
    assert again.step("fit").model_version == "pipeline-clf@1"
    assert [v.number for v in client.models.versions("pipeline-clf").items] == [1]

    # another C retrains: the next version, while the split stays cached
    changed = example.registered.run(client=client, C=0.5)
    assert changed.step("fit").model_version == "pipeline-clf@2"
    assert changed.step("holdout").cached and not changed.step("score").cached

    # a reproduction recomputes the model package bit for bit, and publishes nothing
    from opsloop.pipelines.reruns import reproduce

    again = reproduce(client, changed.run_id)
    assert again.identical and len(client.models.versions("pipeline-clf").items) == 2


def test_bad_multi_output_steps(client: Any) -> None:
    with pytest.raises(PipelineFailed, match="declares outputs left, right but returned a tuple"):
        example.miscounted.run(client=client)
    with pytest.raises(
        InvalidInput, match=r"LogisticRegression, but 'holdout\.train' returns DataFrame"
    ):
        example.crossed.run(client=client)
    from opsloop.pipelines import step

    with pytest.raises(InvalidInput, match="not an identifier"):
        step(outputs=("a b",))(lambda: 1)
    with pytest.raises(InvalidInput, match="output names repeat"):
        step(outputs=("a", "a"))(lambda: 1)
    with pytest.raises(InvalidInput, match="drop outputs="):
        step(outputs=("a", "b"), register="m")(lambda: 1)
    with pytest.raises(InvalidInput):
        step(register="no spaces allowed")(lambda: 1)
