"""The blob store on a local folder (the embedded default, and every client's cache): blobs
as files fanned out by digest prefix, written to a temporary file and moved into place, with
batches that stage many small files and commit them with one filesystem sync. The contract is
:class:`opsloop.store.blobs.BlobStore`; object stores are :mod:`.object_blobs`.
"""

from __future__ import annotations

import errno
import functools
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO
from typing import Any

from opsloop.errors import StoreError
from opsloop.store.blobs import BlobStore
from opsloop.store.blobs import check_digest
from opsloop.store.blobs import hash_file

__all__ = ["LocalBatch", "LocalBlobStore"]


class LocalBlobStore(BlobStore):
    """Blobs in a local folder, fanned out as ``ab/abcdef...`` to keep folders small."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root).expanduser().resolve()
        self.url = str(self.root)
        self._tmp = self.root / ".tmp"
        self._tmp.mkdir(parents=True, exist_ok=True)
        # Plain strings on the hot paths: pathlib costs more than the syscalls for small blobs.
        self._root_str = str(self.root)
        self._tmp_str = str(self._tmp)

    def path_of(self, digest: str) -> Path:
        """Where a blob lives on disk (it may not exist)."""
        return self.root / digest[:2] / digest

    def _staging_dir(self) -> str:
        return str(self._tmp)  # same filesystem, so the final rename is atomic

    def _exists(self, digest: str) -> bool:
        return os.path.isfile(f"{self._root_str}/{digest[:2]}/{digest}")

    def _commit(self, local_path: Path, digest: str) -> None:
        target = self.path_of(digest)
        target.parent.mkdir(exist_ok=True)
        with open(local_path, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(local_path, target)

    def _open(self, digest: str) -> IO[bytes]:
        return open(self.path_of(digest), "rb")

    def _fetch(self, digest: str, dest: Path) -> None:
        shutil.copyfile(self.path_of(digest), dest)

    def put_verified_bytes(self, blobs: list[tuple[str, bytes | memoryview]]) -> None:
        with self.batch() as batch:
            for digest, data in blobs:
                batch.put_bytes(check_digest(digest), data)

    @contextmanager
    def batch(self) -> Iterator[LocalBatch]:
        """Write many blobs with two filesystem syncs instead of one ``fsync`` per blob.

        Everything put in the block lands when it exits without error, and nothing does when
        it raises: blobs are staged under ``.tmp``, synced, renamed into place, synced again.
        """
        batch = LocalBatch(self)
        try:
            yield batch
        except BaseException:
            batch.discard()
            raise
        batch.commit()


class LocalBatch:
    """Blobs staged for one :meth:`LocalBlobStore.batch`; see there."""

    def __init__(self, store: LocalBlobStore) -> None:
        self.store = store
        self._token = os.urandom(4).hex()
        self._staged: dict[str, str] = {}  # digest -> staging file name

    def has(self, digest: str) -> bool:
        """Whether the blob is stored or staged in this batch."""
        return digest in self._staged or self.store._exists(digest)

    def stage_path(self, digest: str) -> Path:
        """A staging path for ``digest``; write it, then :meth:`staged` it."""
        return Path(self._stage_name(digest))

    def _stage_name(self, digest: str) -> str:
        return f"{self.store._tmp_str}/{digest}.{self._token}"

    def staged(self, digest: str, path: Path) -> None:
        """Take a complete, verified staging file as the blob ``digest``."""
        if self.has(digest):
            path.unlink(missing_ok=True)
        else:
            self._staged[digest] = str(path)

    def put_bytes(self, digest: str, data: bytes | memoryview) -> None:
        """Stage bytes the caller has just hashed to ``digest``."""
        if self.has(digest):
            return
        name = self._stage_name(digest)
        try:
            with open(name, "wb") as out:
                out.write(data)
        except OSError as exc:
            _write_failed(Path(name), exc)
        self._staged[digest] = name

    def put_copy(self, source: Path) -> str:
        """Stage a copy of a (large) file and return its digest, hashed from the copy.

        Hashing the copy rather than the source guarantees the blob holds exactly the bytes
        its name claims, even if the source is being rewritten meanwhile.
        """
        path = self.stage_path(f"copy-{os.urandom(6).hex()}")
        with _writing(path):
            _copy_writing_back(source, path)
        digest = hash_file(path)
        self.staged(digest, path)
        return digest

    def commit(self) -> None:
        if not self._staged:
            return
        _sync_filesystem(self.store._tmp)
        root = self.store._root_str
        made: set[str] = set()
        for digest, path in self._staged.items():
            fanout = digest[:2]
            if fanout not in made:
                os.makedirs(f"{root}/{fanout}", exist_ok=True)
                made.add(fanout)
            os.replace(path, f"{root}/{fanout}/{digest}")
        _sync_filesystem(self.store._tmp)
        self._staged.clear()

    def discard(self) -> None:
        for name in self._staged.values():
            Path(name).unlink(missing_ok=True)
        self._staged.clear()


@contextmanager
def _writing(path: Path) -> Iterator[None]:
    """Turn a failed local write into a ``StoreError`` that says which disk filled up."""
    try:
        yield
    except OSError as exc:
        _write_failed(path, exc)


def _write_failed(path: Path, exc: OSError) -> None:
    """Raise the ``StoreError`` for a failed write to ``path`` (re-raise foreign errors)."""
    path.unlink(missing_ok=True)
    if exc.errno == errno.ENOSPC:
        raise StoreError(
            f"disk full while writing {path.parent}: free some space and run the command "
            "again (nothing already stored was changed)"
        ) from exc
    if exc.filename is None or os.path.abspath(exc.filename) == os.path.abspath(path):
        raise StoreError(f"cannot write {path}: {exc.strerror or exc}") from exc
    raise exc


def _sync_filesystem(path: Path) -> None:
    """Flush the filesystem holding ``path`` (``syncfs`` on Linux, else ``sync``)."""
    libc = _libc()
    if libc is not None and hasattr(libc, "syncfs"):
        fd = os.open(path, os.O_RDONLY)
        try:
            if libc.syncfs(fd) == 0:
                return
        finally:
            os.close(fd)
    os.sync()


@functools.cache
def _libc() -> Any:
    """The C library, for the calls ``os`` lacks (``syncfs``, ``sync_file_range``); or None."""
    try:
        import ctypes

        return ctypes.CDLL(None, use_errno=True)
    except OSError:
        return None


_WRITEBACK_CHUNK = 64 << 20
_SYNC_FILE_RANGE_WRITE = 2


def _copy_writing_back(source: Path, dest: Path) -> None:
    """Copy a large file in the kernel, asking the disk to start writing each 64 MiB as soon as
    it is copied (``sync_file_range``), so the sync that must come before the version is
    registered finds little left to flush: copying and writing out overlap instead of
    following each other. Where either call is missing, a plain copy."""
    libc = _libc()
    start_writeback = getattr(libc, "sync_file_range", None) if libc is not None else None
    if start_writeback is None or not hasattr(os, "copy_file_range"):
        shutil.copyfile(source, dest)
        return
    import ctypes

    start_writeback.argtypes = (ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint)
    with open(source, "rb") as src, open(dest, "wb") as out:
        offset = 0
        while True:
            try:
                copied = os.copy_file_range(src.fileno(), out.fileno(), _WRITEBACK_CHUNK)
            except OSError as exc:
                if offset or exc.errno not in (errno.EXDEV, errno.ENOSYS, errno.EINVAL):
                    raise
                out.close()
                shutil.copyfile(source, dest)  # a filesystem that cannot: copy through memory
                return
            if not copied:
                return
            start_writeback(out.fileno(), offset, copied, _SYNC_FILE_RANGE_WRITE)
            offset += copied
