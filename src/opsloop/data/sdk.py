"""The data half of :class:`opsloop.Client` (``client.data``): add, get, push, pull, diff...

Bytes never pass through the metadata backend: files are hashed here, next to them, stored
in the local blob cache, and shared through the blob store (``push``/``pull``). On the
embedded default the blob store *is* a local folder, and it doubles as the cache, so nothing
needs pushing. With a remote blob store (S3) or a server, the cache is
``$OPSLOOP_HOME/cache/blobs`` and ``push``/``pull`` move only what the other side lacks.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from opsloop.data import transfer
from opsloop.data.backend import DataBackend
from opsloop.data.duplicates.client import DuplicatesMixin
from opsloop.data.entities import DataDiff
from opsloop.data.entities import Dataset
from opsloop.data.entities import DatasetVersion
from opsloop.data.entities import LineageLink
from opsloop.data.entities import VersionCreate
from opsloop.data.expectations import Expectations
from opsloop.data.expectations import load_expectations
from opsloop.data.expectations import run_expectations
from opsloop.data.localstate import LocalState
from opsloop.data.manifest import Manifest
from opsloop.data.progress import progress_bar
from opsloop.data.scan import hash_scan
from opsloop.data.scan import scan_path
from opsloop.data.scan import stat_fingerprint
from opsloop.data.status import WorkspaceStatus
from opsloop.data.status import workspace_status
from opsloop.data.tabular import describe_table
from opsloop.data.tabular import table_format
from opsloop.errors import Conflict
from opsloop.errors import InvalidInput
from opsloop.errors import NotFound
from opsloop.kernel import ambient
from opsloop.kernel.numbered import VersionReads
from opsloop.kernel.paging import Page
from opsloop.kernel.refs import check_dataset_name
from opsloop.store.local_blobs import LocalBlobStore

__all__ = ["AddResult", "DataClient", "DataVersion", "TransferResult", "WorkspaceStatus"]


@dataclass(frozen=True)
class AddResult:
    version: DatasetVersion
    created: bool
    hashed_files: int
    validation: dict[str, Any] | None = None


@dataclass(frozen=True)
class TransferResult:
    ref: str
    files: int
    bytes: int
    total_files: int


class DataVersion:
    """A handle on one dataset version: its metadata and its bytes on demand.

    Example:
        >>> version = opsloop.data.get("iris@2")
        >>> frame = version.to_pandas()       # tables only
        >>> folder = version.path()           # a read-only local copy of every file
    """

    def __init__(self, client: DataClient | None, info: DatasetVersion) -> None:
        self._bound = client
        self.info = info

    @property
    def _client(self) -> DataClient:
        """The client it reads through: the one that made it, or (for a handle sent to a
        step in another process) that process's default client, asked on first use."""
        if self._bound is None:
            self._bound = ambient.default_client().data
        return self._bound

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        """Pickled without its client (a process or Ray executor sends it to a step)."""
        return DataVersion, (None, self.info)

    @property
    def ref(self) -> str:
        return self.info.ref

    @cached_property
    def manifest(self) -> Manifest:
        return self._client.manifest(self.ref)[1]

    def path(self) -> Path:
        """Local path of the version's content (the file itself for a one-file version)."""
        root = self._client.materialize(self.info, self.manifest)
        if self.info.kind != "folder" and len(self.manifest) == 1:
            return root / self.manifest.entries[0].path
        return root

    def table_files(self) -> tuple[list[str], str]:
        """The local paths of the table's files and its format (``csv``, ``parquet``...).
        ``InvalidInput`` when the version is not a table."""
        fmt = self.info.table.format if self.info.table else None
        if fmt is None:
            raise InvalidInput(
                f"{self.ref} is not a table (CSV, Parquet or JSON lines); use .path() instead"
            )
        root = self._client.materialize(self.info, self.manifest)
        return [str(root / e.path) for e in self.manifest.entries], fmt

    def to_arrow(self) -> Any:
        """The table as a ``pyarrow.Table``."""
        from opsloop.data.tabular import open_table

        files, fmt = self.table_files()
        with open_table(files, fmt) as con:
            return con.sql("SELECT * FROM data").to_arrow_table()

    def to_pandas(self) -> Any:
        """The table as a ``pandas.DataFrame``."""
        return self.to_arrow().to_pandas()

    def __repr__(self) -> str:
        return f"DataVersion({self.ref}, {self.info.file_count} files, {self.info.total_bytes} B)"


