"""What it takes to reproduce a run, captured when it starts.

Recorded as system tags (``opsloop.*``) so they are searchable like any tag
(``tags.`opsloop.git.commit` = 'abc…'``), plus artifacts: the installed-package lock
(``_opsloop/requirements.lock``, ``name==version`` lines; its hash is a tag, so runs with the
same environment share one blob), the commit's source tree (``_opsloop/source-tree.json``, see
:mod:`opsloop.tracking.source_tree`: the code itself, so it can be put back without a clone)
and, when the work tree is dirty, the diff against HEAD (``_opsloop/git.diff``), untracked files
up to 1 MiB included as new files (larger ones are data: their count is the
``opsloop.git.untracked_left_out`` tag). The lock is computed once per process, and kept on disk
for the next ones until a package is installed or removed.
"""

from __future__ import annotations

import functools
import json
import os
import platform
import shlex
import socket
import subprocess
import sys
from dataclasses import dataclass
from dataclasses import field
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING
from typing import Any

from opsloop.tracking.validation import MAX_TAG_VALUE_LENGTH

if TYPE_CHECKING:
    from opsloop.tracking.entities import ArtifactSpec
    from opsloop.tracking.source_tree import SourceTree

__all__ = ["ENV_TAG_PREFIX", "Environment", "capture_environment", "seed_everything"]

ENV_TAG_PREFIX = "opsloop."
LOCK_ARTIFACT = "_opsloop/requirements.lock"
DIFF_ARTIFACT = "_opsloop/git.diff"
_SEED: list[int] = []


@dataclass
class Environment:
    """Tags to set and artifact files (path → bytes) to store for one run, and the source
    tree of its commit (read from ``repo``'s git objects when a store lacks its files)."""

    tags: dict[str, str] = field(default_factory=dict)
    files: dict[str, bytes] = field(default_factory=dict)
    tree: SourceTree | None = None
    repo: Path | None = None

    def store(self, blobs: Any) -> list[ArtifactSpec]:
        """Put the files' and the tree's blobs in ``blobs`` (a blob store or a server's blob
        API); the artifact entries that attach them to the run."""
        from opsloop.tracking.entities import ArtifactSpec
        from opsloop.tracking.source_tree import TREE_ARTIFACT
        from opsloop.tracking.source_tree import store_tree

        specs = [ArtifactSpec(path=path, digest=_blake3(data), size=len(data))
                 for path, data in self.files.items()]  # fmt: skip
        missing = set(blobs.missing([spec.digest for spec in specs]))
        if missing:
            blobs.put_verified_bytes([(spec.digest, self.files[spec.path])
                                      for spec in specs if spec.digest in missing])  # fmt: skip
        if self.tree is not None and self.repo is not None:
            store_tree(self.tree, self.repo, blobs)
            specs.append(ArtifactSpec(path=TREE_ARTIFACT, digest=self.tree.digest,
                                      size=len(self.tree.canonical)))  # fmt: skip
        return specs


def _git(*args: str, env: dict[str, str] | None = None) -> str | None:
    try:
        done = subprocess.run(
            ["git", *args], capture_output=True, timeout=10, check=True, cwd=os.getcwd(),
            env=env,
        )  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.decode(errors="replace")


UNTRACKED_MAX_BYTES = 1 << 20  # untracked files larger than this are data, not code


def _diff_with_untracked(untracked: list[str]) -> tuple[bytes, int]:
    """``git diff HEAD`` with the small untracked files added as new files (a new module is
    code the run used as much as an edited one), and how many untracked files were too large
    to include. The user's index is untouched: the files are marked intent-to-add in a copy."""
    small = []
    for name in untracked:
        try:
            if os.path.getsize(name) <= UNTRACKED_MAX_BYTES:
                small.append(name)
        except OSError:
            continue
    left_out = len(untracked) - len(small)
    index = (_git("rev-parse", "--git-path", "index") or "").strip()
    if not small or not index:
        return (_git("diff", "HEAD", "--binary") or "").encode(), left_out
    import shutil
    import tempfile

    with tempfile.TemporaryDirectory(prefix="opsloop-git-") as tmp:
        copy = os.path.join(tmp, "index")
        try:
            shutil.copy2(index, copy)  # its time too: git trusts no stat newer than the index
        except OSError:
            return (_git("diff", "HEAD", "--binary") or "").encode(), left_out
        env = {**os.environ, "GIT_INDEX_FILE": copy}
        _git("add", "--intent-to-add", "--", *small, env=env)
        return (_git("diff", "HEAD", "--binary", env=env) or "").encode(), left_out


