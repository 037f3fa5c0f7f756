"""Where a step's function runs: in this process, in a process of its own, or as a Ray task.

The runner keeps the bookkeeping (tracking runs, cache, outputs) in the driver and hands an
executor only the call: the step's function, its arguments and the step run's id (so that a
model registered inside the step is tagged with it). Values travel by pickle to processes and
Ray workers, as those tools do; outputs are still stored by materializers, never pickled.

- ``local``: a thread of this process. A step over its timeout fails, but its thread cannot be
  stopped and is left to finish.
- ``process``: a fresh process per step (``spawn``): a crash (a segfault, the OOM killer) fails
  only that step, memory is returned when it ends, and a step over its timeout, or of a
  cancelled pipeline run, is killed.
  Pipelines defined in a file are found again through ``sys.path``.
- ``ray``: a Ray task with the step's declared ``resources`` (``cpus``, ``gpus``, ``memory``) on
  the cluster at ``RAY_ADDRESS`` or a local instance. A task over its timeout, or of a
  cancelled pipeline run, is cancelled.

An executor runs one attempt and never retries: Ray's own retries are off (``max_retries=0``),
so that a worker that dies comes back as :class:`WorkerDied` and the runner applies the step's
``retries`` to it as to an exception, counted together, recording each attempt. A step marked
``retries=0`` is therefore never run twice, which matters for steps that are not idempotent.
"""

from __future__ import annotations

import functools
import sys
import threading
from collections.abc import Callable
from typing import Any

from opsloop.errors import InvalidInput
from opsloop.kernel.ray_cluster import connect_ray

__all__ = [
    "EXECUTORS",
    "StepCancelled",
    "StepTimedOut",
    "WorkerDied",
    "execute",
    "parse_resources",
    "unpack",
]

EXECUTORS = ("local", "process", "ray")
_WATCH_S = 0.25  # how often a step in a process or on Ray is checked for a cancellation


class StepCancelled(Exception):
    """The step was stopped because its pipeline run was cancelled."""


class StepTimedOut(TimeoutError):
    """The step ran past its ``timeout`` (not a ``TimeoutError`` the step raised itself)."""


class WorkerDied(RuntimeError):
    """The process or Ray worker running the step died before it answered (a segfault, the
    OOM killer, ``os._exit``, a lost node): the step did not raise, it never finished."""


