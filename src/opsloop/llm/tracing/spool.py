"""Durable ingest: spans accepted while the database is away wait on disk until it is back.

The OTLP endpoint acknowledges a batch only once it is stored in the database or written and
fsynced here. A daemon thread replays spooled batches, oldest first, as soon as the database
answers again; ingest is idempotent, so a batch replayed twice (a crash between storing and
deleting its file) is harmless. Files are claimed by an atomic rename, so several server
processes sharing one home folder never replay a batch at the same moment.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from opsloop.errors import StoreError
from opsloop.llm.tracing.entities import IngestResult
from opsloop.llm.tracing.records import SpanRecord

__all__ = ["IngestSpool"]

_READY = ".jsonl"
_CLAIMED = ".claimed"
_STALE_CLAIM_S = 120


class IngestSpool:
    def __init__(
        self,
        folder: Path,
        ingest: Callable[[list[SpanRecord]], IngestResult],
        *,
        retry_s: float = 1.0,
    ) -> None:
        self.folder = folder
        self._ingest = ingest
        self.retry_s = retry_s
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._reclaim_stale()
        if self.waiting():
            self._start_drainer()

    def accept(self, records: list[SpanRecord]) -> IngestResult:
        """Store ``records`` now, or spool them durably if the database is unavailable."""
        try:
            return self._ingest(records)
        except StoreError:
            self.put(records)
            self._start_drainer()
            return IngestResult(accepted=len(records), spooled=True)

    def put(self, records: list[SpanRecord]) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        name = f"{time.time_ns():020d}-{uuid.uuid4().hex[:8]}"
        tmp = self.folder / f"{name}.tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            for record in records:
                f.write(json.dumps(record.to_dict(), ensure_ascii=False, default=repr))
                f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.folder / f"{name}{_READY}")
        _fsync_dir(self.folder)

    def waiting(self) -> list[Path]:
        """Spooled batch files, oldest first."""
        if not self.folder.is_dir():
            return []
        return sorted(self.folder.glob(f"*{_READY}"))

    def pending(self) -> int:
        """Batches on disk, waiting or being replayed right now."""
        if not self.folder.is_dir():
            return 0
        return sum(1 for p in self.folder.iterdir() if p.suffix in (_READY, _CLAIMED))

    def drain(self) -> int:
        """Replay every spooled batch; returns spans stored. Raises ``StoreError`` if the
        database is still away (the batch being replayed stays spooled)."""
        stored = 0
        for path in self.waiting():
            claimed = path.with_suffix(_CLAIMED)
            try:
                os.replace(path, claimed)
            except FileNotFoundError:  # another process took it
                continue
            with open(claimed, encoding="utf-8") as f:
                records = [SpanRecord(**json.loads(line)) for line in f if line.strip()]
            try:
                result = self._ingest(records)
            except StoreError:
                os.replace(claimed, path)
                raise
            claimed.unlink()
            stored += result.accepted
        return stored

    # -- internals ----------------------------------------------------------------------------
    def _start_drainer(self) -> None:
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return
            self._thread = threading.Thread(
                target=self._drain_until_empty, name="opsloop-trace-spool", daemon=True
            )
            self._thread.start()

    def _drain_until_empty(self) -> None:
        delay = self.retry_s
        while self.waiting():
            try:
                self.drain()
                delay = self.retry_s
            except StoreError:
                time.sleep(delay)
                delay = min(delay * 2, 30.0)

    def _reclaim_stale(self) -> None:
        """Put back batches claimed by a process that died while replaying them."""
        if not self.folder.is_dir():
            return
        for path in self.folder.glob(f"*{_CLAIMED}"):
            with contextlib.suppress(FileNotFoundError):
                if time.time() - path.stat().st_mtime > _STALE_CLAIM_S:
                    os.replace(path, path.with_suffix(_READY))


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
