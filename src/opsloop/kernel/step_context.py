"""What a running step knows about where it runs: its step run, and the store of its pipeline.

Set by the runner in whatever thread, process or Ray worker runs the step (so it travels with
the call, not with the thread), and read by the SDK: a model registered inside a step is tagged
with the step's run, and ``opsloop.get_client()`` inside a step talks to the pipeline's store,
not the process's default one (a pipeline that a server's scheduler runs must write to the
server's database, whatever the server process's environment says).
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator
from typing import Any

__all__ = ["STEP_RUN_TAG", "current_step_run_id", "enter_step", "step_settings"]

STEP_RUN_TAG = "opsloop.pipeline.step_run"  # a model registered inside a step carries it

_STEP_RUN: contextvars.ContextVar[str | None] = contextvars.ContextVar("step_run", default=None)
_STEP_SETTINGS: contextvars.ContextVar[Any] = contextvars.ContextVar("step_settings", default=None)
_ON_USE: contextvars.ContextVar[Any] = contextvars.ContextVar("step_on_use", default=None)


def current_step_run_id() -> str | None:
    """The run of the pipeline step executing now (None outside a step). The run is written
    to the store first if it so far exists only in the pipeline's write-behind journal, so
    the caller can log into it."""
    run_id = _STEP_RUN.get()
    on_use = _ON_USE.get()
    if run_id is not None and on_use is not None:
        on_use(run_id)
    return run_id


def step_settings() -> Any:
    """The settings of the store the running step's pipeline uses (None outside a step)."""
    return _STEP_SETTINGS.get()


@contextlib.contextmanager
def enter_step(run_id: str, settings: Any, on_use: Any = None) -> Iterator[None]:
    """Where the step runs, for its duration; ``on_use(run_id)`` runs when the step asks for
    its run. The previous values come back after (a step may run on the caller's thread)."""
    tokens = (_STEP_RUN.set(run_id), _STEP_SETTINGS.set(settings), _ON_USE.set(on_use))
    try:
        yield
    finally:
        _ON_USE.reset(tokens[2])
        _STEP_SETTINGS.reset(tokens[1])
        _STEP_RUN.reset(tokens[0])
