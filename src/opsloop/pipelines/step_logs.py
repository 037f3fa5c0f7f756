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

A worker that dies (``os._exit``, a segfault, the OOM killer, a timeout's kill) never reaches
the end of its attempt, where the text is kept. So each attempt's capture also goes, write by
write, to a :class:`Spool`: files in a folder the driver made for that attempt (in the pipeline
run's temporary folder), written with ``os.write`` and thus in the page cache, safe from the
process's death, before ``print`` returns. Whoever finishes the attempt claims the folder by
renaming it (one rename wins): the worker at its normal end, which then keeps its text as
before; or the driver once the attempt is over without that, which keeps what the spool holds.
A worker on another machine (a Ray cluster) finds no such folder and only keeps its text at
the end, as before: there, a crashed attempt's output is lost.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import os
import shutil
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from typing import TextIO

from opsloop.errors import OpsloopError
from opsloop.kernel import ambient

__all__ = [
    "LOGS_ARTIFACT",
    "Spool",
    "StepLogs",
    "append_logs",
    "capturing",
    "keep_logs",
    "take_spooled",
]

log = logging.getLogger("opsloop.pipelines")

LOGS_ARTIFACT = "logs.txt"
HEAD_BYTES = 1 << 20
TAIL_BYTES = 3 << 20

_CAPTURE: contextvars.ContextVar[StepLogs | None] = contextvars.ContextVar(
    "opsloop_step_logs", default=None
)
_INSTALL_LOCK = threading.Lock()


class Spool:
    """An attempt's output on disk as it is written: ``0`` holds the first :data:`HEAD_BYTES`,
    then ``1``, ``2``, ... up to :data:`TAIL_BYTES` each, the two latest kept (at most
    ``HEAD_BYTES + 2 * TAIL_BYTES`` on disk, at least the last ``TAIL_BYTES`` read back)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._index = 0
        self._size = 0
        self._fd: int | None = self._open(0)

    def _open(self, index: int) -> int:
        return os.open(self.folder / str(index), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)

    def write(self, text: str) -> None:
        if self._fd is None:
            return
        data = text.encode("utf-8", "replace")
        try:
            if self._size >= (HEAD_BYTES if self._index == 0 else TAIL_BYTES):
                os.close(self._fd)
                self._index += 1
                self._fd, self._size = self._open(self._index), 0
                if self._index >= 3:  # keep the head and the two latest segments
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(self.folder / str(self._index - 2))
            os.write(self._fd, data)
            self._size += len(data)
        except OSError:  # a full disk, the folder claimed: the step matters more than this
            self.close()

    def close(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = None

    def release(self) -> bool:
        """At the attempt's normal end: claim the folder and remove it. False where the
        driver claimed it first (it keeps the text: a timed-out thread must not keep it too)."""
        self.close()
        done = self.folder.with_name(self.folder.name + ".kept")
        try:
            os.rename(self.folder, done)
        except FileNotFoundError:
            return False
        except OSError:
            return True
        shutil.rmtree(done, ignore_errors=True)
        return True


def take_spooled(folder: Path) -> str | None:
    """In the driver, once an attempt is over: what its spool holds, where its worker did not
    claim it (it died, or was killed), else None. The folder is claimed and removed."""
    taken = folder.with_name(folder.name + ".taken")
    try:
        os.rename(folder, taken)
    except OSError:  # the worker kept its text itself
        return None
    try:
        parts = sorted(int(p.name) for p in taken.iterdir() if p.name.isdigit())
        head = (taken / "0").read_bytes() if 0 in parts else b""
        tails = [p for p in parts if p > 0]
        tail = b"".join((taken / str(p)).read_bytes() for p in tails)
    except OSError:
        return None
    finally:
        shutil.rmtree(taken, ignore_errors=True)
    gap = bool(tails) and tails[0] > 1
    if len(tail) > TAIL_BYTES:
        tail, gap = tail[-TAIL_BYTES:], True
    text = head.decode("utf-8", "replace")
    if gap:
        text += "\n[... output left out ...]\n"
    text += tail.decode("utf-8", "replace")
    return text or None


class StepLogs:
    """One step's captured text: the head, and a rolling tail once the head is full; and,
    where the driver made a folder for the attempt, the same text in its :class:`Spool`."""

    def __init__(self, spool: Spool | None = None) -> None:
        self._head: list[str] = []
        self._head_size = 0
        self._tail: list[str] = []
        self._tail_size = 0
        self._dropped = 0
        self._lock = threading.Lock()
        self._spool = spool

    def release(self) -> bool:
        """Whether this side keeps the text (see :meth:`Spool.release`)."""
        with self._lock:
            return self._spool is None or self._spool.release()

    def write(self, text: str) -> None:
        with self._lock:
            if self._spool is not None:
                self._spool.write(text)
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
def capturing(spool: str | None = None) -> Iterator[StepLogs]:
    """Capture what the code run in this context writes, until the block ends; also into the
    folder ``spool`` where it exists on this machine."""
    _install()
    found = None
    if spool is not None and os.path.isdir(spool):
        with contextlib.suppress(OSError):
            found = Spool(Path(spool))
    logs = StepLogs(found)
    token = _CAPTURE.set(logs)
    try:
        yield logs
    finally:
        _CAPTURE.reset(token)
        if found is not None:
            found.close()


def keep_logs(logs: StepLogs, attempt: int) -> None:
    """The step's captured output on its run (still RUNNING, whether the step failed or not);
    a retry's goes after the attempts before it, under a line that names it."""
    text = logs.text()
    if not text:
        return
    from opsloop.kernel.step_context import current_step_run_id

    run_id = current_step_run_id()  # written first if it exists only in the journal so far
    assert run_id is not None
    append_logs(ambient.default_client(), run_id, text, attempt)


def append_logs(client: Any, run_id: str, text: str, attempt: int) -> None:
    """``text``, attempt ``attempt``'s output, after what run ``run_id``'s ``logs.txt`` holds."""
    try:
        if attempt > 1:
            earlier = b""
            with contextlib.suppress(LookupError):
                earlier = client.read_artifact(run_id, LOGS_ARTIFACT)
            text = f"{earlier.decode('utf-8', 'replace')}--- attempt {attempt} ---\n{text}"
        client.log_bytes(run_id, text.encode("utf-8", "replace"), LOGS_ARTIFACT)
    except OpsloopError as exc:  # the step's own outcome matters more than its logs
        log.warning("step run %s: logs not kept: %s", run_id, exc)
