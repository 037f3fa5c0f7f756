"""A project with history on two branches, made the way a team makes it: a git repository,
runs started in it (so they record their branch and commit as every run does), a dataset
versioned on each branch, a champion on main, a candidate registered from the feature branch's
run, and an eval suite run twice (the second run regresses on one case)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score
from sklearn.metrics import f1_score
from sklearn.metrics import log_loss
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from tests.gitrepos import git
from tests.gitrepos import new_repo

from . import answers

MODEL = "cancer-clf"
COLUMNS = ["mean radius", "mean texture", "mean smoothness", "worst area"]


def gate_policy(**extra: Any) -> dict[str, Any]:
    return {
        "data": "cancer@1",
        "target": "target",
        "latency_samples": 5,
        "rules": [{"metric": "f1", "min_improvement": 0.01}, {"metric": "accuracy", "min": 0.8}],
        **extra,
    }


def _train(client: Any, frame: pd.DataFrame, data_ref: str, c: float) -> str:
    """A tracked training run on the current branch; the finished run's id."""
    X, y = frame[COLUMNS], frame["target"]
    model = make_pipeline(StandardScaler(), LogisticRegression(C=c)).fit(X, y)
    run = client.create_run(client.set_experiment("cancer").experiment_id, run_name=f"C={c}")
    run_id = run.info.run_id
    client.log_param(run_id, "C", c)
    client.log_metrics(
        run_id,
        {
            "accuracy": accuracy_score(y, model.predict(X)),
            "f1": f1_score(y, model.predict(X)),
            "log_loss": log_loss(y, model.predict_proba(X)),
        },
    )
    client.data.log_input(run_id, data_ref)
    client.end_run(run_id)
    client.models.register(MODEL, model, run_id=run_id, input_example=X.head())
    return run_id


def _suite(tmp: Path) -> Path:
    import yaml

    suite = {
        "name": "capitals",
        "threshold": 0.5,
        "prompts": [{"id": "ask", "text": "What is the capital of {{ country }}?"}],
        "providers": [{"id": "python:tests.ci.answers:answer"}],
        "tests": [
            {"vars": {"country": c}, "assert": [{"type": "icontains", "value": city}]}
            for c, city in answers.CAPITALS.items()
        ],
    }
    path = tmp / "suite.yaml"
    path.write_text(yaml.safe_dump(suite))
    return path


def start_repo(root: Path) -> None:
    """A repository on ``main`` with one commit: the project's code."""
    new_repo(root, {"train.py": "C = 0.001\n"})
    git(root, "branch", "-M", "main")


def make_history(client: Any, root: Path) -> dict[str, Any]:
    """main: cancer@1, a weak model (the champion, ``@1``). feature: cancer@2 (rows dropped),
    a strong model (``@2``) registered from the feature's run. ``root`` is a repository from
    :func:`start_repo`, and the cwd (runs read their git state from it)."""
    from opsloop.llm.evals.suite import load_suite

    frame = load_breast_cancer(as_frame=True).frame[[*COLUMNS, "target"]]
    (root / "cancer.csv").write_text(frame.to_csv(index=False))
    client.data.add(root / "cancer.csv", "cancer")
    base_run = _train(client, frame, "cancer@1", 0.001)
    client.models.promote(f"{MODEL}@1", "champion", force=True, reason="first model")

    git(root, "checkout", "-qb", "feature")
    (root / "train.py").write_text("C = 10.0\n")
    git(root, "commit", "-qam", "stronger regularisation")
    (root / "cancer.csv").write_text(frame.iloc[20:].to_csv(index=False))
    client.data.add(root / "cancer.csv", "cancer")
    head_run = _train(client, frame.iloc[20:], "cancer@2", 10.0)

    suite = load_suite(_suite(root.parent))
    client.evals.run(suite)
    answers.BROKEN.add("Italy")
    try:
        client.evals.run(suite)
    finally:
        answers.BROKEN.clear()
    client.flush()
    return {"base_run": base_run, "head_run": head_run, "commit": git(root, "rev-parse", "HEAD")}
