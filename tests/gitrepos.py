"""Small git repositories for the tests of what a run records of its code."""

from __future__ import annotations

import subprocess
from pathlib import Path


def git(repo: Path, *args: str) -> str:
    """Run git in ``repo``; its output, stripped."""
    done = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True,
                          check=True)  # fmt: skip
    return done.stdout.strip()


def new_repo(path: Path, files: dict[str, str]) -> str:
    """A repository at ``path`` with ``files`` committed; the commit."""
    path.mkdir()
    git(path, "init", "-q")
    git(path, "config", "user.email", "t@example.com")
    git(path, "config", "user.name", "t")
    for name, text in files.items():
        (path / name).write_text(text)
    if files:
        git(path, "add", *files)
        git(path, "commit", "-qm", "first")
        return git(path, "rev-parse", "HEAD")
    return ""
