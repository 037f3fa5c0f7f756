"""Which branch and commit a CI job reports on, from the runner's variables or from git.

GitHub checks a pull request out as a detached merge commit (its branch reads ``HEAD``) and
names the head branch in ``GITHUB_HEAD_REF``; GitLab names it in
``CI_MERGE_REQUEST_SOURCE_BRANCH_NAME``. Runs made in that job carry the commit the job
checked out, so the head side is that branch or that commit.
"""

from __future__ import annotations

import subprocess
from collections.abc import Mapping

from opsloop.ci.sources import Side
from opsloop.errors import InvalidInput

__all__ = ["head_side"]

_BRANCH_VARS = (
    "GITHUB_HEAD_REF",
    "CI_MERGE_REQUEST_SOURCE_BRANCH_NAME",
    "CI_COMMIT_REF_NAME",
    "GITHUB_REF_NAME",
)
_COMMIT_VARS = ("GITHUB_SHA", "CI_COMMIT_SHA")


def _git(*args: str) -> str | None:
    try:
        done = subprocess.run(["git", *args], capture_output=True, timeout=10, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.decode(errors="replace").strip() or None


def head_side(env: Mapping[str, str], branch: str | None, commit: str | None) -> Side:
    """The head side: ``branch`` as given (with ``commit`` if given), else the runner's
    variables, else the work tree's branch and commit.

    Raises:
        InvalidInput: No branch given, none in the environment and no git work tree here.
    """
    if branch:
        return Side(branch, commit)
    found = next((env[name] for name in _BRANCH_VARS if env.get(name)), None)
    found = found or _git("rev-parse", "--abbrev-ref", "HEAD")
    if not found:
        raise InvalidInput("no head branch: pass --head BRANCH or run inside a git work tree")
    commit = commit or next((env[name] for name in _COMMIT_VARS if env.get(name)), None)
    return Side(found, commit or _git("rev-parse", "HEAD"))
