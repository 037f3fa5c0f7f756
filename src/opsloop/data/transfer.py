"""Moving blobs between the local cache, the shared blob store and working folders.

Three rules hold for every transfer:

- Only what is missing moves: the cache and the remote are asked which digests they lack.
- Nothing half-written is ever in place: every file is written under a temporary name in the
  folder it belongs to and renamed when complete, so an interrupted ``pull`` or ``checkout``
  resumes by running it again, redoing only the files that had not landed.
- Bytes are checked against their digest whenever they cross a boundary (remote → cache,
  cache → working folder); a mismatch is reported as a corrupted blob and never returned.
"""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Callable
from collections.abc import Iterable
from pathlib import Path

from opsloop.data.backend import BlobRemote
from opsloop.data.manifest import FileEntry
from opsloop.data.manifest import Manifest
from opsloop.errors import InvalidInput
from opsloop.errors import StoreError
from opsloop.store.blobs import hash_file
from opsloop.store.local_blobs import LocalBlobStore

__all__ = [
    "check_declared_sizes",
    "check_free_space",
    "copy_verified",
    "fetch_into_cache",
    "materialize",
    "materialized_copy",
    "push_from_cache",
    "verify_blob",
    "verify_copy",
]

_SMALL = 1 << 22


def _corrupt(digest: str, where: str, path: str | None = None) -> StoreError:
    shown = f" (file {path})" if path else ""
    return StoreError(
        f"blob {digest}{shown} is corrupted in {where}: its bytes do not hash to its name",
        details={"digest": digest, "path": path, "where": where},
    )


def verify_blob(cache: LocalBlobStore, digest: str, path: str | None = None) -> Path:
    """The cached blob's location, after checking its bytes; a corrupted one is removed."""
    blob = cache.path_of(digest)
    if hash_file(blob) != digest:
        raise _cached_corrupt(blob, digest, Path(path or digest))
    return blob


def check_declared_sizes(cache: LocalBlobStore, entries: Iterable[FileEntry], ref: str) -> None:
    """Refuse a checkout whose manifest declares sizes its intact blobs do not have (one
    ``stat`` per file, before any byte is written): a manifest sent over REST says what it
    likes, and a wrong size would mislead the free-space check, progress and every listing."""
    for entry in entries:
        blob = cache.path_of(entry.digest)
        held = os.path.getsize(blob)
        if held != entry.size and hash_file(blob) == entry.digest:  # else the blob is corrupt,
            raise InvalidInput(  # which writing it reports (and repairs) as it always has
                f"{ref} declares {entry.size:,} bytes for {entry.path!r} but its blob holds "
                f"{held:,}: the version's manifest is wrong; add the files again"
            )


def check_free_space(folder: Path, needed: int) -> None:
    """Refuse before writing when ``folder``'s disk cannot hold ``needed`` more bytes."""
    folder.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(folder).free
    if needed > free:
        raise StoreError(
            f"not enough disk space in {folder}: need {needed:,} bytes, {free:,} free; "
            "nothing was written"
        )


def push_from_cache(
    cache: LocalBlobStore,
    remote: BlobRemote,
    entries: list[FileEntry],
    on_done: Callable[[int], None] | None = None,
) -> tuple[int, int]:
    """Upload the blobs of ``entries`` the remote lacks; returns (files, bytes) sent."""
    sizes = {e.digest: e.size for e in entries}
    missing = remote.missing(list(sizes))
    absent = [d for d in missing if not cache.exists(d)]
    if absent:
        raise StoreError(
            f"{len(absent)} blob(s) to push are not in the local cache {cache.root} "
            f"(first: {absent[0]}); add or pull the version on this machine first"
        )
    items = [(verify_blob(cache, d), d) for d in missing]
    remote.put_verified(items, on_done)
    return len(items), sum(sizes[d] for d in missing)


def fetch_into_cache(
    cache: LocalBlobStore,
    remote: BlobRemote,
    entries: list[FileEntry],
    on_done: Callable[[int], None] | None = None,
) -> tuple[int, int]:
    """Download the blobs of ``entries`` the cache lacks, verified; returns (files, bytes)."""
    sizes = {e.digest: e.size for e in entries}
    wanted = [d for d in sizes if not cache.exists(d)]
    if not wanted:
        return 0, 0
    check_free_space(cache.root, sum(sizes[d] for d in wanted))
    with cache.batch() as batch:
        staging = [(d, batch.stage_path(d)) for d in wanted]
        try:
            remote.get_many(staging, on_done, sizes)
        except OSError as exc:
            raise StoreError(f"download into {cache.root} failed: {exc}") from exc
        for digest, path in staging:
            if hash_file(path) != digest:
                raise _corrupt(digest, f"the blob store {remote.url}")
            batch.staged(digest, path)
    return len(wanted), sum(sizes[d] for d in wanted)


