"""Data parallel fine-tuning: ``devices: N`` (``opsloop finetune --nproc N``) trains in N
processes launched the way ``torchrun --standalone --nproc-per-node N`` launches them (torch's
elastic launch on this machine, a c10d rendezvous on loopback), gloo on CPU and NCCL on GPUs.
The transformers ``Trainer`` in each process sees the ranks and wraps the model in DDP; each
step's global batch is ``micro_batch_size * gradient_accumulation_steps * N``.

Only rank 0 records, and only the process that called ``finetune`` owns the run: rank 0 writes
each logged step (its metrics: the loss is already averaged over the ranks) into a JSONL
journal in the run's scratch folder, and every checkpoint lands in the shared output folder.
When the launch returns, or fails, the caller replays the journal into the run and stores the
checkpoints (:func:`replay`), so a crash leaves what a one-process run would leave, and
``--resume`` works the same. The trained model is read back from the last checkpoint.

The workers get the loaded base, its tokenizer and the rows through the launcher (pickled by
``multiprocessing``'s spawn), never from the store: a worker holds no client and no database
connection.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING
from typing import Any

if TYPE_CHECKING:
    from opsloop.llm.finetune.callback import RunCallback
    from opsloop.llm.finetune.trainers import TrainingInputs

__all__ = ["JournalSink", "launch", "load_trained", "replay"]

JOURNAL = "rank0.jsonl"


class JournalSink:
    """Where rank 0's :class:`~opsloop.llm.finetune.callback.RunCallback` sends what it
    records: one JSON line per logged step or stored checkpoint, flushed at once (a worker
    that crashes has written every line before the crash)."""

    def __init__(self, path: Path) -> None:
        self._path = path

    def log_metrics(self, metrics: dict[str, float], step: int) -> None:
        self._write({"step": step, "metrics": metrics})

    def store_checkpoint(self, folder: Path, step: int) -> None:
        self._write({"step": step, "checkpoint": str(folder)})

    def _write(self, event: dict[str, Any]) -> None:
        with self._path.open("a") as out:
            out.write(json.dumps(event) + "\n")


def launch(inputs: TrainingInputs, devices: int, out: Path, start: Path | None) -> Path:
    """Train ``inputs`` in ``devices`` processes; the journal rank 0 wrote (which the caller
    replays whether this returns or raises).

    Raises:
        OpsloopError: A worker failed (its error is in the message; its traceback on stderr).
    """
    from torch.distributed.launcher.api import LaunchConfig
    from torch.distributed.launcher.api import elastic_launch

    from opsloop.errors import OpsloopError

    out.mkdir(parents=True, exist_ok=True)
    journal = out / JOURNAL
    journal.unlink(missing_ok=True)
    config = LaunchConfig(
        min_nodes=1,
        max_nodes=1,
        nproc_per_node=devices,
        run_id=f"opsloop-finetune-{os.getpid()}",
        rdzv_backend="c10d",
        rdzv_endpoint="127.0.0.1:0",  # torchrun --standalone: a free port on loopback
        max_restarts=0,
        start_method="spawn",
        monitor_interval=0.1,
    )
    threads = max(1, (os.cpu_count() or 1) // devices)
    try:
        elastic_launch(config, _worker)(inputs, out, start, journal, threads)
    except Exception as exc:  # ChildFailedError names each failed rank and its error
        raise OpsloopError(f"data parallel training failed on {devices} processes: {exc}") from exc
    return journal


def replay(journal: Path, recorder: RunCallback) -> None:
    """Send rank 0's journal to the run through ``recorder``'s sink: each step's metrics, and
    each checkpoint it wrote (stored in the blob store as a one-process run stores them)."""
    if not journal.is_file():
        return
    for line in journal.read_text().splitlines():
        event = json.loads(line)
        if "metrics" in event:
            recorder.record(event["metrics"], event["step"])
        else:
            recorder.store(Path(event["checkpoint"]), event["step"])


def load_trained(inputs: TrainingInputs, checkpoint: Path) -> Any:
    """The trained model, read back from the checkpoint the workers wrote last: the adapter
    onto this process's base (untouched: the workers trained copies), or the full weights."""
    if inputs.peft_config is not None:
        from peft import PeftModel

        return PeftModel.from_pretrained(inputs.base.model, str(checkpoint), is_trainable=False)
    return type(inputs.base.model).from_pretrained(str(checkpoint))


def _worker(
    inputs: TrainingInputs, out: Path, start: Path | None, journal: Path, threads: int
) -> None:
    """One rank: the same trainer as a one-process run; rank 0 journals, the others train."""
    import torch

    from opsloop.llm.finetune.callback import RunCallback
    from opsloop.llm.finetune.callback import save_last
    from opsloop.llm.finetune.trainers import build_trainer

    torch.set_num_threads(threads)
    rank = int(os.environ.get("RANK", "0"))
    recorder = RunCallback(JournalSink(journal)) if rank == 0 else None
    callbacks = [recorder] if recorder is not None else []
    trainer = build_trainer(inputs, out, callbacks, devices=int(os.environ["WORLD_SIZE"]))
    trainer.train(resume_from_checkpoint=str(start) if start is not None else None)
    if recorder is not None:
        recorder.store_last(trainer)
    else:
        save_last(trainer)  # every rank takes part in the same saves
