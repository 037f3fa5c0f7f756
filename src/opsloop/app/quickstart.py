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
``production`` label, and the loop closed on them (``quickstart_finetune``): a tiny LM
fine-tuned with LoRA on the liked answers, gated by that suite, canaried on a gateway route and
promoted or rolled back. In between, the closed loop (``quickstart_loop``): the champion is
served and monitored, the traffic shifts, the monitor alerts, a pipeline retrains on the
labelled traffic, and the new version is gated, canaried and promoted or rolled back.
"""

from __future__ import annotations

from typing import Annotated
from typing import Any

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
    from opsloop.app.quickstart_pipeline import EXPECTATIONS
    from opsloop.app.quickstart_pipeline import training
    from opsloop.console.output import console
    from opsloop.console.output import print_table
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
    llm_commands = llm_loop(client, out, seed)
    _print_next(
        out,
        [
            *_tracking_commands(experiment, run.run_id, best),
            *_data_and_model_commands(version.ref, published["predictions"], best["model"]),
            *loop_commands,
            *llm_commands,
            ("opsloop ui", "the web UI: runs, data, models, monitors, prompts, traces, evals"),
        ],
    )


def _print_next(out: Any, commands: list[tuple[str, str]]) -> None:
    """Each command on a line of its own and what it shows on the next, as a shell comment:
    rich would wrap a long command at the terminal's width (a copied line then ends mid-way),
    so neither line is wrapped, and pasting both runs the command and ignores the comment."""
    out.print("[bold]Where to look next[/]")
    for command, why in commands:
        out.print(f"  {command}", markup=False, highlight=False, soft_wrap=True)
        out.print(f"    # {why}", style="dim", markup=False, highlight=False, soft_wrap=True)


def _tracking_commands(
    experiment: str, pipeline_run: str, sweep: dict[str, Any]
) -> list[tuple[str, str]]:
    best_run = sweep["best_run"]
    others = [t for t in sweep["trials"] if t["run_id"] != best_run]
    query = "metrics.val_f1 > 0.95 and params.penalty = 'l2'"
    commands = [
        (f"opsloop pipelines show {pipeline_run}", "the DAG: steps, inputs, times, cache verdicts"),
        (f"opsloop runs list -e {experiment} -o 'metrics.val_f1 DESC'", "the trials, best first"),
        (f"opsloop runs show {best_run}", "the best trial: params, metrics, artifacts"),
    ]
    if others:  # the runner-up, never the best trial itself (ties in val_f1 are common)
        runner_up = max(others, key=lambda t: t["val_f1"])["run_id"]
        commands.append(
            (f"opsloop runs compare {best_run} {runner_up}", "the best two trials side by side")
        )
    return [
        *commands,
        (f"opsloop runs metric {best_run} val_loss", "the best trial's learning curve"),
        (f"opsloop runs env {pipeline_run}", "packages, platform and commit of the pipeline run"),
        (f"opsloop runs reproduce {pipeline_run}", "recompute, compare bit for bit"),
        (f'opsloop runs list -e {experiment} -f "{query}"', "runs filtered by metric and param"),
    ]


def _data_and_model_commands(
    data_ref: str, predictions: str, best_model: str
) -> list[tuple[str, str]]:
    return [
        (f"opsloop data show {data_ref}", "schema, validation, runs that used it"),
        (f"opsloop data show {predictions}", "produced by the publish step"),
        (f"opsloop data profile {data_ref} --out .", "HTML profile"),
        (f"opsloop models show {MODEL}", "versions, aliases, gate policy"),
        (f"opsloop models history {MODEL}", "every alias decision with its verdict"),
        (f"opsloop models card {best_model}", "the model card (Markdown)"),
        (f"opsloop lineage {MODEL}@champion", "run, data and code behind the champion"),
        (f"opsloop deployments show {MODEL}", "traffic and its history"),
        (f"opsloop deployments predictions {MODEL}", "logged answers with ground truth"),
        ("opsloop serve --port 8080", f"then POST /v1/deployments/{MODEL}/predict"),
    ]


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