def _cached_corrupt(blob: Path, digest: str, dest: Path) -> StoreError:
    blob.unlink(missing_ok=True)
    error = _corrupt(digest, f"the local cache ({blob})", str(dest))
    error.message += "; it was removed from the cache: pull the version again"
    return error


def copy_verified(blob: Path, digest: str, dest: Path, *, link: bool = False) -> None:
    """Write ``dest`` from a cached blob, checking the bytes; atomic (temp file + rename).

    With ``link`` the file is hard-linked to the blob when the filesystem allows it (for
    read-only materialisations inside the cache); otherwise it is an independent copy.
    """
    tmp = dest.with_name(f".{dest.name}.opsloop-part")
    try:
        if link:
            if hash_file(blob) != digest:
                raise _cached_corrupt(blob, digest, dest)
            try:
                os.link(blob, tmp)
            except OSError:
                shutil.copyfile(blob, tmp)
        elif os.path.getsize(blob) < _SMALL:
            from blake3 import blake3

            data = blob.read_bytes()
            if blake3(data).hexdigest() != digest:
                raise _cached_corrupt(blob, digest, dest)
            tmp.write_bytes(data)
        else:
            shutil.copyfile(blob, tmp)
            if hash_file(tmp) != digest:
                raise _cached_corrupt(blob, digest, dest)
        os.replace(tmp, dest)
    except OSError as exc:
        raise StoreError(f"cannot write {dest}: {exc.strerror or exc}") from exc
    finally:
        tmp.unlink(missing_ok=True)


def materialize(
    cache: LocalBlobStore,
    manifest: Manifest,
    dest: Path,
    *,
    link: bool = False,
    skip: Callable[[FileEntry], bool] | None = None,
    on_done: Callable[[int], None] | None = None,
) -> int:
    """Write every file of ``manifest`` under ``dest`` from the cache; returns files written."""
    written = 0
    made: set[Path] = set()
    for entry in manifest.entries:
        if skip and skip(entry):
            continue
        target = dest.joinpath(*entry.path.split("/"))
        if target.parent not in made:
            target.parent.mkdir(parents=True, exist_ok=True)
            made.add(target.parent)
        copy_verified(cache.path_of(entry.digest), entry.digest, target, link=link)
        written += 1
        if on_done:
            on_done(entry.size)
    return written


def materialized_copy(
    cache: LocalBlobStore, remote: BlobRemote | None, manifest: Manifest, root: Path
) -> Path:
    """A complete, read-only local copy of ``manifest`` at ``root``, built once and shared.

    Blobs the cache lacks are fetched from ``remote`` first (verified). The copy is built under
    a temporary name and renamed, with a completion marker, so concurrent processes never see
    half of it and the second one simply reuses the first one's.
    """
    if (root / ".opsloop-complete").exists():
        return root
    if remote is not None:
        fetch_into_cache(cache, remote, list(manifest.entries))
    staging = root.with_name(f"{root.name}.{os.getpid()}.{threading.get_ident()}.part")
    shutil.rmtree(staging, ignore_errors=True)
    try:
        staging.mkdir(parents=True)
        materialize(cache, manifest, staging, link=True)
        (staging / ".opsloop-complete").touch()
        try:
            os.replace(staging, root)
        except OSError:  # another process finished first
            if not (root / ".opsloop-complete").exists():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return root


def verify_copy(root: Path, manifest: Manifest) -> None:
    """Check every file of a local copy against its digest before it is used (a model is about
    to be loaded from it); a mismatch discards the copy and raises ``StoreError``."""
    for entry in manifest.entries:
        path = root.joinpath(*entry.path.split("/"))
        try:
            intact = hash_file(path) == entry.digest
        except OSError:
            intact = False
        if not intact:
            shutil.rmtree(root, ignore_errors=True)
            raise _corrupt(entry.digest, f"the local copy {root}", entry.path)
