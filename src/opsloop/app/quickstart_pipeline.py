"""The quickstart's pipelines.

``training``: load the dataset version and validate it (side by side), split it, tune a small
SGD sweep with Optuna (each configuration a trial run with its learning curve, predictions and
model package; the best registered as ``candidate``), publish the validation split and the best
model's predictions as data versions, and promote the candidate to ``champion`` through the
evaluation gate. Run it twice with the same params and every step but the gate is a cache hit.

``retrain``: the loop's retraining: the original table plus the labelled traffic the loop
exported, a scaled logistic regression, registered as the next version. Any ``@pipeline`` can
be a monitor's retraining pipeline: it takes the exported data version as a parameter
(``live_data`` by default) and registers a version of the deployment's model in a step that is
never cached (a cached step would register nothing new).
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from opsloop.pipelines import DataVersion
from opsloop.pipelines import pipeline
from opsloop.pipelines import step

MODEL = "breast-cancer-clf"
TARGET = "target"
EXPECTATIONS = {
    "row_count": {"min": 500},
    "columns": {
        TARGET: {"type": "integer", "nullable": False, "allowed": [0, 1]},
        "mean radius": {"type": "float", "nullable": False, "min": 0},
    },
}
SWEEP = [
    {"alpha": 1e-4, "penalty": "l2", "learning_rate": "optimal"},
    {"alpha": 1e-3, "penalty": "l2", "learning_rate": "optimal"},
    {"alpha": 1e-3, "penalty": "elasticnet", "learning_rate": "adaptive", "eta0": 0.01},
    {"alpha": 1e-2, "penalty": "l1", "learning_rate": "adaptive", "eta0": 0.05},
]


def _client() -> Any:
    import opsloop

    return opsloop.get_client()


def _step_run() -> str:
    from opsloop.kernel.step_context import current_step_run_id

    run_id = current_step_run_id()
    assert run_id is not None, "called outside a pipeline step"
    return run_id


@step
def load_table(dataset: DataVersion) -> pd.DataFrame:
    """The dataset version (resolved before the run starts; its content is the cache key and
    the step's run is recorded as its reader)."""
    return dataset.to_pandas()


@step
def validate(dataset: DataVersion) -> dict[str, Any]:
    """The dataset's expectations, checked and recorded on the version; failing stops here."""
    _, report = _client().data.validate(dataset.ref, EXPECTATIONS)
    if not report["passed"]:
        failed = [c["message"] for c in report["checks"] if not c["passed"]]
        raise ValueError(f"{dataset.ref} fails its expectations: {'; '.join(failed)}")
    return {"passed": True, "checks": len(report["checks"])}


@step
def split(frame: pd.DataFrame, checked: dict[str, Any], seed: int) -> pd.DataFrame:
    """A stratified 75/25 split, as a ``split`` column."""
    from sklearn.model_selection import train_test_split

    _, val_index = train_test_split(
        frame.index, test_size=0.25, random_state=seed, stratify=frame[TARGET]
    )
    return frame.assign(split="train").assign(
        split=lambda f: f["split"].where(~f.index.isin(val_index), "validation")
    )


def _trial(data: pd.DataFrame, config: dict[str, Any], epochs: int, seed: int, trial: Any) -> Any:
    """One configuration: per-epoch learning curves, final metrics, predictions, the package."""
    import tempfile
    from pathlib import Path

    import numpy as np
    from sklearn.linear_model import SGDClassifier
    from sklearn.metrics import accuracy_score
    from sklearn.metrics import f1_score
    from sklearn.metrics import log_loss
    from sklearn.metrics import roc_auc_score
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    from opsloop.registry.package import write_package
    from opsloop.sklearn import training_metrics

    client = _client()
    train, val = data[data["split"] == "train"], data[data["split"] == "validation"]
    features = [c for c in data.columns if c not in (TARGET, "split")]
    scaler = StandardScaler().fit(train[features])
    x_train, x_val = scaler.transform(train[features]), scaler.transform(val[features])
    model = SGDClassifier(loss="log_loss", random_state=seed, **config)
    client.log_params(trial.run_id, {"model": "SGDClassifier", **config})
    for epoch in range(epochs):
        model.partial_fit(x_train, train[TARGET], classes=np.array([0, 1]))
        proba = model.predict_proba(x_val)
        curve = {"val_loss": log_loss(val[TARGET], proba),
                 "val_accuracy": accuracy_score(val[TARGET], proba.argmax(1))}  # fmt: skip
        client.log_metrics(trial.run_id, curve, step=epoch)
    predicted = model.predict(x_val)
    final = {
        "val_f1": f1_score(val[TARGET], predicted),
        "val_roc_auc": roc_auc_score(val[TARGET], model.predict_proba(x_val)[:, 1]),
        **training_metrics(model, x_train, train[TARGET]),
    }
    client.log_metrics(trial.run_id, final, step=epochs)
    packaged = Pipeline([("scale", scaler), ("sgd", model)])
    with tempfile.TemporaryDirectory() as tmp:
        frame = pd.DataFrame({"y_true": val[TARGET].to_numpy(), "y_pred": predicted})
        frame.to_parquet(Path(tmp) / "validation.parquet")
        client.log_artifact(trial.run_id, Path(tmp) / "validation.parquet", "predictions")
        write_package(packaged, Path(tmp) / "package", input_example=val[features].head())
        client.log_artifacts(trial.run_id, Path(tmp) / "package", "model")
    return final["val_f1"], packaged


@step
def sweep(data: pd.DataFrame, epochs: int, seed: int) -> dict[str, Any]:
    """The sweep as an Optuna study over the configurations (a grid: each once); the best
    model is registered as ``MODEL@candidate``."""
    from opsloop.pipelines.tuning import tune

    features = [c for c in data.columns if c not in (TARGET, "split")]
    result = tune(
        lambda params, trial: _trial(data, SWEEP[params["config"]], epochs, seed, trial),
        {"config": {"type": "categorical", "choices": list(range(len(SWEEP)))}},
        n_trials=len(SWEEP), sampler="grid", pruner="none", seed=seed,
        study=f"quickstart-sgd-{epochs}-{seed}-{_step_run()[:8]}", register=MODEL,
        input_example=data[features].head(),
    )  # fmt: skip
    client = _client()
    trials = []
    for run in client.search_runs(
        client.get_run(result.run_id).info.experiment_id,
        f"attributes.parent_run_id = '{result.run_id}'", order_by=["attributes.start_time"],
    ).items:  # fmt: skip
        params = {k: v for k, v in run.data.params.items() if k not in ("config", "model")}
        trials.append({"run_id": run.info.run_id, "name": run.info.run_name, "params": params,
                       "val_f1": run.data.metrics.get("val_f1"),
                       "val_roc_auc": run.data.metrics.get("val_roc_auc")})  # fmt: skip
    return {"model": result.model_version, "best_run": result.best_run_id,
            "val_f1": result.best_score, "trials": trials}  # fmt: skip


@step
def publish(data: pd.DataFrame, best: dict[str, Any]) -> dict[str, str]:
    """The validation split and the best model's predictions on it, as data versions made by
    this step (the gate evaluates on the first)."""
    import tempfile
    from pathlib import Path

    client = _client()
    val = data[data["split"] == "validation"].drop(columns=["split"])
    predicted = client.models.load(best["model"]).predict(val.drop(columns=[TARGET]))
    refs = {}
    with tempfile.TemporaryDirectory() as tmp:
        val.to_csv(Path(tmp) / "validation.csv", index=False)
        pd.DataFrame({"y_true": val[TARGET].to_numpy(), "y_pred": list(predicted)}).to_parquet(
            Path(tmp) / "validation-predictions.parquet"
        )
        for name, file in (("validation", "validation.csv"),
                           ("predictions", "validation-predictions.parquet")):  # fmt: skip
            added = client.data.add(str(Path(tmp) / file), name=f"breast-cancer-{name}")
            client.data.log_output(_step_run(), added.version.ref)
            refs[name] = added.version.ref
    return refs


def gate_policy(validation_ref: str) -> dict[str, object]:
    """The quickstart's gate: floors, no regression vs the champion, a behavioural check."""
    return {
        "data": validation_ref,
        "target": TARGET,
        "slices": ["mean radius"],
        "latency_samples": 50,
        "rules": [
            {"metric": "f1", "min": 0.9},
            {"metric": "roc_auc", "min": 0.95},
            {"metric": "f1", "min_improvement": 0.0},
            {"slice_metric": "f1", "max_regression": 0.05},
            {"metric": "latency_p99_ms", "max": 250},
        ],
        "checks": [
            {
                "name": "larger-tumours-do-not-look-more-benign",
                "type": "directional",
                "column": "worst area",
                "perturb": {"multiply": 2.0},
                "expect": "no_increase",
                "max_failure_rate": 0.05,
            }
        ],
    }


@step(cache=False)
def gate(best: dict[str, Any], published: dict[str, str]) -> dict[str, Any]:
    """Promote the candidate to ``champion`` through the evaluation gate (every number kept)."""
    models = _client().models
    models.update(MODEL, gate_policy=gate_policy(published["validation"]))
    if models.get(MODEL).aliases.get("champion") == int(best["model"].rpartition("@")[2]):
        return {"moved": False, "already": True, "ref": best["model"]}
    event = models.promote(best["model"], "champion")
    return {"moved": event.moved, "already": False, "ref": best["model"],
            "event": event.model_dump(mode="json")}  # fmt: skip


@pipeline
def training(dataset: str, epochs: int = 30, seed: int = 42) -> None:
    data = split(load_table(dataset), validate(dataset), seed)
    best = sweep(data, epochs, seed)
    gate(best, publish(data, best))


@step
def load(live_data: DataVersion, reference: DataVersion) -> pd.DataFrame:
    """The reference table and the live traffic with its ground truth, as one training set."""
    reference_frame = reference.to_pandas()
    live = live_data.to_pandas()[list(reference_frame.columns)]
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
