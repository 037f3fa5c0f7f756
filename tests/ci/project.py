"""A small real project to run a generated workflow's steps on: training data with
expectations, a pipeline that trains and registers a model, an eval suite with a ``python:``
provider, a gate policy, all in a git repository on ``main``.

:func:`run_steps` runs the workflow's shell steps as the runner would (``bash -c`` in the
repository, with the runner's variables), leaving out the ones that need the runner itself
(checkout, setup-python, the cache action, ``pip install``: opsloop is installed here)."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tests.gitrepos import git
from tests.gitrepos import new_repo

MODEL = "cancer-clf"
COLUMNS = ["mean radius", "mean texture", "mean smoothness", "worst area"]

PIPELINE = """\
import opsloop
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from opsloop.kernel.step_context import current_step_run_id
from opsloop.pipelines import DataVersion, pipeline, step


@step
def load(dataset: DataVersion) -> pd.DataFrame:
    return dataset.to_pandas()


@step(register="cancer-clf")
def fit(frame: pd.DataFrame, c: float) -> object:
    X = frame.drop(columns=["target"])
    model = make_pipeline(StandardScaler(), LogisticRegression(C=c)).fit(X, frame["target"])
    opsloop.get_client().log_metric(current_step_run_id(), "train_accuracy",
                                    float(model.score(X, frame["target"])))
    return model


@pipeline
def training(dataset: str = "train", c: float = 1.0) -> None:
    fit(load(dataset), c)
"""

ANSWERS = """\
CAPITALS = {"France": "Paris", "Italy": "Rome"}


def answer(prompt, variables):
    return "The capital is " + CAPITALS[variables["country"]] + "."
"""


def write_project(root: Path) -> None:
    """The project, committed on ``main`` of a new repository at ``root``."""
    from sklearn.datasets import load_breast_cancer

    frame = load_breast_cancer(as_frame=True).frame[[*COLUMNS, "target"]]
    suite = {
        "name": "capitals",
        "threshold": 1.0,
        "prompts": [{"id": "ask", "text": "Capital of {{ country }}?"}],
        "providers": [{"id": "python:answers:answer"}],
        "tests": [
            {"vars": {"country": c}, "assert": [{"type": "icontains", "value": city}]}
            for c, city in {"France": "Paris", "Italy": "Rome"}.items()
        ],
    }
    expectations = {
        "row_count": {"min": 100},
        "columns": {"target": {"type": "integer", "allowed": [0, 1]}},
    }
    policy = {
        "data": "train",
        "target": "target",
        "latency_samples": 5,
        "rules": [{"metric": "accuracy", "min": 0.8}],
    }
    new_repo(
        root,
        {
            "pipeline.py": PIPELINE,
            "answers.py": ANSWERS,
            "gate.yaml": yaml.safe_dump(policy),
            ".gitignore": ".opsloop/\nopsloop-ci/\n__pycache__/\n",
        },
    )
    (root / "data").mkdir()
    frame.to_csv(root / "data" / "train.csv", index=False)
    (root / "data" / "expectations.yaml").write_text(yaml.safe_dump(expectations))
    (root / "evals").mkdir()
    (root / "evals" / "suite.yaml").write_text(yaml.safe_dump(suite))
    git(root, "add", "data", "evals")
    git(root, "commit", "-qm", "data and evals")
    git(root, "branch", "-M", "main")


@dataclass(frozen=True)
class StepRun:
    command: str
    seconds: float  # wall time
    cpu_seconds: float  # user + system time of the step's processes
    returncode: int
    output: str


def runner_env(root: Path, extra: dict[str, str]) -> dict[str, str]:
    """The job's environment: opsloop on PATH, the embedded store in the repository, the
    project importable (the eval suite's ``python:`` provider), and ``extra``."""
    keep = {k: v for k, v in os.environ.items() if not k.startswith(("OPSLOOP_", "GITHUB_", "CI_"))}
    bin_dir = str(Path(sys.executable).parent)
    return (
        keep
        | {
            "PATH": f"{bin_dir}:{keep.get('PATH', '')}",
            "PYTHONPATH": str(root),
            "OPSLOOP_HOME": str(root / ".opsloop"),
            "COLUMNS": "200",
        }
        | extra
    )


def workflow_steps(workflow: dict[str, Any], pull_request: bool) -> list[str]:
    """The GitHub workflow's ``run`` steps this event runs, in order, minus ``pip install``
    and the last step that only turns a failed eval step into the job's failure."""
    lines = []
    for step in workflow["jobs"]["opsloop"]["steps"]:
        command = step.get("run")
        if not command or command.startswith(("pip install", "exit 1")):
            continue
        if "pull_request" in str(step.get("if", "")) and not pull_request:
            continue
        lines.append(command)
    return lines


def run_steps(root: Path, commands: list[str], env: dict[str, str]) -> list[StepRun]:
    runs = []
    for command in commands:
        started, cpu = time.perf_counter(), _children_cpu()
        done = subprocess.run(
            ["bash", "-c", command], cwd=root, env=env, capture_output=True, text=True, timeout=300
        )
        runs.append(
            StepRun(
                command,
                time.perf_counter() - started,
                _children_cpu() - cpu,
                done.returncode,
                done.stdout + done.stderr,
            )
        )
    return runs


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime
