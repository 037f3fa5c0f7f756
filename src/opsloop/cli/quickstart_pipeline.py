"""The retraining pipeline of the quickstart's loop: the original table plus the labelled
traffic the loop exported, a scaled logistic regression, registered as the next version.

Any ``@pipeline`` can be a monitor's retraining pipeline: it takes the exported data version as
a parameter (``live_data`` by default) and registers a version of the deployment's model in a
step that is never cached (a cached step would register nothing new).
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from opsloop.pipelines import pipeline, step

MODEL = "breast-cancer-clf"
TARGET = "target"


@step
def load(live_data: str, reference: str) -> pd.DataFrame:
    """The reference table and the live traffic with its ground truth, as one training set."""
    import opsloop

    data = opsloop.get_client().data
    reference_frame = data.get(reference).to_pandas()
    live = data.get(live_data).to_pandas()[list(reference_frame.columns)]
    return pd.concat([reference_frame, live]).astype({TARGET: int}).reset_index(drop=True)


@step
def train(frame: pd.DataFrame, seed: int) -> Any:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    model = Pipeline(
        [
            ("scale", StandardScaler()),
            ("logreg", LogisticRegression(max_iter=2000, random_state=seed)),
        ]
    )
    return model.fit(frame.drop(columns=[TARGET]), frame[TARGET])


@step(cache=False)
def register(model: Any, frame: pd.DataFrame) -> int:
    import opsloop

    version = opsloop.get_client().models.register(
        MODEL, model, input_example=frame.drop(columns=[TARGET]).head(),
        task="classification", description="retrained by the loop on live traffic",
    )  # fmt: skip
    return int(version.number)


@pipeline
def retrain(live_data: str, reference: str, seed: int = 42) -> None:
    frame = load(live_data, reference)
    register(train(frame, seed), frame)
