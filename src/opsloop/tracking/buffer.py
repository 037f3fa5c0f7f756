"""Journaled metric logging: ``log_metric`` writes into a mapped file; a background thread sends.

A point is written into the run's journal segment (:mod:`opsloop.tracking.journal`), a
``MAP_SHARED`` file mapping, before ``add`` returns: a memory copy, no syscall, and from then on
it survives the death of the process (SIGKILL, OOM killer). Only a machine crash can lose the
points not yet delivered, which is at most one flush interval's worth. Segments left by a dead
process are adopted when the next client for the same store starts on this host, and sent.

A flush reads the undelivered slots back as columns per key, the very shape a batch is sent and
stored in. It happens when ``max_points`` are waiting, every ``interval`` seconds, on
``flush()`` and ``end_run``, at interpreter exit (which also covers an unhandled exception),
and on SIGTERM. A segment is deleted once delivered and its run ended, idle, or closed.

Delivery: a batch that fails with a transient ``StoreError`` stays undelivered in the journal
and is retried, so nothing is dropped while the database is briefly away (nor when the process
then dies). A batch the store refuses (a finished or deleted run) is dropped and its error is
raised by the next ``flush()`` or ``end_run`` for that run, so it is never silent.

Without a journal folder (``journal_dir`` None), or when it cannot be written (one warning),
segments live in anonymous memory: the same code, durable only until the process dies.
"""

from __future__ import annotations

import contextlib
import sys
import threading
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from opsloop.errors import OpsloopError
from opsloop.errors import StoreError
from opsloop.kernel.background import register
from opsloop.tracking.entities import MetricBatch
from opsloop.tracking.journal import COMMITTED
from opsloop.tracking.journal import FIRST_SLOTS
from opsloop.tracking.journal import HEADER
from opsloop.tracking.journal import MAX_SLOTS
from opsloop.tracking.journal import POINT
from opsloop.tracking.journal import SLOT
from opsloop.tracking.journal import U64
from opsloop.tracking.journal import Segment
from opsloop.tracking.journal import adopt_orphans

__all__ = ["MetricBuffer"]

Sink = Callable[[str, MetricBatch], Any]
_pack = POINT.pack_into
_commit = U64.pack_into
_ADOPT_EVERY = 30  # flusher ticks between looks for segments of processes that died since


