"""``opsloop quickstart``: the main job, end to end on whatever store is configured.

Today it versions a dataset that ships with scikit-learn (breast cancer, 569 rows) as a
validated data version, trains real scikit-learn models on exactly that version, tracked by
opsloop: a parent run holding a small hyper-parameter sweep as nested runs, per-epoch learning
curves, params, final metrics, the validation predictions as a Parquet artifact and each model
as a model package (skops file, signature, pinned requirements). The run records the data
version it consumed and the validation split and predictions it produced. Then the best model
is registered and promoted to ``champion`` through an evaluation gate on the validation split
(metric floors, no regression against the current champion overall or per slice, a
behavioural check, p99 latency), with the verdict recorded. Then the LLM half
(``quickstart_llm``): a versioned prompt, traced conversations with token cost, user thumbs
turned into a fine-tuning data version, and an eval suite that gates the prompt's
``production`` label. In between, the closed loop (``quickstart_loop``): the champion is
served and monitored, the traffic shifts, the monitor alerts, a pipeline retrains on the
labelled traffic, and the new version is gated, canaried and promoted or rolled back.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

DATASET = "breast-cancer"
MODEL = "breast-cancer-clf"
_EXPECTATIONS = {
    "row_count": {"min": 500},
    "columns": {
        "target": {"type": "integer", "nullable": False, "allowed": [0, 1]},
        "mean radius": {"type": "float", "nullable": False, "min": 0},
    },
}
_SWEEP = [
    {"alpha": 1e-4, "penalty": "l2", "learning_rate": "optimal"},
    {"alpha": 1e-3, "penalty": "l2", "learning_rate": "optimal"},
    {"alpha": 1e-3, "penalty": "elasticnet", "learning_rate": "adaptive", "eta0": 0.01},
    {"alpha": 1e-2, "penalty": "l1", "learning_rate": "adaptive", "eta0": 0.05},
]


def quickstart(
    experiment: Annotated[str, typer.Option(help="Experiment to log into.")] = "quickstart",
    epochs: Annotated[int, typer.Option(min=1, max=1000, help="Training epochs per model.")] = 30,
    seed: Annotated[int, typer.Option(help="Seed for the split and the models.")] = 42,
) -> None:
    """Train a small model sweep on a bundled dataset with full tracking, then say where to look."""
    import numpy as np
    import pandas as pd
    from rich.progress import Progress
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import SGDClassifier
    from sklearn.metrics import accuracy_score, f1_score, log_loss, roc_auc_score
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    import opsloop
    from opsloop.cli.output import console, print_table
    from opsloop.sklearn import training_metrics

    out = console()
    opsloop.seed_everything(seed)
    client = opsloop.get_client()
    source = client.settings.home / "quickstart" / f"{DATASET}.csv"
    source.parent.mkdir(parents=True, exist_ok=True)
    load_breast_cancer(as_frame=True).frame.to_csv(source, index=False)
    added = client.data.add(
        source, DATASET, message="scikit-learn's breast cancer table", expectations=_EXPECTATIONS
    )
    version = added.version
    verb = "versioned" if added.created else "unchanged:"
    out.print(
        f"data: {verb} [cyan]{version.ref}[/] ({version.table.rows} rows, "  # type: ignore[union-attr]
        f"validation {version.validation_status})"
    )
    frame = opsloop.data.get(version.ref).to_pandas()  # train on exactly what was versioned
    features, target = frame.drop(columns=["target"]), frame["target"]
    X_train, X_val, y_train, y_val = train_test_split(
        features, target, test_size=0.25, random_state=seed, stratify=target
    )
    scaler = StandardScaler().fit(X_train)
    X_train_s, X_val_s = scaler.transform(X_train), scaler.transform(X_val)
    classes = np.unique(y_train)

    opsloop.set_experiment(experiment)
    out.print(f"[bold]opsloop quickstart[/] → experiment [cyan]{experiment}[/] in {client.where}")
    results = []
    with opsloop.start_run(run_name="sgd-sweep", tags={"dataset": version.ref}) as parent:
        parent.log_input(version)
        opsloop.log_params(
            {"dataset": version.ref, "rows": len(frame), "epochs": epochs, "seed": seed}
        )
        with Progress(console=out, transient=True) as progress:
            task = progress.add_task("training", total=len(_SWEEP) * epochs)
            for i, params in enumerate(_SWEEP):
                with opsloop.start_run(run_name=f"sgd-{i}", nested=True) as child:
                    model = SGDClassifier(loss="log_loss", random_state=seed, **params)
                    opsloop.log_params({"model": "SGDClassifier", **params})
                    for epoch in range(epochs):
                        model.partial_fit(X_train_s, y_train, classes=classes)
                        proba = model.predict_proba(X_val_s)
                        opsloop.log_metrics(
                            {
                                "val_loss": log_loss(y_val, proba),
                                "val_accuracy": accuracy_score(y_val, proba.argmax(1)),
                            },
                            step=epoch,
                        )
                        progress.advance(task)
                    predicted = model.predict(X_val_s)
                    final = {
                        "val_f1": f1_score(y_val, predicted),
                        "val_roc_auc": roc_auc_score(y_val, model.predict_proba(X_val_s)[:, 1]),
                        **training_metrics(model, X_train_s, y_train),
                    }
                    opsloop.log_metrics(final, step=epochs)
                    frame = pd.DataFrame({"y_true": y_val.to_numpy(), "y_pred": predicted})
                    opsloop.log_dataframe(frame, "predictions/validation.parquet")
                    packaged = Pipeline([("scale", scaler), ("sgd", model)])
                    opsloop.log_model(packaged, "model", input_example=X_val.head())
                    results.append(
                        (
                            child.run_id,
                            f"sgd-{i}",
                            params,
                            final["val_f1"],
                            final["val_roc_auc"],
                            predicted,
                        )
                    )
        best = max(results, key=lambda r: r[3])
        opsloop.log_metrics({"best_val_f1": best[3]})
        opsloop.set_tag("best_run_id", best[0])
        scored = source.with_name("validation-predictions.parquet")
        pd.DataFrame({"y_true": y_val.to_numpy(), "y_pred": best[5]}).to_parquet(scored)
        predictions = parent.log_output(scored, name=f"{DATASET}-predictions")
        held_out = source.with_name("validation.csv")
        X_val.assign(target=y_val).to_csv(held_out, index=False)
        validation = parent.log_output(held_out, name=f"{DATASET}-validation")

    print_table(
        ["run", "params", "val_f1", "val_roc_auc"],
        [
            (name, ", ".join(f"{k}={v}" for k, v in p.items()), f"{f1:.4f}", f"{auc:.4f}")
            for _, name, p, f1, auc, _ in results
        ],
        title="sweep results",
    )
    out.print(f"best: [green]{best[1]}[/] ({best[0]}) val_f1={best[3]:.4f}\n")
    event = _register_and_promote(client, best[0], validation.ref)
    _deploy_and_serve(client, X_val, y_val)
    from opsloop.cli.quickstart_llm import llm_loop
    from opsloop.cli.quickstart_loop import closed_loop

    table = opsloop.data.get(version.ref).to_pandas()
    loop_commands = closed_loop(client, out, table, version.ref, validation.ref)

    llm_commands = llm_loop(client, out)
    out.print("[bold]Where to look next[/]")
    out.print(f"  opsloop runs list -e {experiment} -o 'metrics.val_f1 DESC'")
    out.print(f"  opsloop runs show {best[0]}")
    runner_up = sorted(results, key=lambda r: r[3])[-2]
    out.print(f"  opsloop runs compare {best[0]} {runner_up[0]}")
    out.print(f"  opsloop runs metric {best[0]} val_loss")
    out.print(f"  opsloop runs env {parent.run_id}")
    query = "metrics.val_f1 > 0.95 and params.penalty = 'l2'"
    out.print(f'  opsloop runs list -e {experiment} -f "{query}"')
    out.print(f"  opsloop data show {version.ref}      # schema, validation, runs that used it")
    out.print(f"  opsloop data show {predictions.ref}  # produced by {parent.run_id}")
    out.print(f"  opsloop data profile {version.ref} --out .   # HTML profile")
    out.print(f"  opsloop models show {MODEL}        # versions, aliases, gate policy")
    out.print(f"  opsloop models history {MODEL}     # every alias decision with its verdict")
    out.print(f"  opsloop models card {event.name}@{event.to_number}   # the model card (Markdown)")
    out.print(f"  opsloop lineage {MODEL}@champion   # run, data and code behind the champion")
    out.print(f"  opsloop deployments show {MODEL}   # traffic and its history")
    out.print(f"  opsloop deployments predictions {MODEL}   # logged answers with ground truth")
    out.print(f"  opsloop serve --port 8080   # then POST /v1/deployments/{MODEL}/predict")
    for command in [*loop_commands, *llm_commands]:
        out.print(f"  {command}")
    out.print(
        "  opsloop ui       # the web UI: runs, data, models, prompts, traces, feedback, evals"
    )


def _deploy_and_serve(client: Any, X_val: Any, y_val: Any) -> None:
    """Serve the champion, send it the validation rows one by one, and join their labels."""
    from opsloop.cli.output import console

    out = console()
    deployment = client.deployments.deploy(f"{MODEL}@champion", name=MODEL)
    out.print(f"serving: deployment [cyan]{MODEL}[/] — {deployment.policy.describe()}")
    for (_, row), truth in zip(X_val.head(50).iterrows(), y_val.head(50), strict=True):
        answer = client.deployments.predict(MODEL, [row.to_dict()])
        client.deployments.feedback(MODEL, {answer["request_id"]: int(truth)})
    window = client.deployments._runtime.log.window(MODEL, deployment.policy.stable, 0)
    out.print(
        f"serving: 50 requests answered (p50 {window['latency_p50_ms']:.2f} ms), ground truth "
        f"joined: accuracy {window['accuracy']:.3f}\n"
    )


def _gate_policy(validation_ref: str) -> dict[str, object]:
    """The quickstart's gate: floors, no regression vs the champion, a behavioural check."""
    return {
        "data": validation_ref,
        "target": "target",
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


def _register_and_promote(client: object, run_id: str, validation_ref: str) -> object:
    """Register the best run's model and promote it to champion through the gate."""
    from opsloop.cli.output import console
    from opsloop.registry.cli import _print_verdict

    out = console()
    models = client.models  # type: ignore[attr-defined]
    version = models.register(MODEL, run_id=run_id, description="quickstart SGD sweep winner")
    out.print(f"registry: registered [cyan]{version.ref}[/] from run {run_id[:8]}")
    models.update(MODEL, gate_policy=_gate_policy(validation_ref))
    event = models.promote(version.ref, "champion")
    _print_verdict(event)
    if event.moved:
        out.print(f"gate: [green]passed[/] → {MODEL}@champion is {version.ref}\n")
    else:
        out.print(f"gate: [red]rejected[/] → {MODEL}@champion stays at {event.from_number}\n")
    return event
