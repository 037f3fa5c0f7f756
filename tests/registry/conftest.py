"""Fixtures for the registry: scikit-learn's bundled breast-cancer table, versioned as data, and
two real classifiers trained on it (a weak one and a strong one)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

COLUMNS = ["mean radius", "mean texture", "mean smoothness", "worst area"]


@pytest.fixture(scope="session")
def cancer() -> pd.DataFrame:
    frame = load_breast_cancer(as_frame=True).frame
    return frame[[*COLUMNS, "target"]]


def train(frame: pd.DataFrame, c: float) -> Any:
    X, y = frame.drop(columns=["target"]), frame["target"]
    return make_pipeline(StandardScaler(), LogisticRegression(C=c)).fit(X, y)


@pytest.fixture(scope="session")
def weak_model(cancer: pd.DataFrame) -> Any:
    return train(cancer, 0.001)


@pytest.fixture(scope="session")
def strong_model(cancer: pd.DataFrame) -> Any:
    return train(cancer, 10.0)


@pytest.fixture
def cancer_csv(tmp_path: Path, cancer: pd.DataFrame) -> Path:
    path = tmp_path / "cancer.csv"
    cancer.to_csv(path, index=False)
    return path


def policy(**extra: Any) -> dict[str, Any]:
    """A gate over cancer@1: beat the champion's f1 by 0.01, accuracy at least 0.8."""
    return {
        "data": "cancer@1",
        "target": "target",
        "latency_samples": 5,
        "rules": [
            {"metric": "f1", "min_improvement": 0.01},
            {"metric": "accuracy", "min": 0.8},
        ],
        **extra,
    }


class PlusOne:
    """A custom model: only loadable as a pickle (pyfunc) package."""

    def predict(self, frame: Any) -> Any:
        return frame.iloc[:, 0] + 1
