"""Blobs on an object store (S3, MinIO, moto; any fsspec filesystem), small ones in packs.

The same content-addressed contract as :mod:`opsloop.store.blobs`; what an object store adds
is that it answers requests, not bytes, so many small blobs travel together as packs
(:mod:`opsloop.store.packs`) and a pull reads them back with a few ranged GETs.
"""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Iterable
from collections.abc import Iterator
from collections.abc import Mapping
from pathlib import Path
from typing import IO
from typing import Any
from typing import TypeVar

from opsloop.errors import InvalidInput
from opsloop.store.blobs import TRANSFER_THREADS
from opsloop.store.blobs import BlobStore
from opsloop.store.blobs import Downloads
from opsloop.store.blobs import OnDone
from opsloop.store.blobs import Sizes
from opsloop.store.blobs import Uploads
from opsloop.store.blobs import batch_over_limit
from opsloop.store.blobs import check_digest
from opsloop.store.blobs import translate_errors
from opsloop.store.packs import PackedBlob
from opsloop.store.packs import build_pack
from opsloop.store.packs import coalesce
from opsloop.store.packs import parse_index
from opsloop.store.packs import plan_packs

__all__ = ["FsspecBlobStore"]

_PACK_UPLOADS = 4  # packs built and sent at once (each up to 64 MiB in memory)
_PACK_INDEX_FRESH_S = 2.0  # an existence check re-lists the packs at most this often
Item = TypeVar("Item")


