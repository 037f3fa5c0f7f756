"""What a run records of its code: the diff against HEAD includes new (untracked) source files,
so a reproduction on the recorded commit has them; large untracked files are data and are only
counted; the user's git index is never touched."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from opsloop.tracking.reproducibility import DIFF_ARTIFACT
from opsloop.tracking.reproducibility import capture_environment
from tests.gitrepos import git
from tests.gitrepos import new_repo


def test_untracked_code_is_in_the_recorded_diff(tmp_path: Path, monkeypatch: Any) -> None:
    repo = tmp_path / "project"
    new_repo(repo, {"train.py": "print('v1')\n"})
    (repo / "train.py").write_text("print('v2')\n")
    (repo / "helpers.py").write_text("def helper():\n    return 42\n")
    (repo / "big.csv").write_bytes(b"x" * (2 << 20))
    monkeypatch.chdir(repo)

    env = capture_environment()
    diff = env.files[DIFF_ARTIFACT].decode()
    assert "print('v2')" in diff and "+def helper():" in diff and "big.csv" not in diff
    assert env.tags["opsloop.git.dirty"] == "true"
    assert env.tags["opsloop.git.untracked_left_out"] == "1"
    status = git(repo, "status", "--porcelain")
    assert "?? helpers.py" in status  # still untracked: the user's index is as it was

    # the diff applies on the commit and brings the new file back
    clone = tmp_path / "clone"
    git(repo, "worktree", "add", "-q", "--detach", str(clone), "HEAD")
    (tmp_path / "run.diff").write_text(diff)
    git(clone, "apply", str(tmp_path / "run.diff"))
    assert (clone / "helpers.py").read_text() == "def helper():\n    return 42\n"
