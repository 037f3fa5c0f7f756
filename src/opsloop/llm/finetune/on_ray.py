"""Fine-tuning on Ray Train: ``executor: ray`` (``opsloop finetune CONFIG --executor ray``)
trains ``devices`` workers of a ``TorchTrainer`` on the Ray cluster at ``RAY_ADDRESS``, else a
local instance (:func:`opsloop.kernel.ray_cluster.connect_ray`); a fine-tune that runs inside a
pipeline step on the ``ray`` executor goes there by itself (``executor`` left unset).

Each worker runs the same trainer as a rank of the torchrun-style path (:mod:`.parallel`):
Ray Train forms the process group (gloo on CPU, NCCL on GPUs, one GPU a worker whenever the
cluster has GPUs), the transformers ``Trainer`` sees the ranks and wraps the model in DDP, and
the global batch is ``micro_batch_size * gradient_accumulation_steps * devices``.

What rank 0 records travels through Ray, not a disk, so it works on a cluster where the
workers share no folder with the caller: rank 0 sends each logged step, and each checkpoint
as a tar of its folder, to a small actor; the caller drains it while training runs into the
same JSONL journal (and checkpoint folders) that the torchrun path's rank 0 writes, and
replays that journal into the run with :func:`.parallel.replay`, also when training fails:
the run gets one loss point per step and its checkpoints in the blob store, and ``--resume``
works as in any run (the checkpoint to resume from is sent to every worker as a tar).
Ray Train's own ``ray.train.report`` is not the channel: its V2 keeps metrics only beside
checkpoints (``Result.metrics_dataframe`` comes from them), so per-step loss would need a
checkpoint per step, and its checkpoints land in ``RunConfig.storage_path``, which on a
cluster must be shared or cloud storage.

Resources: each worker asks for at most one CPU, fewer when the cluster has fewer than
``devices`` CPUs to spare, and the CPUs (and GPUs) held by the Ray task this runs in (a
pipeline step) are left out of the count, so the workers always fit beside it: a step that
waits for its own workers can never deadlock the cluster it holds a share of.
"""

from __future__ import annotations

import io
import sys
import tarfile
import threading
from pathlib import Path
from typing import TYPE_CHECKING
from typing import Any

from opsloop.errors import InvalidInput
from opsloop.errors import OpsloopError

if TYPE_CHECKING:
    from opsloop.llm.finetune.callback import RunCallback
    from opsloop.llm.finetune.config import FinetuneConfig
    from opsloop.llm.finetune.trainers import TrainingInputs

__all__ = ["NEEDS", "connect", "on_ray", "train_on_ray"]

NEEDS = "executor: ray (fine-tuning on Ray Train)"
_DRAIN_S = 0.5  # how often the caller takes what rank 0 sent


def on_ray(config: FinetuneConfig) -> bool:
    """Whether ``config`` trains on Ray: ``executor: ray``, or no executor given while this
    code runs as a Ray task (a pipeline step on the ``ray`` executor)."""
    if config.executor is not None:
        return config.executor == "ray"
    ray = sys.modules.get("ray")
    return bool(ray is not None and ray.is_initialized() and _running_task(ray) is not None)


def connect() -> Any:
    """The ``ray`` module, connected, with Ray Train importable.

    Raises:
        InvalidInput: Ray or Ray Train is not installed.
        UpstreamFailed: ``RAY_ADDRESS`` names a cluster that does not answer (in seconds).
    """
    from opsloop.kernel.ray_cluster import connect_ray

    ray = connect_ray(NEEDS)
    try:
        import ray.train.torch
    except ImportError as exc:
        raise InvalidInput(f"{NEEDS} needs Ray Train: pip install 'ray[train]' ({exc})") from None
    return ray