class FsspecBlobStore(BlobStore):
    """Blobs on any fsspec filesystem, e.g. ``s3://bucket/prefix`` (S3, MinIO, moto).

    A blob is either its own object, ``<base>/ab/abcdef...``, or lies in a pack under
    ``<base>/packs/`` (many small blobs pushed together; see :mod:`opsloop.store.packs`).
    Readers look for the object first, then in the packs' indexes, which a process reads
    once and again whenever a blob it is asked for is in neither.
    """

    def __init__(self, url: str, storage_options: dict[str, Any] | None = None) -> None:
        import fsspec

        self.url = url.rstrip("/")
        try:
            self.fs, self.base = fsspec.core.url_to_fs(self.url, **(storage_options or {}))
        except (ImportError, ValueError) as exc:
            raise InvalidInput(f"cannot open blob store {url!r}: {exc}") from exc
        self._packed: dict[str, PackedBlob] = {}
        self._indexes_read: set[str] = set()
        self._indexes_checked = float("-inf")
        self._packs_lock = threading.Lock()

    def _key(self, digest: str) -> str:
        return f"{self.base}/{digest[:2]}/{digest}"

    def _pack_key(self, pack_id: str, suffix: str) -> str:
        return f"{self.base}/packs/{pack_id}.{suffix}"

    def _exists(self, digest: str) -> bool:
        if self._in_pack(digest, reread_after=_PACK_INDEX_FRESH_S) is not None:
            return True
        return bool(self.fs.exists(self._key(digest)))

    def _commit(self, local_path: Path, digest: str) -> None:
        self.fs.put_file(str(local_path), self._key(digest))

    def _open(self, digest: str) -> IO[bytes]:
        packed = self._in_pack(digest, reread_after=0.0)
        if packed is not None:
            return io.BytesIO(self._read_packed(packed))
        return self.fs.open(self._key(digest), "rb")

    def _fetch(self, digest: str, dest: Path) -> None:
        packed = self._in_pack(digest, reread_after=0.0)
        if packed is not None:
            dest.write_bytes(self._read_packed(packed))
        else:
            self.fs.get_file(self._key(digest), str(dest))

    def missing(self, digests: Iterable[str]) -> list[str]:
        """One listing when that is cheaper than a request per digest (a big push)."""
        wanted = list(dict.fromkeys(check_digest(d) for d in digests))
        if wanted:
            with translate_errors(wanted[0]):
                self._read_pack_indexes()
            wanted = [d for d in wanted if d not in self._packed]
        if len(wanted) < 64:
            return self._missing_each(wanted)
        with translate_errors(wanted[0]):
            try:
                sample = self.fs.ls(f"{self.base}/{wanted[0][:2]}", detail=False, refresh=True)
            except FileNotFoundError:
                sample = []
            if len(sample) * 256 > 10 * len(wanted):  # a big store: ask about each digest
                return self._missing_each(wanted)
            self.fs.invalidate_cache(self.base)
            present = {p.rsplit("/", 1)[-1] for p in self.fs.find(self.base)}
        return [d for d in wanted if d not in present]

    def _missing_each(self, wanted: list[str]) -> list[str]:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(TRANSFER_THREADS) as pool:
            present = list(pool.map(self.exists, wanted))
        return [d for d, here in zip(wanted, present, strict=True) if not here]

    def put_verified(self, items: Uploads, on_done: OnDone | None = None) -> None:
        """Small blobs go up in packs; the rest in one concurrent bulk upload (fsspec batches
        the PUTs on its event loop)."""
        if not items:
            return
        loose, packs = plan_packs(items)
        with translate_errors(items[0][1]):
            if packs:
                from concurrent.futures import ThreadPoolExecutor

                def push_pack(group: list[tuple[Path, str]]) -> None:
                    self._put_pack(group)
                    if on_done:
                        on_done(len(group))

                with ThreadPoolExecutor(_PACK_UPLOADS) as pool:
                    list(pool.map(push_pack, packs))
            if loose:
                local = [str(path) for path, _ in loose]
                remote = [self._key(digest) for _, digest in loose]
                self.fs.put(local, remote, callback=_Progress(on_done))

    def get_many(
        self, items: Downloads, on_done: OnDone | None = None, sizes: Sizes | None = None
    ) -> None:
        """Packed blobs come in a few ranged reads per pack, the rest object by object."""
        if not items:
            return
        with translate_errors(items[0][0]):
            self._read_pack_indexes()
            by_pack: dict[str, list[tuple[PackedBlob, Path]]] = {}
            loose: list[tuple[str, Path]] = []
            for digest, dest in items:
                packed = self._packed.get(check_digest(digest))
                if packed is None:
                    loose.append((digest, dest))
                else:
                    by_pack.setdefault(packed.pack, []).append((packed, dest))
            if by_pack:
                self._get_packed(by_pack, on_done)
            if loose:
                remote = [self._key(digest) for digest, _ in loose]
                local = [str(path) for _, path in loose]
                self.fs.get(remote, local, callback=_Progress(on_done))

    def read_many(self, digests: Iterable[str], max_bytes: int) -> list[tuple[str, bytes]]:
        """Packed blobs in a few ranged reads per pack (their sizes are known, so the limit is
        checked before any byte moves), the rest object by object on threads: what a server
        behind S3 answers a batch download with, as quickly as a client reading S3 itself."""
        wanted = list(dict.fromkeys(check_digest(d) for d in digests))
        if not wanted:
            return []
        found: dict[str, bytes] = {}
        with translate_errors(wanted[0]):
            self._read_pack_indexes()
            by_pack: dict[str, list[tuple[PackedBlob, str]]] = {}
            loose: list[str] = []
            for digest in wanted:
                packed = self._packed.get(digest)
                if packed is None:
                    loose.append(digest)
                else:
                    by_pack.setdefault(packed.pack, []).append((packed, digest))
            packed_bytes = sum(blob.length for group in by_pack.values() for blob, _ in group)
            if packed_bytes > max_bytes:
                raise batch_over_limit(packed_bytes, max_bytes)
            for start, members, data in self._read_ranges(by_pack):
                for blob, digest in members:
                    found[digest] = bytes(data[blob.offset - start : blob.end - start])
        found.update(self._read_loose(loose, max_bytes - packed_bytes))
        return [(digest, found[digest]) for digest in wanted]

    def _read_loose(self, digests: list[str], budget: int) -> dict[str, bytes]:
        """Whole objects on threads; each one's size (which opening it learns) is reserved
        from ``budget`` before it is read, so a batch never holds more than the limit."""
        from concurrent.futures import ThreadPoolExecutor

        lock = threading.Lock()
        taken = 0

        def read(digest: str) -> tuple[str, bytes]:
            nonlocal taken
            with translate_errors(digest), self.fs.open(self._key(digest), "rb") as handle:
                with lock:
                    taken += handle.size
                    if taken > budget:
                        raise batch_over_limit(taken, budget)
                return digest, handle.read()

        if not digests:
            return {}
        with ThreadPoolExecutor(min(TRANSFER_THREADS, len(digests))) as pool:
            return dict(pool.map(read, digests))

    # -- packs --------------------------------------------------------------------------------
    def _put_pack(self, group: list[tuple[Path, str]]) -> None:
        pack_id, body, index = build_pack(group)
        self.fs.pipe_file(self._pack_key(pack_id, "pack"), body)
        self.fs.pipe_file(self._pack_key(pack_id, "idx"), index)  # last: the pack is complete
        with self._packs_lock:
            self._packed.update(parse_index(pack_id, index))
            self._indexes_read.add(pack_id)

    def _get_packed(
        self,
        by_pack: dict[str, list[tuple[PackedBlob, Path]]],
        on_done: OnDone | None,
    ) -> None:
        for start, members, data in self._read_ranges(by_pack):
            for blob, dest in members:
                dest.write_bytes(data[blob.offset - start : blob.end - start])
            if on_done:
                on_done(len(members))

    def _read_ranges(
        self, by_pack: Mapping[str, list[tuple[PackedBlob, Item]]]
    ) -> Iterator[tuple[int, list[tuple[PackedBlob, Item]], bytes]]:
        """The coalesced ranges of ``by_pack`` (pack id → wanted blobs), fetched concurrently
        in one call: ``(range start, its members, its bytes)`` per ranged GET."""
        reads = [
            (pack_id, start, end, members)
            for pack_id, wanted in by_pack.items()
            for start, end, members in coalesce(wanted)
        ]
        if not reads:
            return
        paths = [self._pack_key(pack_id, "pack") for pack_id, *_ in reads]
        contents = self.fs.cat_ranges(
            paths, [r[1] for r in reads], [r[2] for r in reads], on_error="raise"
        )
        for (_, start, _, members), data in zip(reads, contents, strict=True):
            yield start, members, data

    def _read_packed(self, packed: PackedBlob) -> bytes:
        path = self._pack_key(packed.pack, "pack")
        return bytes(self.fs.cat_file(path, start=packed.offset, end=packed.end))

    def _in_pack(self, digest: str, *, reread_after: float) -> PackedBlob | None:
        """Where ``digest`` lies in a pack, reading new indexes if it is in none and they
        were last listed more than ``reread_after`` seconds ago."""
        found = self._packed.get(digest)
        if found is None and time.monotonic() - self._indexes_checked > reread_after:
            self._read_pack_indexes()
            found = self._packed.get(digest)
        return found

    def _read_pack_indexes(self) -> None:
        """Read the indexes of packs this process has not seen yet (one listing)."""
        with self._packs_lock:
            self._indexes_checked = time.monotonic()
            try:
                names = self.fs.ls(f"{self.base}/packs", detail=False, refresh=True)
            except FileNotFoundError:
                return
            unread = [
                self._pack_key(pack_id, "idx")
                for pack_id in (_pack_id_of(name) for name in names)
                if pack_id and pack_id not in self._indexes_read
            ]
            if not unread:
                return
            for name, raw in self.fs.cat(unread, on_error="omit").items():
                pack_id = _pack_id_of(name)
                self._packed.update(parse_index(pack_id, raw))
                self._indexes_read.add(pack_id)


def _pack_id_of(name: str) -> str:
    """The pack id of an index object's name, '' for other objects under ``packs/``."""
    leaf = name.rsplit("/", 1)[-1]
    return leaf.removesuffix(".idx") if leaf.endswith(".idx") else ""


def _Progress(on_done: OnDone | None) -> Any:
    """An fsspec callback that reports each finished file to ``on_done``."""
    from fsspec.callbacks import Callback
    from fsspec.callbacks import NoOpCallback

    if on_done is None:
        return NoOpCallback()

    class _Files(Callback):
        def relative_update(self, inc: int = 1) -> None:
            on_done(inc)

    return _Files()
