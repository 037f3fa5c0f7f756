"""A project of its own (not opsloop's repository) whose pipeline runs from its own git work
tree: for reproducing a run where no clone of that project is left."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from tests.gitrepos import new_repo

MODULE = "foreign_flows"
SOURCE = '''"""Fits a small model on a bundled dataset; the weights are the output."""

from typing import Any

from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

from opsloop.pipelines import pipeline, step


@step
def fit(C: float = 1.0) -> dict[str, Any]:
    data = load_iris()
    model = LogisticRegression(C=C, max_iter=300).fit(data.data, data.target)
    return {"coef": [round(float(c), 6) for c in model.coef_.ravel()],
            "accuracy": float(model.score(data.data, data.target))}


@step
def summary(weights: dict[str, Any]) -> dict[str, Any]:
    return {"accuracy": weights["accuracy"], "largest": max(map(abs, weights["coef"]))}


@pipeline
def training(C: float = 1.0) -> None:
    summary(fit(C=C))
'''


def run_foreign_pipeline(repo: Path, client: Any, monkeypatch: Any) -> Any:
    """Commit the project at ``repo``, run its pipeline from there with ``client``, then forget
    the module: afterwards the project exists only in what the run recorded."""
    new_repo(repo, {f"{MODULE}.py": SOURCE})
    monkeypatch.chdir(repo)
    monkeypatch.syspath_prepend(str(repo))
    try:
        module = __import__(MODULE)
        return module.training.run(client=client, C=0.5)
    finally:
        sys.modules.pop(MODULE, None)
        monkeypatch.chdir(repo.parent)
