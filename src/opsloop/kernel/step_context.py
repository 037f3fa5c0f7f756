"""What a running step knows about where it runs: its step run, and the store of its pipeline.

Set by the runner in whatever thread, process or Ray worker runs the step (so it travels with
the call, not with the thread), and read by the SDK: a model registered inside a step is tagged
with the step's run, and ``opsloop.get_client()`` inside a step talks to the pipeline's store,
not the process's default one (a pipeline that a server's scheduler runs must write to the
server's database, whatever the server process's environment says).

A reproduction (``opsloop runs reproduce``) runs its steps inside a :class:`Rehearsal`: the
SDK's writes outside the reproduction's own runs (registering a version, moving an alias,
promoting, versioning data, deploying) are held there and recorded as "would register ...",
never made. The domains' SDKs consult it (a wrapper around each domain's backend), because
that is the one layer every write from a step goes through whichever client the step built,
and the layer below it (the services) may run on a server the step context never reaches.
"""

from __future__ import annotations

import contextlib
import contextvars
import threading
from collections.abc import Callable
from collections.abc import Iterator
from typing import Any

__all__ = [
    "STEP_RUN_TAG",
    "HeldWrites",
    "Rehearsal",
    "current_rehearsal",
    "current_step_run_id",
    "enter_step",
    "rehearsing",
    "step_settings",
]

STEP_RUN_TAG = "opsloop.pipeline.step_run"  # a model registered inside a step carries it

_STEP_RUN: contextvars.ContextVar[str | None] = contextvars.ContextVar("step_run", default=None)
_STEP_SETTINGS: contextvars.ContextVar[Any] = contextvars.ContextVar("step_settings", default=None)
_ON_USE: contextvars.ContextVar[Any] = contextvars.ContextVar("step_on_use", default=None)
_REHEARSAL: contextvars.ContextVar[Rehearsal | None] = contextvars.ContextVar(
    "rehearsal", default=None
)


class Rehearsal:
    """The writes a reproduction of run ``reproduces`` held instead of making.

    ``held`` maps each step run (``""`` outside a step) to its held writes, in order:
    ``{"write": "models.register", "what": "would register churn@4", "faithful": True,
    "ref": "churn@4"}``. ``faithful`` says whether what the step got back is what the real
    write would have returned up to identity fields (a would-be version number); a promotion
    whose gate did not run is not, so the step's outputs cannot be judged. ``state`` is each
    domain's overlay (the versions it would have made, readable back by the later steps).
    Sent to a step in another process, it travels as a copy: what that step holds stays
    there."""

    def __init__(self, reproduces: str) -> None:
        self.reproduces = reproduces
        self.held: dict[str, list[dict[str, Any]]] = {}
        self.state: dict[str, Any] = {}
        self._lock = threading.Lock()

    def hold(self, write: str, what: str, *, faithful: bool = True, **details: Any) -> None:
        """Record a write held in the running step (steps may run side by side)."""
        record = {"write": write, "what": what, "faithful": faithful, **details}
        with self._lock:
            self.held.setdefault(_STEP_RUN.get() or "", []).append(record)

    def overlay(self, domain: str, make: Callable[[], Any]) -> Any:
        """``domain``'s overlay, made on first use."""
        with self._lock:
            if domain not in self.state:
                self.state[domain] = make()
            return self.state[domain]

    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "_lock"}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()


class HeldWrites:
    """What every domain's held backend (``registry/held.py``, ``data/held.py``,
    ``serving/held.py``) shares: it wraps the real backend ``inner`` and hands on whatever it
    has beyond the contract (its store, its blobs, its runtime), so code that reaches for those
    finds them through the wrapper."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def __getattr__(self, name: str) -> Any:
        if name == "_inner":  # not set yet (unpickling): no recursion
            raise AttributeError(name)
        return getattr(self._inner, name)


def current_rehearsal() -> Rehearsal | None:
    """The reproduction whose writes are being held here (None: writes are made)."""
    return _REHEARSAL.get()


@contextlib.contextmanager
def rehearsing(rehearsal: Rehearsal) -> Iterator[Rehearsal]:
    """Hold the SDK's writes in ``rehearsal`` for the block (the runner hands it to every
    step, whichever thread, process or worker runs it)."""
    token = _REHEARSAL.set(rehearsal)
    try:
        yield rehearsal
    finally:
        _REHEARSAL.reset(token)


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
def enter_step(
    run_id: str, settings: Any, on_use: Any = None, rehearsal: Rehearsal | None = None
) -> Iterator[None]:
    """Where the step runs, for its duration; ``on_use(run_id)`` runs when the step asks for
    its run; ``rehearsal`` holds its writes (a reproduction). The previous values come back
    after (a step may run on the caller's thread)."""
    tokens = (_STEP_RUN.set(run_id), _STEP_SETTINGS.set(settings), _ON_USE.set(on_use))
    held = _REHEARSAL.set(rehearsal)
    try:
        yield
    finally:
        _REHEARSAL.reset(held)
        _ON_USE.reset(tokens[2])
        _STEP_SETTINGS.reset(tokens[1])
        _STEP_RUN.reset(tokens[0])
