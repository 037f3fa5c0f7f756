"""What a running step knows about where it runs: its step run, and the store of its pipeline.

Set by the runner in whatever thread, process or Ray worker runs the step (so it travels with
the call, not with the thread), and read by the SDK: a model registered inside a step is tagged
with the step's run, and ``opsloop.get_client()`` inside a step talks to the pipeline's store,
not the process's default one (a pipeline that a server's scheduler runs must write to the
server's database, whatever the server process's environment says).
"""

from __future__ import annotations

import contextvars
from typing import Any

__all__ = ["current_step_run_id", "enter_step", "step_settings"]

_STEP_RUN: contextvars.ContextVar[str | None] = contextvars.ContextVar("step_run", default=None)
_STEP_SETTINGS: contextvars.ContextVar[Any] = contextvars.ContextVar("step_settings", default=None)


def current_step_run_id() -> str | None:
    """The run of the pipeline step executing now (None outside a step)."""
    return _STEP_RUN.get()


def step_settings() -> Any:
    """The settings of the store the running step's pipeline uses (None outside a step)."""
    return _STEP_SETTINGS.get()


def enter_step(run_id: str, settings: Any) -> None:
    _STEP_RUN.set(run_id)
    _STEP_SETTINGS.set(settings)
