"""``opsloop finetune CONFIG``: fine-tune a causal LM on a chat data version (SFT) or on
preference pairs (``rl: dpo``), as a tracked run, and register the result."""

from __future__ import annotations

import dataclasses
import json
from typing import TYPE_CHECKING
from typing import Annotated
from typing import Any

import typer

if TYPE_CHECKING:
    from opsloop.llm.finetune.gate import GateOutcome

__all__ = ["finetune"]


def finetune(
    config: Annotated[str, typer.Argument(help="The fine-tuning YAML file (see below).")],
    merge: Annotated[
        bool,
        typer.Option(
            "--merge",
            help="Register the base with the LoRA adapter merged in (a plain transformers model "
            "the gateway serves) instead of the adapter alone.",
        ),
    ] = False,
    resume: Annotated[
        bool,
        typer.Option(
            "--resume",
            help="Continue from the last checkpoint of the latest run of this config's "
            "experiment (after a crash, a cancel, or to train longer with a larger max_steps).",
        ),
    ] = False,
    max_steps: Annotated[
        int | None, typer.Option("--max-steps", help="Override the config's max_steps.")
    ] = None,
    nproc: Annotated[
        int | None,
        typer.Option(
            "--nproc",
            min=1,
            help="Train data parallel in this many processes (the config's devices): gloo on "
            "CPU, NCCL on GPUs; only the first records to the run.",
        ),
    ] = None,
    executor: Annotated[
        str | None,
        typer.Option(
            "--executor",
            help="local, or ray: train on Ray Train's workers (devices of them) on RAY_ADDRESS's "
            "cluster, else a local Ray (the config's executor).",
        ),
    ] = None,
    tune: Annotated[
        bool,
        typer.Option(
            "--tune",
            help="Run the config's tune: section instead: an Optuna study of fine-tunes scored "
            "on eval loss and cost, its Pareto front printed and logged.",
        ),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Supervised (SFT) or preference (DPO) fine-tuning, LoRA or full, with TRL, tracked and
    registered.

    The run logs loss and learning rate per step (with rl: dpo also rewards/accuracies,
    rewards/margins and the chosen/rejected rewards), eval loss (with eval_dataset), tokens/s
    and peak memory; the config's fields are its params and its hash a tag; the data version is its
    input. Checkpoints go to the run's artifacts, so --resume works from any machine sharing
    the store. The result is the next version of `output`: the LoRA adapter tagged with its
    base version, or with --merge the merged weights; the tokenizer and its chat template go
    with it. The base is never downloaded: a registered NAME@version or a local folder.

    A minimal finetune.yaml (keys as in axolotl where the concept is the same):

      base_model: support-bot@champion     # or /path/to/a/transformers/folder
      datasets: support-chats@3            # chat JSONL, as `opsloop feedback export` writes
      eval_dataset: support-chats-eval@1   # optional: eval loss
      output: support-bot-ft               # the registered model's name
      adapter: lora                        # lora | full (qlora needs a CUDA GPU + bitsandbytes)
      lora_r: 8
      lora_alpha: 16
      lora_dropout: 0.05
      lora_target_modules: [c_attn]        # a wrong name lists the model's modules
      learning_rate: 2.0e-4
      optimizer: adamw_torch
      lr_scheduler: cosine
      num_epochs: 3                        # or max_steps: 200
      micro_batch_size: 4
      gradient_accumulation_steps: 2
      sequence_len: 1024
      save_steps: 50                       # checkpoints (the last step is always kept)
      seed: 42
      devices: 2                           # data parallel processes (or --nproc 2)
      executor: ray                        # as Ray Train workers (or --executor ray)

    Preference tuning (DPO) adds two keys, and reads pairs of answers, as
    `opsloop feedback export NAME --format preference --rank-by thumbs` writes them:

      rl: dpo                              # leave it out for SFT
      dpo_beta: 0.1                        # TRL's beta: how close to the base
      datasets: support-dpo@1              # prompt / chosen / rejected rows

    The reference model is the base: with LoRA the adapter disabled, with full a frozen copy.

    Tuning (--tune): each trial a fine-tune of a point of the space, scored on the eval loss
    (eval_dataset is needed) and a cost, both minimized; prints the Pareto front:

      tune:
        n_trials: 8
        cost: device_seconds               # or tokens
        space:                             # learning_rate, lora_r, max_steps
          learning_rate: {type: float, low: 1.0e-4, high: 1.0e-2, log: true}
          lora_r: {type: int, low: 4, high: 16}
          max_steps: {type: int, low: 20, high: 200}

    An eval gate after training (the exit code is 1 when it fails; the version stays registered):

      gate:
        suite: evals/support.yaml          # `opsloop eval run`'s suites; providers replaced
        against: champion                  # compared with output@champion while it exists
        rules:                             # default: no regression in pass_rate
          - {metric: pass_rate, min: 0.8}
          - {metric: rouge, max_regression: 0.05}   # an assertion type's mean score
        alias: candidate                   # moved to the new version when every rule passes
    """
    from opsloop.app.finetune import run_finetune
    from opsloop.console.output import command_client
    from opsloop.errors import InvalidInput

    if tune and (resume or merge):
        raise InvalidInput("--tune runs a study of new fine-tunes: drop --resume and --merge")
    if tune:
        _tune(config, max_steps=max_steps, devices=nproc, executor=executor, as_json=as_json)
        return
    result = run_finetune(
        command_client(), config, resume=resume, merge=merge, max_steps=max_steps, devices=nproc,
        executor=executor,
    )  # fmt: skip
    if as_json:
        typer.echo(json.dumps(dataclasses.asdict(result), indent=2))
    else:
        loss = f", final loss {result.final_loss:.4f}" if result.final_loss is not None else ""
        resumed = f" (resumed from run {result.resumed_from})" if result.resumed_from else ""
        typer.echo(
            f"registered {result.version}: run {result.run_id}, {result.steps} steps{loss}{resumed}"
        )
        if result.gate is not None:
            _print_gate(result.gate)
    if result.gate is not None and not result.gate.passed:
        raise typer.Exit(1)


def _tune(config: str, *, as_json: bool, **overrides: Any) -> None:
    """``--tune``: the study, with its front printed."""
    from opsloop.app.finetune_tune import tune_finetune
    from opsloop.console.output import command_client
    from opsloop.pipelines.cli import print_tune_result

    result = tune_finetune(command_client(), config, **overrides)
    if as_json:
        typer.echo(result.model_dump_json(indent=2))
    else:
        print_tune_result(result)


def _print_gate(outcome: GateOutcome) -> None:
    from opsloop.console.output import for_people
    from opsloop.console.output import print_table
    from opsloop.evaluation.gates import verdict_rows

    rows = [
        ("PASS" if ok else "FAIL", *cells)
        for ok, *cells in verdict_rows(outcome.verdict, for_people)
    ]
    title = f"eval gate: {outcome.version} vs {outcome.against or 'no champion yet'}"
    print_table(["", "rule", "candidate", "champion", "detail"], rows, title=title)
    if outcome.alias_moved:
        typer.echo(
            f"passed: {outcome.alias_moved} -> {outcome.version} (eval run {outcome.eval_run_id})"
        )
    else:
        verdict = "passed" if outcome.passed else "failed: no alias moved"
        typer.echo(f"{verdict} (eval run {outcome.eval_run_id})")
