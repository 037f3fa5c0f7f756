"""Where an MLflow run's (or model version's) files are, on this machine.

MLflow records an absolute artifact URI per run. It is used as is when the folder is here;
otherwise, with ``--artifacts ROOT`` (a copy of the artifact root: ``./mlruns``, a synced
bucket), the URI's tail is looked for under ROOT (``.../1/<run>/artifacts`` →
``ROOT/1/<run>/artifacts``), and ``mlflow-artifacts:/PATH`` (a tracking server's proxied
store) is ``ROOT/PATH``. Remote stores (``s3://`` ...) are only reached through such a copy.
"""

from __future__ import annotations

from pathlib import Path
from pathlib import PurePosixPath
from urllib.parse import urlparse

from opsloop.app.mlflow_import.file_reader import local_path

__all__ = ["ArtifactLocator"]


class ArtifactLocator:
    """Resolves artifact URIs to local folders; ``None`` with a reason when it cannot."""

    def __init__(self, root: Path | None) -> None:
        self.root = root

    def folder(self, uri: str | None) -> tuple[Path | None, str | None]:
        """(the folder, None), (None, None) when there is nothing to copy, or (None, why)."""
        if not uri:
            return None, None
        parsed = urlparse(uri)
        if parsed.scheme == "mlflow-artifacts":
            if self.root is None:
                return None, f"{uri} is on a tracking server; pass --artifacts with its root"
            return self._under_root(PurePosixPath(parsed.path.lstrip("/")).parts, uri)
        if parsed.scheme in ("", "file") or len(parsed.scheme) == 1:  # a Windows drive letter
            path = local_path(uri)
            if path.exists():
                return path, None
            if self.root is not None:
                return self._under_root(PurePosixPath(path.as_posix()).parts, uri)
            if path.parent.parent.parent.exists():
                return None, None  # the store's artifact root is here: this run logged none
            # nor the store's artifact root: moved, or never made (no run logged a file)
            return None, (
                f"{uri} is not on this machine, nor the artifact root it is under; "
                "if the run logged files, pass --artifacts with a copy of that root"
            )
        if self.root is None:
            return None, f"{uri} is a remote store; pass --artifacts with a local copy of it"
        return self._under_root((parsed.netloc, *PurePosixPath(parsed.path).parts), uri)

    def _under_root(self, parts: tuple[str, ...], uri: str) -> tuple[Path | None, str | None]:
        assert self.root is not None
        parts = tuple(p for p in parts if p not in ("", "/"))
        for start in range(len(parts)):
            candidate = self.root.joinpath(*parts[start:])
            if candidate.exists():
                return candidate, None
        if len(parts) >= 2 and self.root.joinpath(*parts[-3:-1]).exists():
            return None, None  # the run's folder is there, its artifacts never were
        return None, f"{uri} is not under {self.root}"
