"""What this machine remembers about local files: a hash cache and the tracked workspaces.

It also keeps the manifests of versions it has added or checked out: a manifest never
changes, so ``status`` can compare a folder with its version without asking the store.

The hash cache maps (path, inode, size, mtime) to a BLAKE3 digest, so re-adding or checking
the status of an unchanged folder stats files and reads none. A snapshot goes one step
further for ``status``: one digest of every file's (path, inode, size, mtime) taken when the
folder last matched its version, so an unchanged folder is recognised from one comparison,
without looking up each file or rebuilding its manifest. A workspace is a local path
that was added as, or checked out from, a dataset version; ``opsloop data status`` compares
each one with its version. Both live in one SQLite file under ``$OPSLOOP_HOME/cache``, kept
apart from the metadata store because they describe this machine's disk, not the team's data.

Like git and DVC, a file rewritten with the same size within the filesystem's timestamp
granularity right after being hashed is not noticed; ext4 and APFS keep nanoseconds.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from opsloop.data.manifest import Manifest
from opsloop.kernel.timeutil import now_ms

__all__ = ["LocalState", "Stat", "Workspace"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS hashes (
    path TEXT PRIMARY KEY, inode INTEGER, size INTEGER, mtime_ns INTEGER, digest TEXT
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS workspaces (
    path TEXT PRIMARY KEY, dataset TEXT, number INTEGER, version_id TEXT, updated_at INTEGER
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS manifests (version_id TEXT PRIMARY KEY, data BLOB) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS snapshots (
    path TEXT PRIMARY KEY, version_id TEXT, fingerprint TEXT
) WITHOUT ROWID;
"""


class Stat(NamedTuple):
    """The part of ``os.stat`` that says whether a file's bytes may have changed (a tuple:
    built and compared in C, which counts at tens of thousands of files)."""

    inode: int
    size: int
    mtime_ns: int

    @classmethod
    def of(cls, st: os.stat_result) -> Stat:
        return cls(st.st_ino, st.st_size, st.st_mtime_ns)


@dataclass(frozen=True)
class Workspace:
    path: str
    dataset: str
    number: int
    version_id: str
    updated_at: int


class LocalState:
    """The hash cache and workspace list in ``<home>/cache/state.db``; thread-safe."""

    def __init__(self, home: Path) -> None:
        folder = Path(home) / "cache"
        folder.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(folder / "state.db", timeout=60, check_same_thread=False)
        self._lock = threading.Lock()
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)

    # -- hash cache ---------------------------------------------------------------------------
    def cached_digests(self, root: str) -> dict[str, tuple[Stat, str]]:
        """Cached (stat, digest) for ``root`` itself and every path below it."""
        with self._lock:
            rows = self._db.execute(
                "SELECT path, inode, size, mtime_ns, digest FROM hashes"
                " WHERE path = ? OR (path >= ? AND path < ?)",
                (root, root + os.sep, root + chr(ord(os.sep) + 1)),
            ).fetchall()
        return {p: (Stat(i, s, m), d) for p, i, s, m, d in rows}

    def remember(self, entries: Iterable[tuple[str, Stat, str]]) -> None:
        """Store (absolute path, stat, digest) for files just hashed."""
        rows = [(p, st.inode, st.size, st.mtime_ns, d) for p, st, d in entries]
        if not rows:
            return
        with self._lock, self._db:
            self._db.executemany("INSERT OR REPLACE INTO hashes VALUES (?, ?, ?, ?, ?)", rows)

    # -- workspaces ---------------------------------------------------------------------------
    def set_workspace(self, path: str, dataset: str, number: int, version_id: str) -> None:
        with self._lock, self._db:
            self._db.execute(
                "INSERT OR REPLACE INTO workspaces VALUES (?, ?, ?, ?, ?)",
                (path, dataset, number, version_id, now_ms()),
            )

    def workspace(self, path: str) -> Workspace | None:
        with self._lock:
            row = self._db.execute("SELECT * FROM workspaces WHERE path = ?", (path,)).fetchone()
        return Workspace(*row) if row else None

    def workspaces(self) -> list[Workspace]:
        with self._lock:
            rows = self._db.execute("SELECT * FROM workspaces ORDER BY path").fetchall()
        return [Workspace(*row) for row in rows]

    # -- snapshots: the stats of a workspace's files when it last matched its version --------
    def snapshot_matches(self, path: str, version_id: str, fingerprint: str) -> bool:
        """Whether ``path``'s files still have the stats they had when they last held
        ``version_id`` (see :func:`opsloop.data.scan.stat_fingerprint`)."""
        with self._lock:
            row = self._db.execute(
                "SELECT version_id, fingerprint FROM snapshots WHERE path = ?", (path,)
            ).fetchone()
        return row == (version_id, fingerprint)

    def set_snapshot(self, path: str, version_id: str, fingerprint: str) -> None:
        with self._lock, self._db:
            self._db.execute(
                "INSERT OR REPLACE INTO snapshots VALUES (?, ?, ?)", (path, version_id, fingerprint)
            )

    # -- manifests (immutable, so a local copy never goes stale) -------------------------------
    def remember_manifest(self, manifest: Manifest) -> None:
        with self._lock, self._db:
            self._db.execute(
                "INSERT OR IGNORE INTO manifests VALUES (?, ?)",
                (manifest.version_id, manifest.compressed()),
            )

    def manifest(self, version_id: str) -> Manifest | None:
        """The manifest of ``version_id`` if this machine has seen it (checked by its hash)."""
        with self._lock:
            row = self._db.execute(
                "SELECT data FROM manifests WHERE version_id = ?", (version_id,)
            ).fetchone()
        if row is None:
            return None
        manifest = Manifest.from_compressed(row[0])
        return manifest if manifest.version_id == version_id else None

    def close(self) -> None:
        with self._lock:
            self._db.close()
