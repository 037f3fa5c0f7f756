"""What changed between two versions: files, and for tables the schema, rows and statistics.

Everything is computed from what the versions recorded when they were added (manifests and
table summaries), so a diff reads no data, however large the tables are.
"""

from __future__ import annotations

import math

from sqlalchemy.orm import Session

from opsloop.data.entities import ColumnChange
from opsloop.data.entities import DataDiff
from opsloop.data.entities import FileChange
from opsloop.data.entities import TableDiff
from opsloop.data.entities import TableInfo
from opsloop.data.manifest import Manifest
from opsloop.data.versions import get_manifest

__all__ = ["diff_manifests", "diff_tables", "diff_versions"]


def diff_versions(session: Session, old_ref: str, new_ref: str) -> DataDiff:
    old, old_manifest = get_manifest(session, old_ref)
    new, new_manifest = get_manifest(session, new_ref)
    table = diff_tables(old.table, new.table) if old.table and new.table else None
    return diff_manifests(old.ref, old_manifest, new.ref, new_manifest, table)


def diff_manifests(
    old_name: str,
    old: Manifest,
    new_name: str,
    new: Manifest,
    table: TableDiff | None = None,
) -> DataDiff:
    """Files added, removed and modified (by digest) from ``old`` to ``new``."""
    before, after = old.by_path, new.by_path
    changes: list[FileChange] = []
    unchanged = 0
    for path in sorted(before.keys() | after.keys()):
        a, b = before.get(path), after.get(path)
        if a is None and b is not None:
            changes.append(FileChange(path=path, change="added", new_size=b.size))
        elif b is None and a is not None:
            changes.append(FileChange(path=path, change="removed", old_size=a.size))
        elif a is not None and b is not None and a.digest != b.digest:
            changes.append(
                FileChange(path=path, change="modified", old_size=a.size, new_size=b.size)
            )
        else:
            unchanged += 1
    count = {
        kind: sum(c.change == kind for c in changes) for kind in ("added", "removed", "modified")
    }
    return DataDiff(
        old=old_name,
        new=new_name,
        unchanged=unchanged,
        bytes_delta=new.total_bytes - old.total_bytes,
        files=changes,
        table=table,
        **count,
    )


def diff_tables(old: TableInfo, new: TableInfo) -> TableDiff:
    """Columns added, removed, retyped, and statistics that moved."""
    before = {c.name: c for c in old.columns}
    after = {c.name: c for c in new.columns}
    changes: list[ColumnChange] = []
    for name in [c.name for c in old.columns] + [n for n in after if n not in before]:
        a, b = before.get(name), after.get(name)
        if b is None and a is not None:
            changes.append(ColumnChange(name=name, change="removed", old_type=a.type))
        elif a is None and b is not None:
            changes.append(ColumnChange(name=name, change="added", new_type=b.type))
        elif a is not None and b is not None:
            moved = {
                k: (a.stats.get(k), b.stats.get(k))
                for k in sorted(a.stats.keys() | b.stats.keys())
                if not _same(a.stats.get(k), b.stats.get(k))
            }
            if a.type != b.type:
                changes.append(
                    ColumnChange(
                        name=name, change="type", old_type=a.type, new_type=b.type, stats=moved
                    )
                )
            elif moved:
                changes.append(
                    ColumnChange(
                        name=name, change="stats", old_type=a.type, new_type=b.type, stats=moved
                    )
                )
    return TableDiff(old_rows=old.rows, new_rows=new.rows, columns=changes)


def _same(a: object, b: object) -> bool:
    if isinstance(a, int | float) and isinstance(b, int | float):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)
    return a == b
