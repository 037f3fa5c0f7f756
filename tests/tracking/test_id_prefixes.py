"""The 8-character ids the tool prints are accepted back: a unique prefix of at least 6
characters stands for the full id, through the SDK (local), REST (the HTTP client) and the CLI,
on SQLite and PostgreSQL. An ambiguous prefix is a ``Conflict`` naming the candidates; a
shorter one is ``InvalidInput`` saying the minimum."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from opsloop import Client
from opsloop import Conflict
from opsloop import InvalidInput
from opsloop import NotFound
from opsloop import RunStatus

OPSLOOP = [str(Path(sys.executable).with_name("opsloop"))]


def test_run_prefix_works_for_get_update_log_delete(client: Client) -> None:
    exp = client.create_experiment("prefixes").experiment_id
    run_id = client.create_run(exp, run_name="r").info.run_id
    short = run_id[:8]
    assert client.get_run(short).info.run_id == run_id
    client.log_param(short, "lr", 0.1)
    client.set_tag(short, "team", "ml")
    client.log_metric(short, "loss", 0.5, step=1)
    client.log_text(short, "hello", "notes/hello.txt")
    assert client.get_metric_history(short, "loss").run_id == run_id
    assert client.get_metric_history(short, "loss").values == [0.5]
    assert [a.path for a in client.list_artifacts(short, "notes")] == ["notes/hello.txt"]
    assert client.read_artifact(short, "notes/hello.txt") == b"hello"
    client.delete_tag(short, "team")
    assert client.update_run(short, run_name="renamed").run_id == run_id
    client.end_run(short)
    run = client.get_run(run_id)
    assert run.info.run_name == "renamed" and run.info.status is RunStatus.FINISHED
    assert run.data.params == {"lr": "0.1"} and run.data.metrics == {"loss": 0.5}
    assert "team" not in run.data.tags
    assert client.delete_run(short).lifecycle_stage == "deleted"
    assert client.restore_run(run_id[:6]).run_id == run_id
    child = client.create_run(exp, parent_run_id=short)
    assert child.info.parent_run_id == run_id


def test_run_prefix_ambiguous_short_unknown(client: Client) -> None:
    exp = client.create_experiment("prefixes").experiment_id
    ids = ["abcdef01" + "0" * 24, "abcdef02" + "0" * 24, "abcdef03" + "0" * 24]
    for run_id in ids:
        client.tracking_backend.create_run(exp, run_id=run_id)
    assert client.get_run("abcdef02").info.run_id == ids[1]
    with pytest.raises(Conflict, match="ambiguous") as caught:
        client.get_run("abcdef0")
    assert caught.value.details["count"] == 3
    assert caught.value.details["candidates"] == ids
    assert ids[0] in caught.value.message
    with pytest.raises(Conflict, match="ambiguous"):
        client.log_param("abcdef", "k", "v")
    with pytest.raises(InvalidInput, match="at least 6"):
        client.get_run("abcde")
    with pytest.raises(NotFound):
        client.get_run("fedcba98")
    with pytest.raises(NotFound):
        client.get_run("f" * 32)
    with pytest.raises(InvalidInput):
        client.get_run("abc%ef")  # not hex: never reaches a LIKE
    with pytest.raises(InvalidInput):
        client.get_run("A" * 32)


def test_cli_accepts_a_run_prefix(database_url: str, tmp_path: Path) -> None:
    with Client(database_url=database_url, blob_url=str(tmp_path / "blobs")) as c:
        exp = c.create_experiment("cli-prefixes").experiment_id
        run_id = c.create_run(exp, run_name="shown").info.run_id
        c.tracking_backend.create_run(exp, run_id="abcdef01" + "0" * 24)
        c.tracking_backend.create_run(exp, run_id="abcdef02" + "0" * 24)
    env = {
        **os.environ,
        "OPSLOOP_DATABASE_URL": database_url,
        "OPSLOOP_BLOB_URL": str(tmp_path / "blobs"),
    }

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*OPSLOOP, *args], capture_output=True, text=True, timeout=120, env=env
        )

    shown = cli("runs", "show", run_id[:8], "--json")
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["info"]["run_id"] == run_id
    deleted = cli("runs", "delete", run_id[:8])
    assert deleted.returncode == 0, deleted.stderr
    ambiguous = cli("runs", "show", "abcdef0")
    assert ambiguous.returncode == 4  # Conflict's exit code
    assert "ambiguous" in ambiguous.stderr and "abcdef01" in ambiguous.stderr
    short = cli("runs", "show", "abcde")
    assert short.returncode == 2 and "at least 6" in short.stderr
