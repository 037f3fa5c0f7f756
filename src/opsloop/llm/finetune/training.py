"""``finetune``: supervised (SFT, on chats) or preference (DPO, on chosen/rejected pairs)
fine-tuning, LoRA or full, of a causal LM on a data version, as a tracked opsloop run whose
result is registered as a model version.

TRL's ``SFTTrainer`` / ``DPOTrainer`` and peft do the training (:mod:`.trainers`); this module
decides what they are given and records what happened, the same way for both methods: the
config (its fields as params, its hash as a tag), the data version as the run's input, loss
and learning rate per step (DPO's rewards too), eval loss, tokens/s, peak memory, and each
checkpoint in the run's artifacts. ``resume=True`` continues from the last checkpoint of
the latest run of the same experiment (a new run, tagged with the one it resumed).
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from typing import Any

from opsloop.errors import NotFound
from opsloop.llm.finetune.data import chat_rows
from opsloop.llm.finetune.data import preference_rows
from opsloop.llm.finetune.models import check_base_ref
from opsloop.llm.finetune.models import check_method
from opsloop.llm.finetune.models import load_base
from opsloop.llm.finetune.models import lora_config
from opsloop.llm.finetune.on_ray import connect as connect_ray
from opsloop.llm.finetune.on_ray import on_ray
from opsloop.llm.finetune.on_ray import train_on_ray
from opsloop.llm.finetune.ports import BaseModels
from opsloop.llm.finetune.ports import ModelRegistrar
from opsloop.llm.finetune.ports import TrainedModel
from opsloop.llm.finetune.trainers import TrainingInputs

if TYPE_CHECKING:
    from opsloop.data.sdk import DataClient
    from opsloop.llm.finetune.config import FinetuneConfig
    from opsloop.llm.finetune.gate import GateOutcome
    from opsloop.tracking.sdk import TrackingClient

__all__ = ["CONFIG_HASH_TAG", "FinetuneResult", "finetune"]

CONFIG_HASH_TAG = "opsloop.finetune.config_hash"
RESUMED_TAG = "opsloop.finetune.resumed_from"
BASE_TAG = "opsloop.finetune.base"
METHOD_TAG = "opsloop.finetune.method"
EXECUTOR_TAG = "opsloop.finetune.executor"


@dataclass(frozen=True)
class FinetuneResult:
    """What a fine-tuning run left: its run, the registered version, where it ended, and
    the eval gate's decision when the config has a ``gate:``."""

    run_id: str
    version: str
    steps: int
    final_loss: float | None
    config_hash: str
    resumed_from: str | None
    gate: GateOutcome | None = None


def finetune(
    config: FinetuneConfig,
    *,
    tracking: TrackingClient,
    data: DataClient,
    base_models: BaseModels | None,
    registrar: ModelRegistrar,
    resume: bool = False,
    merge: bool = False,
    callbacks: Sequence[Any] = (),
) -> FinetuneResult:
    """Train ``config`` and register the result as the next version of ``config.output``.

    The LoRA adapter is registered (tagged with its base version), or with ``merge=True``
    the base with the adapter merged into it: a plain transformers model any server loads.
    ``callbacks`` are extra transformers ``TrainerCallback`` objects.

    Raises:
        InvalidInput: A data version in the wrong shape (chats for SFT, preference pairs
            for ``rl: dpo``), a Hub id or a base without a chat template, LoRA targets that
            match nothing, QLoRA without a GPU.
        NotFound: No such data version or base model; ``resume`` with no checkpoint to resume.
    """
    check_method(config)
    check_base_ref(config.base_model)
    ray = on_ray(config)
    if ray:
        connect_ray()  # no Ray, or a cluster that does not answer: refused before the run
    read = preference_rows if config.rl == "dpo" else chat_rows
    rows = read(data, config.datasets)
    eval_rows = read(data, config.eval_dataset) if config.eval_dataset else None
    experiment = tracking.set_experiment(config.experiment_name)
    previous = _last_checkpoint(tracking, experiment.experiment_id) if resume else None
    if resume and previous is None:
        raise NotFound(
            f"nothing to resume: no run of experiment {config.experiment_name!r} left a checkpoint"
        )
    base = load_base(config.base_model, base_models)
    peft_config = lora_config(config, base.model) if config.adapter == "lora" else None
    tags = {
        CONFIG_HASH_TAG: config.hash,
        BASE_TAG: base.ref,
        "opsloop.finetune.adapter": config.adapter,
        METHOD_TAG: config.method,
        EXECUTOR_TAG: "ray" if ray else "local",
    }
    if previous is not None:
        tags[RESUMED_TAG] = previous[0]
    run = tracking.create_run(experiment.experiment_id, tags=tags)
    run_id = run.info.run_id
    try:
        tracking.log_params(run_id, _params(config))
        data.log_input(run_id, config.datasets)
        if config.eval_dataset:
            data.log_input(run_id, config.eval_dataset)
        with tempfile.TemporaryDirectory(prefix="opsloop-finetune-") as tmp:
            start = tracking.download_artifacts(previous[0], previous[1], tmp) if previous else None
            inputs = TrainingInputs(config, base, peft_config, rows, eval_rows)
            model, steps, final_loss = _train(
                inputs, tracking, run_id, Path(tmp), start, callbacks, ray=ray
            )
        if merge and peft_config is not None:
            model = model.merge_and_unload()
    except BaseException as exc:
        status = "KILLED" if isinstance(exc, KeyboardInterrupt) else "FAILED"
        tracking.end_run(run_id, status)
        raise
    tracking.end_run(run_id, "FINISHED")
    kind = "lora-adapter" if peft_config is not None and not merge else "weights"
    version = registrar.register(
        TrainedModel(
            config.output,
            model,
            base.tokenizer,
            run_id=run_id,
            base=base,
            tags={
                BASE_TAG: base.ref,
                CONFIG_HASH_TAG: config.hash,
                METHOD_TAG: config.method,
                "opsloop.finetune.kind": kind,
            },
        )
    )
    return FinetuneResult(
        run_id=run_id,
        version=version,
        steps=steps,
        final_loss=final_loss,
        config_hash=config.hash,
        resumed_from=previous[0] if previous else None,
    )


