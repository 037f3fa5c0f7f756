"""The code of a run's commit, kept in the blob store, so it can be put back with no clone.

A run started in a git work tree records its commit, but a commit only helps where it can be
fetched: not on a server that never saw the repository, not after a rebase, not for a branch
nobody pushed. So the run also records the commit's **source tree**: a manifest of every file
(path → BLAKE3 digest, size), its executable bits and symlinks, stored as a blob (the run's
``_opsloop/source-tree.json`` artifact, digest in the ``opsloop.source.tree`` tag), each file a
blob of its own. Blobs are stored once whoever has them, so a new commit adds only the files it
changed. With the diff of uncommitted changes (``_opsloop/git.diff``) it is exactly the code
the run ran; :func:`restore_tree` writes it back, and ``opsloop runs reproduce --clean-env``
uses it wherever the commit cannot be checked out.

What it costs a run: a commit's tree is worked out once per machine and kept in
``$OPSLOOP_HOME/cache/source-trees.db`` with the digest of every git object read, so a new
commit reads only the objects it changed; a store that has a tree has all of its files (the
manifest is written last), so a run on a known commit costs one lookup and one existence check.
A tree over ``OPSLOOP_SOURCE_TREE_MAX_MB`` (default 128: committed data, not code) is left out,
and the run says why in ``opsloop.source.tree_left_out``. Submodules are named, not stored.
"""

from __future__ import annotations

import json
import os
import posixpath
import shutil
import sqlite3
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from dataclasses import field
from functools import cached_property
from pathlib import Path
from typing import Any

from opsloop.errors import InvalidInput
from opsloop.errors import StoreError

__all__ = ["TREE_ARTIFACT", "TREE_TAG", "SourceTree", "apply_diff", "capture_tree",
           "restore_tree", "store_tree"]  # fmt: skip

TREE_TAG = "opsloop.source.tree"
TREE_ARTIFACT = "_opsloop/source-tree.json"
_DEFAULT_MAX_MB = 128
_GIT_TIMEOUT = 120


@dataclass(frozen=True)
class TreeFile:
    path: str
    digest: str
    size: int
    mode: str  # git's: 100644 file, 100755 executable, 120000 symlink (the blob is its target)


@dataclass(frozen=True)
class SourceTree:
    """A commit's files as blobs. Its ``digest`` names the content only (the same tree under
    two commits is one blob); ``commit`` says where it was read from."""

    files: tuple[TreeFile, ...]
    submodules: dict[str, str] = field(default_factory=dict)  # path -> the commit it points at
    commit: str | None = None

    @cached_property
    def canonical(self) -> bytes:
        rows = [[f.path, f.digest, f.size, f.mode] for f in sorted(self.files, key=_path)]
        body = {"files": rows, "submodules": dict(sorted(self.submodules.items()))}
        return json.dumps(body, separators=(",", ":")).encode()

    @cached_property
    def digest(self) -> str:
        from blake3 import blake3

        return blake3(self.canonical).hexdigest()

    @property
    def total_bytes(self) -> int:
        return sum(f.size for f in self.files)

    @classmethod
    def from_canonical(cls, data: bytes) -> SourceTree:
        """Parse a stored manifest, refusing any path that would leave the folder it is
        restored into (absolute, ``..``, ``.git``) or a mode git does not write."""
        from opsloop.store.blobs import check_digest

        try:
            body = json.loads(data)
            rows = body["files"]
            submodules = {str(k): str(v) for k, v in body.get("submodules", {}).items()}
            files = tuple(TreeFile(_safe_path(p), check_digest(d), int(s), str(m))
                          for p, d, s, m in rows)  # fmt: skip
        except (ValueError, KeyError, TypeError) as exc:
            raise InvalidInput(f"not a source tree manifest: {exc}") from None
        if any(f.mode not in ("100644", "100755", "120000") for f in files):
            raise InvalidInput("source tree manifest has a file mode git does not write")
        return cls(files, submodules)


def _path(file: TreeFile) -> str:
    return file.path


def _safe_path(path: Any) -> str:
    if not isinstance(path, str) or not path or "\x00" in path or "\\" in path:
        raise InvalidInput(f"source tree path {path!r} is not a relative POSIX path")
    parts = path.split("/")
    if path.startswith("/") or ".." in parts or ".git" in parts or posixpath.normpath(path) != path:
        raise InvalidInput(f"source tree path {path!r} would leave the folder it is restored in")
    return path


def max_tree_bytes() -> int:
    try:
        return int(float(os.environ.get("OPSLOOP_SOURCE_TREE_MAX_MB", _DEFAULT_MAX_MB)) * 2**20)
    except ValueError:
        return _DEFAULT_MAX_MB * 2**20


