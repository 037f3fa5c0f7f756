"""The bridge from a transformers ``Trainer`` to an opsloop run: every logged number becomes a
metric at its step, with tokens/s and peak memory added; every checkpoint is stored in the
run's artifacts (the blob store), so a crashed or cancelled run can be resumed elsewhere.
"""

from __future__ import annotations

import math
import resource
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING
from typing import Any

from transformers import TrainerCallback

if TYPE_CHECKING:
    from opsloop.tracking.sdk import TrackingClient

__all__ = ["CHECKPOINTS", "CHECKPOINT_TAG", "RunCallback", "peak_memory_mb"]

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


class RunCallback(TrainerCallback):  # type: ignore[misc]
    """Logs to the run ``run_id`` through ``tracking``; checkpoints the last step too, so the
    final state of every run can be resumed (a longer ``max_steps`` continues from it)."""

    def __init__(self, tracking: TrackingClient, run_id: str) -> None:
        self._tracking = tracking
        self._run_id = run_id
        self._last: tuple[float, float] | None = None  # (time, tokens seen) at the last log
        self.final_loss: float | None = None

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._last = (time.perf_counter(), 0.0)

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if state.max_steps > 0 and state.global_step >= state.max_steps:
            control.should_save = True

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
        if "loss" in metrics:
            self.final_loss = metrics["loss"]
        metrics["peak_memory_mb"] = peak_memory_mb()
        self._tracking.log_metrics(self._run_id, metrics, step=state.global_step)

    def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        name = f"checkpoint-{state.global_step}"
        folder = Path(args.output_dir) / name
        if folder.is_dir():
            self._tracking.log_artifacts(self._run_id, folder, f"{CHECKPOINTS}/{name}")
            self._tracking.set_tag(self._run_id, CHECKPOINT_TAG, str(state.global_step))
