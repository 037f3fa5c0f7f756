"""Which installed distributions an image needs: a model package's lock and the image server's.

An image carries only the Python distributions its model's lock names (``scikit-learn==1.9.1``,
``skops==…``) and the small server that answers for it, with everything those require, found
by walking each distribution's declared requirements (markers evaluated, extras left out). The
files come from this environment, not from a package index: the box that builds the image has
no index to reach, and a version the lock pins is the one the model was saved with, so it must
be the one installed here. A pin this environment cannot meet is an error that names the
package, before anything is built.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from packaging.requirements import InvalidRequirement
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from opsloop.errors import InvalidInput

__all__ = ["SERVER_REQUIREMENTS", "Distribution", "needed_distributions"]

# What opsloop.serving.image_server imports beyond the standard library and opsloop's own
# modules: the package reader's pydantic (its HTTP server is the standard library's).
SERVER_REQUIREMENTS = ("pydantic",)


@dataclass(frozen=True)
class Distribution:
    """One installed distribution to copy: its files relative to the folder it lives in."""

    name: str
    version: str
    root: Path
    files: tuple[str, ...]

    @property
    def pin(self) -> str:
        return f"{self.name}=={self.version}"

    def size(self) -> int:
        """Its bytes on disk: what installing it alone writes."""
        return sum((self.root / f).stat().st_size for f in self.files)

    def digest(self) -> str:
        """Changes when any of its files' names or sizes do (a reinstall keeps it)."""
        h = hashlib.blake2b(self.pin.encode(), digest_size=16)
        for name in self.files:
            h.update(f"{name}\0{(self.root / name).stat().st_size}\0".encode())
        return h.hexdigest()


def needed_distributions(lock: list[str]) -> list[Distribution]:
    """The distributions ``lock`` and the image server need, with all they require, by name.

    Raises:
        InvalidInput: A lock line that is not a requirement, a package not installed here, or
            one installed at a version the lock does not allow (the message names it).
    """
    wanted: dict[str, Distribution] = {}
    pending = [(_requirement(line), "the model's lock") for line in lock if line.strip()]
    pending += [(Requirement(name), "the image server") for name in SERVER_REQUIREMENTS]
    while pending:
        requirement, wanted_by = pending.pop()
        key = canonicalize_name(requirement.name)
        if key in wanted:
            continue
        found = _installed(requirement, wanted_by)
        wanted[key] = found
        for line in metadata.requires(found.name) or []:
            child = Requirement(line)
            if child.marker is None or child.marker.evaluate({"extra": ""}):
                pending.append((child, found.pin))
    return sorted(wanted.values(), key=lambda d: canonicalize_name(d.name))


def _requirement(line: str) -> Requirement:
    try:
        return Requirement(line.strip())
    except InvalidRequirement as exc:
        raise InvalidInput(
            f"the model's lock line {line.strip()!r} is not a requirement: {exc}"
        ) from None


def _installed(requirement: Requirement, wanted_by: str) -> Distribution:
    """The installed distribution meeting ``requirement``, or the error that names it."""
    try:
        dist = metadata.distribution(requirement.name)
    except metadata.PackageNotFoundError:
        raise InvalidInput(
            f"cannot build the image: {requirement} (needed by {wanted_by}) is not installed "
            "here; install it and build again"
        ) from None
    version = dist.version
    if requirement.specifier and not requirement.specifier.contains(version, prereleases=True):
        raise InvalidInput(
            f"cannot build the image: {requirement} (needed by {wanted_by}) cannot be met, "
            f"this environment has {dist.metadata['Name']} {version}"
        )
    root = Path(str(dist.locate_file("")))
    files = tuple(
        str(f) for f in dist.files or [] if not str(f).startswith("..") and (root / f).is_file()
    )
    return Distribution(dist.metadata["Name"], version, root, files)
