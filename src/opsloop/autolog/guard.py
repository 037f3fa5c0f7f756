"""The guard: logging failures become one warning per kind, never an exception in user code;
and the per-thread state that says a fit is already being logged.

Why per kind and once: a grid search logs dozens of child runs; a store that went away would
otherwise print the same warning for each. The kinds already warned about are forgotten when
``autolog()`` is called again, so a re-enabled integration reports afresh.
"""

from __future__ import annotations

import sys
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

__all__ = [
    "AutologWarning",
    "attempt",
    "busy",
    "enclosing_estimators",
    "owning",
    "reset_warnings",
    "warn_once",
]


class AutologWarning(UserWarning):
    """Autologging could not record something; the user's code was not affected."""


_warned: set[tuple[str, str]] = set()
_warned_lock = threading.Lock()
_local = threading.local()


def reset_warnings() -> None:
    with _warned_lock:
        _warned.clear()


def warn_once(kind: str, exc: BaseException) -> None:
    """Warn that autologging could not ``kind`` (e.g. "save the model"), once per kind and
    exception type."""
    key = (kind, type(exc).__name__)
    with _warned_lock:
        if key in _warned:
            return
        _warned.add(key)
    detail = str(exc).splitlines()[0][:300] if str(exc) else ""
    warnings.warn(
        f"opsloop autolog could not {kind} ({type(exc).__name__}: {detail}); your code ran "
        "unaffected. Further failures of this kind are not reported.",
        AutologWarning,
        stacklevel=4,
    )


@contextmanager
def attempt(kind: str) -> Iterator[None]:
    """Run a piece of logging; any ``Exception`` it raises becomes :func:`warn_once`.

    ``KeyboardInterrupt`` and ``SystemExit`` still propagate: they are the user's intent, not a
    logging failure.
    """
    try:
        yield
    except Exception as exc:  # logging must never change what the user's code does
        warn_once(kind, exc)


def busy() -> bool:
    """Whether this thread is already inside a logged (or deliberately unlogged) call."""
    return getattr(_local, "depth", 0) > 0


@contextmanager
def owning() -> Iterator[None]:
    """Mark this thread busy: patched calls made inside run unlogged."""
    _local.depth = getattr(_local, "depth", 0) + 1
    try:
        yield
    finally:
        _local.depth -= 1


_FIT_NAMES = frozenset({"fit", "fit_transform", "fit_predict", "partial_fit"})
_MAX_FRAMES = 400


def enclosing_estimators(exclude: Any = None) -> list[Any]:
    """The estimators whose ``fit`` is running further up this thread's stack, innermost
    first, each once, ``exclude`` left out.

    Our own wrappers mark the thread busy, but estimators of other libraries fit scikit-learn
    ones too (``LGBMClassifier.fit`` fits a ``LabelEncoder``; a user's own meta-estimator fits
    its parts): a fit found here is an inner fit of that one, not a call the user made. An
    estimator is recognised by shape (``get_params`` and ``fit``), so no library is imported.
    """
    found: list[Any] = []
    frame = sys._getframe(1)
    for _ in range(_MAX_FRAMES):
        if frame is None:
            break
        code = frame.f_code
        if code.co_name in _FIT_NAMES and code.co_argcount and code.co_varnames[0] == "self":
            owner = frame.f_locals.get("self")
            if (
                owner is not None
                and owner is not exclude
                and hasattr(owner, "get_params")
                and hasattr(owner, "fit")
                and not any(owner is seen for seen in found)
            ):
                found.append(owner)
        frame = frame.f_back
    return found
