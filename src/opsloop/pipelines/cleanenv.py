"""A clean environment to reproduce a run in: a new virtual environment that holds exactly the
distributions of the run's lock, and the run's code checked out at its commit.

The environment is built once per lock (``$OPSLOOP_HOME/envs/<lock hash>``) and reused. Each
locked distribution that this environment already has at the same version is linked in from
its installed files (its ``RECORD``: hard links, or copies across file systems), so building
an environment like the current one takes seconds and no network; the others are installed
from the package index with ``pip --no-deps`` (the lock is already complete). Nothing else is
visible in it: no system site-packages, none of this environment's other packages.

The code is a ``git worktree`` of the recorded commit, with the recorded diff applied when the
run's work tree was dirty (untracked files are not recorded, so they are not there). A
distribution installed in development mode from inside the repository (``pip install -e .``)
is imported from the worktree instead, so the reproduction runs the recorded code, not today's.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from opsloop.errors import InvalidInput, OpsloopError

__all__ = [
    "CleanEnv",
    "build_env",
    "checkout",
    "editable_paths",
    "python_version",
    "remove_worktree",
]

_COMPLETE = ".opsloop-complete"


@dataclass
class CleanEnv:
    root: Path
    python: Path
    linked: list[str] = field(default_factory=list)  # name==version linked from here
    installed: list[str] = field(default_factory=list)  # name==version from the package index
    reused: bool = False


def _locked(lock: str) -> dict[str, str]:
    """Canonical name -> version of ``name==version`` lines."""
    pins = {}
    for line in lock.splitlines():
        name, sep, version = line.strip().partition("==")
        if sep and name:
            pins[_canonical(name)] = version
    return pins


def _canonical(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


def _installed() -> dict[str, metadata.Distribution]:
    found: dict[str, metadata.Distribution] = {}
    for dist in metadata.distributions():
        name = dist.metadata.get("Name")
        if name:
            found.setdefault(_canonical(name), dist)
    return found


def _direct_url(dist: metadata.Distribution) -> dict[str, Any]:
    text = dist.read_text("direct_url.json")
    try:
        return json.loads(text) if text else {}
    except ValueError:
        return {}


def _is_editable(dist: metadata.Distribution) -> bool:
    return bool(_direct_url(dist).get("dir_info", {}).get("editable"))


def editable_paths(repo: Path, worktree: Path) -> list[str]:
    """Where development installs from inside ``repo`` import from, moved into ``worktree``."""
    paths = []
    for dist in _installed().values():
        if not _is_editable(dist):
            continue
        for file in dist.files or []:
            if not str(file).endswith(".pth"):
                continue
            try:
                lines = Path(str(dist.locate_file(file))).read_text().splitlines()
            except OSError:
                continue
            for line in lines:
                line = line.strip()
                if not line or line.startswith(("#", "import ")):
                    continue
                try:
                    inside = Path(line).resolve().relative_to(repo.resolve())
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


def _link_distribution(dist: metadata.Distribution, site: Path) -> bool:
    """Link the files ``dist`` installed into site-packages; False when it cannot be (no
    RECORD). Scripts and data outside site-packages are left out; a development install's
    ``.pth`` too (its code comes from the worktree)."""
    record = dist.read_text("RECORD")
    if record is None:
        return False
    base = Path(str(dist.locate_file(""))).resolve()
    editable = _is_editable(dist)
    for row in csv.reader(record.splitlines()):
        if not row or row[0].startswith(".."):
            continue
        relative = Path(row[0])
        if editable and relative.suffix == ".pth":
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


def build_env(lock: str, lock_hash: str, home: Path) -> CleanEnv:
    """The environment for ``lock``, built now or reused from an earlier build."""
    pins = _locked(lock)
    if not pins:
        raise InvalidInput("the run's lock names no package")
    root = home / "envs" / lock_hash[:24]
    python = root / "bin" / "python"
    if (root / _COMPLETE).is_file():
        recorded = json.loads((root / _COMPLETE).read_text())
        return CleanEnv(root, python, recorded["linked"], recorded["installed"], reused=True)
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
        if dist is not None and dist.version == version and _link_distribution(dist, site):
            env.linked.append(f"{name}=={version}")
        else:
            missing.append(f"{name}=={version}")
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
    (building / _COMPLETE).write_text(
        json.dumps({"linked": env.linked, "installed": env.installed})
    )
    os.replace(building, root)  # whole, or not at all
    return env


def _git(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True,
                          timeout=300)  # fmt: skip


def checkout(
    commit: str, diff: bytes | None, dest: Path, remote: str | None = None
) -> tuple[Path, Path]:
    """A worktree of ``commit`` at ``dest`` with ``diff`` applied; (the repository the commit
    came from, the worktree). The commit must be in the repository around the working
    directory, or fetchable from ``remote`` (the run's recorded ``origin``)."""
    found = _git(Path.cwd(), "rev-parse", "--show-toplevel")
    if found.returncode != 0:
        raise InvalidInput("run this from a clone of the run's repository: no git repository here")
    repo = Path(found.stdout.strip())
    if _git(repo, "cat-file", "-e", f"{commit}^{{commit}}").returncode != 0 and not (
        remote and _git(repo, "fetch", "--quiet", remote, commit).returncode == 0
    ):
        raise InvalidInput(
            f"commit {commit[:12]} is not in {repo}"
            + (f" and could not be fetched from {remote}" if remote else "")
            + ": fetch it (git fetch) or run from a clone that has it"
        )
    added = _git(repo, "worktree", "add", "--detach", str(dest), commit)
    if added.returncode != 0:
        raise OpsloopError(f"git worktree add failed: {added.stderr.strip()}")
    if diff:
        patch = dest / ".opsloop-run.diff"
        patch.write_bytes(diff)
        applied = _git(dest, "apply", "--binary", str(patch))
        patch.unlink()
        if applied.returncode != 0:
            raise OpsloopError(f"the run's recorded diff does not apply: {applied.stderr.strip()}")
    return repo, dest


def remove_worktree(repo: Path, worktree: Path) -> None:
    _git(repo, "worktree", "remove", "--force", str(worktree))
    shutil.rmtree(worktree, ignore_errors=True)


def python_version(python: Path) -> str:
    return subprocess.run(
        [str(python), "-c", "import platform; print(platform.python_version())"],
        capture_output=True, text=True, timeout=60, check=True,
    ).stdout.strip()  # fmt: skip
