"""Packs: many small blobs in one object of a remote blob store.

An object store answers a few hundred requests a second at best (moto_server on loopback:
~100 PUTs/s), so pushing 10,000 files of 1 KB one object each takes minutes whoever sends
them — this is where DVC spends a push of many small files. A push therefore groups blobs
smaller than :data:`PACK_BLOB_MAX` into packs of up to :data:`PACK_TARGET` bytes, as git
and restic do, and a pull reads them back with a few ranged GETs.

On the store a pack is two objects under ``packs/``:

- ``<id>.pack``: the blobs' bytes, one after the other;
- ``<id>.idx``: JSON ``{"format": "opsloop-pack/1", "blobs": [[digest, offset, length], ...]}``.

The id is the BLAKE3 digest of the index, which names every blob and where it lies, so a
pack is as immutable and content-addressed as a blob. The index is written after the pack:
a reader only trusts packs whose index exists, so an interrupted push leaves at most an
unreferenced ``.pack`` and is simply pushed again. Blobs read from a pack are verified
against their digest like any other download.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

__all__ = [
    "BATCH_MAX_BYTES",
    "PACK_BLOB_MAX",
    "PACK_MIN_BLOBS",
    "PACK_TARGET",
    "PackedBlob",
    "build_pack",
    "coalesce",
    "frame",
    "frame_files",
    "parse_index",
    "plan_packs",
    "unframe",
]

PACK_BLOB_MAX = 1 << 20  # blobs this size or larger are stored as their own object
PACK_TARGET = 64 << 20  # a pack is closed once it holds this many bytes
PACK_MIN_BLOBS = 8  # fewer small blobs than this in one push go up as loose objects
BATCH_MAX_BYTES = 256 << 20  # the largest framed body a server takes or sends
_FORMAT = "opsloop-pack/1"
Item = TypeVar("Item")
_MAX_GAP = 256 << 10  # ranged reads closer than this are merged into one request
_MAX_READ = 16 << 20  # ... up to this many bytes per request


@dataclass(frozen=True)
class PackedBlob:
    """Where a blob lies inside a pack."""

    pack: str
    offset: int
    length: int

    @property
    def end(self) -> int:
        return self.offset + self.length


def _file_size(item: tuple[Path, str]) -> int:
    return os.path.getsize(item[0])


def plan_packs(
    items: list[Item],
    size_of: Callable[[Item], int] = _file_size,  # type: ignore[assignment]
) -> tuple[list[Item], list[list[Item]]]:
    """Split a transfer into (items that go one by one, groups that each go as one pack).

    ``size_of`` gives an item's size (by default the file size of ``(path, digest)`` items);
    an item it sizes at ``PACK_BLOB_MAX`` or more, for one unknown, goes alone."""
    small: list[tuple[Item, int]] = []
    loose: list[Item] = []
    for item in items:
        size = size_of(item)
        if size < PACK_BLOB_MAX:
            small.append((item, size))
        else:
            loose.append(item)
    if len(small) < PACK_MIN_BLOBS:
        return loose + [item for item, _ in small], []
    groups: list[list[Item]] = [[]]
    filled = 0
    for item, size in small:
        if filled + size > PACK_TARGET and groups[-1]:
            groups.append([])
            filled = 0
        groups[-1].append(item)
        filled += size
    return loose, groups


def build_pack(items: list[tuple[Path, str]]) -> tuple[str, bytes, bytes]:
    """The pack of ``items`` (verified local files): (pack id, pack bytes, index bytes)."""
    from blake3 import blake3

    body, index = _pack((digest, Path(path).read_bytes()) for path, digest in items)
    return blake3(index).hexdigest(), body, index


def _pack(blobs: Iterable[tuple[str, bytes]]) -> tuple[bytes, bytes]:
    body = bytearray()
    entries: list[list[object]] = []
    for digest, data in blobs:
        entries.append([digest, len(body), len(data)])
        body += data
    index = json.dumps({"format": _FORMAT, "blobs": entries}, separators=(",", ":")).encode()
    return bytes(body), index


# -- framed packs: many blobs in one HTTP body ---------------------------------------------
# ``<index JSON>\n<pack bytes>``: the index is compact JSON (no raw newline), so the first
# newline ends it. Used by the server's batch blob routes, in both directions.


def frame(blobs: Iterable[tuple[str, bytes]]) -> bytes:
    """One body carrying ``(digest, bytes)`` pairs."""
    body, index = _pack(blobs)
    return index + b"\n" + body


def frame_files(items: list[tuple[Path, str]]) -> bytes:
    """One body carrying local files (verified by the caller) as ``(path, digest)``."""
    return frame((digest, Path(path).read_bytes()) for path, digest in items)


def unframe(raw: bytes) -> list[tuple[str, memoryview]]:
    """The ``(digest, bytes)`` pairs of a framed body; ``ValueError`` says what is wrong.

    Digests are only checked for shape here: whoever stores or returns the bytes checks
    that they hash to their digest."""
    head, newline, _ = raw.partition(b"\n")
    if not newline:
        raise ValueError("no index line: expected '<index JSON>\\n<bytes>'")
    try:
        document = json.loads(head)
        if document.get("format") != _FORMAT:
            raise ValueError(f"unknown format {document.get('format')!r}; expected {_FORMAT!r}")
        entries = [(str(d), int(o), int(n)) for d, o, n in document["blobs"]]
    except (AttributeError, KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"malformed index: {exc}") from None
    body = memoryview(raw)[len(head) + 1 :]
    pairs = []
    for digest, offset, length in entries:
        if offset < 0 or length < 0 or offset + length > len(body):
            raise ValueError(f"blob {digest} lies outside the body ({offset}+{length})")
        pairs.append((digest, body[offset : offset + length]))
    return pairs


def parse_index(pack_id: str, raw: bytes) -> dict[str, PackedBlob]:
    """The blobs an index names; an index of another format or a damaged one names none."""
    from blake3 import blake3

    if blake3(raw).hexdigest() != pack_id:
        return {}  # not the index this pack was written with: trust nothing in it
    try:
        document = json.loads(raw)
    except ValueError:
        return {}
    if not isinstance(document, dict) or document.get("format") != _FORMAT:
        return {}
    return {
        digest: PackedBlob(pack_id, int(offset), int(length))
        for digest, offset, length in document.get("blobs", [])
    }


def coalesce(
    wanted: list[tuple[PackedBlob, Item]],
) -> list[tuple[int, int, list[tuple[PackedBlob, Item]]]]:
    """Group reads from one pack into few ranged requests: [(start, end, members)]; each
    member is a blob and whatever the caller pairs it with (where it goes)."""
    reads: list[tuple[int, int, list[tuple[PackedBlob, Item]]]] = []
    start = end = 0
    members: list[tuple[PackedBlob, Item]] = []
    for blob, dest in sorted(wanted, key=lambda item: item[0].offset):
        if members and blob.offset - end <= _MAX_GAP and blob.end - start <= _MAX_READ:
            members.append((blob, dest))
            end = max(end, blob.end)
            continue
        if members:
            reads.append((start, end, members))
        start, end, members = blob.offset, blob.end, [(blob, dest)]
    if members:
        reads.append((start, end, members))
    return reads
