"""A check's measuring half in a second process, while the first opens the store.

``opsloop monitors check`` is a whole process, and its two halves each cost about half of it:
the store's (importing the client, SQLAlchemy and pydantic, opening the store, one
transaction) and the window's (importing DuckDB and NumPy, reading the window from the
prediction log, the drift tests). On a machine with two cores they can run at once:

1. the command starts ``python -m opsloop.monitoring.measure_apart`` first of all
   (:func:`start_early`); the child imports what it will need, then waits for its inputs;
2. the command builds its client, reads the monitor with the quick reads (plain ``sqlite3``),
   and sends the child the settings, the :class:`~opsloop.monitoring.measure.Measuring` and
   the check's time (:meth:`MeasureApart.send`);
3. it imports the store's half and opens the store while the child measures, then records
   what the child measured
   (:meth:`~opsloop.monitoring.local.LocalMonitorBackend.check_monitor`).

Inputs and answer are pickles on the child's stdin and stdout (both ends are this package, one
user, one machine). The child reads the log under the settings it is sent and never touches
the store. Scoring a window whose rows lack the probabilities a server logs needs the model
versions, which live in the store: the child stops there, and the first process measures the
window itself, as it does whenever the child fails (its errors are then the first process's
own, with their usual messages and exit codes). A child that is never sent anything (the
monitor does not exist, the check went another way) reads the end of its stdin when the
command exits, and exits too.
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import tempfile
import threading
from typing import TYPE_CHECKING
from typing import Any

if TYPE_CHECKING:
    from opsloop.config import Settings
    from opsloop.monitoring.measure import Measured
    from opsloop.monitoring.measure import Measuring

__all__ = ["FORCE_ENV", "MeasureApart", "chosen", "start_early", "started", "worth_it"]

# "1" / "0": measure apart always / never (tests, and a machine whose load average misleads)
FORCE_ENV = "OPSLOOP_MEASURE_APART"

LOADAVG = "/proc/loadavg"  # Linux: "1min 5min 15min runnable/total lastpid"

# The child's exit status when the window needs the model versions (see the module's text).
_NEEDS_MODELS = 3

# The child :func:`start_early` started, until a check takes it (:func:`started`).
_EARLY: list[MeasureApart] = []


def worth_it() -> bool:
    """Whether measuring apart pays: the process has not imported SQLAlchemy yet (the store's
    half is still to pay for; a server, a notebook or a test that has opened a store would
    only pay the child's imports again) and a core is idle now to run the child on (on a
    busy machine the halves only take turns, and the child's own start and imports make the
    command ~20% slower than one process)."""
    told = os.environ.get(FORCE_ENV, "")
    if told in ("0", "1"):
        return told == "1"
    return "sqlalchemy" not in sys.modules and _runnable() < _cores()


def chosen() -> bool:
    """Whether a check measures apart now: yes when :func:`start_early` started a child for it
    (judged then: the child, importing, now counts among the runnable tasks), else as
    :func:`worth_it` judges."""
    return bool(_EARLY) or worth_it()


def _cores() -> int:
    """The cores this process may run on (all of the machine's where that is not known)."""
    if hasattr(os, "sched_getaffinity"):  # Linux
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def _runnable() -> float:
    """Processes that want a core now, this one included: Linux's count of runnable tasks
    (``/proc/loadavg``); elsewhere the last minute's load average plus this process (the
    average lags, and a loop of checks would count itself); where neither is known (Windows),
    as if every core were busy."""
    try:
        with open(LOADAVG, encoding="ascii") as loadavg:
            return float(loadavg.read().split()[3].partition("/")[0])
    except (OSError, IndexError, ValueError):
        pass
    if hasattr(os, "getloadavg"):
        return os.getloadavg()[0] + 1
    return float(_cores())


def start_early(settings: Settings) -> None:
    """Start the child now, before the command builds its client (a third of the command),
    when the check will be able to use it: a cold process on the embedded store."""
    from opsloop.store.sql import sqlite_path

    if not settings.is_remote and sqlite_path(settings.database_url) and worth_it():
        _EARLY.append(MeasureApart())


def started() -> MeasureApart:
    """The child :func:`start_early` started, or a new one."""
    return _EARLY.pop() if _EARLY else MeasureApart()


class MeasureApart:
    """The child process that measures one check's window, started at construction; it
    imports its modules, then waits for :meth:`send`."""

    def __init__(self) -> None:
        # what it warns, passed on when it measured (closed by result(), else at exit)
        self._errors = tempfile.TemporaryFile()  # noqa: SIM115
        self._child = subprocess.Popen(
            [sys.executable, "-m", __name__], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=self._errors,
        )  # fmt: skip

    def send(self, settings: Settings, inputs: Measuring, now: int) -> None:
        """Hand the child its inputs. A thread writes them: the reference profile in them can
        be megabytes, more than a pipe holds, and the child reads only once its imports are
        done, while this process has its own to do."""
        payload = pickle.dumps((settings, inputs, now))
        threading.Thread(target=self._write, args=(payload,), daemon=True).start()

    def _write(self, payload: bytes) -> None:
        assert self._child.stdin is not None
        try:
            with self._child.stdin:
                self._child.stdin.write(payload)
        except OSError:  # the child is gone: result() says it did not measure
            pass

    def result(self) -> tuple[bool, Measured | None]:
        """``(True, measured)`` (``measured`` None: the tumbling window is not complete), or
        ``(False, None)`` when the child did not measure it."""
        assert self._child.stdout is not None
        with self._child.stdout:
            answer = self._child.stdout.read()
        measured_apart = self._child.wait() == 0
        with self._errors:
            self._errors.seek(0)
            warned = self._errors.read()
        if not measured_apart:
            return False, None  # measuring here says again whatever went wrong
        if warned:
            sys.stderr.write(warned.decode(errors="replace"))
        measured: Measured | None = pickle.loads(answer)
        return True, measured


class _NeedsModels(Exception):
    """Raised by the child's model source: scoring the window needs the store."""


class _NoModels:
    def load(self, ref: str) -> Any:
        raise _NeedsModels(ref)

    def version(self, ref: str) -> Any:
        raise _NeedsModels(ref)


def _main() -> None:
    import duckdb  # noqa: F401  (imported while the parent builds its client, not after)

    from opsloop.monitoring.measure import measure
    from opsloop.serving.predlog_shared import prediction_reader

    try:
        settings, inputs, now = pickle.load(sys.stdin.buffer)
    except EOFError:  # never sent anything: the command went another way
        sys.exit(0)
    try:
        measured = measure(inputs, prediction_reader(settings), models=_NoModels(), now=now)
    except _NeedsModels:
        sys.exit(_NEEDS_MODELS)
    sys.stdout.buffer.write(pickle.dumps(measured))


if __name__ == "__main__":
    from opsloop.console.quick_exit import exit_without_teardown

    # The command waits for this process's end: it ends without the interpreter's teardown
    # of DuckDB, NumPy and the window's rows (~40 ms).
    with exit_without_teardown():
        _main()
        sys.exit(0)