_RESOURCES = {"cpus", "gpus", "memory"}
_UNITS = {"": 1, "k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40}


def parse_resources(resources: dict[str, Any] | None) -> dict[str, float]:
    """``{"cpus": 2, "gpus": 1, "memory": "4GB"}`` checked, memory in bytes."""
    out: dict[str, float] = {}
    for key, value in (resources or {}).items():
        if key not in _RESOURCES:
            raise InvalidInput(f"unknown resource {key!r}: declare cpus, gpus or memory")
        if key == "memory" and isinstance(value, str):
            text = value.strip().lower().removesuffix("b").removesuffix("i")
            number, unit = (text[:-1], text[-1]) if text[-1:].isalpha() else (text, "")
            try:
                value = float(number) * _UNITS[unit]
            except (KeyError, ValueError):
                raise InvalidInput(f"memory {value!r}: write it like 512MB or 4GB") from None
        try:
            amount = float(value)
        except (TypeError, ValueError):
            raise InvalidInput(f"resource {key} must be a number, got {value!r}") from None
        if amount < 0:
            raise InvalidInput(f"resource {key} cannot be negative")
        out[key] = amount
    return out


def _in_thread(call: Any, timeout: float | None) -> Any:
    if timeout is None:
        return call()
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["value"] = call()
        except BaseException as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=target, name="opsloop-step", daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        raise StepTimedOut(f"the step took longer than its timeout of {timeout:g} s")
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def unpack(paths: list[str], blob: bytes) -> Any:
    """The call, unpickled after the parent's import path is in place: a step is pickled by
    reference (its module and name), and a pipeline file's module must be found again."""
    import pickle

    sys.path[:0] = [p for p in paths if p not in sys.path]
    return pickle.loads(blob)


def _child(paths: list[str], blob: bytes, sender: Any) -> None:
    """The step process: the call, run, and its outcome sent back."""
    try:
        sender.send(("value", unpack(paths, blob)()))
    except BaseException as exc:  # the parent re-raises it as the step's failure
        try:
            sender.send(("error", exc))
        except Exception:  # an exception that does not pickle: send its text instead
            sender.send(("error", RuntimeError(f"{type(exc).__name__}: {exc}")))
    finally:
        sender.close()


def _watch(done: Any, timeout: float | None, cancelled: Callable[[], bool] | None) -> None:
    """Wait until ``done(seconds)`` says the step answered; raise when its timeout passes or
    ``cancelled()`` says so first."""
    import time

    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        left = None if deadline is None else deadline - time.monotonic()
        if left is not None and left <= 0:
            raise StepTimedOut(f"the step took longer than its timeout of {timeout:g} s")
        if cancelled is not None and cancelled():
            raise StepCancelled("its pipeline run was cancelled while it ran")
        if done(_WATCH_S if left is None else min(_WATCH_S, left)):
            return


def _in_process(blob: bytes, timeout: float | None, cancelled: Callable[[], bool] | None) -> Any:
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    receiver, sender = context.Pipe(duplex=False)
    process = context.Process(target=_child, args=(list(sys.path), blob, sender), daemon=True)
    process.start()
    sender.close()
    try:
        _watch(receiver.poll, timeout, cancelled)
        kind, value = receiver.recv()
    except EOFError:
        process.join(5)
        raise WorkerDied(
            f"the step's process died (exit code {process.exitcode}) before it answered"
        ) from None
    finally:
        if process.is_alive():
            process.kill()
        process.join(5)
        receiver.close()
    if kind == "error":
        raise value
    return value


def _run_call(paths: list[str], blob: bytes) -> Any:
    return unpack(paths, blob)()


def _on_ray(
    blob: bytes, timeout: float | None, resources: dict[str, float],
    cancelled: Callable[[], bool] | None,
) -> Any:  # fmt: skip
    ray = connect_ray()
    # No retry by Ray: the runner retries under the step's own policy and records each attempt.
    options: dict[str, Any] = {"max_retries": 0, "num_cpus": resources.get("cpus", 1)}
    if "gpus" in resources:
        options["num_gpus"] = resources["gpus"]
    if "memory" in resources:
        options["memory"] = int(resources["memory"])
    task = ray.remote(_run_call).options(**options)
    ref = task.remote(list(sys.path), blob)
    try:
        _watch(lambda seconds: bool(ray.wait([ref], timeout=seconds)[0]), timeout, cancelled)
        return ray.get(ref)
    except (StepTimedOut, StepCancelled):
        ray.cancel(ref, force=True)
        raise
    except ray.exceptions.RayTaskError as exc:
        raise exc.as_instanceof_cause() from None
    except _worker_lost(ray) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise WorkerDied(
            f"the step's Ray worker died before it answered ({type(exc).__name__}: {first})"
        ) from None


def _worker_lost(ray: Any) -> tuple[type[BaseException], ...]:
    """Ray's errors for a task whose worker, raylet or node went away (those Ray retried
    itself under ``max_retries``)."""
    names = ("WorkerCrashedError", "NodeDiedError", "LocalRayletDiedError", "OutOfMemoryError")
    return tuple(getattr(ray.exceptions, n) for n in names if hasattr(ray.exceptions, n))


def execute(
    executor: str, call: functools.partial[Any], timeout: float | None,
    resources: dict[str, float], cancelled: Callable[[], bool] | None = None,
) -> Any:  # fmt: skip
    """Run ``call`` (a step function bound to its arguments) on ``executor``. Once
    ``cancelled()`` says so, a step in a process or on Ray is killed (``StepCancelled``); one on
    a thread of this process cannot be, and finishes."""
    if executor == "local":
        return _in_thread(call, timeout)
    import pickle

    blob = pickle.dumps(call)
    if executor == "process":
        return _in_process(blob, timeout, cancelled)
    return _on_ray(blob, timeout, resources, cancelled)
