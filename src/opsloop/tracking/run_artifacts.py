"""The artifact half of :class:`~opsloop.tracking.sdk.TrackingClient`: files, folders, bytes,
text, figures and tables logged to a run, listed, read back and downloaded, and the run's
source tree restored.

Each distinct content is stored once in the blob store (by its digest) and then registered
under its paths in the run, over whatever :class:`~opsloop.tracking.backend.TrackingBackend`
the client holds, so it behaves the same on the embedded store and against a server.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING
from typing import Any

from opsloop.errors import InvalidInput
from opsloop.errors import NotFound
from opsloop.store.blobs import hash_file
from opsloop.tracking.backend import TrackingBackend
from opsloop.tracking.entities import Artifact
from opsloop.tracking.entities import ArtifactSpec
from opsloop.tracking.validation import check_artifact_path

if TYPE_CHECKING:
    from opsloop.tracking.entities import Run

__all__ = ["RunArtifacts", "walk_files"]


class RunArtifacts:
    """Artifact methods over ``self._tracking``; mixed into the tracking client."""

    _tracking: TrackingBackend

    if TYPE_CHECKING:  # provided by the tracking client it is mixed into

        def get_run(self, run_id: str) -> Run: ...

    def log_artifact(
        self, run_id: str, local_path: str | os.PathLike[str], artifact_path: str | None = None
    ) -> list[Artifact]:
        """Store a file, or a folder recursively, under ``artifact_path`` in the run.

        Each distinct content is uploaded once; files already in the blob store are not sent.
        """
        source = Path(local_path)
        if not source.exists():
            raise InvalidInput(f"no such file or folder: {source}")
        prefix = check_artifact_path(artifact_path) + "/" if artifact_path else ""
        if source.is_file():
            files = [(prefix + source.name, source)]
        else:
            files = [(f"{prefix}{source.name}/{rel}", path) for rel, path in walk_files(source)]
        return self._store_files(run_id, files)

    def log_artifacts(
        self, run_id: str, local_dir: str | os.PathLike[str], artifact_path: str | None = None
    ) -> list[Artifact]:
        """Store a folder's contents (not the folder itself) under ``artifact_path``."""
        source = Path(local_dir)
        if not source.is_dir():
            raise InvalidInput(f"not a folder: {source}")
        prefix = check_artifact_path(artifact_path) + "/" if artifact_path else ""
        return self._store_files(run_id, [(prefix + rel, path) for rel, path in walk_files(source)])

    def log_bytes(self, run_id: str, data: bytes, artifact_file: str) -> Artifact:
        """Store bytes as one artifact file."""
        with _scratch_file(artifact_file) as path:
            path.write_bytes(data)
            return self._store_files(run_id, [(check_artifact_path(artifact_file), path)])[0]

    def log_text(self, run_id: str, text: str, artifact_file: str) -> Artifact:
        return self.log_bytes(run_id, text.encode(), artifact_file)

    def log_dict(self, run_id: str, data: Any, artifact_file: str) -> Artifact:
        """Store a dict as JSON (or YAML when the name ends in .yaml/.yml and PyYAML is there)."""
        if artifact_file.endswith((".yaml", ".yml")):
            import yaml  # type: ignore[import-untyped]

            text = yaml.safe_dump(data, sort_keys=False)
        else:
            text = json.dumps(data, indent=2, default=str)
        return self.log_text(run_id, text, artifact_file)

    def log_figure(self, run_id: str, figure: Any, artifact_file: str) -> Artifact:
        """Store a matplotlib figure (png/svg/pdf by extension) or a plotly figure (html)."""
        with _scratch_file(artifact_file) as path:
            if hasattr(figure, "savefig"):
                figure.savefig(path, bbox_inches="tight")
            elif hasattr(figure, "write_html"):
                figure.write_html(str(path))
            else:
                raise InvalidInput(
                    f"log_figure takes a matplotlib or plotly figure, got {type(figure).__name__}"
                )
            return self._store_files(run_id, [(check_artifact_path(artifact_file), path)])[0]

    def log_dataframe(self, run_id: str, frame: Any, artifact_file: str) -> Artifact:
        """Store a pandas DataFrame as Parquet (default), CSV or JSON lines, by extension."""
        with _scratch_file(artifact_file) as path:
            if artifact_file.endswith(".csv"):
                frame.to_csv(path, index=False)
            elif artifact_file.endswith((".jsonl", ".json")):
                frame.to_json(path, orient="records", lines=True)
            elif artifact_file.endswith(".parquet"):
                frame.to_parquet(path, index=False)
            else:
                raise InvalidInput(
                    "log_dataframe: name must end in .parquet, .csv or .jsonl, "
                    f"got {artifact_file!r}"
                )
            return self._store_files(run_id, [(check_artifact_path(artifact_file), path)])[0]

    def list_artifacts(self, run_id: str, path: str | None = None) -> list[Artifact]:
        """Every artifact of the run, or those under ``path``."""
        return self._tracking.list_artifacts(run_id, path)

    def download_artifacts(
        self, run_id: str, path: str = "", dst: str | os.PathLike[str] = "."
    ) -> Path:
        """Copy an artifact file or folder to ``dst``; return the local path of what was asked."""
        dst = Path(dst)
        entries = self._tracking.list_artifacts(run_id, path or None)
        if not entries:
            raise NotFound(f"run {run_id} has no artifact at {path!r}")
        base = check_artifact_path(path) if path else ""
        parent = base.rsplit("/", 1)[0] + "/" if "/" in base else ""
        for entry in entries:
            local = dst / entry.path[len(parent) :]
            self._tracking.download_blob(entry.digest, local)
        return dst / base[len(parent) :] if base else dst

    def read_artifact(self, run_id: str, path: str) -> bytes:
        """The bytes of one (small) artifact file."""
        with tempfile.TemporaryDirectory() as tmp:
            local = self.download_artifacts(run_id, path, tmp)
            if not local.is_file():
                raise InvalidInput(f"{path!r} is a folder; use download_artifacts")
            return local.read_bytes()

    def restore_source(self, run_id: str, dst: str | os.PathLike[str]) -> Path:
        """Write the code a run ran into the empty folder ``dst``: its commit's source tree
        from the blob store, with its uncommitted changes (the recorded diff) applied. Needs
        no clone of the repository; ``dst`` then holds what was the repository's root.

        Raises:
            InvalidInput: the run recorded no source tree (it ran outside a git work tree,
                or its tree was left out; the run's tags say why), or ``dst`` is not empty.
        """
        from opsloop.tracking.reproducibility import DIFF_ARTIFACT
        from opsloop.tracking.source_tree import TREE_TAG
        from opsloop.tracking.source_tree import apply_diff
        from opsloop.tracking.source_tree import restore_tree

        tags = self.get_run(run_id).data.tags
        if TREE_TAG not in tags:
            why = tags.get("opsloop.source.tree_left_out") or (
                "it did not run in a git work tree" if "opsloop.git.commit" not in tags
                else "it was recorded before source trees were")  # fmt: skip
            raise InvalidInput(f"run {run_id} recorded no source tree: {why}")
        dest = Path(dst)
        restore_tree(tags[TREE_TAG], self._tracking.blobs, dest)
        if "opsloop.git.diff_hash" in tags:
            apply_diff(dest, self.read_artifact(run_id, DIFF_ARTIFACT))
        return dest

    def _store_files(self, run_id: str, files: list[tuple[str, Path]]) -> list[Artifact]:
        specs = [
            ArtifactSpec(
                path=check_artifact_path(dest), digest=hash_file(src), size=src.stat().st_size
            )
            for dest, src in files
        ]
        by_digest = {spec.digest: src for spec, (_, src) in zip(specs, files, strict=True)}
        for digest in self._tracking.missing_blobs(list(by_digest)):
            self._tracking.upload_blob(digest, by_digest[digest])
        return self._tracking.register_artifacts(run_id, specs)


def walk_files(root: Path) -> Iterator[tuple[str, Path]]:
    """Files under ``root`` as (relative POSIX path, path); refuses symlinks that leave it."""
    resolved_root = root.resolve()
    for path in sorted(root.rglob("*")):
        if path.is_dir():
            continue
        if path.is_symlink() and not path.resolve().is_relative_to(resolved_root):
            raise InvalidInput(f"{path} is a symlink to {path.resolve()}, outside {root}")
        yield path.relative_to(root).as_posix(), path


@contextmanager
def _scratch_file(artifact_file: str) -> Iterator[Path]:
    name = Path(check_artifact_path(artifact_file)).name
    with tempfile.TemporaryDirectory(prefix="opsloop-") as tmp:
        yield Path(tmp) / name
