"""MLflow stores built with the real mlflow client, for the importer's tests.

Each builder returns what it logged (run ids, the model's predictions), so tests compare what
opsloop holds after an import with what MLflow was given.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from typing import Any


@dataclass
class Built:
    uri: str
    parent: str = ""
    child: str = ""
    other: str = ""
    predictions: list[int] = field(default_factory=list)
    example: Any = None


def build_sql_store(folder: Path) -> Built:
    """``churn``: a parent run (params, tags, a 5-step loss, an artifact file and folder, a
    dataset input, an sklearn model registered twice with alias ``champion`` on v2), its nested
    child (2 metrics), and a run with a NaN loss; ``other``: one more run, deleted."""
    import mlflow
    import numpy as np
    import pandas as pd
    from mlflow import MlflowClient
    from sklearn.linear_model import LogisticRegression

    folder.mkdir(parents=True, exist_ok=True)
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    built = Built(uri=uri)
    experiment = mlflow.create_experiment(
        "churn", artifact_location=(folder / "mlruns").as_uri(), tags={"team": "growth"}
    )
    mlflow.set_experiment(experiment_id=experiment)  # nested runs go where their parent is
    with mlflow.start_run(run_name="parent") as parent:
        built.parent = parent.info.run_id
        mlflow.log_params({"lr": 0.1, "depth": 3})
        mlflow.set_tags({"stage": "dev"})
        for step in range(5):
            mlflow.log_metric("loss", 1.0 / (step + 1), step=step)
        (folder / "notes.txt").write_text("hello")
        mlflow.log_artifact(str(folder / "notes.txt"))
        (folder / "plots").mkdir()
        (folder / "plots" / "a.csv").write_text("x,y\n1,2\n")
        mlflow.log_artifacts(str(folder / "plots"), artifact_path="plots")
        frame = pd.DataFrame({"a": [1.0, 2.0], "b": [0.0, 1.0]})
        mlflow.log_input(mlflow.data.from_pandas(frame, name="train"), context="training")
        with mlflow.start_run(run_name="child", nested=True) as child:
            built.child = child.info.run_id
            mlflow.log_metrics({"acc": 0.5, "f1": 0.4}, step=1)
            mlflow.log_metric("acc", 0.7, step=2)
        features = np.array([[0.0, 1.0], [1.0, 0.0], [1.0, 1.0], [0.0, 0.0]])
        model = LogisticRegression().fit(features, [0, 1, 1, 0])
        built.example = features
        built.predictions = model.predict(features).tolist()
        logged = mlflow.sklearn.log_model(
            model, name="model", input_example=features[:2], pip_requirements=["scikit-learn"]
        )
    with mlflow.start_run(experiment_id=experiment, run_name="diverged"):
        mlflow.log_metric("loss", float("nan"), step=0)
        mlflow.log_metric("loss", 2.0, step=1)
    client = MlflowClient()
    client.create_registered_model("churn-model", tags={"owner": "ml"}, description="churn")
    for _ in range(2):
        client.create_model_version(
            "churn-model", logged.model_uri, run_id=built.parent, description="a version"
        )
    client.set_registered_model_alias("churn-model", "champion", 2)
    other = mlflow.create_experiment("other", artifact_location=(folder / "mlruns").as_uri())
    with mlflow.start_run(experiment_id=other) as run:
        built.other = run.info.run_id
        mlflow.log_param("p", "v")
    client.delete_run(built.other)
    mlflow.set_tracking_uri(None)
    return built


def build_file_store(folder: Path) -> Built:
    """An ``mlruns`` folder: one experiment ``vision`` with a run (param, tag, a nested metric
    key over 3 steps, a dataset input)."""
    import mlflow
    import pandas as pd

    os.environ["MLFLOW_ALLOW_FILE_STORE"] = "true"
    try:
        mlflow.set_tracking_uri((folder / "mlruns").as_uri())
        experiment = mlflow.create_experiment("vision")
        with mlflow.start_run(experiment_id=experiment) as run:
            mlflow.log_param("size", 224)
            mlflow.set_tag("kind", "cnn")
            for step in range(3):
                mlflow.log_metric("val/acc", 0.5 + step / 10, step=step)
            frame = pd.DataFrame({"a": [1.0]})
            mlflow.log_input(mlflow.data.from_pandas(frame, name="images"), context="eval")
    finally:
        mlflow.set_tracking_uri(None)
        del os.environ["MLFLOW_ALLOW_FILE_STORE"]
    return Built(uri=str(folder / "mlruns"), parent=run.info.run_id)
