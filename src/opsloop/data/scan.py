"""Turning a local file or folder into a manifest: walk, stat, hash (only what changed).

Every regular file under the folder is part of the version. A symlink is followed when it
points at a file inside the folder and refused when it leaves it or points at a folder (a
version must not silently depend on bytes outside what was added). FIFOs, sockets and devices
are refused, since reading them would block or never end.

Hashing reads each file once: when the bytes also have to go into the local blob cache
(``opsloop data add``), the same read feeds both. Files the hash cache already knows by
(path, inode, size, mtime) are not read at all.
"""

from __future__ import annotations

import os
import stat as stat_module
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from opsloop.data.localstate import LocalState
from opsloop.data.localstate import Stat
from opsloop.data.manifest import FileEntry
from opsloop.data.manifest import Manifest
from opsloop.errors import InvalidInput
from opsloop.errors import NotFound
from opsloop.store.blobs import hash_file
from opsloop.store.local_blobs import LocalBatch

__all__ = ["LocalFile", "Scan", "hash_scan", "scan_path", "stat_fingerprint"]

_SMALL = 1 << 22  # files below 4 MiB are hashed from one read held in memory


class LocalFile(NamedTuple):
    path: str  # path inside the version, '/'-separated
    source: str  # absolute path on disk
    stat: Stat


@dataclass(frozen=True)
class Scan:
    root: str  # absolute path that was scanned
    kind: str  # "file" or "folder"
    files: list[LocalFile]

    def as_single(self, path: str) -> Scan:
        """A one-file scan whose file is called ``path`` in the version (a renamed checkout)."""
        (only,) = self.files
        return Scan(self.root, self.kind, [LocalFile(path, only.source, only.stat)])


def scan_path(path: str | os.PathLike[str]) -> Scan:
    """List the files that adding ``path`` would version, with their stats."""
    root = os.path.abspath(os.fspath(path))
    try:
        st = os.stat(root)
    except FileNotFoundError:
        raise NotFound(f"no such file or folder: {path}") from None
    except OSError as exc:
        raise InvalidInput(f"cannot read {path}: {exc.strerror}") from None
    if stat_module.S_ISREG(st.st_mode):
        return Scan(root, "file", [LocalFile(os.path.basename(root), root, Stat.of(st))])
    if not stat_module.S_ISDIR(st.st_mode):
        raise InvalidInput(f"{path} is not a regular file or a folder")
    files = _walk(root)
    if not files:
        raise InvalidInput(f"{path} is an empty folder: there is nothing to version")
    return Scan(root, "folder", files)


def _walk(root: str) -> list[LocalFile]:
    real_root = os.path.realpath(root)
    files: list[LocalFile] = []
    add, is_regular = files.append, stat_module.S_ISREG  # a hot loop: one lookup, not 10,000
    pending = [(root, "")]  # (folder on disk, its path inside the version + "/")
    while pending:
        folder, prefix = pending.pop()
        try:
            entries = list(os.scandir(folder))
        except OSError as exc:
            raise InvalidInput(f"cannot list {folder}: {exc.strerror}") from None
        for entry in entries:
            if entry.is_symlink():
                st = _followed_link(entry.path, real_root)
            elif entry.is_dir(follow_symlinks=False):
                pending.append((entry.path, f"{prefix}{entry.name}/"))
                continue
            else:
                st = entry.stat(follow_symlinks=False)
            if not is_regular(st.st_mode):
                raise InvalidInput(
                    f"{entry.path} is not a regular file (a FIFO, socket or device); "
                    "remove it or add the files around it"
                )
            add(
                LocalFile(
                    prefix + entry.name, entry.path, Stat(st.st_ino, st.st_size, st.st_mtime_ns)
                )
            )
    return files


def _followed_link(link: str, real_root: str) -> os.stat_result:
    target = os.path.realpath(link)
    if os.path.commonpath([target, real_root]) != real_root:
        raise InvalidInput(
            f"symlink {link} points outside the folder being added (to {target}); "
            "copy the file in or add the folder it lives in"
        )
    try:
        st = os.stat(target)
    except FileNotFoundError:
        raise InvalidInput(f"symlink {link} is broken (it points at {target})") from None
    except OSError as exc:  # a loop (ELOOP), a permission, ...: say which link
        raise InvalidInput(f"symlink {link} cannot be followed: {exc.strerror}") from None
    if stat_module.S_ISDIR(st.st_mode):
        raise InvalidInput(f"symlink {link} points at a folder; symlinked folders are not followed")
    return st


def stat_fingerprint(scan: Scan) -> str:
    """One digest of every scanned file's (path on disk, inode, size, mtime): equal
    fingerprints mean the hash cache would vouch for every file, with nothing added or gone."""
    from blake3 import blake3

    lines = sorted(
        f"{f.source}\0{f.stat.inode}\0{f.stat.size}\0{f.stat.mtime_ns}" for f in scan.files
    )
    return blake3("\n".join(lines).encode()).hexdigest()


def hash_scan(
    scan: Scan,
    state: LocalState,
    *,
    ingest: LocalBatch | None = None,
    on_bytes: Callable[[int], None] | None = None,
) -> tuple[Manifest, int]:
    """The manifest of a scan and how many files had to be read to make it.

    Only files the hash cache does not vouch for are read. With ``ingest``, every file whose
    blob is not cached yet is staged into it from the same read that hashed it; ``on_bytes``
    reports progress in bytes.
    """
    cached = state.cached_digests(scan.root)
    entries: list[FileEntry] = []
    fresh: list[tuple[str, Stat, str]] = []
    pending = 0  # bytes not yet reported to on_bytes (reported in chunks: bars are not free)
    for f in scan.files:
        hit = cached.get(f.source)
        digest = hit[1] if hit and hit[0] == f.stat else None
        if digest is None or (ingest is not None and not ingest.has(digest)):
            digest = _read_file(f, ingest)
            fresh.append((f.source, f.stat, digest))
        entries.append(FileEntry(f.path, digest, f.stat.size))
        pending += f.stat.size
        if on_bytes and (len(entries) % 256 == 0 or pending > _SMALL):
            on_bytes(pending)
            pending = 0
    if on_bytes and pending:
        on_bytes(pending)
    state.remember(fresh)
    return Manifest(entries), len(fresh)


def _read_file(f: LocalFile, ingest: LocalBatch | None) -> str:
    """Hash one file, staging its bytes into ``ingest`` when given; errors name the file."""
    from blake3 import blake3

    try:
        if f.stat.size < _SMALL:
            with open(f.source, "rb") as fh:
                data = fh.read()
            digest = blake3(data).hexdigest()
            if ingest is not None:
                ingest.put_bytes(digest, data)
            return digest
        if ingest is None:
            return hash_file(f.source)
        return ingest.put_copy(Path(f.source))
    except OSError as exc:
        raise InvalidInput(f"cannot read {f.source}: {exc.strerror or exc}") from None
