"""Manifests: the list of (path, digest, size) that *is* a dataset version.

The canonical form is compact JSON of the entries sorted by path; its BLAKE3 hash is the
version id, so the same files under the same paths always give the same id, on any machine.
Stored compressed: digests do not compress, but paths and JSON punctuation do.
"""

from __future__ import annotations

import json
import zlib
from dataclasses import dataclass
from functools import cached_property

__all__ = ["FileEntry", "Manifest"]


@dataclass(frozen=True, slots=True)
class FileEntry:
    path: str
    digest: str
    size: int


class Manifest:
    """An immutable, path-sorted set of file entries."""

    def __init__(self, entries: list[FileEntry]) -> None:
        self.entries: tuple[FileEntry, ...] = tuple(sorted(entries, key=lambda e: e.path))

    @cached_property
    def canonical(self) -> bytes:
        rows = [[e.path, e.digest, e.size] for e in self.entries]
        return json.dumps({"files": rows}, separators=(",", ":")).encode()

    @cached_property
    def version_id(self) -> str:
        from blake3 import blake3

        return blake3(self.canonical).hexdigest()

    @cached_property
    def by_path(self) -> dict[str, FileEntry]:
        return {e.path: e for e in self.entries}

    @property
    def total_bytes(self) -> int:
        return sum(e.size for e in self.entries)

    def __len__(self) -> int:
        return len(self.entries)

    def compressed(self) -> bytes:
        return zlib.compress(self.canonical, 6)

    @classmethod
    def from_compressed(cls, data: bytes) -> Manifest:
        return cls.from_canonical(zlib.decompress(data))

    @classmethod
    def from_canonical(cls, data: bytes) -> Manifest:
        rows = json.loads(data)["files"]
        return cls([FileEntry(p, d, s) for p, d, s in rows])

    def to_json(self) -> list[list[object]]:
        """Entries as ``[path, digest, size]`` lists, the wire form."""
        return [[e.path, e.digest, e.size] for e in self.entries]
