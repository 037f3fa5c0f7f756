"""A clean environment to reproduce a run in: a new virtual environment that holds exactly the
distributions of the run's lock, and the run's code checked out at its commit.

The environment is built once per lock (``$OPSLOOP_HOME/envs/<lock hash>``) and reused. Each
locked distribution that this environment already has at the same version is linked in from
its installed files (its ``RECORD``: hard links, or copies across file systems), so building
an environment like the current one takes seconds and no network; the others are installed
from the package index with ``pip --no-deps`` (the lock is already complete). Nothing else is
visible in it: no system site-packages, none of this environment's other packages.

The code is a ``git worktree`` of the recorded commit when a repository here has it; else the
commit's source tree restored from the blob store (:mod:`opsloop.tracking.source_tree`), so no
clone is needed; else the commit fetched from the run's recorded ``origin``. The recorded diff
(uncommitted changes, untracked files up to 1 MiB) is applied on top. A distribution installed
in development mode from inside the repository (``pip install -e .``) is imported from that
code instead, so the reproduction runs the recorded code, not today's; one this environment
lacks is not looked for on the package index.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from dataclasses import field
from importlib import metadata
from pathlib import Path

from opsloop.errors import InvalidInput
from opsloop.errors import OpsloopError
from opsloop.tracking.reproducibility import canonical_name
from opsloop.tracking.reproducibility import editable_installs
from opsloop.tracking.source_tree import apply_diff

__all__ = [
    "CleanEnv",
    "build_env",
    "checkout",
    "editable_paths",
    "python_version",
    "remove_worktree",
    "repository_with",
]

_COMPLETE = ".opsloop-complete"


@dataclass
class CleanEnv:
    root: Path
    python: Path
    linked: list[str] = field(default_factory=list)  # name==version linked from here
    installed: list[str] = field(default_factory=list)  # name==version from the package index
    from_source: list[str] = field(default_factory=list)  # development installs: the run's code
    reused: bool = False


def _locked(lock: str) -> dict[str, str]:
    """Canonical name -> version of ``name==version`` lines."""
    pins = {}
    for line in lock.splitlines():
        name, sep, version = line.strip().partition("==")
        if sep and name:
            pins[canonical_name(name)] = version
    return pins


def _installed() -> dict[str, metadata.Distribution]:
    found: dict[str, metadata.Distribution] = {}
    for dist in metadata.distributions():
        name = dist.metadata.get("Name")
        if name:
            found.setdefault(canonical_name(name), dist)
    return found


def editable_paths(repo: Path, worktree: Path) -> list[str]:
    """Where this environment's development installs from inside ``repo`` import from, moved
    into ``worktree`` (for runs recorded before ``opsloop.env.editable``)."""
    paths = []
    for folders in editable_installs().values():
        for folder in folders:
            try:
                inside = Path(folder).resolve().relative_to(repo.resolve())
            except ValueError:
                continue
            paths.append(str(worktree / inside))
    return paths


def _link(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(source, target)
    except FileExistsError:
        pass  # a file two distributions install (mlflow and mlflow-skinny): it is one file
    except OSError:
        shutil.copy2(source, target)


def _link_distribution(dist: metadata.Distribution, site: Path, from_source: bool) -> bool:
    """Link the files ``dist`` installed into site-packages; False when it cannot be (no
    RECORD). Scripts and data outside site-packages are left out; so is the ``.pth`` of a
    development install whose code comes ``from_source`` (the run's, on ``PYTHONPATH``)."""
    record = dist.read_text("RECORD")
    if record is None:
        return False
    base = Path(str(dist.locate_file(""))).resolve()
    for row in csv.reader(record.splitlines()):
        if not row or row[0].startswith(".."):
            continue
        relative = Path(row[0])
        if from_source and relative.suffix == ".pth":
            continue
        source = base / relative
        if source.is_file():
            _link(source, site / relative)
    return True


def _create_venv(root: Path) -> Path:
    base = getattr(sys, "_base_executable", sys.executable)
    subprocess.run([base, "-m", "venv", "--without-pip", str(root)], check=True,
                   capture_output=True, timeout=120)  # fmt: skip
    return root / "bin" / "python"


def _site_packages(python: Path) -> Path:
    done = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    return Path(done.stdout.strip())


def build_env(
    lock: str, lock_hash: str, home: Path, from_source: frozenset[str] = frozenset()
) -> CleanEnv:
    """The environment for ``lock``, built now or reused from an earlier build.

    ``from_source`` names the run's development installs: their code comes from the run's
    source on ``PYTHONPATH``, so one this environment lacks is left out, never looked for on
    the package index (where the project's own package usually is not)."""
    pins = _locked(lock)
    if not pins:
        raise InvalidInput("the run's lock names no package")
    root = home / "envs" / lock_hash[:24]
    if from_source:  # their .pth files are left out: another environment than the lock alone
        from blake3 import blake3

        ours = blake3(" ".join(sorted(from_source)).encode()).hexdigest()[:8]
        root = root.with_name(f"{root.name}-{ours}")
    python = root / "bin" / "python"
    if (root / _COMPLETE).is_file():
        recorded = json.loads((root / _COMPLETE).read_text())
        return CleanEnv(root, python, recorded["linked"], recorded["installed"],
                        recorded.get("from_source", []), reused=True)  # fmt: skip
    if root.exists():
        shutil.rmtree(root)  # a build that stopped half way
    building = root.with_name(f"{root.name}.{os.getpid()}.building")
    shutil.rmtree(building, ignore_errors=True)
    _create_venv(building)
    site = _site_packages(building / "bin" / "python")
    here = _installed()
    env = CleanEnv(root, python)
    missing = []
    for name, version in sorted(pins.items()):
        dist = here.get(name)
        pin, ours = f"{name}=={version}", name in from_source
        if ours:
            env.from_source.append(pin)  # linked too when here, for its metadata
        if dist is not None and dist.version == version and _link_distribution(dist, site, ours):
            env.linked.append(pin)
        elif not ours:
            missing.append(pin)
    if missing:
        done = subprocess.run(
            [sys.executable, "-m", "pip", "--python", str(building / "bin" / "python"),
             "install", "--no-deps", "--no-input", "--disable-pip-version-check", "-q",
             *missing],
            capture_output=True, text=True, timeout=3600,
        )  # fmt: skip
        if done.returncode != 0:
            shutil.rmtree(building, ignore_errors=True)
            raise OpsloopError(
                f"could not install {len(missing)} locked package(s) from the index: "
                f"{done.stderr.strip()[-2000:]}"
            )
        env.installed = missing
    record = {"linked": env.linked, "installed": env.installed, "from_source": env.from_source}
    (building / _COMPLETE).write_text(json.dumps(record))
    os.replace(building, root)  # whole, or not at all
    return env


def _git(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True,
                          timeout=300)  # fmt: skip


def _repository_here() -> Path | None:
    found = _git(Path.cwd(), "rev-parse", "--show-toplevel")
    return Path(found.stdout.strip()) if found.returncode == 0 else None


def repository_with(commit: str) -> Path | None:
    """The repository around the working directory, if it has ``commit`` (nothing fetched)."""
    repo = _repository_here()
    if repo is None or _git(repo, "cat-file", "-e", f"{commit}^{{commit}}").returncode != 0:
        return None
    return repo


def checkout(
    commit: str, diff: bytes | None, dest: Path, remote: str | None = None
) -> tuple[Path, Path]:
    """A worktree of ``commit`` at ``dest`` with ``diff`` applied; (the repository the commit
    came from, the worktree). The commit must be in the repository around the working
    directory, or fetchable from ``remote`` (the run's recorded ``origin``)."""
    repo = repository_with(commit)
    if repo is None:
        repo = _repository_here()
        if repo is None:
            raise InvalidInput(
                "run this from a clone of the run's repository: no git repository here"
            )
        if not (remote and _git(repo, "fetch", "--quiet", remote, commit).returncode == 0):
            raise InvalidInput(
                f"commit {commit[:12]} is not in {repo}"
                + (f" and could not be fetched from {remote}" if remote else "")
                + ": fetch it (git fetch) or run from a clone that has it"
            )
    added = _git(repo, "worktree", "add", "--detach", str(dest), commit)
    if added.returncode != 0:
        raise OpsloopError(f"git worktree add failed: {added.stderr.strip()}")
    if diff:
        apply_diff(dest, diff)
    return repo, dest


def remove_worktree(repo: Path, worktree: Path) -> None:
    _git(repo, "worktree", "remove", "--force", str(worktree))
    shutil.rmtree(worktree, ignore_errors=True)


def python_version(python: Path) -> str:
    return subprocess.run(
        [str(python), "-c", "import platform; print(platform.python_version())"],
        capture_output=True, text=True, timeout=60, check=True,
    ).stdout.strip()  # fmt: skip
