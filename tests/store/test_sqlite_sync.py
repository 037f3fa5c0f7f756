"""Store settings: the embedded store's commit durability (``sqlite_synchronous``: ``normal``
by default, so a commit survives its process's death without an fsync each; ``full`` on
request), and the leader lease's length (``leader_lease_seconds``)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from opsloop import Client
from opsloop.config import load_settings
from opsloop.errors import InvalidInput
from opsloop.schema import open_store
from opsloop.store.sql import connect_sqlite

_LEVELS = {1: "normal", 2: "full"}  # what ``PRAGMA synchronous`` answers


def _level(store) -> str:
    with store.engine.connect() as connection:
        return _LEVELS[connection.exec_driver_sql("PRAGMA synchronous").scalar()]


def test_default_is_normal_and_full_is_taken(tmp_path):
    assert _level(open_store(f"sqlite:///{tmp_path / 'a.db'}")) == "normal"
    full = open_store(f"sqlite:///{tmp_path / 'b.db'}", sqlite_synchronous="full")
    assert _level(full) == "full"
    bare = connect_sqlite(str(tmp_path / "b.db"), "full")
    assert _LEVELS[bare.execute("PRAGMA synchronous").fetchone()[0]] == "full"


def test_the_setting_comes_from_environment_and_toml(tmp_path, monkeypatch):
    monkeypatch.setenv("OPSLOOP_SQLITE_SYNCHRONOUS", "full")
    assert load_settings(home=tmp_path).sqlite_synchronous == "full"
    monkeypatch.delenv("OPSLOOP_SQLITE_SYNCHRONOUS")
    (tmp_path / "opsloop.toml").write_text('sqlite_synchronous = "full"\n')
    assert load_settings(home=tmp_path).sqlite_synchronous == "full"


def test_an_unknown_level_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("OPSLOOP_SQLITE_SYNCHRONOUS", "off")
    with pytest.raises(InvalidInput, match="normal or full"):
        load_settings(home=tmp_path)
    with pytest.raises(ValueError):
        open_store(f"sqlite:///{tmp_path / 'c.db'}", sqlite_synchronous="OFF")


def test_the_cli_says_so_in_one_line(tmp_path):
    env = {**os.environ, "OPSLOOP_HOME": str(tmp_path), "OPSLOOP_SQLITE_SYNCHRONOUS": "off"}
    done = subprocess.run(
        [str(Path(sys.executable).parent / "opsloop"), "experiments", "list"],
        env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode != 0
    assert "Traceback" not in done.stderr
    assert "sqlite_synchronous" in done.stderr


def test_an_acknowledged_write_survives_sigkill_under_normal(tmp_path):
    """The promise ``normal`` keeps: what a committed write returned is there after the
    process that wrote it is killed at once (only a power loss may roll it back)."""
    script = textwrap.dedent(
        f"""
        import os, sys
        import opsloop
        opsloop.set_experiment("durable")
        with opsloop.start_run() as run:
            opsloop.set_tag("kept", "yes")
            print(run.info.run_id, flush=True)
            os.kill(os.getpid(), {int(signal.SIGKILL)})
        """
    )
    env = {**os.environ, "OPSLOOP_HOME": str(tmp_path)}
    env.pop("OPSLOOP_SQLITE_SYNCHRONOUS", None)
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == -signal.SIGKILL
    run_id = done.stdout.split()[0]
    client = Client(settings=load_settings(home=tmp_path))
    assert client.get_run(run_id).data.tags["kept"] == "yes"


@pytest.mark.parametrize("value", ["abc", "0.5", "3601", "nan", "inf", ""])
def test_a_lease_length_out_of_range_is_refused(tmp_path, monkeypatch, value):
    """The leader lease is a setting too; the environment gives text, checked as seconds."""
    monkeypatch.setenv("OPSLOOP_LEADER_LEASE_SECONDS", value)
    if value == "":  # unset in effect: the default
        assert load_settings(home=tmp_path).leader_lease_seconds == 10.0
        return
    with pytest.raises(InvalidInput, match="leader_lease_seconds is a number of seconds"):
        load_settings(home=tmp_path)


def test_a_lease_length_from_toml(tmp_path):
    (tmp_path / "opsloop.toml").write_text("leader_lease_seconds = 3\n")
    assert load_settings(home=tmp_path).leader_lease_seconds == 3.0
    (tmp_path / "opsloop.toml").write_text("leader_lease_seconds = true\n")
    with pytest.raises(InvalidInput, match="not True"):
        load_settings(home=tmp_path)