def train_on_ray(
    inputs: TrainingInputs, recorder: RunCallback, out: Path, start: Path | None
) -> tuple[Any, int, float | None]:
    """Train ``inputs`` on ``inputs.config.devices`` Ray Train workers; the trained model
    (read back from the last checkpoint), its step and its last loss. What rank 0 recorded
    reaches the run through ``recorder`` whether training ends or fails.

    Raises:
        InvalidInput: The cluster has GPUs, but fewer free than ``devices``.
        OpsloopError: A worker failed (its error is in the message).
    """
    from ray.train import RunConfig
    from ray.train.torch import TorchTrainer

    from opsloop.llm.finetune import parallel

    ray = connect()
    devices = inputs.config.devices
    scaling, threads = _scaling(ray, devices)
    out.mkdir(parents=True, exist_ok=True)
    journal = out / parallel.JOURNAL
    journal.unlink(missing_ok=True)
    mailbox = ray.remote(num_cpus=0)(_Mailbox).remote()
    drain = _Drain(ray, mailbox, journal)
    trainer = TorchTrainer(
        _worker,
        train_loop_config={
            "inputs": inputs,
            "start": _pack(start) if start is not None else None,
            "mailbox": mailbox,
            "threads": threads,
        },
        scaling_config=scaling,
        run_config=RunConfig(name="opsloop-finetune", storage_path=str(out / "ray-train")),
    )
    drain.start()
    try:
        trainer.fit()
    except Exception as exc:
        raise _failure(exc, devices) from exc
    finally:
        drain.stop()
        ray.kill(mailbox)
        parallel.replay(journal, recorder)
    last = max(out.glob("checkpoint-*"), key=lambda p: int(p.name.rsplit("-", 1)[1]))
    steps = int(last.name.rsplit("-", 1)[1])
    return parallel.load_trained(inputs, last), steps, recorder.final_loss


def _failure(exc: Exception, devices: int) -> Exception:
    """Ray Train's error as one line: the first failed rank's own error (an ``OpsloopError``
    as it is), not the summary Ray's message starts with."""
    failures = getattr(exc, "worker_failures", None) or {}  # a WorkerGroupError's, by rank
    if failures:
        rank, cause = min(failures.items())
        if isinstance(cause, OpsloopError):
            return cause
        text = str(cause).strip()
        first = text.splitlines()[-1] if text else type(cause).__name__
        return OpsloopError(f"training on Ray failed on {devices} workers: rank {rank}: {first}")
    text = str(exc).strip()
    first = text.splitlines()[0] if text else type(exc).__name__
    return OpsloopError(f"training on Ray failed on {devices} workers: {first}")


def _running_task(ray: Any) -> str | None:
    """The id of the Ray task or actor call running this code (None on a driver)."""
    context = ray.get_runtime_context()
    return context.get_task_id() if context.worker.mode == ray.WORKER_MODE else None


def _scaling(ray: Any, devices: int) -> tuple[Any, int]:
    """Ray Train's ``ScalingConfig`` for ``devices`` workers, and the torch threads of each:
    what the cluster has, less what the task running this holds (it waits for its workers)."""
    from ray.train import ScalingConfig

    total = ray.cluster_resources()
    held = ray.get_runtime_context().get_assigned_resources() if _running_task(ray) else {}
    gpus = total.get("GPU", 0.0) - held.get("GPU", 0.0)
    if total.get("GPU", 0.0) > 0 and gpus < devices:
        raise InvalidInput(
            f"devices: {devices} needs {devices} GPUs on the Ray cluster, which has {gpus:g} "
            "for them (a pipeline step's own gpus are not lent to its workers): lower devices, "
            "or declare no gpus on the step"
        )
    spare = max(total.get("CPU", 0.0) - held.get("CPU", 0.0), 0.0)
    cpus = min(1.0, spare / devices)
    use_gpu = gpus >= devices  # the cluster has GPUs (none: gpus is 0)
    per_worker = {"CPU": cpus, "GPU": 1.0} if use_gpu else {"CPU": cpus}
    scaling = ScalingConfig(num_workers=devices, use_gpu=use_gpu, resources_per_worker=per_worker)
    return scaling, max(1, int(cpus))


class _Mailbox:
    """The actor the workers send their journal events to (each worker's in the order sent),
    and the caller takes them from, so that no checkpoint waits in it longer than a drain."""

    def __init__(self) -> None:
        self._events: list[dict[str, Any]] = []

    def put(self, event: dict[str, Any]) -> None:
        self._events.append(event)

    def ready(self) -> None:
        """Answered once every event sent before it is in (an actor runs one sender's
        calls in order)."""

    def take(self) -> list[dict[str, Any]]:
        events, self._events = self._events, []
        return events


