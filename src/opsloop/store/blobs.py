"""The content-addressed blob store: every file is stored once, under its BLAKE3 hash.

Contract for backends (:class:`BlobStore` subclasses):

- A blob's key is the 64-hex BLAKE3 digest of its bytes; a stored blob never changes, so a
  reader may cache it forever and a writer that finds it present has nothing to do.
- Writes are all-or-nothing: a blob is either absent or complete. Bytes are first written to a
  local temporary file while they are hashed, checked against the digest the caller claimed,
  and only then moved into place (``os.replace`` locally, a single PUT on object stores).
- Instances are thread-safe. Backends implement four private hooks (``_exists``,
  ``_commit``, ``_open``, ``_fetch``); the public methods add hashing, checking and error
  translation once, here.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from abc import ABC
from abc import abstractmethod
from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Iterator
from collections.abc import Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import IO
from typing import Any
from typing import Protocol
from typing import TypeAlias

from opsloop.errors import InvalidInput
from opsloop.errors import NotFound
from opsloop.errors import OpsloopError
from opsloop.errors import StoreError

__all__ = [
    "TRANSFER_THREADS",
    "BlobRemote",
    "BlobStore",
    "Downloads",
    "OnDone",
    "Sizes",
    "Uploads",
    "batch_over_limit",
    "check_digest",
    "hash_file",
    "in_threads",
    "translate_errors",
]

_DIGEST = re.compile(r"^[0-9a-f]{64}$")
_CHUNK = 1 << 20
TRANSFER_THREADS = 16  # parallel transfers, shared by every backend's bulk paths

# The bulk methods' arguments, the same for every backend and for a server's blob API.
Uploads: TypeAlias = list[tuple[Path, str]]  # (local file, its checked digest)
Downloads: TypeAlias = list[tuple[str, Path]]  # (digest, temp path to write it to)
OnDone: TypeAlias = Callable[[int], None]  # progress: called with how many more are done
Sizes: TypeAlias = Mapping[str, int]  # digest -> bytes, where the caller knows them


def hash_file(path: str | os.PathLike[str]) -> str:
    """BLAKE3 hex digest of a file, memory-mapped and multi-threaded for large files."""
    from blake3 import blake3

    if os.path.getsize(path) >= 1 << 22:
        return blake3(max_threads=blake3.AUTO).update_mmap(path).hexdigest()
    with open(path, "rb") as fh:
        return blake3(fh.read()).hexdigest()


def check_digest(digest: str) -> str:
    """Return ``digest`` if it is a 64-hex BLAKE3 digest, else raise ``InvalidInput``."""
    if not isinstance(digest, str) or not _DIGEST.match(digest):
        raise InvalidInput(f"not a BLAKE3 digest (64 lowercase hex characters): {digest!r}")
    return digest


class BlobRemote(Protocol):
    """What code that moves many blobs needs: a :class:`BlobStore`, or a server's blob API
    (:class:`~opsloop.store.http_blobs.HttpBlobRemote`), interchangeably."""

    url: str

    def missing(self, digests: list[str]) -> list[str]: ...

    def put_file(self, path: Path, digest: str) -> str: ...

    def get_file(self, digest: str, dest: Path) -> Path: ...

    def put_verified(self, items: Uploads, on_done: OnDone | None = None) -> None: ...

    def put_verified_bytes(self, blobs: list[tuple[str, bytes | memoryview]]) -> None: ...

    def get_many(
        self, items: Downloads, on_done: OnDone | None = None, sizes: Sizes | None = None
    ) -> None: ...


class BlobStore(ABC):
    """A content-addressed store of immutable blobs; see the module docstring for the contract."""

    url: str

    # -- hooks a backend implements ---------------------------------------------------------
    @abstractmethod
    def _exists(self, digest: str) -> bool: ...

    @abstractmethod
    def _commit(self, local_path: Path, digest: str) -> None:
        """Move a complete, verified local file into place as ``digest`` (may consume it)."""

    @abstractmethod
    def _open(self, digest: str) -> IO[bytes]:
        """Open the blob for reading; raise FileNotFoundError when absent."""

    def _fetch(self, digest: str, dest: Path) -> None:
        """Copy the blob to ``dest`` (a temp path the caller renames); override to go faster."""
        with self._open(digest) as src, open(dest, "wb") as out:
            shutil.copyfileobj(src, out, _CHUNK)

    # -- public API ---------------------------------------------------------------------------
    def exists(self, digest: str) -> bool:
        """Whether the blob is stored."""
        with translate_errors(digest):
            return self._exists(check_digest(digest))

    def missing(self, digests: Iterable[str]) -> list[str]:
        """The digests among ``digests`` that are not stored yet, in order, without repeats."""
        return [d for d in dict.fromkeys(digests) if not self.exists(d)]

    def put_verified(self, items: Uploads, on_done: OnDone | None = None) -> None:
        """Store many local files whose digests the caller has just checked, in parallel.

        ``on_done(nbytes)`` is called once per stored file (for progress bars). Backends with
        a bulk path (object stores) override this; the default runs ``_commit`` on threads.
        """
        in_threads(items, lambda path, digest: self._commit_copy(path, digest), on_done)

    def put_verified_bytes(self, blobs: list[tuple[str, bytes | memoryview]]) -> None:
        """Store many small blobs held in memory whose digests the caller has just checked
        (a batch upload to the server). The default stages them as files for
        :meth:`put_verified`; the local store writes them as one batch."""
        with tempfile.TemporaryDirectory(prefix="opsloop-blobs-", dir=self._staging_dir()) as tmp:
            items = []
            for digest, data in blobs:
                path = Path(tmp) / check_digest(digest)
                path.write_bytes(data)
                items.append((path, digest))
            self.put_verified(items)

    def get_many(
        self, items: Downloads, on_done: OnDone | None = None, sizes: Sizes | None = None
    ) -> None:
        """Fetch many blobs to local paths (temp names the caller verifies and renames).

        ``sizes`` (digest → bytes, where the caller knows them) lets a remote batch small
        blobs; a store reads its own blobs without them."""

        def fetch(digest: str, dest: Path) -> None:
            with translate_errors(digest):
                self._fetch(check_digest(digest), dest)

        in_threads([(d, p) for d, p in items], fetch, on_done)

    def read_many(self, digests: Iterable[str], max_bytes: int) -> list[tuple[str, bytes]]:
        """Many blobs in memory, as ``(digest, bytes)`` in the order asked (repeats dropped),
        at most ``max_bytes`` in all: ``InvalidInput`` beyond, ``NotFound`` for an unknown one.

        A server answers a batch download with this. The default opens each blob, which costs
        nothing locally; an object store overrides it, since a request per blob is what makes
        many small files slow there (packed blobs come in a few ranged reads instead)."""
        pairs: list[tuple[str, bytes]] = []
        total = 0
        for digest in dict.fromkeys(digests):
            with self.open(digest) as handle:
                data = handle.read(max_bytes - total + 1)
            total += len(data)
            if total > max_bytes:
                raise batch_over_limit(total, max_bytes)
            pairs.append((digest, data))
        return pairs

    def put_file(self, path: str | os.PathLike[str], digest: str | None = None) -> str:
        """Store a local file; return its digest. A claimed ``digest`` is checked first."""
        digest = check_digest(digest) if digest else hash_file(path)
        if self.exists(digest):
            return digest
        with self._staging() as tmp:
            shutil.copyfile(path, tmp)
            return self._verify_and_commit(tmp, digest)

    def put_stream(self, stream: Iterable[bytes], digest: str) -> str:
        """Store bytes arriving in chunks (an upload), checked against the claimed digest."""
        from blake3 import blake3

        check_digest(digest)
        with self._staging() as tmp:
            hasher = blake3()
            with open(tmp, "wb") as out:
                for chunk in stream:
                    hasher.update(chunk)
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            actual = hasher.hexdigest()
            if actual != digest:
                raise InvalidInput(
                    f"upload does not match its digest: claimed {digest}, got {actual}"
                )
            if not self.exists(digest):
                with translate_errors(digest):
                    self._commit(tmp, digest)
            return digest

    def put_bytes(self, data: bytes) -> str:
        """Store bytes held in memory; return their digest."""
        from blake3 import blake3

        digest = blake3(data).hexdigest()
        return self.put_stream([data], digest)

    def open(self, digest: str) -> IO[bytes]:
        """Open a stored blob for reading (binary). The caller closes it."""
        with translate_errors(digest):
            return self._open(check_digest(digest))

    def read_bytes(self, digest: str) -> bytes:
        """The whole blob in memory: for small blobs only."""
        with self.open(digest) as fh:
            return fh.read()

    def get_file(self, digest: str, dest: str | os.PathLike[str]) -> Path:
        """Write the blob to ``dest`` atomically: ``dest`` is never left half-written."""
        dest = Path(dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
        os.close(fd)
        tmp = Path(tmp_name)
        try:
            with translate_errors(digest):
                self._fetch(check_digest(digest), tmp)
            os.replace(tmp, dest)
        finally:
            tmp.unlink(missing_ok=True)
        return dest

    # -- helpers ------------------------------------------------------------------------------
    def _commit_copy(self, path: Path, digest: str) -> None:
        """Commit a copy of ``path`` (``_commit`` may consume the file it is given)."""
        if self.exists(digest):
            return
        with self._staging() as tmp:
            shutil.copyfile(path, tmp)
            with translate_errors(digest):
                self._commit(tmp, digest)

    @contextmanager
    def _staging(self) -> Iterator[Path]:
        fd, name = tempfile.mkstemp(prefix="opsloop-blob-", dir=self._staging_dir())
        os.close(fd)
        try:
            yield Path(name)
        finally:
            Path(name).unlink(missing_ok=True)

    def _staging_dir(self) -> str | None:
        return None

    def _verify_and_commit(self, tmp: Path, digest: str) -> str:
        actual = hash_file(tmp)
        if actual != digest:
            raise InvalidInput(f"file does not match its digest: claimed {digest}, got {actual}")
        with translate_errors(digest):
            self._commit(tmp, digest)
        return digest


def batch_over_limit(size: int, max_bytes: int) -> InvalidInput:
    """The error for a batch download asking for more than one response may carry."""
    return InvalidInput(
        f"a batch of {size:,} bytes is over the {max_bytes:,} byte limit; "
        "ask for fewer blobs per request"
    )


@contextmanager
def translate_errors(digest: str) -> Iterator[None]:
    """Turn a backend's own exceptions into ``NotFound``/``StoreError``, so callers see one
    error vocabulary whichever store (local, fsspec) holds the blob ``digest``."""
    try:
        yield
    except OpsloopError:
        raise
    except FileNotFoundError as exc:
        raise NotFound(f"blob {digest} is not in the blob store") from exc
    except Exception as exc:  # fsspec backends raise anything from botocore to OSError
        raise StoreError(f"blob store error on {digest}: {exc.__class__.__name__}: {exc}") from exc


def in_threads(
    items: list[tuple[Any, Any]],
    work: Callable[[Any, Any], Any],
    on_done: OnDone | None,
    threads: int = TRANSFER_THREADS,
) -> None:
    """``work(*item)`` for every item on ``threads`` threads, ``on_done(1)`` after each; the
    first error is raised once the pool is done (every bulk transfer path, of every backend)."""
    from concurrent.futures import ThreadPoolExecutor

    def one(item: tuple[Any, Any]) -> None:
        work(*item)
        if on_done:
            on_done(1)

    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(one, items))