def _git(repo: Path, *args: str, stdin: Any = None) -> bytes:
    done = subprocess.run(["git", "-C", str(repo), *args], stdin=stdin, capture_output=True,
                          timeout=_GIT_TIMEOUT, check=True)  # fmt: skip
    return done.stdout


def _ls_tree(repo: Path, commit: str) -> Iterator[tuple[str, str, str, int, str]]:
    """(mode, type, object sha, size, path) of every entry of ``commit``'s tree."""
    for record in _git(repo, "ls-tree", "-r", "-z", "-l", "--full-tree", commit).split(b"\0"):
        if not record:
            continue
        meta, _, path = record.partition(b"\t")
        mode, kind, sha, size = meta.decode().split()
        yield mode, kind, sha, 0 if size == "-" else int(size), path.decode("utf-8", "replace")


def _cat_objects(repo: Path, shas: list[str]) -> Iterator[tuple[str, bytes]]:
    """The contents of git objects, streamed by one ``git cat-file --batch``."""
    if not shas:
        return
    with tempfile.TemporaryFile() as wanted:
        wanted.write("".join(f"{sha}\n" for sha in shas).encode())
        wanted.seek(0)
        proc = subprocess.Popen(["git", "-C", str(repo), "cat-file", "--batch"], stdin=wanted,
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)  # fmt: skip
        assert proc.stdout is not None
        try:
            for _ in shas:
                header = proc.stdout.readline().decode().split()
                if len(header) != 3:
                    raise StoreError(f"git cat-file could not read {header[0] if header else '?'}")
                data = proc.stdout.read(int(header[2]))
                proc.stdout.read(1)  # the newline after each object
                yield header[0], data
        finally:
            proc.stdout.close()
            proc.wait(timeout=_GIT_TIMEOUT)


class _Cache:
    """``$OPSLOOP_HOME/cache/source-trees.db``: the digest of every git object read (by its
    sha, which names its bytes forever) and every commit's tree (a commit's tree never
    changes). A cache that cannot be opened or written is simply not used."""

    def __init__(self) -> None:
        from opsloop.config import home_dir

        path = home_dir() / "cache" / "source-trees.db"
        self.db: sqlite3.Connection | None
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self.db = sqlite3.connect(path, timeout=5, isolation_level=None)
            self.db.executescript(
                "CREATE TABLE IF NOT EXISTS objects (sha TEXT PRIMARY KEY, digest TEXT NOT NULL);"
                "CREATE TABLE IF NOT EXISTS trees (commit_sha TEXT PRIMARY KEY, tree BLOB,"
                " left_out TEXT);"
            )  # fmt: skip
        except (OSError, sqlite3.Error):
            self.db = None

    def tree(self, commit: str) -> tuple[bytes | None, str | None] | None:
        if self.db is None:
            return None
        try:
            row = self.db.execute("SELECT tree, left_out FROM trees WHERE commit_sha = ?",
                                  (commit,)).fetchone()  # fmt: skip
        except sqlite3.Error:
            return None
        return (row[0], row[1]) if row else None

    def digests(self, shas: list[str]) -> dict[str, str]:
        if self.db is None:
            return {}
        found: dict[str, str] = {}
        try:
            for start in range(0, len(shas), 500):
                chunk = shas[start : start + 500]
                marks = ",".join("?" * len(chunk))
                found.update(self.db.execute(
                    f"SELECT sha, digest FROM objects WHERE sha IN ({marks})", chunk))  # fmt: skip
        except sqlite3.Error:
            return {}
        return found

    def remember(self, commit: str, tree: bytes | None, left_out: str | None,
                 objects: dict[str, str]) -> None:  # fmt: skip
        if self.db is None:
            return
        try:
            self.db.execute("BEGIN IMMEDIATE")
            self.db.executemany("INSERT OR IGNORE INTO objects VALUES (?, ?)", objects.items())
            self.db.execute("INSERT OR REPLACE INTO trees VALUES (?, ?, ?)",
                            (commit, tree, left_out))  # fmt: skip
            self.db.execute("COMMIT")
        except sqlite3.Error:
            pass

    def close(self) -> None:
        if self.db is not None:
            self.db.close()


def capture_tree(repo: Path, commit: str) -> tuple[SourceTree | None, str | None]:
    """``commit``'s tree in ``repo``, or None and the reason it was left out."""
    cache = _Cache()
    try:
        known = cache.tree(commit)
        if known is not None:
            data, left_out = known
            if data is None:
                return None, left_out
            tree = SourceTree.from_canonical(data)
            return SourceTree(tree.files, tree.submodules, commit), None
        tree, left_out, objects = _read_tree(repo, commit, cache)
        cache.remember(commit, tree.canonical if tree else None, left_out, objects)
        return tree, left_out
    finally:
        cache.close()