class _Drain:
    """A thread of the caller that moves the mailbox's events into the journal: a step's
    metrics as they are, a checkpoint unpacked into its folder beside the journal."""

    def __init__(self, ray: Any, mailbox: Any, journal: Path) -> None:
        self._ray, self._mailbox, self._journal = ray, mailbox, journal
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="opsloop-ray-journal", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Stop, after taking what is left (rank 0 waited for its last send to land)."""
        self._stopped.set()
        self._thread.join()
        self._take()

    def _run(self) -> None:
        while not self._stopped.wait(_DRAIN_S):
            self._take()

    def _take(self) -> None:
        from opsloop.llm.finetune.parallel import JournalSink

        sink = JournalSink(self._journal)
        for event in self._ray.get(self._mailbox.take.remote()):
            folder = self._journal.parent / f"checkpoint-{event['step']}"
            if "tar" in event:
                _unpack(event["tar"], folder)
                sink.store_checkpoint(folder, event["step"])
            elif "file" in event:  # stored with the folder when the journal is replayed
                folder.mkdir(parents=True, exist_ok=True)
                (folder / Path(event["file"]).name).write_bytes(event["data"])
            else:
                sink.log_metrics(event["metrics"], event["step"])


class _MailboxSink:
    """A worker's sink: rank 0 sends each logged step and each checkpoint; another rank
    sends only its own RNG state file of each checkpoint (the one file of it that rank 0
    does not write), so that a resume restores every rank, as the torchrun path's shared
    folder does. A checkpoint waits until it has landed (a crash after it must find it)."""

    def __init__(self, ray: Any, mailbox: Any, rank: int) -> None:
        self._ray, self._mailbox, self._rank = ray, mailbox, rank

    def log_metrics(self, metrics: dict[str, float], step: int) -> None:
        if self._rank == 0:
            self._mailbox.put.remote({"step": step, "metrics": metrics})

    def store_checkpoint(self, folder: Path, step: int) -> None:
        if self._rank == 0:
            self._ray.get(self._mailbox.put.remote({"step": step, "tar": _pack(folder)}))
            return
        state = folder / f"rng_state_{self._rank}.pth"
        if state.is_file():
            event = {"step": step, "file": state.name, "data": state.read_bytes()}
            self._ray.get(self._mailbox.put.remote(event))

    def flush(self) -> None:
        """Wait until every event sent so far has landed (before the worker ends)."""
        self._ray.get(self._mailbox.ready.remote())


def _worker(loop_config: dict[str, Any]) -> None:
    """One Ray Train worker: the torchrun path's rank, in a scratch folder of its own node;
    every rank records through its :class:`_MailboxSink` (only rank 0's steps are kept)."""
    import tempfile

    import ray
    import ray.train
    import torch

    from opsloop.llm.finetune.callback import RunCallback
    from opsloop.llm.finetune.trainers import build_trainer

    torch.set_num_threads(loop_config["threads"])
    context = ray.train.get_context()
    mailbox = loop_config["mailbox"]
    sink = _MailboxSink(ray, mailbox, context.get_world_rank())
    recorder = RunCallback(sink)
    with tempfile.TemporaryDirectory(prefix="opsloop-finetune-ray-") as tmp:
        start = None
        if loop_config["start"] is not None:
            start = Path(tmp) / "start"
            _unpack(loop_config["start"], start)
        out = Path(tmp) / "trainer"
        trainer = build_trainer(
            loop_config["inputs"], out, [recorder], devices=context.get_world_size()
        )
        trainer.train(resume_from_checkpoint=str(start) if start is not None else None)
        recorder.store_last(trainer)  # every rank takes part in the same saves
        sink.flush()


def _pack(folder: Path) -> bytes:
    """``folder``'s files as an in-memory tar."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        tar.add(folder, arcname=".")
    return buffer.getvalue()


def _unpack(data: bytes, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        tar.extractall(folder, filter="data")