class MetricBuffer:
    """Per-client journal of metric points, sent in columnar batches by a daemon thread.

    Args:
        sink: Writes one run's batch durably (``backend.log_batch`` with metrics only).
        journal_dir: Folder for this client's segment files (see ``journal.journal_dir``);
            segments a dead process left there are adopted and sent. None: memory only.
        max_points: Flush as soon as this many points are waiting.
        interval: Flush at least this often (seconds) while points are waiting.
    """

    first_slots = FIRST_SLOTS  # a run's first segment; each next one doubles, to MAX_SLOTS

    def __init__(
        self,
        sink: Sink,
        *,
        journal_dir: Path | None = None,
        max_points: int = 20_000,
        interval: float = 1.0,
    ) -> None:
        self._sink = sink
        self.journal_dir = journal_dir
        self.max_points = max_points
        self.interval = interval
        self._open: dict[str, Segment] = {}  # run id -> the segment it writes into now
        self._segments: list[Segment] = []  # every live one: open, sealed full, adopted
        self._count = 0
        self._errors: dict[str, OpsloopError] = {}
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()  # one flush at a time keeps batches in order
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._closed = False
        register(self)
        if journal_dir is not None:
            self._adopt(journal_dir)

    def add(self, run_id: str, key: str, value: float, step: int, timestamp: int) -> None:
        """Journal one validated point. Thread-safe; on return it outlives this process."""
        with self._lock:
            segment = self._open.get(run_id)
            if (
                segment is None
                or (kid := segment.keys.get(key, -1)) < 0
                or segment.n >= segment.capacity
            ):
                segment, kid = self._room(run_id, key)
            n = segment.n
            _pack(segment.mm, HEADER + n * SLOT, kid, value, step, timestamp)
            segment.n = n = n + 1
            _commit(segment.mm, COMMITTED, n)  # now it counts: the slot is whole
            self._count += 1
            full = self._count >= self.max_points
        if self._thread is None:
            self._start()
        if full:
            self._wake.set()

    def add_many(self, run_id: str, points: dict[str, float], step: int, timestamp: int) -> None:
        """Journal several keys at one step (``log_metrics``)."""
        for key, value in points.items():
            self.add(run_id, key, value, step, timestamp)

    def flush(self, run_id: str | None = None) -> None:
        """Write everything waiting (for one run, or all) and raise any error held for it."""
        self._flush(run_id)
        self.raise_error(run_id)

    def release(self, run_id: str) -> None:
        """Delete the run's delivered segments (its run has ended); a later point for it
        starts a new one."""
        with self._flush_lock:
            self._retire(lambda s: s.run_id == run_id)

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
        """Flush, stop the background thread, and delete the delivered segments. What could
        not be delivered stays on disk for the next process to send."""
        self._closed = True
        self._wake.set()
        self._flush(None)
        with self._flush_lock:
            self._retire(lambda s: True)

    # -- internals ----------------------------------------------------------------------------
    def _room(self, run_id: str, key: str) -> tuple[Segment, int]:
        """The segment to write the run's next point into, with ``key`` defined in it: the
        open one, or a new one when there is none or it is full (the full one stays in
        ``_segments`` until delivered). Called with the lock held."""
        segment = self._open.get(run_id)
        if segment is not None and segment.n < segment.capacity:
            kid = segment.keys.get(key, -1)
            if kid < 0:
                kid = segment.define(key)
            if kid >= 0:
                return segment, kid
        grown = min(MAX_SLOTS, segment.capacity * 2) if segment is not None else 0
        capacity = max(grown, self.first_slots)
        segment = self._new_segment(run_id, capacity)
        self._open[run_id] = segment
        self._segments.append(segment)
        return segment, segment.define(key)

    def _new_segment(self, run_id: str, capacity: int) -> Segment:
        if self.journal_dir is not None:
            try:
                return Segment.create(self.journal_dir, run_id, capacity)
            except OSError as exc:
                warnings.warn(
                    f"opsloop: metrics are kept in memory only, not journaled: cannot write "
                    f"{self.journal_dir} ({exc}); points logged since the last flush are lost "
                    "if the process is killed",
                    RuntimeWarning,
                    stacklevel=5,
                )
                self.journal_dir = None
        return Segment.create(None, run_id, capacity)

    def _adopt(self, folder: Path) -> None:
        """Take over the segments of dead processes in ``folder`` and send them soon."""
        try:
            adopted = list(adopt_orphans(folder))
        except OSError as exc:
            warnings.warn(f"opsloop: cannot read the metric journal {folder}: {exc}",
                          RuntimeWarning, stacklevel=4)  # fmt: skip
            return
        if adopted:
            with self._lock:
                self._segments.extend(adopted)
            self._start()
            self._wake.set()

    def _start(self) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="opsloop-metrics", daemon=True
                )
                self._thread.start()

    def _run(self) -> None:
        ticks = 0
        while not self._closed:
            self._wake.wait(self.interval)
            self._wake.clear()
            ticks += 1
            if self.journal_dir is not None and ticks % _ADOPT_EVERY == 0:
                self._adopt(self.journal_dir)  # e.g. a forked worker that died unflushed
            with contextlib.suppress(StoreError):  # kept in the journal; retried next tick
                self._flush(None)
            with self._flush_lock:
                self._retire(self._idle)

    def _idle(self, segment: Segment) -> bool:
        """Whether a delivered segment may go: adopted and sealed ones at once, the open one
        of a run once it took no point since the previous tick (so a process that leaves many
        runs open does not keep a mapped file for each). Called with the lock held."""
        if self._done_with(segment):
            return True
        idle, segment.seen = segment.seen == segment.n, segment.n
        return idle

    def _done_with(self, segment: Segment) -> bool:
        """Adopted and sealed (full) segments take no more points."""
        return segment.adopted or self._open.get(segment.run_id) is not segment

    def _flush(self, run_id: str | None) -> None:
        with self._flush_lock:
            with self._lock:
                work = [
                    (s, s.sent, s.n)
                    for s in self._segments
                    if s.n > s.sent and (run_id is None or s.run_id == run_id)
                ]
                if run_id is None:
                    self._count = 0
            for segment, start, end in work:
                try:
                    batch = segment.batch(start, end)
                except (KeyError, ValueError) as exc:  # a damaged file left by a dead process
                    if not segment.adopted:
                        raise
                    warnings.warn(f"opsloop: skipped a damaged metric journal {segment.path}: "
                                  f"{exc!r}", RuntimeWarning, stacklevel=2)  # fmt: skip
                    segment.mark_delivered(end)
                    continue
                try:
                    if batch.series:
                        self._sink(segment.run_id, batch)
                except StoreError:
                    raise  # stays undelivered: sent again by the next flush, or process
                except OpsloopError as exc:
                    self._refused(segment, batch, exc)
                segment.mark_delivered(end)
            self._retire(self._done_with)

    def _refused(self, segment: Segment, batch: MetricBatch, exc: OpsloopError) -> None:
        if segment.adopted:  # nobody here logged them: say so rather than fail a later flush
            warnings.warn(
                f"opsloop: {batch.count()} metric points of run {segment.run_id} left by a "
                f"killed process were refused: {exc}",
                RuntimeWarning,
                stacklevel=2,
            )
        else:
            with self._lock:
                self._errors[segment.run_id] = exc

    def _retire(self, which: Callable[[Segment], bool]) -> None:
        """Unmap and delete the fully delivered segments ``which`` picks (flush lock held)."""
        with self._lock:
            done = [s for s in self._segments if s.sent == s.n and which(s)]
            for segment in done:
                self._segments.remove(segment)
                if self._open.get(segment.run_id) is segment:
                    del self._open[segment.run_id]
        for segment in done:
            segment.remove()

    def _flush_at_exit(self) -> None:
        try:
            self.close()
        except OpsloopError as exc:
            where = f" (kept in {self.journal_dir}; the next opsloop client sends them)"
            print(
                f"opsloop: metrics could not be written at exit: {exc}"
                + (where if self.journal_dir else ""),
                file=sys.stderr,
            )
        for run_id, error in self._errors.items():
            print(f"opsloop: metrics for run {run_id} were refused: {error}", file=sys.stderr)

    def _after_fork(self) -> None:
        # The child has no flusher thread, and the parent's segments are the parent's: it
        # sends them, and the child writes its own points into segments of its own.
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._open, self._segments, self._count, self._thread = {}, [], 0, None
