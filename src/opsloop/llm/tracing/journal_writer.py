"""The span journal's writer: reads journal lines back in batches and stores them.

:class:`JournalIngester` stores, under a journal root, its own journal as its segments seal and
every other journal whose owner is gone (its lock free: a process killed or closed without
waiting), then deletes what it stored. A batch is one ingest (one transaction, thousands of
spans); ingest is idempotent, so a segment read again after a crash is harmless. While the
database is away nothing is deleted and the ingester retries with backoff: the journal is the
spool.

:class:`JournalWriter` is the owner's handle on it: a child process
(``python -m opsloop.llm.tracing.journal_writer``, handed the database URL on its stdin, which it
reads to the end: when the owner closes it, or dies, the writer stores the rest and exits), or a
thread of the owner's process for a database another process cannot open (in-memory SQLite).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from opsloop.errors import StoreError
from opsloop.llm.tracing.journal import claimed
from opsloop.llm.tracing.journal import decode_line
from opsloop.llm.tracing.journal import segments
from opsloop.llm.tracing.records import SpanRecord

__all__ = ["JournalIngester", "JournalWriter"]

Ingest = Callable[[list[SpanRecord]], Any]
_BATCH = 2000
_IDLE_S = 0.05
_NICENESS = 10  # the writer process's, above its owner's
log = logging.getLogger(__name__)


class JournalIngester:
    """Stores the journals under ``root`` through ``ingest``; ``own`` is the one its owner
    still writes (its last segment is read as it grows, deleted only once sealed)."""

    def __init__(
        self, root: Path, own: str, ingest: Ingest, *, adopt: bool = True, batch: int = _BATCH
    ) -> None:
        self.root, self.own, self._ingest, self.batch = root, own, ingest, batch
        self.adopt = adopt  # store abandoned journals too (not into a private in-memory store)
        self._offsets: dict[Path, int] = {}
        self.stored = 0
        self.lost = 0  # a line cut short by a process killed while writing it

    def run(self, owner_done: threading.Event) -> None:
        """Store until ``owner_done`` is set, then store everything left and return (or
        leave it on disk for the next writer if the database is away by then)."""
        delay = _IDLE_S
        while True:
            final = owner_done.is_set()
            try:
                moved = self.store_once(owner_done=final)
            except StoreError as exc:  # nothing deleted: retried
                log.warning("spans wait in the journal %s: %s", self.root, exc)
                if final:
                    return
                owner_done.wait(delay)
                delay = min(delay * 2, 5.0)
                continue
            delay = _IDLE_S
            if final:
                return
            if not moved:
                owner_done.wait(_IDLE_S)

    def store_once(self, *, owner_done: bool = False) -> int:
        """One pass over every journal; returns spans stored."""
        moved = 0
        for folder in sorted(self.root.iterdir()) if self.root.is_dir() else ():
            if folder.name.startswith(".") or not folder.is_dir():
                continue
            if folder.name == self.own:
                moved += self._store(folder, closed=owner_done)
                continue
            if not self.adopt:
                continue
            with claimed(folder) as abandoned:
                if abandoned:
                    moved += self._store(folder, closed=True)
        return moved

    def _store(self, folder: Path, *, closed: bool) -> int:
        found = segments(folder)
        moved = 0
        for i, segment in enumerate(found):
            sealed = closed or i < len(found) - 1  # listed before reading: n+1 implies n done
            moved += self._read(segment, sealed=sealed)
            if sealed:
                segment.unlink(missing_ok=True)
                self._offsets.pop(segment, None)
        if closed:
            shutil.rmtree(folder, ignore_errors=True)
        return moved

    def _read(self, segment: Path, *, sealed: bool) -> int:
        offset = self._offsets.get(segment, 0)
        try:
            with open(segment, "rb") as f:
                f.seek(offset)
                data = f.read()
        except FileNotFoundError:  # another writer stored it
            return 0
        end = data.rfind(b"\n") + 1
        if sealed and end < len(data):
            self.lost += 1
            log.warning("%s ends with a span cut short; left out", segment)
        lines = data[:end].split(b"\n")[:-1]
        moved = 0
        for start in range(0, len(lines), self.batch):
            records = []
            for line in lines[start : start + self.batch]:
                try:
                    records.append(decode_line(line))
                except (ValueError, TypeError):
                    self.lost += 1
                    log.warning("%s holds a line that is not a span; left out", segment)
            if records:
                self._ingest(records)
            moved += len(records)
            offset += sum(len(line) + 1 for line in lines[start : start + self.batch])
            self._offsets[segment] = offset
        self.stored += moved
        return moved


class JournalWriter:
    """The owner's handle on the ingester of its journal ``own`` under ``root``."""

    def __init__(
        self, root: Path, own: str, *, database_url: str | None, ingest: Ingest | None
    ) -> None:
        self.root, self.own, self.database_url, self._ingest = root, own, database_url, ingest
        self._proc: subprocess.Popen[bytes] | None = None
        self._thread: threading.Thread | None = None
        self._done = threading.Event()
        self.start()

    def start(self) -> None:
        """Start the writer (again, if it died: what it had not stored is read again)."""
        if self.database_url is None:
            assert self._ingest is not None, "a writer needs a database URL or an ingest"
            ingester = JournalIngester(self.root, self.own, self._ingest, adopt=False)
            self._thread = threading.Thread(target=ingester.run, args=(self._done,),
                                            name="opsloop-span-journal", daemon=True)  # fmt: skip
            self._thread.start()
            return
        self._proc = subprocess.Popen(
            [sys.executable, "-m", __name__], stdin=subprocess.PIPE, close_fds=True
        )
        assert self._proc.stdin is not None
        given = {"database_url": self.database_url, "root": str(self.root), "own": self.own}
        with contextlib.suppress(BrokenPipeError):  # died at once: the next check restarts it
            self._proc.stdin.write(json.dumps(given).encode() + b"\n")
            self._proc.stdin.flush()

    def alive(self) -> bool:
        if self._proc is not None:
            return self._proc.poll() is None
        return self._thread is not None and self._thread.is_alive()

    def stop(self, timeout_s: float) -> bool:
        """Tell the writer the journal is closed and wait for it to store the rest; False if
        it did not finish in time (what is left stays on disk for the next writer)."""
        self._done.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            return not self._thread.is_alive()
        if self._proc is None:
            return True
        assert self._proc.stdin is not None
        with contextlib.suppress(BrokenPipeError):
            self._proc.stdin.close()
        try:
            return self._proc.wait(timeout_s) == 0
        except subprocess.TimeoutExpired:
            return False


def main() -> None:
    """The writer process: the first line on stdin says what to store and where; the end of
    stdin (the owner closed the journal, or died) says to store the rest and exit."""
    from opsloop.llm.tracing.local import LocalTracingBackend
    from opsloop.store.database import Store

    logging.basicConfig(level=logging.WARNING, format="opsloop span writer: %(message)s")
    if hasattr(os, "nice"):
        # Storing spans can wait; the requests whose spans they are cannot. At the same
        # priority, each batch's burst (thousands of spans in one transaction) took a core
        # from the server it serves and put its answers in the tail.
        os.nice(_NICENESS)
    given = json.loads(sys.stdin.buffer.readline())
    backend = LocalTracingBackend(Store(given["database_url"]))
    ingester = JournalIngester(Path(given["root"]), given["own"], backend.ingest)
    owner_done = threading.Event()

    def wait_for_owner() -> None:
        sys.stdin.buffer.read()
        owner_done.set()

    threading.Thread(target=wait_for_owner, daemon=True).start()
    ingester.run(owner_done)


if __name__ == "__main__":
    main()
