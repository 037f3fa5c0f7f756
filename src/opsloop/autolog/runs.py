"""The run around a patched call, child runs, and values made loggable.

:func:`logged_call` is the one place that decides what the user sees: the user's function is
called exactly once, with the arguments it was given; its result is returned unchanged; its
exception propagates unchanged (and marks the run FAILED). Everything else (starting the run,
logging, ending it) goes through :func:`~opsloop.autolog.guard.attempt`.
"""

from __future__ import annotations

import math
import re
import tempfile
import time
from collections.abc import Callable
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING
from typing import Any
from typing import TypeVar

from opsloop.autolog.guard import attempt
from opsloop.autolog.guard import busy
from opsloop.autolog.guard import owning

if TYPE_CHECKING:
    from opsloop.fluent import ActiveRun

__all__ = [
    "OwnedRun",
    "child_run",
    "clean_params",
    "finite_metrics",
    "log_bytes",
    "logged_call",
    "metric_key",
]

T = TypeVar("T")
_BAD_KEY_CHARS = re.compile(r"[^\w\-. /:]")


def logged_call(
    run_name: str,
    fit: Callable[[ActiveRun | None], T],
    log: Callable[[ActiveRun, T], None],
    *,
    inner: bool = False,
) -> T:
    """Call ``fit(run)`` (the user's code) inside a run, then ``log(run, result)``.

    Inside another logged call, or when the caller found it is ``inner`` (see
    :func:`~opsloop.autolog.guard.enclosing_estimators`), ``fit(None)`` runs alone: the outer
    call owns the run. With no active run, one named ``run_name`` is started and ended here; an
    active run of the user's is logged into and left open.
    """
    if inner or busy():
        return fit(None)
    with owning():
        from opsloop import fluent

        active: ActiveRun | None = None
        started = False
        with attempt("start a run"):
            active = fluent.active_run()
            if active is None:
                active = fluent.start_run(run_name=run_name)
                started = True
        try:
            result = fit(active)
        except BaseException as exc:
            if started:
                with attempt("end the run"):
                    fluent.end_run("KILLED" if isinstance(exc, KeyboardInterrupt) else "FAILED")
            raise
        if active is not None:
            with attempt("log the fit"):
                log(active, result)
            if started:
                with attempt("end the run"):
                    fluent.end_run()
        return result


def clean_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """Params as the store takes them: scalars kept, anything else as its one-line ``repr``,
    cut to the store's limit (an estimator's repr can run over several lines and pages)."""
    from opsloop.tracking.validation import MAX_PARAM_VALUE_LENGTH

    out: dict[str, Any] = {}
    for key, value in params.items():
        if not isinstance(value, str | int | float | bool | type(None)):
            value = " ".join(repr(value).split())
        if isinstance(value, str):
            value = value[:MAX_PARAM_VALUE_LENGTH]
        out[metric_key(str(key))] = value
    return out


def metric_key(key: str) -> str:
    """A key the store accepts: characters outside ``[\\w-. /:]`` (``ndcg@5``) become ``_``."""
    return _BAD_KEY_CHARS.sub("_", key)[:250]


def finite_metrics(metrics: Mapping[str, Any]) -> dict[str, float]:
    """The metrics that are finite numbers (a failed CV candidate scores NaN; the store refuses
    NaN, and one refused value must not lose the others)."""
    out = {}
    for key, value in metrics.items():
        try:
            number = float(value)
        except (TypeError, ValueError):
            continue
        if math.isfinite(number):
            out[metric_key(key)] = number
    return out


def child_run(
    parent: ActiveRun,
    run_name: str,
    *,
    params: Mapping[str, Any],
    metrics: Mapping[str, float],
    tags: Mapping[str, Any],
) -> str:
    """A finished child of ``parent`` holding one candidate's params and scores, written in
    one round trip. It is not pushed on the active-run stack (the user never sees it as
    active) and records no environment: its parent already has it."""
    client = parent.client
    run = client.create_run(
        parent.run.info.experiment_id,
        run_name=run_name,
        tags=dict(tags),
        parent_run_id=parent.run_id,
        capture_env=False,
    )
    run_id = run.info.run_id
    stamp = int(time.time() * 1000)
    points = [(key, value, 0, stamp) for key, value in finite_metrics(metrics).items()]
    client.log_batch(run_id, points or None, clean_params(params) or None, None)
    client.end_run(run_id)
    return str(run_id)


def log_bytes(run: ActiveRun, write: Callable[[Path], None], file_name: str, folder: str) -> None:
    """Let ``write`` create ``file_name`` in a temporary folder, then store it under
    ``folder`` in the run."""
    with tempfile.TemporaryDirectory(prefix="opsloop-autolog-") as tmp:
        path = Path(tmp) / file_name
        write(path)
        run.client.log_artifact(run.run_id, path, folder)


class OwnedRun:
    """The run a framework's callback or logger writes to (Hugging Face, Lightning): the run
    active when training begins, or one it starts then, which it must also end. Frameworks
    call in at begin and end; both are guarded, as every autolog step is."""

    def __init__(self) -> None:
        self.run: ActiveRun | None = None
        self._started = False

    def open(self, name: str) -> ActiveRun | None:
        """The active run, or one named ``name`` started here (None if that failed)."""
        from opsloop import fluent

        if self.run is None:
            with attempt("start a run"):
                self.run = fluent.active_run()
                if self.run is None:
                    self.run = fluent.start_run(run_name=name)
                    self._started = True
        return self.run

    def close(self, *, failed: bool = False) -> None:
        """End the run if it was started here (FAILED when training raised); a run that was
        the user's stays open, its points flushed."""
        from opsloop import fluent

        run, started = self.run, self._started
        if run is None:
            return
        self.run, self._started = None, False
        with attempt("end the run"):
            if started and fluent.active_run() is run:
                fluent.end_run("FAILED" if failed else "FINISHED")
            else:
                run.client.flush(run.run_id)
