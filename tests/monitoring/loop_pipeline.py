"""The retraining pipeline the loop tests trigger: train on the exported labelled traffic plus
the original reference, register the model (linked to its step run) and return its version."""

from __future__ import annotations

from typing import Any

import pandas as pd

import opsloop
from opsloop.pipelines import pipeline
from opsloop.pipelines import step

COLUMNS = ["mean radius", "mean texture", "mean smoothness", "worst area"]


@step
def load(live_data: str, reference: str) -> pd.DataFrame:
    data = opsloop.get_client().data
    frame = pd.concat([data.get(reference).to_pandas(), data.get(live_data).to_pandas()])
    return frame[[*COLUMNS, "target"]].astype({"target": int}).reset_index(drop=True)


@step
def train(frame: pd.DataFrame, c: float) -> Any:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    model = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=500))
    return model.fit(frame[COLUMNS], frame["target"])


@step(cache=False)
def register(model: Any, frame: pd.DataFrame) -> int:
    version = opsloop.get_client().models.register(
        "cancer-clf", model, input_example=frame[COLUMNS].head(), task="classification"
    )
    return version.number


@pipeline
def retrain(live_data: str, reference: str = "cancer@1", c: float = 1.0) -> None:
    frame = load(live_data, reference)
    register(train(frame, c), frame)