def _params(config: FinetuneConfig) -> dict[str, Any]:
    values = config.fields()
    return {
        k: ",".join(v) if isinstance(v, list) else v for k, v in values.items() if v is not None
    }


def _last_checkpoint(tracking: TrackingClient, experiment_id: str) -> tuple[str, str] | None:
    """(run id, artifact path) of the newest checkpoint of the latest run that left one."""
    from opsloop.llm.finetune.callback import CHECKPOINT_TAG
    from opsloop.llm.finetune.callback import CHECKPOINTS

    for run in tracking.search_runs(experiment_id, max_results=100).items:  # newest first
        step = run.data.tags.get(CHECKPOINT_TAG)
        if step:
            return run.info.run_id, f"{CHECKPOINTS}/checkpoint-{step}"
    return None


def _train(
    inputs: TrainingInputs,
    tracking: TrackingClient,
    run_id: str,
    folder: Path,
    start: Path | None,
    callbacks: Sequence[Any],
    *,
    ray: bool,
) -> tuple[Any, int, float | None]:
    """Run TRL's trainer, here, in ``config.devices`` processes (:mod:`.parallel`) or on as
    many Ray Train workers (``ray``, :mod:`.on_ray`); the trained model (a peft model for
    LoRA), its step, its last loss."""
    from opsloop.llm.finetune.callback import RunCallback
    from opsloop.llm.finetune.callback import RunSink
    from opsloop.llm.finetune.trainers import build_trainer
    from opsloop.llm.finetune.trainers import hub_offline

    hub_offline()  # before anything loads: the parallel path reads the result back here
    recorder = RunCallback(RunSink(tracking, run_id))
    out = folder / "trainer"
    if ray:
        return train_on_ray(inputs, recorder, out, start)
    if inputs.config.devices > 1:
        return _train_parallel(inputs, recorder, out, start)
    trainer = build_trainer(inputs, out, [recorder, *callbacks])
    trainer.train(resume_from_checkpoint=str(start) if start is not None else None)
    recorder.store_last(trainer)
    return trainer.model, int(trainer.state.global_step), recorder.final_loss


def _train_parallel(
    inputs: TrainingInputs, recorder: Any, out: Path, start: Path | None
) -> tuple[Any, int, float | None]:
    """Data parallel: the workers train; what rank 0 recorded reaches the run either way."""
    from opsloop.llm.finetune import parallel

    journal = out / parallel.JOURNAL
    try:
        parallel.launch(inputs, inputs.config.devices, out, start)
    finally:
        parallel.replay(journal, recorder)
    last = max(out.glob("checkpoint-*"), key=lambda p: int(p.name.rsplit("-", 1)[1]))
    steps = int(last.name.rsplit("-", 1)[1])
    return parallel.load_trained(inputs, last), steps, recorder.final_loss
