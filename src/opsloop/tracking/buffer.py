"""Buffered metric logging: ``log_metric`` costs a list append; a background thread writes.

Points are grouped per run and per key into three growing columns (values, steps,
timestamps), the very shape a batch is sent and stored in, so a flush does no reshaping. A
flush happens when ``max_points`` are waiting, every ``interval`` seconds, on ``flush()`` and
``end_run``, at interpreter exit (which also covers an unhandled exception), and on SIGTERM.

Delivery: a batch that fails with a transient ``StoreError`` goes back to the front of the
buffer and is retried, so nothing is dropped while the database is briefly away. A batch the
store refuses (a finished or deleted run) is dropped and its error is raised by the next
``flush()`` or ``end_run`` for that run, so it is never silent. A point is acknowledged, in the
sense of durable, once a ``flush()`` covering it has returned.
"""

from __future__ import annotations

import contextlib
import sys
import threading
from collections.abc import Callable
from typing import Any

from opsloop.errors import OpsloopError, StoreError
from opsloop.kernel.background import register
from opsloop.tracking.entities import MetricBatch, MetricSeries

__all__ = ["MetricBuffer"]

Sink = Callable[[str, MetricBatch], Any]
_Columns = tuple[list[float], list[int], list[int]]


class MetricBuffer:
    """Per-client buffer of metric points, flushed in columnar batches by a daemon thread.

    Args:
        sink: Writes one run's batch durably (``backend.log_batch`` with metrics only).
        max_points: Flush as soon as this many points are waiting.
        interval: Flush at least this often (seconds) while points are waiting.
    """

    def __init__(self, sink: Sink, *, max_points: int = 20_000, interval: float = 1.0) -> None:
        self._sink = sink
        self.max_points = max_points
        self.interval = interval
        self._pending: dict[str, dict[str, _Columns]] = {}
        self._count = 0
        self._errors: dict[str, OpsloopError] = {}
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()  # one flush at a time keeps batches in order
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._closed = False
        register(self)

    def add(self, run_id: str, key: str, value: float, step: int, timestamp: int) -> None:
        """Queue one validated point. Thread-safe, no I/O."""
        with self._lock:
            keys = self._pending.get(run_id)
            if keys is None:
                keys = self._pending[run_id] = {}
            columns = keys.get(key)
            if columns is None:
                columns = keys[key] = ([], [], [])
            columns[0].append(value)
            columns[1].append(step)
            columns[2].append(timestamp)
            self._count += 1
            full = self._count >= self.max_points
        if self._thread is None:
            self._start()
        if full:
            self._wake.set()

    def add_many(self, run_id: str, points: dict[str, float], step: int, timestamp: int) -> None:
        """Queue several keys at one step (``log_metrics``)."""
        for key, value in points.items():
            self.add(run_id, key, value, step, timestamp)

    def flush(self, run_id: str | None = None) -> None:
        """Write everything waiting (for one run, or all) and raise any error held for it."""
        self._flush(run_id)
        self.raise_error(run_id)

    def raise_error(self, run_id: str | None = None) -> None:
        """Raise (once) an error a background flush met for this run, or any run."""
        with self._lock:
            if run_id is None:
                error = next(iter(self._errors.values()), None)
                self._errors.clear()
            else:
                error = self._errors.pop(run_id, None)
        if error is not None:
            raise error

    def close(self) -> None:
        """Flush and stop the background thread."""
        self._closed = True
        self._wake.set()
        self._flush(None)

    # -- internals ----------------------------------------------------------------------------
    def _start(self) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="opsloop-metrics", daemon=True
                )
                self._thread.start()

    def _run(self) -> None:
        while not self._closed:
            self._wake.wait(self.interval)
            self._wake.clear()
            with contextlib.suppress(StoreError):  # kept in the buffer; retried next tick
                self._flush(None)

    def _take(self, run_id: str | None) -> dict[str, dict[str, _Columns]]:
        with self._lock:
            if run_id is None:
                taken, self._pending = self._pending, {}
            else:
                one = self._pending.pop(run_id, None)
                taken = {run_id: one} if one else {}
            self._count -= sum(len(c[0]) for keys in taken.values() for c in keys.values())
            return taken

    def _put_back(self, run_id: str, keys: dict[str, _Columns]) -> None:
        with self._lock:
            current = self._pending.setdefault(run_id, {})
            for key, (values, steps, stamps) in keys.items():
                newer = current.get(key)
                if newer is not None:
                    values, steps, stamps = values + newer[0], steps + newer[1], stamps + newer[2]
                current[key] = (values, steps, stamps)
                self._count += len(keys[key][0])

    def _flush(self, run_id: str | None) -> None:
        with self._flush_lock:
            for rid, keys in self._take(run_id).items():
                batch = MetricBatch(
                    series={
                        key: MetricSeries.model_construct(values=v, steps=s, timestamps=t)
                        for key, (v, s, t) in keys.items()
                    }
                )
                try:
                    self._sink(rid, batch)
                except StoreError:
                    self._put_back(rid, keys)
                    raise
                except OpsloopError as exc:
                    with self._lock:
                        self._errors[rid] = exc

    def _flush_at_exit(self) -> None:
        try:
            self.close()
        except OpsloopError as exc:
            print(f"opsloop: metrics could not be written at exit: {exc}", file=sys.stderr)
        for run_id, error in self._errors.items():
            print(f"opsloop: metrics for run {run_id} were refused: {error}", file=sys.stderr)

    def _after_fork(self) -> None:
        # The child has no flusher thread and must not send the parent's points twice.
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._pending, self._count, self._thread = {}, 0, None
