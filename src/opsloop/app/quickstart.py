"""``opsloop quickstart``: the main job, end to end on whatever store is configured.

It versions a dataset that ships with scikit-learn (breast cancer, 569 rows) as a data version,
then runs the ``training`` pipeline (``quickstart_pipeline``) on exactly that version: load and
validate it, split it, tune a small SGD sweep with Optuna (each configuration a trial run with
per-epoch learning curves, final metrics, validation predictions and a model package), register
the best as ``candidate``, publish the validation split and predictions as data versions, and
promote the candidate to ``champion`` through an evaluation gate on the validation split
(metric floors, no regression against the current champion overall or per slice, a
behavioural check, p99 latency), with the verdict recorded. Re-run with the same options, every
step but the gate is a cache hit. Then the LLM half
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


def quickstart(
    experiment: Annotated[str, typer.Option(help="Experiment to log into.")] = "quickstart",
    epochs: Annotated[int, typer.Option(min=1, max=1000, help="Training epochs per model.")] = 30,
    seed: Annotated[int, typer.Option(help="Seed for the split and the models.")] = 42,
) -> None:
    """Walk the whole loop on a bundled dataset: train through a tracked, cached pipeline with a
    tuned sweep, gate, serve, monitor, retrain on drift; then the LLM half."""
    from sklearn.datasets import load_breast_cancer

    import opsloop
    from opsloop.app.quickstart_pipeline import EXPECTATIONS, training
    from opsloop.console.output import console, print_table
    from opsloop.registry.cli import _print_verdict
    from opsloop.registry.entities import AliasEvent

    out = console()
    opsloop.seed_everything(seed)
    client = opsloop.get_client()
    source = client.settings.home / "quickstart" / f"{DATASET}.csv"
    source.parent.mkdir(parents=True, exist_ok=True)
    load_breast_cancer(as_frame=True).frame.to_csv(source, index=False)
    added = client.data.add(
        source, DATASET, message="scikit-learn's breast cancer table", expectations=EXPECTATIONS
    )
    version = added.version
    verb = "versioned" if added.created else "unchanged:"
    out.print(
        f"data: {verb} [cyan]{version.ref}[/] ({version.table.rows} rows, "  # type: ignore[union-attr]
        f"validation {version.validation_status})"
    )
    out.print(f"[bold]opsloop quickstart[/] → pipeline [cyan]training[/], experiment "
              f"[cyan]{experiment}[/] in {client.where}")  # fmt: skip
    with out.status("pipeline: load, validate, split, tuned sweep, publish, gate"):
        run = training.run(client=client, experiment=experiment, dataset=version.ref,
                           epochs=epochs, seed=seed)  # fmt: skip
    for s in run.steps:
        how = "cached" if s.cached else f"{s.duration_s:.2f} s"
        out.print(f"  [green]✓[/] {s.name:<12} {how:<8} [dim]{s.reason}[/]")
    best = run.outputs["sweep"]
    print_table(
        ["trial", "params", "val_f1", "val_roc_auc"],
        [(t["name"], ", ".join(f"{k}={v}" for k, v in t["params"].items()),
          f"{t['val_f1']:.4f}", f"{t['val_roc_auc']:.4f}") for t in best["trials"]],
        title="sweep results (Optuna trials)",
    )  # fmt: skip
    out.print(f"best: [green]{best['model']}[/] (trial run {best['best_run']}) "
              f"val_f1={best['val_f1']:.4f}\n")  # fmt: skip
    gated = run.outputs["gate"]
    if gated.get("already"):
        out.print(f"gate: {gated['ref']} is already {MODEL}@champion\n")
    else:
        event = AliasEvent.model_validate(gated["event"])
        _print_verdict(event)
        verdict = "[green]passed[/] →" if event.moved else "[red]rejected[/] →"
        out.print(f"gate: {verdict} {MODEL}@champion is "
                  f"{MODEL}@{client.models.get(MODEL).aliases.get('champion')}\n")  # fmt: skip
    published = run.outputs["publish"]
    frame = opsloop.data.get(version.ref).to_pandas()
    X_val = frame.drop(columns=["target"]).sample(frac=0.25, random_state=seed)
    _deploy_and_serve(client, X_val, frame.loc[X_val.index, "target"])
    from opsloop.app.quickstart_llm import llm_loop
    from opsloop.app.quickstart_loop import closed_loop

    loop_commands = closed_loop(client, out, frame, version.ref, published["validation"])
    llm_commands = llm_loop(client, out)
    best_run = best["best_run"]
    runner_up = sorted(best["trials"], key=lambda t: t["val_f1"])[-2]["run_id"]
    out.print("[bold]Where to look next[/]")
    out.print(
        f"  opsloop pipelines show {run.run_id}   # the DAG: steps, inputs, times, cache verdicts"
    )
    out.print(f"  opsloop runs list -e {experiment} -o 'metrics.val_f1 DESC'")
    out.print(f"  opsloop runs show {best_run}")
    out.print(f"  opsloop runs compare {best_run} {runner_up}")
    out.print(f"  opsloop runs metric {best_run} val_loss")
    out.print(f"  opsloop runs env {run.run_id}")
    out.print(f"  opsloop runs reproduce {run.run_id}   # recompute, compare bit for bit")
    query = "metrics.val_f1 > 0.95 and params.penalty = 'l2'"
    out.print(f'  opsloop runs list -e {experiment} -f "{query}"')
    out.print(f"  opsloop data show {version.ref}      # schema, validation, runs that used it")
    out.print(f"  opsloop data show {published['predictions']}  # produced by the publish step")
    out.print(f"  opsloop data profile {version.ref} --out .   # HTML profile")
    out.print(f"  opsloop models show {MODEL}        # versions, aliases, gate policy")
    out.print(f"  opsloop models history {MODEL}     # every alias decision with its verdict")
    out.print(f"  opsloop models card {best['model']}   # the model card (Markdown)")
    out.print(f"  opsloop lineage {MODEL}@champion   # run, data and code behind the champion")
    out.print(f"  opsloop deployments show {MODEL}   # traffic and its history")
    out.print(f"  opsloop deployments predictions {MODEL}   # logged answers with ground truth")
    out.print(f"  opsloop serve --port 8080   # then POST /v1/deployments/{MODEL}/predict")
    for command in [*loop_commands, *llm_commands]:
        out.print(f"  {command}")
    out.print(
        "  opsloop ui       # the web UI: runs, data, models, monitors, prompts, traces, evals"
    )


def _deploy_and_serve(client: Any, X_val: Any, y_val: Any) -> None:
    """Serve the champion, send it the validation rows one by one, and join their labels."""
    from opsloop.console.output import console

    out = console()
    deployment = client.deployments.deploy(f"{MODEL}@champion", name=MODEL)
    out.print(f"serving: deployment [cyan]{MODEL}[/] — {deployment.policy.describe()}")
    for (_, row), truth in zip(X_val.head(50).iterrows(), y_val.head(50), strict=True):
        answer = client.deployments.predict(MODEL, [row.to_dict()])
        client.deployments.feedback(MODEL, {answer["request_id"]: int(truth)})
    window = client.deployments.prediction_log.window(MODEL, deployment.policy.stable, 0)
    out.print(
        f"serving: 50 requests answered (p50 {window['latency_p50_ms']:.2f} ms), ground truth "
        f"joined: accuracy {window['accuracy']:.3f}\n"
    )
