"""``opsloop finetune CONFIG --tune``: an Optuna multi-objective study over fine-tuning configs.

The config's ``tune:`` section names ranges for learning_rate, lora_r and max_steps; each
trial fine-tunes the config with one point of them (:func:`run_finetune`, so each trial's
model is registered like any fine-tune's) and scores it twice, both minimized:

- quality: the run's eval loss (so the config needs ``eval_dataset``);
- cost: the tokens it trained on (TRL's ``num_tokens``), or its device-seconds
  (``train_runtime`` x ``devices``), as ``tune.cost`` says.

No config is best on both, so the answer is the Pareto front (:func:`tune` with several
directions): printed, and logged on the study's run as ``tuning/pareto_front.json``. The study
is a run, each trial a run nested under it carrying the two values; the trial's fine-tuning run
is linked both ways by tags (``opsloop.tune.finetune_run`` on the trial,
``opsloop.tune.trial_run`` on the fine-tune). The ``gate:`` does not run per trial: it judges
the one config you pick from the front.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING
from typing import Any

from opsloop.app.finetune import run_finetune
from opsloop.errors import InvalidInput
from opsloop.llm.finetune import load_config
from opsloop.pipelines.tuning import TrialContext
from opsloop.pipelines.tuning import TuneResult
from opsloop.pipelines.tuning import tune

if TYPE_CHECKING:
    from opsloop.client import Client

__all__ = ["FINETUNE_RUN_TAG", "TRIAL_RUN_TAG", "tune_finetune"]

TRIAL_RUN_TAG = "opsloop.tune.trial_run"
FINETUNE_RUN_TAG = "opsloop.tune.finetune_run"


def tune_finetune(
    client: Client, config: str | Path | dict[str, Any], **overrides: Any
) -> TuneResult:
    """Run the study the config's ``tune:`` section describes (see the module docstring).

    Raises:
        InvalidInput: No ``tune:`` section or no ``eval_dataset``; a bad key in either (with
            the closest known one suggested), an empty space, ``n_trials`` < 1, a bad range.
    """
    checked = load_config(config, **overrides)
    section = checked.tune
    if section is None:
        raise InvalidInput(
            "--tune needs a tune: section, e.g. tune: {n_trials: 4, space: {learning_rate: "
            "{type: float, low: 1.0e-4, high: 1.0e-2, log: true}}}"
        )
    if checked.eval_dataset is None:
        raise InvalidInput("tune: quality is the eval loss: add eval_dataset to the config")
    if "lora_r" in section.space.ranges() and checked.adapter == "full":
        raise InvalidInput("tune.space.lora_r: adapter is full, so there is no LoRA rank to tune")
    # what was written, without the parts that are not one training: a trial is that config
    base = checked.model_dump(mode="json", exclude={"tune", "gate"}, exclude_unset=True)

    def objective(params: dict[str, Any], trial: TrialContext) -> list[float]:
        result = run_finetune(client, {**base, **params})
        client.set_tag(result.run_id, TRIAL_RUN_TAG, trial.run_id)
        client.set_tags(
            trial.run_id, {FINETUNE_RUN_TAG: result.run_id, "opsloop.tune.version": result.version}
        )
        metrics = client.get_run(result.run_id).data.metrics
        return [_metric(metrics, "eval_loss", "eval loss"), _cost(metrics, section.cost, checked)]

    return tune(
        objective,
        section.space.ranges(),
        n_trials=section.n_trials,
        directions=["minimize", "minimize"],
        objectives=["eval_loss", section.cost],
        study=section.study or f"finetune-{checked.output}",
        pruner="none",
        seed=section.seed,
        client=client,
    )


def _cost(metrics: dict[str, float], cost: str, config: Any) -> float:
    if cost == "tokens":
        return _metric(metrics, "num_tokens", "token count (use cost: device_seconds)")
    return _metric(metrics, "train_runtime", "train_runtime") * config.devices


def _metric(metrics: dict[str, float], key: str, what: str) -> float:
    """A value the fine-tuning run logged; a trial without it fails, naming it."""
    if key not in metrics:
        raise InvalidInput(f"the fine-tuning run logged no {key}: no {what} to score the trial")
    return float(metrics[key])