def _holds_distributions(folder: str) -> bool:
    """Whether installed distributions live in ``folder`` (a project folder on ``sys.path``,
    whose time changes with every file written there, is left out of the key)."""
    if folder.endswith(("site-packages", "dist-packages")):
        return True
    return any(name.endswith((".dist-info", ".egg-info")) for name in os.listdir(folder))


def _lock_cache_path() -> Path:
    """Where this environment's lock is kept: named by the package folders and their
    modification times. Installing or removing a distribution adds or removes its
    ``*.dist-info`` folder, which changes its parent's time, so a stale lock is never read."""
    from blake3 import blake3

    folders = []
    for entry in sys.path:
        try:
            if entry and os.path.isdir(entry) and _holds_distributions(entry):
                folders.append(f"{entry}:{os.stat(entry).st_mtime_ns}")
        except OSError:
            continue
    key = blake3("\n".join([sys.prefix, *folders]).encode()).hexdigest()[:32]
    from opsloop.config import home_dir

    return home_dir() / "cache" / "locks" / f"{key}.lock"


@functools.lru_cache(maxsize=1)
def package_lock() -> str:
    """``name==version`` for every installed distribution, sorted: the environment's lock.

    Reading ~300 distributions' metadata takes ~0.1 s, paid by every process that starts a
    run; the lock is therefore kept on disk, keyed by the package folders' state."""
    cache = _lock_cache_path()
    try:
        return cache.read_text(encoding="utf-8")
    except OSError:
        pass
    seen: dict[str, str] = {}
    for dist in metadata.distributions():
        name = dist.metadata.get("Name")
        if name:
            seen.setdefault(name.lower(), f"{name}=={dist.version}")
    lock = "\n".join(seen[k] for k in sorted(seen)) + "\n"
    _keep(cache, lock)
    return lock


def _keep(cache: Path, text: str) -> None:
    """Write a cache file whole (a reader never sees half of it); a read-only home keeps
    nothing, and the next process computes it again."""
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, cache)
    except OSError:
        pass


@functools.lru_cache(maxsize=1)
def editable_installs() -> dict[str, list[str]]:
    """Canonical name -> the folders its ``.pth`` puts on ``sys.path``, for each distribution
    installed in development mode (``pip install -e``): its code is the project's own, so a
    reproduction takes it from the run's source, not from a package index. Kept on disk beside
    the lock, under the same key."""
    cache = _lock_cache_path().with_suffix(".editable.json")
    try:
        found: dict[str, list[str]] = json.loads(cache.read_text(encoding="utf-8"))
        return found
    except (OSError, ValueError):
        pass
    found = {}
    for dist in metadata.distributions():
        name = dist.metadata.get("Name")
        try:
            editable = json.loads(dist.read_text("direct_url.json") or "{}")["dir_info"]["editable"]
        except (ValueError, KeyError, TypeError):
            continue
        if not name or not editable:
            continue
        for file in dist.files or []:
            if str(file).endswith(".pth"):
                try:
                    lines = Path(str(dist.locate_file(file))).read_text().splitlines()
                except OSError:
                    continue
                found.setdefault(canonical_name(name), []).extend(
                    line.strip() for line in lines
                    if line.strip() and not line.startswith(("#", "import ")))  # fmt: skip
    _keep(cache, json.dumps(found))
    return found


def canonical_name(name: str) -> str:
    """A distribution's name as the package index compares them (``Foo_bar`` = ``foo-bar``)."""
    return name.lower().replace("_", "-").replace(".", "-")


def _editable_inside(root: Path) -> dict[str, list[str]]:
    """The development installs whose code lies inside ``root``: name -> paths relative to it."""
    inside: dict[str, list[str]] = {}
    resolved = root.resolve()
    for name, paths in editable_installs().items():
        for path in paths:
            try:
                relative = Path(path).resolve().relative_to(resolved).as_posix()
            except (ValueError, OSError):
                continue
            inside.setdefault(name, []).append(relative)
    return inside


