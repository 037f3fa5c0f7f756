"""The environment lock that every run records is read from disk by later processes, and is
computed again as soon as a package folder changes (an install or an uninstall)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from opsloop.tracking import reproducibility

CODE = (
    "import sys; sys.path.insert(0, sys.argv[1]); "
    "from opsloop.tracking.reproducibility import package_lock; print(len(package_lock()))"
)


def _lock_in_a_process(extra: Path) -> str:
    done = subprocess.run([sys.executable, "-c", CODE, str(extra)], capture_output=True,
                          text=True, check=True, env=os.environ.copy())  # fmt: skip
    return done.stdout.strip()


def test_the_lock_is_kept_and_invalidated_by_package_folders(tmp_path: Path) -> None:
    packages = tmp_path / "site-packages"
    packages.mkdir()
    first = _lock_in_a_process(packages)
    locks = list((Path(os.environ["OPSLOOP_HOME"]) / "cache" / "locks").glob("*.lock"))
    assert len(locks) == 1 and int(first) > 0
    assert _lock_in_a_process(packages) == first  # read back, same lock
    assert len(list(locks[0].parent.glob("*.lock"))) == 1
    (packages / "newpkg-1.0.dist-info").mkdir()  # "pip install newpkg"
    (packages / "newpkg-1.0.dist-info" / "METADATA").write_text("Name: newpkg\nVersion: 1.0\n")
    second = _lock_in_a_process(packages)
    assert int(second) > int(first)  # recomputed: the new distribution is in it
    assert len(list(locks[0].parent.glob("*.lock"))) == 2
    reproducibility.package_lock.cache_clear()
    assert "newpkg" not in reproducibility.package_lock()  # not on this process's path


def test_a_project_folder_on_the_path_keeps_the_lock(tmp_path: Path) -> None:
    project = tmp_path / "project"  # `opsloop pipelines run flows.py:train` puts it on the path
    project.mkdir()
    first = _lock_in_a_process(project)
    (project / "flows.py").write_text("x = 1\n")  # its time moves with every file written
    assert _lock_in_a_process(project) == first
    locks = Path(os.environ["OPSLOOP_HOME"]) / "cache" / "locks"
    assert len(list(locks.glob("*.lock"))) == 1  # read back, not computed again
