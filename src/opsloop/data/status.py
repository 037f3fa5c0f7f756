"""``status``: how tracked local paths differ from the versions they came from.

Deliberately light: it needs only the local state (hash cache, workspaces, manifests) and the
filesystem, so ``opsloop data status`` answers without opening the metadata store, without
SQLAlchemy, and without reading any unchanged file. The store is asked for a manifest only when
this machine has never seen it (a version added elsewhere and checked out before manifests were
kept locally).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import field

from opsloop.data.localstate import LocalState
from opsloop.data.manifest import Manifest
from opsloop.data.scan import hash_scan
from opsloop.data.scan import scan_path
from opsloop.data.scan import stat_fingerprint
from opsloop.errors import InvalidInput

__all__ = ["WorkspaceStatus", "workspace_status"]


@dataclass(frozen=True)
class WorkspaceStatus:
    path: str
    ref: str
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    modified: list[str] = field(default_factory=list)
    missing: bool = False

    @property
    def clean(self) -> bool:
        return not (self.added or self.removed or self.modified or self.missing)


def workspace_status(
    state: LocalState,
    paths: tuple[str | os.PathLike[str], ...],
    fetch_manifest: Callable[[str], Manifest],
) -> list[WorkspaceStatus]:
    """Status of ``paths`` (every tracked path when empty); ``fetch_manifest(ref)`` is the
    fallback for manifests this machine has not kept."""
    if paths:
        workspaces = []
        for p in paths:
            found = state.workspace(os.path.abspath(os.fspath(p)))
            if found is None:
                raise InvalidInput(f"{p} was never added or checked out on this machine")
            workspaces.append(found)
    else:
        workspaces = state.workspaces()
    results = []
    for ws in workspaces:
        ref = f"{ws.dataset}@{ws.number}"
        if not os.path.exists(ws.path):
            results.append(WorkspaceStatus(ws.path, ref, missing=True))
            continue
        scan = scan_path(ws.path)
        fingerprint = stat_fingerprint(scan)
        if state.snapshot_matches(ws.path, ws.version_id, fingerprint):
            results.append(WorkspaceStatus(ws.path, ref))
            continue
        manifest = state.manifest(ws.version_id)
        if manifest is None:
            manifest = fetch_manifest(ref)
            state.remember_manifest(manifest)
        if scan.kind == "file":
            scan = scan.as_single(manifest.entries[0].path)
        local, _ = hash_scan(scan, state)
        if local.version_id == manifest.version_id:
            state.set_snapshot(ws.path, ws.version_id, fingerprint)
            results.append(WorkspaceStatus(ws.path, ref))
            continue
        want, have = manifest.by_path, local.by_path
        results.append(
            WorkspaceStatus(
                ws.path,
                ref,
                added=sorted(have.keys() - want.keys()),
                removed=sorted(want.keys() - have.keys()),
                modified=sorted(
                    p for p in want.keys() & have.keys() if want[p].digest != have[p].digest
                ),
            )
        )
    return results