class DataClient(DuplicatesMixin, VersionReads[DatasetVersion]):
    """Dataset versions; reach it as ``Client().data``."""

    def __init__(self, backend: DataBackend, home: Path, cache: LocalBlobStore | None) -> None:
        from opsloop.data.held import HeldDataBackend

        self._backend = HeldDataBackend(backend)  # a reproduction's writes are held
        self._home = Path(home)
        self._cache = cache or LocalBlobStore(self._home / "cache" / "blobs")
        self._shares_cache = cache is not None

    @cached_property
    def _state(self) -> LocalState:
        return LocalState(self._home)

    # -- add ----------------------------------------------------------------------------------
    def add(
        self,
        path: str | os.PathLike[str],
        name: str,
        *,
        message: str | None = None,
        tags: dict[str, Any] | None = None,
        expectations: str | Path | dict[str, Any] | Expectations | None = None,
        push: bool = False,
        progress: bool = False,
    ) -> AddResult:
        """Version a file, folder or table as the next version of ``name``.

        Identical bytes under identical paths give the dataset's existing version back
        (``created`` is False). With ``expectations`` the table is validated and the version
        marked passed or failed; with ``push`` its blobs are uploaded to the blob store.
        """
        check_dataset_name(name)
        checks = _expectations(expectations)
        scan = scan_path(path)
        total = sum(f.stat.size for f in scan.files)
        bar = progress_bar(f"hashing {name}", total, unit="bytes", enabled=progress)
        with bar as advance, self._cache.batch() as batch:
            manifest, hashed = hash_scan(scan, self._state, ingest=batch, on_bytes=advance)
        fmt = table_format([f.path for f in scan.files], scan.kind)
        sources = [f.source for f in sorted(scan.files, key=lambda f: f.path)]
        table = describe_table(sources, fmt) if fmt else None
        if checks is not None and fmt is None:
            raise InvalidInput(f"{path} is not a table, so expectations cannot be checked")
        body = VersionCreate(
            files=[(e.path, e.digest, e.size) for e in manifest.entries],
            kind="table" if fmt else scan.kind,
            message=message,
            source=scan.root,
            table=table,
            tags={k: str(v) for k, v in (tags or {}).items()} or None,
        )
        version, created = self._backend.register_version(name, body)
        self._track(scan.root, version, manifest)
        self._state.set_snapshot(scan.root, version.version_id, stat_fingerprint(scan))
        report = None
        if checks is not None and fmt is not None:
            report = run_expectations(sources, fmt, checks)
            version = self._backend.record_validation(version.ref, report, report["passed"])
        if push:
            self.push(version.ref, progress=progress)
        return AddResult(version, created, hashed, report)

    # -- reading ------------------------------------------------------------------------------
    def get(self, ref: str) -> DataVersion:
        """A handle on ``NAME@N``, ``NAME@ALIAS`` or ``NAME`` (latest)."""
        return DataVersion(self, self._backend.get_version(ref))

    def dataset(self, name: str) -> Dataset:
        return self._backend.get_dataset(name)

    def list(self, max_results: int = 100, page_token: str | None = None) -> Page[Dataset]:
        return self._backend.list_datasets(max_results, page_token)

    def manifest(self, ref: str) -> tuple[DatasetVersion, Manifest]:
        return self._backend.get_manifest(ref)

    def diff(self, old_ref: str, new_ref: str) -> DataDiff:
        return self._backend.diff(old_ref, new_ref)

    def lineage(self, ref: str) -> list[LineageLink]:
        return self._backend.lineage(ref)

    # -- labels -------------------------------------------------------------------------------
    def set_alias(self, ref: str, alias: str) -> DatasetVersion:
        return self._backend.set_alias(ref, alias)

    def set_tag(self, ref: str, key: str, value: Any) -> DatasetVersion:
        return self._backend.set_tag(ref, key, str(value))

    def log_input(self, run_id: str, ref: str) -> DatasetVersion:
        """Record that run ``run_id`` consumed the version."""
        return self._backend.log_lineage(run_id, ref, "input")

    def log_output(self, run_id: str, ref: str) -> DatasetVersion:
        """Record that run ``run_id`` produced the version."""
        return self._backend.log_lineage(run_id, ref, "output")

    # -- moving bytes -------------------------------------------------------------------------
    def push(self, ref: str, *, progress: bool = False) -> TransferResult:
        """Upload the version's blobs that the blob store lacks."""
        version, manifest = self._backend.get_manifest(ref)
        return self._move("push", transfer.push_from_cache, version, manifest, progress)

    def unpushed(self, ref: str) -> list[str]:
        """Paths of the version whose bytes the shared blob store lacks (``push`` sends them);
        always empty on the embedded default, where the blob folder is the cache."""
        _, manifest = self._backend.get_manifest(ref)
        if self._shares_cache:
            return []
        missing = set(self._backend.remote.missing([e.digest for e in manifest.entries]))
        return [e.path for e in manifest.entries if e.digest in missing]

    def pull(self, ref: str, *, progress: bool = False) -> TransferResult:
        """Download the version's blobs that the local cache lacks (verified)."""
        version, manifest = self._backend.get_manifest(ref)
        return self._pull(version, manifest, progress)

    def _pull(self, version: DatasetVersion, manifest: Manifest, progress: bool) -> TransferResult:
        return self._move("pull", transfer.fetch_into_cache, version, manifest, progress)

    def _move(
        self,
        verb: str,
        move: Callable[..., tuple[int, int]],
        version: DatasetVersion,
        manifest: Manifest,
        progress: bool,
    ) -> TransferResult:
        """Push or pull (``move`` is ``transfer.push_from_cache`` or ``fetch_into_cache``) the
        version's blobs between the cache and the blob store; nothing moves where they are one."""
        if self._shares_cache:
            return TransferResult(version.ref, 0, 0, len(manifest))
        with progress_bar(f"{verb} {version.ref}", len(manifest), enabled=progress) as advance:
            files, size = move(self._cache, self._backend.remote, list(manifest.entries), advance)
        return TransferResult(version.ref, files, size, len(manifest))

    def checkout(
        self,
        ref: str,
        path: str | os.PathLike[str],
        *,
        force: bool = False,
        progress: bool = False,
    ) -> TransferResult:
        """Write the version's files at ``path``, pulling what the cache lacks.

        ``path`` may be new, an empty folder, or a folder checked out from / added as the same
        dataset; local changes there are refused unless ``force``. Files that belonged to the
        previous version and are not in this one are removed; other files are left alone.
        """
        version, manifest = self._backend.get_manifest(ref)
        dest = Path(os.path.abspath(os.fspath(path)))
        single = version.kind != "folder" and len(manifest) == 1
        if single:
            entry = manifest.entries[0]
            target = dest / entry.path if dest.is_dir() else dest
            if target.exists() and not force:
                raise Conflict(f"{target} exists; pass force=True (--force) to overwrite it")
            self._pull(version, manifest, progress)
            transfer.check_declared_sizes(self._cache, [entry], version.ref)
            transfer.check_free_space(target.parent, entry.size)
            target.parent.mkdir(parents=True, exist_ok=True)
            transfer.copy_verified(self._cache.path_of(entry.digest), entry.digest, target)
            self._track(str(target), version, manifest)
            return TransferResult(version.ref, 1, entry.size, 1)
        unchanged = self._prepare_checkout(dest, version, manifest, force)
        self._pull(version, manifest, progress)
        todo = [e for e in manifest.entries if e.path not in unchanged]
        transfer.check_declared_sizes(self._cache, todo, version.ref)
        transfer.check_free_space(dest, sum(e.size for e in todo))
        size = sum(e.size for e in todo)
        with progress_bar(f"checkout {version.ref}", size, unit="bytes", enabled=progress) as adv:
            written = transfer.materialize(
                self._cache, manifest, dest, skip=lambda e: e.path in unchanged, on_done=adv
            )
        self._track(str(dest), version, manifest)
        return TransferResult(version.ref, written, size, len(manifest))

    def _prepare_checkout(
        self, dest: Path, version: DatasetVersion, manifest: Manifest, force: bool
    ) -> set[str]:
        """Check ``dest`` may be written; remove files of its old version; return the paths
        that already hold the right bytes."""
        if not dest.exists():
            return set()
        if not dest.is_dir():
            raise Conflict(f"{dest} is a file; check a folder version out into a folder")
        workspace = self._state.workspace(str(dest))
        if workspace is None:
            if any(dest.iterdir()):
                raise Conflict(
                    f"{dest} is not empty and holds no checkout of {version.name}; "
                    "choose an empty or new folder"
                )
            return set()
        if workspace.dataset != version.name and not force:
            raise Conflict(
                f"{dest} holds {workspace.dataset}@{workspace.number}, not {version.name}; "
                "pass force=True (--force) to replace it"
            )
        old_ref = f"{workspace.dataset}@{workspace.number}"
        old = self._state.manifest(workspace.version_id) or self.manifest(old_ref)[1]
        local, _ = hash_scan(scan_path(dest), self._state)  # one scan serves both checks
        current = local.by_path
        if local.version_id != old.version_id and not force:
            was = old.by_path
            changed = sorted(
                p
                for p in was.keys() | current.keys()
                if p not in was or p not in current or was[p].digest != current[p].digest
            )
            raise Conflict(
                f"{dest} has {len(changed)} local change(s) since {old_ref} "
                f"(first: {changed[0]}); pass force=True (--force) to overwrite them"
            )
        for entry in old.entries:
            if entry.path not in manifest.by_path and entry.path in current:
                (dest / entry.path).unlink()
        return {
            e.path for e in manifest.entries if (c := current.get(e.path)) and c.digest == e.digest
        }

    def _track(self, path: str, version: DatasetVersion, manifest: Manifest) -> None:
        """Remember that ``path`` holds ``version`` (for status and later checkouts)."""
        self._state.remember_manifest(manifest)
        self._state.set_workspace(path, version.name, version.number, version.version_id)

    # -- status -------------------------------------------------------------------------------
    def status(self, *paths: str | os.PathLike[str]) -> list[WorkspaceStatus]:
        """Compare tracked local paths (all of them by default) with their versions.

        Unchanged files are recognised by (inode, size, mtime) and not read.
        """
        return workspace_status(self._state, paths, lambda ref: self.manifest(ref)[1])

    # -- validation ---------------------------------------------------------------------------
    def validate(
        self, ref: str, expectations: str | Path | dict[str, Any] | Expectations
    ) -> tuple[DatasetVersion, dict[str, Any]]:
        """Check a table version against expectations and record the verdict on it."""
        checks = _expectations(expectations)  # a bad file fails before any data moves
        handle = self.get(ref)
        files, fmt = handle.table_files()
        report = run_expectations(files, fmt, checks)  # type: ignore[arg-type]
        version = self._backend.record_validation(handle.ref, report, report["passed"])
        return version, report

    def validation(self, ref: str) -> dict[str, Any]:
        return self._backend.get_validation(ref)

    def profile(self, ref: str, out_dir: str | os.PathLike[str]) -> tuple[Path, Path]:
        """Write ``<name>-<n>.profile.html`` and ``.json`` into ``out_dir``; return both paths."""
        from opsloop.data.profiling import profile_table
        from opsloop.data.profiling import write_report

        handle = self.get(ref)
        files, fmt = handle.table_files()
        summary = profile_table(files, fmt)
        summary["version"] = handle.info.model_dump(mode="json", exclude={"table"})
        return write_report(summary, Path(out_dir), f"{handle.info.name}-{handle.info.number}")

    # -- local materialisation ----------------------------------------------------------------
    def materialize(self, info: DatasetVersion, manifest: Manifest) -> Path:
        """A complete, read-only local copy of version ``info`` (whose manifest is
        ``manifest``), built once and shared; what the cache lacks is pulled first."""
        root = self._home / "cache" / "versions" / info.version_id
        if not (root / ".opsloop-complete").exists():
            if self._shares_cache and self._cache.missing([e.digest for e in manifest.entries]):
                raise NotFound(
                    f"the files of {info.ref} are not in the blob store: it was added from a "
                    f"client of a server; run `opsloop data push {info.ref}` there first"
                )
            self._pull(info, manifest, progress=False)
        return transfer.materialized_copy(self._cache, None, manifest, root)

    # -- for other domains' packages (models) -----------------------------------------------
    def store_folder(self, folder: Path) -> Manifest:
        """Hash a folder's files into the local cache and share what the blob store lacks."""
        with self._cache.batch() as batch:
            manifest, _ = hash_scan(scan_path(folder), self._state, ingest=batch)
        if not self._shares_cache:
            transfer.push_from_cache(self._cache, self._backend.remote, list(manifest.entries))
        return manifest

    def local_copy(self, manifest: Manifest, key: str, *, verify: bool = False) -> Path:
        """A read-only local copy of ``manifest`` under ``cache/<key>``, fetched once; with
        ``verify`` every file is re-hashed first (for code about to trust the bytes)."""
        remote = None if self._shares_cache else self._backend.remote
        root = self._home / "cache" / key
        copy = transfer.materialized_copy(self._cache, remote, manifest, root)
        if verify:
            transfer.verify_copy(copy, manifest)
        return copy

    def close(self) -> None:
        if "_state" in self.__dict__:
            self._state.close()


def _expectations(source: Any) -> Expectations | None:
    if source is None or isinstance(source, Expectations):
        return source
    return load_expectations(source)