def _read_tree(
    repo: Path, commit: str, cache: _Cache
) -> tuple[SourceTree | None, str | None, dict[str, str]]:
    from blake3 import blake3

    entries, submodules = [], {}
    for mode, kind, sha, size, path in _ls_tree(repo, commit):
        if kind == "commit":
            submodules[path] = sha
        elif kind == "blob":
            entries.append((mode, sha, size, path))
    total, limit = sum(e[2] for e in entries), max_tree_bytes()
    if total > limit:
        reason = (f"the tree of {commit[:12]} holds {total / 2**20:.0f} MiB, over the "
                  f"{limit / 2**20:.0f} MiB of OPSLOOP_SOURCE_TREE_MAX_MB")  # fmt: skip
        return None, reason, {}
    digests = cache.digests(sorted({e[1] for e in entries}))
    unknown = sorted({e[1] for e in entries} - set(digests))
    read = {sha: blake3(data).hexdigest() for sha, data in _cat_objects(repo, unknown)}
    digests.update(read)
    files = tuple(TreeFile(path, digests[sha], size, mode) for mode, sha, size, path in entries)
    return SourceTree(files, submodules, commit), None, read


def store_tree(tree: SourceTree, repo: Path, blobs: Any) -> None:
    """Put ``tree``'s files, then its manifest, in ``blobs`` (a blob store or a server's blob
    API); a store that already has the manifest is left alone. The files' bytes are read from
    ``repo``'s git objects."""
    if not blobs.missing([tree.digest]):
        return
    wanted = set(blobs.missing(sorted({f.digest for f in tree.files})))
    if wanted:
        sha_of = {path: sha for _mode, kind, sha, _size, path
                  in _ls_tree(repo, tree.commit or "HEAD") if kind == "blob"}  # fmt: skip
        shas = {sha_of[f.path]: f.digest for f in tree.files if f.digest in wanted}
        blobs.put_verified_bytes([(shas[sha], data)
                                  for sha, data in _cat_objects(repo, sorted(shas))])  # fmt: skip
    blobs.put_verified_bytes([(tree.digest, tree.canonical)])  # last: it vouches for the rest


def restore_tree(digest: str, blobs: Any, dest: Path) -> SourceTree:
    """Write the source tree ``digest`` from ``blobs`` into the empty folder ``dest``: files
    with their executable bits, then symlinks. Every blob is checked against its digest.

    Raises:
        NotFound: the store has no such tree.
        InvalidInput: the manifest is malformed, or ``dest`` is not empty.
        StoreError: a blob is missing or its bytes do not match.
    """
    from opsloop.errors import NotFound
    from opsloop.store.blobs import hash_file

    dest.mkdir(parents=True, exist_ok=True)
    if any(dest.iterdir()):
        raise InvalidInput(f"{dest} is not empty: restore a source tree into an empty folder")
    if blobs.missing([digest]):
        raise NotFound(f"the blob store has no source tree {digest}")
    staging = dest / ".opsloop-restoring"
    staging.mkdir()
    try:
        blobs.get_many([(digest, staging / "manifest")])
        if hash_file(staging / "manifest") != digest:
            raise StoreError(f"source tree {digest}: the stored manifest does not match it")
        tree = SourceTree.from_canonical((staging / "manifest").read_bytes())
        sizes = {f.digest: f.size for f in tree.files}
        blobs.get_many([(d, staging / d) for d in sizes], sizes=sizes)
        for d in sizes:
            if hash_file(staging / d) != d:
                raise StoreError(f"source tree {digest}: blob {d} does not match its digest")
        links = [f for f in tree.files if f.mode == "120000"]
        for f in tree.files:
            if f.mode == "120000":
                continue
            target = dest / f.path
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(staging / f.digest, target)
            if f.mode == "100755":
                target.chmod(target.stat().st_mode | 0o111)
        for f in links:  # after every file: nothing is ever written through a link
            target = dest / f.path
            target.parent.mkdir(parents=True, exist_ok=True)
            os.symlink((staging / f.digest).read_bytes().decode(), target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return tree


def apply_diff(dest: Path, diff: bytes) -> None:
    """Apply a run's recorded diff (``git diff HEAD --binary``) to the tree in ``dest``, a
    worktree or a restored folder (made a scratch repository for as long as it takes, so git
    applies it relative to ``dest`` and never to a repository around it).

    Raises:
        StoreError: the diff does not apply.
    """
    scratch = not (dest / ".git").exists()
    if scratch:
        _git(dest, "init", "-q")
    patch = dest / ".opsloop-run.diff"
    patch.write_bytes(diff)
    try:
        applied = subprocess.run(["git", "-C", str(dest), "apply", "--binary", patch.name],
                                 capture_output=True, text=True, timeout=_GIT_TIMEOUT)  # fmt: skip
    finally:
        patch.unlink()
        if scratch:
            shutil.rmtree(dest / ".git", ignore_errors=True)
    if applied.returncode != 0:
        raise StoreError(f"the run's recorded diff does not apply: {applied.stderr.strip()}")
