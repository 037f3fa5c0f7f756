"""The prediction log's shared journal: one Redis Stream per kind of row, for every replica.

Configured (``prediction_stream = "redis://..."``), a replica appends each row to the stream
(``XADD``) before the answer goes out, instead of to its own journal file: an acknowledged
prediction then survives the loss of the replica's disk. Sealing drains the stream through one
consumer group, so every entry is sealed by one replica, whichever reads it first::

    KEY:predictions   entries {"row": <the JSON line a journal would hold>}
    KEY:labels        the same for ground truth
    group "sealers"   one consumer per process (replica id + pid + a nonce)

A sealer reads its own pending entries first (a seal that failed is retried), then entries
another sealer took and left for ``claim_idle_ms`` (a replica killed mid-seal), then new ones;
it ``XACK``s and ``XDEL``s them once their Parquet objects are stored, so the stream holds only
rows not yet sealed, and a reader adds them all (``XRANGE``) to the sealed files. A sealer
killed after storing and before acknowledging leaves rows that the next sealer stores again:
the same rows, which a reader's ``DISTINCT`` counts once.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import uuid
from collections.abc import Callable
from collections.abc import Iterator
from typing import Any

from opsloop.errors import StoreError

__all__ = ["PredictionStream"]

_GROUP = "sealers"
_PAGE = 5000  # entries per read


class PredictionStream:
    """The streams under ``key`` on the Redis at ``url``, as the process named by ``replica``
    sees them. Thread-safe (redis-py's client is); Redis errors come out as StoreError.

    Example::

        stream = PredictionStream("redis://127.0.0.1:6379/0", "opsloop:predlog", "r1")
        stream.append("labels", '{"request_id": "a", ...}\\n')
        taken = stream.take("labels")  # [(entry id, row), ...]
        stream.done("labels", [entry for entry, _ in taken])
    """

    def __init__(self, url: str, key: str, replica: str, *, claim_idle_ms: int = 10_000) -> None:
        import redis

        self.url, self.key = url, key
        self.consumer = f"{replica}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.claim_idle_ms = claim_idle_ms
        self.redis = redis.Redis.from_url(url, socket_timeout=10, socket_connect_timeout=5)
        self._grouped: set[str] = set()
        self._seen: dict[str, dict[bytes, dict[str, Any]]] = {}  # kind -> entry id -> row
        self._seen_lock = threading.Lock()

    def _stream(self, kind: str) -> str:
        return f"{self.key}:{kind}"

    def append(self, kind: str, line: str) -> None:
        """Add one row (its JSON line) durably, or raise: the caller then does not answer."""
        with _translated(self.url):
            self.redis.xadd(self._stream(kind), {"row": line})

    def rows(self, kind: str) -> list[dict[str, Any]]:
        """Every row not yet sealed, oldest first (what a reader adds to the sealed files).

        Read incrementally: this object keeps the rows it has read by entry id and asks only
        for entries after the last one, with the stream's first entry and length in the same
        transaction. Entries before the first were sealed (and deleted): they are dropped.
        If more are kept than the stream holds, entries went out of order (two sealers): one
        full read then. A reader that polls (the rollout leader, a server's monitors) thus
        reads each row once, however long the stream grows while the store is away."""
        stream = self._stream(kind)
        with self._seen_lock, _translated(self.url):
            seen = self._seen.setdefault(kind, {})
            for _ in range(2):  # the second time from scratch
                last = next(reversed(seen), None)
                start = "-" if last is None else "(" + last.decode()
                while True:
                    pipe = self.redis.pipeline(transaction=True)
                    pipe.xrange(stream, start, "+", count=_PAGE)
                    pipe.xrange(stream, "-", "+", count=1)
                    pipe.xlen(stream)
                    page, first, length = pipe.execute()
                    for entry, fields in page:
                        seen[entry] = json.loads(fields[b"row"])
                    if len(page) < _PAGE:
                        break
                    start = "(" + page[-1][0].decode()
                oldest = _order(first[0][0]) if first else None
                for entry in list(seen):  # in id order: the sealed prefix comes first
                    if oldest is not None and _order(entry) >= oldest:
                        break
                    del seen[entry]
                if len(seen) == length:
                    break
                seen.clear()
            return list(seen.values())

    def oldest_ms(self, kind: str) -> int | None:
        """When the oldest row not sealed yet was added (its entry id's milliseconds), or
        None when the stream holds none."""
        with _translated(self.url):
            first = self.redis.xrange(self._stream(kind), "-", "+", count=1)
        return int(first[0][0].split(b"-")[0]) if first else None

    def delete_rows(
        self, kind: str, doomed: Callable[[dict[str, Any]], bool], *, dry_run: bool = False
    ) -> list[dict[str, Any]]:
        """Delete (``dry_run``: only find) the rows not sealed yet for which ``doomed`` is
        true, for an erasure; the rows found. An entry a sealer has taken but not stored yet
        is deleted too: the sealer's next ``take`` finds it gone and drops it."""
        found: list[dict[str, Any]] = []
        doomed_ids: list[bytes] = []
        start = "-"
        with _translated(self.url):
            while True:
                page = self.redis.xrange(self._stream(kind), start, "+", count=_PAGE)
                for entry, fields in page:
                    row = json.loads(fields[b"row"])
                    if doomed(row):
                        found.append(row)
                        doomed_ids.append(entry)
                if len(page) < _PAGE:
                    break
                start = "(" + page[-1][0].decode()
            if doomed_ids and not dry_run:
                self.redis.xdel(self._stream(kind), *doomed_ids)
        return found

    def take(self, kind: str) -> list[tuple[bytes, dict[str, Any]]]:
        """Entries for this process to seal: its own pending ones, ones left by a sealer gone
        quiet for ``claim_idle_ms``, and new ones (up to one page of each)."""
        import redis

        stream = self._stream(kind)
        with _translated(self.url):
            if stream not in self._grouped:
                try:
                    self.redis.xgroup_create(stream, _GROUP, id="0", mkstream=True)
                except redis.ResponseError as exc:  # BUSYGROUP: another replica made it first
                    if "BUSYGROUP" not in str(exc):
                        raise
                self._grouped.add(stream)
            entries = []
            for start in ("0", ">"):
                if start == ">":  # after our own: what the quiet ones left
                    claimed = self.redis.xautoclaim(
                        stream, _GROUP, self.consumer, self.claim_idle_ms, "0-0", count=_PAGE
                    )
                    entries.extend(claimed[1])
                read = self.redis.xreadgroup(_GROUP, self.consumer, {stream: start}, count=_PAGE)
                for _, page in read:
                    entries.extend(page)
            # an entry deleted while pending comes back empty: acknowledged, it leaves the group
            gone = [entry for entry, fields in entries if not fields or b"row" not in fields]
            if gone:
                self.redis.xack(stream, _GROUP, *gone)
        seen: dict[bytes, dict[str, Any]] = {}
        for entry, fields in entries:
            if fields and b"row" in fields:
                seen.setdefault(entry, json.loads(fields[b"row"]))
        return list(seen.items())

    def done(self, kind: str, entries: list[bytes]) -> None:
        """Acknowledge and delete sealed entries."""
        if not entries:
            return
        stream = self._stream(kind)
        with _translated(self.url):
            pipe = self.redis.pipeline()
            pipe.xack(stream, _GROUP, *entries)
            pipe.xdel(stream, *entries)
            pipe.execute()

    def close(self) -> None:
        """Leave the group if nothing is pending for this process (a pending entry would be
        lost with its consumer), and close the connections."""
        for stream in self._grouped:
            with _translated(self.url):
                pending = self.redis.xpending_range(stream, _GROUP, "-", "+", 1, self.consumer)
                if not pending:
                    self.redis.xgroup_delconsumer(stream, _GROUP, self.consumer)
        self.redis.close()


def _order(entry: bytes) -> tuple[int, int]:
    """A stream entry id (``ms-seq``) as numbers, to compare ids as Redis orders them."""
    ms, _, seq = entry.partition(b"-")
    return int(ms), int(seq or 0)


@contextlib.contextmanager
def _translated(url: str) -> Iterator[None]:
    """Redis's errors (connection refused, timeouts, replies) as StoreError, at the edge."""
    import redis

    try:
        yield
    except redis.RedisError as exc:
        raise StoreError(f"prediction stream {url}: {type(exc).__name__}: {exc}") from exc
