"""A run keeps its commit's source tree in the blob store, so its code comes back with no clone
of the repository: files, executable bits, symlinks and uncommitted changes; a new commit
stores only the files it changed; bad manifests, tampered blobs and too-large trees are refused
with a reason."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import opsloop
from opsloop.errors import InvalidInput
from opsloop.errors import StoreError
from opsloop.tracking.source_tree import TREE_ARTIFACT
from opsloop.tracking.source_tree import TREE_TAG
from opsloop.tracking.source_tree import SourceTree
from opsloop.tracking.source_tree import restore_tree
from tests.conftest import LiveServer
from tests.gitrepos import git
from tests.gitrepos import new_repo


def _project(path: Path) -> str:
    """A repository with a package, a script (executable) and a symlink; its commit."""
    commit = new_repo(path, {"train.py": "print('v1')\n", "run.sh": "#!/bin/sh\necho run\n"})
    (path / "run.sh").chmod(0o755)
    (path / "pkg").mkdir()
    (path / "pkg" / "model.py").write_text("WEIGHTS = [1, 2, 3]\n")
    os.symlink("pkg/model.py", path / "model.py")
    git(path, "add", "-A")
    git(path, "commit", "-qm", "package")
    assert commit
    return git(path, "rev-parse", "HEAD")


def _run_in(repo: Path, client: Any, monkeypatch: Any) -> Any:
    monkeypatch.chdir(repo)
    run = client.create_run(client.set_experiment("code").experiment_id)
    monkeypatch.chdir(repo.parent)
    return run


def test_a_runs_code_comes_back_without_its_repository(tmp_path: Path, monkeypatch: Any) -> None:
    repo = tmp_path / "project"
    commit = _project(repo)
    (repo / "train.py").write_text("print('v2, not committed')\n")
    (repo / "helpers.py").write_text("def helper():\n    return 42\n")  # untracked code
    client = opsloop.Client(database_url=f"sqlite:///{tmp_path / 'o.db'}",
                            blob_url=str(tmp_path / "blobs"))  # fmt: skip
    run = _run_in(repo, client, monkeypatch)
    tags = run.data.tags
    assert tags["opsloop.git.commit"] == commit and tags["opsloop.git.root"] == str(repo)
    manifest = client.read_artifact(run.info.run_id, TREE_ARTIFACT)
    tree = SourceTree.from_canonical(manifest)
    assert tree.digest == tags[TREE_TAG]
    modes = {f.path: f.mode for f in tree.files}
    assert modes == {"train.py": "100644", "run.sh": "100755", "pkg/model.py": "100644",
                     "model.py": "120000"}  # fmt: skip

    shutil.rmtree(repo)  # no clone left anywhere
    code = client.restore_source(run.info.run_id, tmp_path / "code")
    assert (code / "train.py").read_text() == "print('v2, not committed')\n"  # the diff applied
    assert (code / "helpers.py").read_text() == "def helper():\n    return 42\n"
    assert (code / "pkg" / "model.py").read_text() == "WEIGHTS = [1, 2, 3]\n"
    assert os.readlink(code / "model.py") == "pkg/model.py"
    assert os.access(code / "run.sh", os.X_OK) and not os.access(code / "train.py", os.X_OK)
    assert not (code / ".git").exists() and not (code / ".opsloop-restoring").exists()
    with pytest.raises(InvalidInput, match="not empty"):
        client.restore_source(run.info.run_id, code)
    client.close()


def test_a_new_commit_stores_only_the_files_it_changed(tmp_path: Path, monkeypatch: Any) -> None:
    repo = tmp_path / "project"
    _project(repo)
    blobs = tmp_path / "blobs"
    client = opsloop.Client(database_url=f"sqlite:///{tmp_path / 'o.db'}", blob_url=str(blobs))
    first = _run_in(repo, client, monkeypatch).data.tags[TREE_TAG]
    again = _run_in(repo, client, monkeypatch).data.tags[TREE_TAG]
    assert again == first  # the same commit: the same tree, read from the cache
    cache = sqlite3.connect(Path(os.environ["OPSLOOP_HOME"]) / "cache" / "source-trees.db")
    assert cache.execute("SELECT count(*) FROM objects").fetchone() == (4,)

    stored = {p.name for p in blobs.rglob("*") if p.is_file()}
    (repo / "train.py").write_text("print('v3')\n")
    git(repo, "commit", "-qam", "v3")
    second = _run_in(repo, client, monkeypatch).data.tags[TREE_TAG]
    assert second != first
    assert cache.execute("SELECT count(*) FROM objects").fetchone() == (5,)  # one object read
    added = {p.name for p in blobs.rglob("*") if p.is_file()} - stored
    tree = SourceTree.from_canonical(client.read_artifact(
        client.search_runs(client.get_experiment_by_name("code").experiment_id).items[0]
        .info.run_id, TREE_ARTIFACT))  # fmt: skip
    changed = next(f.digest for f in tree.files if f.path == "train.py")
    assert changed in added and second in added  # the changed file and the new manifest
    assert all(f.digest not in added for f in tree.files if f.path != "train.py")
    cache.close()
    client.close()


def test_a_tree_too_large_or_outside_git_is_left_out_with_a_reason(
    tmp_path: Path, monkeypatch: Any
) -> None:
    repo = tmp_path / "project"
    _project(repo)
    monkeypatch.setenv("OPSLOOP_SOURCE_TREE_MAX_MB", "0.00001")  # 10 bytes
    client = opsloop.Client(database_url=f"sqlite:///{tmp_path / 'o.db'}",
                            blob_url=str(tmp_path / "blobs"))  # fmt: skip
    run = _run_in(repo, client, monkeypatch)
    assert TREE_TAG not in run.data.tags
    assert "OPSLOOP_SOURCE_TREE_MAX_MB" in run.data.tags["opsloop.source.tree_left_out"]
    with pytest.raises(InvalidInput, match=r"recorded no source tree: the tree of .* MiB"):
        client.restore_source(run.info.run_id, tmp_path / "code")
    outside = client.create_run(run.info.experiment_id)  # tmp_path is no git work tree
    with pytest.raises(InvalidInput, match="did not run in a git work tree"):
        client.restore_source(outside.info.run_id, tmp_path / "code")
    client.close()


@pytest.mark.parametrize(
    "rows",
    [
        [["../escape.py", "0" * 64, 1, "100644"]],
        [["/etc/passwd", "0" * 64, 1, "100644"]],
        [[".git/hooks/post-checkout", "0" * 64, 1, "100755"]],
        [["a//b.py", "0" * 64, 1, "100644"]],
        [["ok.py", "not-a-digest", 1, "100644"]],
        [["ok.py", "0" * 64, 1, "160000"]],
    ],
)
def test_a_manifest_that_would_leave_its_folder_is_refused(rows: list[Any]) -> None:
    with pytest.raises(InvalidInput):
        SourceTree.from_canonical(json.dumps({"files": rows}).encode())


def test_a_tampered_blob_is_not_restored(tmp_path: Path, monkeypatch: Any) -> None:
    repo = tmp_path / "project"
    _project(repo)
    client = opsloop.Client(database_url=f"sqlite:///{tmp_path / 'o.db'}",
                            blob_url=str(tmp_path / "blobs"))  # fmt: skip
    run = _run_in(repo, client, monkeypatch)
    tree = SourceTree.from_canonical(client.read_artifact(run.info.run_id, TREE_ARTIFACT))
    blobs = client._tracking.blobs
    victim = blobs.path_of(next(f.digest for f in tree.files if f.path == "pkg/model.py"))
    victim.chmod(0o644)
    victim.write_text("WEIGHTS = 'tampered'\n")
    with pytest.raises(StoreError, match="does not match"):
        restore_tree(tree.digest, blobs, tmp_path / "code")
    with pytest.raises(LookupError, match="no source tree"):
        restore_tree("f" * 64, blobs, tmp_path / "elsewhere")
    client.close()


def test_a_client_of_a_server_keeps_the_tree_on_the_server(
    tmp_path: Path, monkeypatch: Any
) -> None:
    repo = tmp_path / "project"
    _project(repo)
    server_blobs = tmp_path / "server-blobs"
    with LiveServer(f"sqlite:///{tmp_path / 's.db'}", str(server_blobs)) as server:
        remote = opsloop.Client(server_url=server.url)
        run = _run_in(repo, remote, monkeypatch)
        digest = run.data.tags[TREE_TAG]
        assert any(p.name == digest for p in server_blobs.rglob("*"))
        shutil.rmtree(repo)
        cli = str(Path(sys.executable).with_name("opsloop"))
        args = [cli, "runs", "source", run.info.run_id, str(tmp_path / "code")]
        environ = {**os.environ, "OPSLOOP_SERVER_URL": server.url}
        done = subprocess.run(args, capture_output=True, text=True, env=environ, timeout=120)
        assert done.returncode == 0, done.stderr
        assert (tmp_path / "code" / "pkg" / "model.py").read_text() == "WEIGHTS = [1, 2, 3]\n"
        again = subprocess.run(args, capture_output=True, text=True, env=environ, timeout=120)
        assert again.returncode == 2 and "not empty" in again.stderr
        remote.close()
