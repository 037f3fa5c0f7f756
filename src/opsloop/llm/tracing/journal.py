"""An append-only span journal: a busy process hands its spans to a writer process on disk.

A process that records a span per request (the gateway) must not store them itself: the
database work competes with its requests for the GIL, and whatever waits in memory grows with
the traffic. Instead each span is one JSON line appended to a segment file with one ``write``
(no fsync: the page cache outlives a killed process, not a power cut), and a writer process
(:mod:`opsloop.llm.tracing.journal_writer`) reads the lines back in batches and stores them
through the ordinary, idempotent ingest.

Layout: ``ROOT/<instance>/`` per journal (one per writing process), holding ``lock`` (an
exclusive ``flock`` held while the journal is open: a writer that can take it knows the owner is
gone) and segments ``<n>.jsonl``. A segment is sealed once the next one exists, since the
journal creates ``n+1`` only after its last write to ``n``; a sealed segment read to its end is
deleted. What waits on disk is bounded (``max_backlog_bytes``): past it new spans are refused
and counted by the caller, never queued in memory.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import fields
from pathlib import Path
from typing import Any

from opsloop.llm.tracing.records import SpanRecord

__all__ = ["SEGMENT_BYTES", "SpanJournal", "claimed", "decode_line", "segments"]

SEGMENT_BYTES = 4 << 20
MAX_BACKLOG_BYTES = 1 << 30
_SUFFIX = ".jsonl"
_INPUT = "_input"  # the request's messages, as JSON values: made a string by the reader
_FIELDS = tuple(f.name for f in fields(SpanRecord))
_RECHECK_S = 1.0
_encode = json.JSONEncoder(ensure_ascii=False, default=repr).encode  # built once, not per span


class SpanJournal:
    """The writing side: :meth:`append` a span (thread-safe, one ``write``), :meth:`close`."""

    def __init__(
        self,
        root: Path,
        *,
        segment_bytes: int = SEGMENT_BYTES,
        max_backlog_bytes: int = MAX_BACKLOG_BYTES,
    ) -> None:
        self.segment_bytes = segment_bytes
        self.max_segments = max(2, max_backlog_bytes // segment_bytes)
        root.mkdir(parents=True, exist_ok=True)
        name = f"{time.time_ns():020d}-{os.getpid()}"
        building = root / f".{name}"  # writers skip dot-names: it is not locked yet
        building.mkdir()
        self._lock_fd = os.open(building / "lock", os.O_CREAT | os.O_RDWR, 0o600)
        fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
        self.folder = root / name
        os.rename(building, self.folder)
        self._mutex = threading.Lock()
        self._number = 0
        self._written = 0
        self._fd = self._open(0)
        self._full_until = 0.0  # while refusing: when to look at the backlog again

    def append(self, record: SpanRecord, input_value: Any = None) -> bool:
        """Write ``record`` (and ``input_value``, which the reader stores as its ``input``
        JSON); False when the backlog on disk is full and the span was not written."""
        values = {name: value for name in _FIELDS if (value := getattr(record, name)) is not None}
        if input_value is not None:
            values[_INPUT] = input_value
        line = (_encode(values) + "\n").encode()
        with self._mutex:
            if self._fd < 0:
                raise RuntimeError("the span journal is closed")
            if self._full_until and not self._room():
                return False
            os.write(self._fd, line)
            self._written += len(line)
            if self._written >= self.segment_bytes:
                self._rotate()
        return True

    def close(self) -> None:
        """Stop writing; the lock goes with it, so the segments left are anyone's to store."""
        with self._mutex:
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1
                os.close(self._lock_fd)

    def _rotate(self) -> None:
        os.close(self._fd)
        self._number += 1
        self._fd = self._open(self._number)
        self._written = 0
        self._full_until = 0.0
        if len(segments(self.folder)) > self.max_segments:
            self._full_until = time.monotonic() + _RECHECK_S

    def _room(self) -> bool:
        """Whether the writer has caught up below the bound (looked at once a second)."""
        if time.monotonic() < self._full_until:
            return False
        if len(segments(self.folder)) > self.max_segments:
            self._full_until = time.monotonic() + _RECHECK_S
            return False
        self._full_until = 0.0
        return True

    def _open(self, number: int) -> int:
        path = self.folder / f"{number:010d}{_SUFFIX}"
        return os.open(path, os.O_CREAT | os.O_WRONLY | os.O_APPEND, 0o600)


def segments(folder: Path) -> list[Path]:
    """``folder``'s segments, oldest first."""
    with contextlib.suppress(FileNotFoundError):
        return sorted(p for p in folder.iterdir() if p.suffix == _SUFFIX)
    return []


@contextlib.contextmanager
def claimed(folder: Path) -> Iterator[bool]:
    """Whether the journal in ``folder`` is closed, its lock taken here for the block (so
    only one writer stores an abandoned journal at a time)."""
    try:
        fd = os.open(folder / "lock", os.O_RDWR)
    except FileNotFoundError:  # being removed by the writer that stored it
        yield False
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(fd)


def decode_line(line: bytes) -> SpanRecord:
    """The span a journal line holds (its request's messages as its ``input`` JSON)."""
    values = json.loads(line)
    given = values.pop(_INPUT, None)
    record = SpanRecord(**values)
    if given is not None:
        record.input = json.dumps(given, ensure_ascii=False, default=repr)
    return record
