"""Objectives for the tuning tests: a real classifier on the breast-cancer table, and one that
reports a learning curve so the median pruner can stop the poor trials."""

from __future__ import annotations

from typing import Any

from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

DATA = load_breast_cancer(as_frame=True)
X, Y = DATA.data.iloc[:, :6], DATA.target


def objective(params: dict[str, Any], trial: Any) -> tuple[float, Any]:
    model = make_pipeline(StandardScaler(), LogisticRegression(C=params["C"], max_iter=500))
    score = cross_val_score(model, X, Y, cv=3).mean()
    return float(score), model.fit(X, Y)


def curve(params: dict[str, Any], trial: Any) -> float:
    """A score that climbs to ``quality`` over ten steps; poor trials are pruned early."""
    import optuna

    value = 0.0
    for step in range(10):
        value = params["quality"] * (step + 1) / 10
        trial.report(value, step)
        if trial.should_prune():
            raise optuna.TrialPruned()
    return value
