"""A step's logs: what it prints, warns and logs, kept on its run as ``logs.txt``.

Steps run side by side on threads of one process, so ``sys.stdout`` cannot simply be swapped
per step. Instead ``sys.stdout`` and ``sys.stderr`` are wrapped once per process by a stream
that writes everything through to the stream it wraps (the terminal sees what it always saw)
and also into the capture of the step running in the current context (a context variable, set
where the step runs: its thread, its process, its Ray worker). ``logging`` records are caught
by a handler on the root logger, whatever other handlers do with them (a file, a log shipper);
what a logging handler writes to the wrapped streams is therefore not caught twice, and where
the record met no other handler the handler does what logging would have done without it
(``logging.lastResort``: warnings and worse to stderr). A step that prints nothing gets no
file; a chatty one keeps its first :data:`HEAD_BYTES` and last :data:`TAIL_BYTES` with a line
saying how much lies between. Output from threads the step starts itself is not caught.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import sys
import threading
from collections.abc import Iterator
from typing import Any, TextIO

from opsloop.errors import OpsloopError
from opsloop.kernel import ambient

__all__ = ["LOGS_ARTIFACT", "StepLogs", "capturing", "keep_logs"]

log = logging.getLogger("opsloop.pipelines")

LOGS_ARTIFACT = "logs.txt"
HEAD_BYTES = 1 << 20
TAIL_BYTES = 3 << 20

_CAPTURE: contextvars.ContextVar[StepLogs | None] = contextvars.ContextVar(
    "opsloop_step_logs", default=None
)
_INSTALL_LOCK = threading.Lock()


class StepLogs:
    """One step's captured text: the head, and a rolling tail once the head is full."""

    def __init__(self) -> None:
        self._head: list[str] = []
        self._head_size = 0
        self._tail: list[str] = []
        self._tail_size = 0
        self._dropped = 0
        self._lock = threading.Lock()

    def write(self, text: str) -> None:
        with self._lock:
            if self._head_size < HEAD_BYTES:
                self._head.append(text)
                self._head_size += len(text)
                return
            self._tail.append(text)
            self._tail_size += len(text)
            while self._tail_size > TAIL_BYTES and len(self._tail) > 1:
                dropped = self._tail.pop(0)
                self._tail_size -= len(dropped)
                self._dropped += len(dropped)

    def text(self) -> str:
        with self._lock:
            gap = [f"\n[... {self._dropped:,} characters left out ...]\n"] if self._dropped else []
            return "".join([*self._head, *gap, *self._tail])


class _Routed:
    """Stands in for ``sys.stdout`` / ``sys.stderr``: writes through, and into the running
    step's capture. Everything else (``fileno``, ``isatty``, ``encoding``) is the wrapped
    stream's."""

    def __init__(self, wrapped: TextIO) -> None:
        self._wrapped = wrapped

    def write(self, text: str) -> int:
        written = self._wrapped.write(text)
        capture = _CAPTURE.get()
        if capture is not None and text and sys._getframe(1).f_code.co_filename != _LOGGING:
            capture.write(text)  # (a logging handler's line: the record is caught already)
        return written

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        self._wrapped.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._wrapped, name)


class _RecordCatcher(logging.Handler):
    """On the root logger: the running step's records into its capture."""

    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        capture = _CAPTURE.get()
        if capture is not None:
            capture.write(self.format(record) + "\n")
        last = logging.lastResort
        if last is not None and record.levelno >= last.level and not _other_handlers(record):
            last.handle(record)  # as if this handler were not there


def _other_handlers(record: logging.LogRecord) -> bool:
    """Whether the record met a handler besides the catcher on its way up to the root."""
    logger: logging.Logger | None = logging.getLogger(record.name)
    while logger is not None:
        if any(not isinstance(h, _RecordCatcher) for h in logger.handlers):
            return True
        logger = logger.parent if logger.propagate else None
    return False


_LOGGING = logging.__file__


def _install() -> None:
    """Wrap the standard streams (again, if someone replaced them since); put the record
    catcher on the root logger (again, if someone reset its handlers)."""
    root = logging.getLogger()
    streams_done = isinstance(sys.stdout, _Routed) and isinstance(sys.stderr, _Routed)
    if streams_done and any(isinstance(h, _RecordCatcher) for h in root.handlers):
        return
    with _INSTALL_LOCK:
        for name in ("stdout", "stderr"):
            stream = getattr(sys, name)
            if stream is not None and not isinstance(stream, _Routed):
                setattr(sys, name, _Routed(stream))
        if not any(isinstance(h, _RecordCatcher) for h in root.handlers):
            root.addHandler(_RecordCatcher())


@contextlib.contextmanager
def capturing() -> Iterator[StepLogs]:
    """Capture what the code run in this context writes, until the block ends."""
    _install()
    logs = StepLogs()
    token = _CAPTURE.set(logs)
    try:
        yield logs
    finally:
        _CAPTURE.reset(token)


def keep_logs(logs: StepLogs, attempt: int) -> None:
    """The step's captured output on its run (still RUNNING, whether the step failed or not);
    a retry's goes after the attempts before it, under a line that names it."""
    text = logs.text()
    if not text:
        return
    from opsloop.kernel.step_context import current_step_run_id

    run_id = current_step_run_id()  # written first if it exists only in the journal so far
    assert run_id is not None
    client = ambient.default_client()
    try:
        if attempt > 1:
            earlier = b""
            with contextlib.suppress(LookupError):
                earlier = client.read_artifact(run_id, LOGS_ARTIFACT)
            text = f"{earlier.decode('utf-8', 'replace')}--- attempt {attempt} ---\n{text}"
        client.log_bytes(run_id, text.encode("utf-8", "replace"), LOGS_ARTIFACT)
    except OpsloopError as exc:  # the step's own outcome matters more than its logs
        log.warning("step run %s: logs not kept: %s", run_id, exc)
