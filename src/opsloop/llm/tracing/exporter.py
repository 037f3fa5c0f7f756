"""The SDK's span exporter: finished spans queue in memory and a daemon thread sends them.

Ending a span costs a deque append. The sender wakes when ``max_batch`` spans wait or every
``interval`` seconds, and sends in batches of ``max_batch``. A batch that fails with a
transient ``StoreError`` (the database or server is away) goes back to the front of the queue
and is retried with backoff, so a brief outage loses nothing. The queue is bounded: past
``max_queue`` spans the oldest are dropped and counted, because an app must never block or
grow without bound for the sake of its telemetry. ``flush()`` sends everything and returns once
it is stored (or raises); exit and SIGTERM flush too.
"""

from __future__ import annotations

import collections
import contextlib
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import KW_ONLY
from dataclasses import dataclass
from typing import Any

from opsloop.errors import OpsloopError
from opsloop.errors import StoreError
from opsloop.kernel.background import register
from opsloop.llm.tracing.records import SpanRecord

__all__ = ["SpanExporter"]

Sink = Callable[[list[SpanRecord]], Any]


@dataclass(eq=False)
class SpanExporter:
    """Sends the spans :meth:`add` queues to ``sink``, ``max_batch`` at a time, from a daemon
    thread that wakes every ``interval`` seconds; keeps at most ``max_queue`` spans and waits
    up to ``exit_timeout`` seconds at exit to send what is left."""

    sink: Sink
    _: KW_ONLY
    max_batch: int = 512
    interval: float = 0.5
    max_queue: int = 200_000
    exit_timeout: float = 10.0

    def __post_init__(self) -> None:
        self.dropped = 0
        self.refused = 0
        self._wake = threading.Event()
        self._closed = False
        self._backoff = 0.0
        self._after_fork()  # an empty queue, new locks, no thread yet: what a forked child gets
        register(self)

    def add(self, record: SpanRecord) -> None:
        """Queue one finished span. Thread-safe, no I/O."""
        queue = self._queue
        queue.append(record)
        if len(queue) > self.max_queue:
            with self._lock:
                while len(queue) > self.max_queue:
                    queue.popleft()
                    self.dropped += 1
        if self._thread is None:
            self._start()
        if len(queue) >= self.max_batch:
            self._wake.set()

    @property
    def pending(self) -> int:
        return len(self._queue)

    def flush(self) -> None:
        """Send every queued span now; raise ``StoreError`` if they could not be stored."""
        self._send_all()

    def close(self) -> None:
        self._closed = True
        self._wake.set()
        self._send_all()

    # -- internals ----------------------------------------------------------------------------
    def _start(self) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="opsloop-spans", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while not self._closed:
            self._wake.wait(self._backoff or self.interval)
            self._wake.clear()
            try:
                self._send_all()
                self._backoff = 0.0
            except StoreError:  # kept in the queue; retried with backoff
                self._backoff = min(max(self._backoff * 2, 0.5), 30.0)

    def _take(self) -> list[SpanRecord]:
        batch: list[SpanRecord] = []
        queue = self._queue
        with contextlib.suppress(IndexError):
            while len(batch) < self.max_batch:
                batch.append(queue.popleft())
        return batch

    def _send_all(self) -> None:
        with self._send_lock:
            while True:
                batch = self._take()
                if not batch:
                    return
                try:
                    result = self.sink(batch)
                except StoreError:
                    with self._lock:
                        self._queue.extendleft(reversed(batch))
                    raise
                except OpsloopError as exc:  # refused as a whole: never retried
                    self.refused += len(batch)
                    print(f"opsloop: {len(batch)} spans refused: {exc}", file=sys.stderr)
                    continue
                rejected = getattr(result, "rejected", 0)
                if rejected:
                    self.refused += rejected
                    print(
                        f"opsloop: {rejected} spans refused: {'; '.join(result.errors)}",
                        file=sys.stderr,
                    )

    def _flush_at_exit(self) -> None:
        self._closed = True
        deadline = time.monotonic() + self.exit_timeout
        while self._queue and time.monotonic() < deadline:
            try:
                self._send_all()
            except StoreError:
                time.sleep(0.5)
        lost = len(self._queue) + self.dropped
        if lost:
            print(f"opsloop: {lost} spans could not be sent before exit", file=sys.stderr)

    def _after_fork(self) -> None:
        self._lock = threading.Lock()
        self._send_lock = threading.Lock()
        self._queue: collections.deque[SpanRecord] = collections.deque()
        self._thread: threading.Thread | None = None
