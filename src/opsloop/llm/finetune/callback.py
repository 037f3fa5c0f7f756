"""The bridge from a transformers ``Trainer`` to an opsloop run: every logged number becomes a
metric at its step, with tokens/s and peak memory added; every checkpoint is stored in the
run's artifacts (the blob store), so a crashed or cancelled run can be resumed elsewhere.

What is recorded goes to a sink: :class:`RunSink` (the run itself) in a one-process run, or
rank 0's journal in a data parallel one (:mod:`.parallel`), replayed into the run afterwards.
"""

from __future__ import annotations

import math
import resource
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING
from typing import Any
from typing import Protocol

from transformers import TrainerCallback

if TYPE_CHECKING:
    from opsloop.tracking.sdk import TrackingClient

__all__ = ["CHECKPOINTS", "CHECKPOINT_TAG", "RunCallback", "RunSink", "Sink", "peak_memory_mb"]

CHECKPOINTS = "checkpoints"
CHECKPOINT_TAG = "opsloop.finetune.checkpoint"
_SKIPPED = {"epoch", "total_flos", "step"}


def peak_memory_mb() -> float:
    """The GPU's peak allocated memory when training on CUDA, else the process's peak RSS."""
    import torch

    if torch.cuda.is_available() and torch.cuda.is_initialized():
        return float(torch.cuda.max_memory_allocated()) / 2**20
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10


class Sink(Protocol):
    def log_metrics(self, metrics: dict[str, float], step: int) -> None:
        """Record ``metrics`` at ``step``."""
        ...

    def store_checkpoint(self, folder: Path, step: int) -> None:
        """Keep the checkpoint ``folder`` the trainer wrote at ``step``."""
        ...


class RunSink:
    """The run ``run_id``: metrics through the tracking client's buffered logger, each
    checkpoint into its artifacts with a tag naming the newest (what ``--resume`` looks for)."""

    def __init__(self, tracking: TrackingClient, run_id: str) -> None:
        self._tracking = tracking
        self._run_id = run_id

    def log_metrics(self, metrics: dict[str, float], step: int) -> None:
        self._tracking.log_metrics(self._run_id, metrics, step=step)

    def store_checkpoint(self, folder: Path, step: int) -> None:
        self._tracking.log_artifacts(self._run_id, folder, f"{CHECKPOINTS}/{folder.name}")
        self._tracking.set_tag(self._run_id, CHECKPOINT_TAG, str(step))


class RunCallback(TrainerCallback):  # type: ignore[misc]
    """Sends what the trainer logs to ``sink``, and each checkpoint the trainer writes as soon
    as it is written (a crash after it must find it).

    Without ``save_steps`` the last step's checkpoint is written by :meth:`store_last` once
    ``train()`` has returned, not inside the trainer's timed loop: it is a once-per-run cost
    (about half a second for the tiny LoRA of the bench), so the run's
    ``train_steps_per_second`` measures the steps, as a plain TRL script's does, and the write
    counts once in the command's wall time.
    """

    def __init__(self, sink: Sink) -> None:
        self._sink = sink
        self._last: tuple[float, float] | None = None  # (time, tokens seen) at the last log
        self._stored = -1  # the step of the last checkpoint stored
        self.final_loss: float | None = None

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._last = (time.perf_counter(), 0.0)

    def on_log(
        self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **_: Any
    ) -> None:
        logs = logs or {}
        metrics = {
            key: float(value)
            for key, value in logs.items()
            if key not in _SKIPPED
            and isinstance(value, int | float)
            and not isinstance(value, bool)
            and math.isfinite(value)
        }
        tokens = logs.get("num_tokens")
        if isinstance(tokens, int | float) and self._last is not None:
            now = time.perf_counter()
            then, seen = self._last
            if tokens > seen and now > then:
                metrics["tokens_per_s"] = (float(tokens) - seen) / (now - then)
            self._last = (now, float(tokens))
        metrics["peak_memory_mb"] = peak_memory_mb()
        self.record(metrics, state.global_step)

    def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.store(Path(args.output_dir) / f"checkpoint-{state.global_step}", state.global_step)

    def record(self, metrics: dict[str, float], step: int) -> None:
        """Send one step's metrics (and remember the last loss)."""
        if "loss" in metrics:
            self.final_loss = metrics["loss"]
        self._sink.log_metrics(metrics, step)

    def store(self, folder: Path, step: int) -> None:
        """Send the checkpoint ``folder`` of ``step``, once."""
        if folder.is_dir() and step > self._stored:
            self._sink.store_checkpoint(folder, step)
            self._stored = step

    def store_last(self, trainer: Any) -> None:
        """Checkpoint the state ``trainer`` ended in, so the final state of every run can be
        resumed (a longer ``max_steps`` continues from it)."""
        save_last(trainer)
        step = int(trainer.state.global_step)
        self.store(Path(trainer.args.output_dir) / f"checkpoint-{step}", step)


def save_last(trainer: Any) -> None:
    """Write the checkpoint of the step ``trainer`` ended at, unless its ``save_strategy``
    already did (transformers saves the last step whenever it saves by steps or epochs): the
    same rule on every rank of a data parallel run, so all take part in the same saves."""
    if trainer.args.save_strategy == "no":
        # transformers' own checkpoint writer (TRL's trainers extend it): the folder
        # ``--resume`` reads back, with the optimizer, schedule and RNG states
        trainer._save_checkpoint(trainer.model, trial=None)
