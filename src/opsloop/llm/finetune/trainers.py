"""Which TRL trainer trains a config, and with what arguments.

SFT (``SFTTrainer``) and DPO (``DPOTrainer``) share every ``TrainingArguments`` field (the
optimiser, schedule, batch, checkpoints, eval, seed, logging every step) through
:func:`training_args`; each adds only its own. The recording is the same for both: the
:class:`~opsloop.llm.finetune.callback.RunCallback` logs whatever the trainer logs (DPO's
``rewards/accuracies`` and ``rewards/margins`` among it).

DPO's reference model: with LoRA it is the base with the adapter disabled (TRL's default for a
peft model, no second copy in memory); with full fine-tuning, a frozen copy of the base made
here (TRL would otherwise load one by the model's name, which may mean the Hub).

SFT's loss: on the assistant's tokens only when the base's chat template marks them with
``{% generation %}`` (TRL's ``assistant_only_loss``), else on the whole chat.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from typing import Any

from opsloop.errors import InvalidInput

if TYPE_CHECKING:
    from opsloop.llm.finetune.config import FinetuneConfig
    from opsloop.llm.finetune.ports import BaseModel

__all__ = ["TrainingInputs", "build_trainer", "hub_offline", "training_args"]

# a chat template that marks the assistant's turns: SFT then learns those tokens alone
_GENERATION_MARK = re.compile(r"{%-?\s*generation\s*-?%}")


@dataclass(frozen=True)
class TrainingInputs:
    """What one training run learns from, handed on as one: the config, the loaded base, its
    LoRA config (None: full fine-tuning), the training rows and the eval rows (None: no eval).
    """

    config: FinetuneConfig
    base: BaseModel
    peft_config: Any
    rows: list[dict[str, Any]]
    eval_rows: list[dict[str, Any]] | None


def training_args(
    config: FinetuneConfig, out: Path, *, evaluating: bool, devices: int = 1
) -> dict[str, Any]:
    """The ``TrainingArguments`` fields every method takes from ``config``; with ``devices``
    above one, the process group's backend too: NCCL on GPUs; gloo on CPU, where ``use_cpu``
    is what makes accelerate see the ranks (else each process would train alone)."""
    _check_names(config)
    parallel: dict[str, Any] = {}
    if devices > 1:
        import torch

        gpu = torch.cuda.is_available()
        parallel = {"ddp_backend": "nccl" if gpu else "gloo", "use_cpu": not gpu}
    return dict(
        **parallel,
        output_dir=str(out),
        learning_rate=config.learning_rate,
        optim=config.optimizer,
        lr_scheduler_type=config.lr_scheduler,
        warmup_steps=config.warmup_steps,
        weight_decay=config.weight_decay,
        num_train_epochs=config.num_epochs,
        max_steps=config.max_steps,
        per_device_train_batch_size=config.micro_batch_size,
        per_device_eval_batch_size=config.micro_batch_size,
        gradient_accumulation_steps=config.gradient_accumulation_steps,
        max_length=config.sequence_len,
        seed=config.seed,
        data_seed=config.seed,
        logging_steps=1,
        save_strategy="steps" if config.save_steps else "no",
        save_steps=config.save_steps or 500,
        eval_strategy="steps" if evaluating else "no",
        eval_steps=config.eval_steps or config.save_steps or 10,
        report_to="none",
        dataloader_num_workers=0,
        dataloader_pin_memory=False,
        gradient_checkpointing=config.gradient_checkpointing,
        bf16=config.bf16,
    )  # fmt: skip


def build_trainer(
    inputs: TrainingInputs, out: Path, callbacks: Sequence[Any], *, devices: int = 1
) -> Any:
    """TRL's trainer for ``inputs.config.method`` over ``inputs.rows``, with ``callbacks``,
    quiet on stdout and offline; ``devices``: the processes of a data parallel run this one
    is a rank of.
    """
    from datasets import Dataset

    hub_offline()
    config, base, eval_rows = inputs.config, inputs.base, inputs.eval_rows
    shared = training_args(config, out, evaluating=eval_rows is not None, devices=devices)
    common = dict(
        model=base.model,
        train_dataset=Dataset.from_list(inputs.rows),
        eval_dataset=Dataset.from_list(eval_rows) if eval_rows is not None else None,
        processing_class=base.tokenizer,
        peft_config=inputs.peft_config,
        callbacks=list(callbacks),
    )
    if config.rl == "dpo":
        from trl import DPOConfig
        from trl import DPOTrainer

        reference = None if inputs.peft_config is not None else copy.deepcopy(base.model).eval()
        args = DPOConfig(**shared, beta=config.dpo_beta)
        trainer = DPOTrainer(args=args, ref_model=reference, **common)
    else:
        from trl import SFTConfig
        from trl import SFTTrainer

        marked = bool(_GENERATION_MARK.search(getattr(base.tokenizer, "chat_template", None) or ""))
        args = SFTConfig(**shared, packing=False, assistant_only_loss=marked)
        trainer = SFTTrainer(args=args, **common)
    _quiet_logs(trainer)
    return trainer


def _check_names(config: FinetuneConfig) -> None:
    """The optimizer and schedule must be ones transformers knows, else a did-you-mean."""
    import difflib

    from transformers.trainer_utils import SchedulerType
    from transformers.training_args import OptimizerNames

    for key, value, known in (
        ("optimizer", config.optimizer, [o.value for o in OptimizerNames]),
        ("lr_scheduler", config.lr_scheduler, [s.value for s in SchedulerType]),
    ):
        if value not in known:
            near = difflib.get_close_matches(value, known, n=1)
            hint = f"did you mean {near[0]!r}? " if near else ""
            raise InvalidInput(f"{key} {value!r} is unknown; {hint}one of: {', '.join(known)}")


def _quiet_logs(trainer: Any) -> None:
    """Keep the progress bar (stderr) but not the logs transformers prints on stdout: they are
    in the run, and stdout is the command's (``--json``)."""
    from transformers.trainer_callback import PrinterCallback
    from transformers.trainer_callback import ProgressCallback

    class BarOnly(ProgressCallback):  # type: ignore[misc]
        def on_log(self, *args: Any, **kwargs: Any) -> None:
            return None

    if trainer.pop_callback(PrinterCallback) is not None or trainer.pop_callback(ProgressCallback):
        trainer.add_callback(BarOnly())


def hub_offline() -> None:
    """Nothing here may reach the Hugging Face Hub: TRL's trainer sends telemetry when it is
    created and huggingface_hub fetches a registry of agents, unless the process is offline
    (a data parallel worker too: it is a fresh process)."""
    import os

    from huggingface_hub import constants

    os.environ["HF_HUB_OFFLINE"] = os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
    constants.HF_HUB_OFFLINE = constants.HF_HUB_DISABLE_TELEMETRY = True
