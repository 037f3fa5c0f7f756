"""A model registered inside a pipeline step (a live model, no run named: the retraining loop's
way) records the step's run, so its lineage reaches the pipeline run, the data it read and the
commit, and `models show` fills its run column."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import opsloop
from opsloop.kernel.step_context import STEP_RUN_TAG
from opsloop.pipelines import DataVersion
from opsloop.pipelines import pipeline
from opsloop.pipelines import step

MODEL = "step-lineage-clf"


@step
def load(table: DataVersion) -> pd.DataFrame:
    return table.to_pandas()


@step(cache=False)
def register(frame: pd.DataFrame) -> int:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x, y = frame.drop(columns=["target"]), frame["target"]
    model = make_pipeline(StandardScaler(), LogisticRegression()).fit(x, y)
    version = opsloop.get_client().models.register(MODEL, model, input_example=x.head())
    return int(version.number)


@pipeline
def retrain(table: str) -> None:
    register(load(table))


def _walk(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [n for item in items for n in (item, *_walk(item["children"]))]


@pytest.fixture
def client(tmp_path: Path) -> Any:
    made = opsloop.Client(database_url=f"sqlite:///{tmp_path / 'db.sqlite'}",
                          blob_url=str(tmp_path / "blobs"))  # fmt: skip
    yield made
    made.close()


def test_a_version_registered_in_a_step_records_the_step_run(
    client: Any, cancer_csv: Path, monkeypatch: Any
) -> None:
    monkeypatch.chdir(Path(__file__).parents[2])  # in the repository: the run records a commit
    table = client.data.add(cancer_csv, "cancer").version
    result = retrain.run(client=client, table=table.ref)
    step_run = result.step("register").run_id
    version = client.models.version(f"{MODEL}@1")
    assert version.run_id == step_run and version.tags[STEP_RUN_TAG] == step_run

    graph = client.models.lineage(f"{MODEL}@1")
    upstream = _walk(graph["upstream"])
    runs = {n["id"] for n in upstream if n["type"] == "run"}
    assert {step_run, result.run_id} <= runs  # the step, then its pipeline run
    assert any(n["type"] == "dataset_version" and n["label"].endswith("cancer@1")
               for n in upstream), upstream  # fmt: skip
    commit = client.get_run(result.run_id).data.tags["opsloop.git.commit"]
    assert any(n["type"] == "commit" and n["id"] == commit for n in upstream)


def test_models_show_fills_the_run_column(tmp_path: Path, cancer_csv: Path) -> None:
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("OPSLOOP_")},
           "OPSLOOP_HOME": str(tmp_path / "home"), "COLUMNS": "200"}  # fmt: skip
    code = (
        "import opsloop, sys; from tests.registry.test_step_lineage import retrain; "
        "c = opsloop.get_client(); v = c.data.add(sys.argv[1], 'cancer').version; "
        "r = retrain.run(client=c, table=v.ref); print(r.step('register').run_id)"
    )
    root = Path(__file__).parents[2]
    made = subprocess.run([sys.executable, "-c", code, str(cancer_csv)], capture_output=True,
                          text=True, timeout=300, cwd=root, env=env, check=True)  # fmt: skip
    step_run = made.stdout.split()[-1]
    cli = str(Path(sys.executable).with_name("opsloop"))
    shown = subprocess.run([cli, "models", "show", MODEL], capture_output=True, text=True,
                           timeout=120, cwd=root, env=env)  # fmt: skip
    assert shown.returncode == 0, shown.stderr
    assert step_run[:8] in shown.stdout
    drawn = subprocess.run([cli, "lineage", f"{MODEL}@1"], capture_output=True, text=True,
                           timeout=120, cwd=root, env=env)  # fmt: skip
    assert f"run register ({step_run[:8]}" in drawn.stdout  # the step, upstream of the version
    assert "data cancer@1 (input)" in drawn.stdout and "(code)" in drawn.stdout