def _blake3(data: bytes) -> str:
    from blake3 import blake3

    return blake3(data).hexdigest()


def _total_memory() -> int | None:
    """The host's memory in bytes: ``sysconf`` where there is one (importing psutil for this
    one number costs 25 ms of every run's start)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        try:
            import psutil
        except ImportError:
            return None
        return int(psutil.virtual_memory().total)


def _capture_tree(env: Environment, root: Path, commit: str) -> None:
    """The commit's source tree on ``env``; a tree that cannot be read is named, never fatal."""
    from opsloop.errors import OpsloopError
    from opsloop.tracking.source_tree import TREE_TAG
    from opsloop.tracking.source_tree import capture_tree

    try:
        tree, left_out = capture_tree(root, commit)
    except (OSError, subprocess.SubprocessError, OpsloopError) as exc:
        tree, left_out = None, f"could not read the tree of {commit[:12]}: {exc}"
    if tree is not None:
        env.tree, env.repo = tree, root
        env.tags[TREE_TAG] = tree.digest
    if left_out:
        env.tags["opsloop.source.tree_left_out"] = left_out[:500]


def capture_environment() -> Environment:
    """Git state, command line, Python, host, package lock and seed of this process."""
    env = Environment()
    tags = env.tags
    head = _git("rev-parse", "HEAD", "--abbrev-ref", "HEAD", "--show-toplevel") or ""
    head = head.splitlines()
    if len(head) == 3:
        commit, branch, root = head
        tags["opsloop.git.commit"] = commit
        tags["opsloop.git.branch"] = branch
        tags["opsloop.git.root"] = root
        _capture_tree(env, Path(root), commit)
        editable = json.dumps(_editable_inside(Path(root)), sort_keys=True)
        if editable != "{}" and len(editable) <= MAX_TAG_VALUE_LENGTH:
            tags["opsloop.env.editable"] = editable
        remote = _git("config", "--get", "remote.origin.url")
        if remote and remote.strip():
            tags["opsloop.git.remote"] = remote.strip()
        untracked = (_git("ls-files", "--others", "--exclude-standard") or "").splitlines()
        diff, left_out = _diff_with_untracked([u for u in untracked if u])
        dirty = bool(diff) or bool(untracked)
        tags["opsloop.git.dirty"] = str(dirty).lower()
        if left_out:
            tags["opsloop.git.untracked_left_out"] = str(left_out)
        if diff:
            tags["opsloop.git.diff_hash"] = _blake3(diff)
            env.files[DIFF_ARTIFACT] = diff
    tags["opsloop.source.command"] = shlex.join([sys.executable, *sys.argv])[:8000]
    tags["opsloop.source.cwd"] = os.getcwd()
    tags["opsloop.python.version"] = platform.python_version()
    tags["opsloop.python.implementation"] = platform.python_implementation()
    tags["opsloop.host.name"] = socket.gethostname()
    tags["opsloop.host.platform"] = platform.platform()
    tags["opsloop.host.cpus"] = str(os.cpu_count() or 0)
    memory = _total_memory()
    if memory:
        tags["opsloop.host.memory_gb"] = f"{memory / 2**30:.1f}"
    lock = package_lock().encode()
    tags["opsloop.env.lock_hash"] = _blake3(lock)
    env.files[LOCK_ARTIFACT] = lock
    if _SEED:
        tags["opsloop.seed"] = str(_SEED[-1])
    return env


def seed_everything(seed: int) -> int:
    """Seed Python's ``random``, NumPy, and PyTorch (if imported); record the seed for runs.

    Runs started afterwards carry it as the ``opsloop.seed`` tag; so does the active run, when
    called through ``opsloop.seed_everything``. ``PYTHONHASHSEED`` is set for child processes.
    """
    import random

    if not isinstance(seed, int) or isinstance(seed, bool) or not 0 <= seed < 2**32:
        from opsloop.errors import InvalidInput

        raise InvalidInput(f"seed must be an integer in [0, 2**32), got {seed!r}")
    random.seed(seed)
    os.environ["PYTHONHASHSEED"] = str(seed)
    try:
        import numpy as np

        np.random.seed(seed)
    except ImportError:
        pass
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.manual_seed(seed)
        if torch.cuda.is_available():
            torch.cuda.manual_seed_all(seed)
    _SEED.append(seed)
    return seed
