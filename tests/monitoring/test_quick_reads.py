"""Deployments' and monitors' quick reads (plain ``sqlite3`` on the embedded store) answer exactly
as the ORM services do, and ``deployments list`` / ``monitors list`` never import SQLAlchemy or
NumPy."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from opsloop import Client
from opsloop import NotFound
from opsloop.monitoring import services as monitor_services
from opsloop.monitoring.quick_reads import MonitorReads
from opsloop.serving import services as deployment_services
from opsloop.serving.quick_reads import DeploymentReads
from tests.serving.conftest import register_two


@pytest.fixture(scope="module")
def seeded(
    tmp_path_factory: pytest.TempPathFactory, cancer: pd.DataFrame, weak_model: Any,
    strong_model: Any,
) -> Path:  # fmt: skip
    """Two deployments (one canary, one described) and three monitors on them."""
    folder = tmp_path_factory.mktemp("monitor-quick")
    with Client(database_url=f"sqlite:///{folder / 'opsloop.db'}",
                blob_url=str(folder / "blobs")) as client:  # fmt: skip
        register_two(client, weak_model, strong_model, cancer)
        cancer.to_csv(folder / "cancer.csv", index=False)
        client.data.add(str(folder / "cancer.csv"), name="cancer")
        client.deployments.deploy("cancer-clf@1", name="b-single", description="the first")
        client.deployments.deploy("cancer-clf@1", name="a-canary")
        client.deployments.deploy("cancer-clf@2", name="a-canary", canary=20)
        client.monitors.create("watch", "a-canary", "cancer@1")
        client.monitors.create("also", "b-single", "cancer@1", target="target", every_seconds=600)
        client.monitors.create("third", "a-canary", "cancer@1", drift_share=0.3)
    return folder


def test_the_quick_reads_answer_as_the_services(seeded: Path) -> None:
    from opsloop.schema import open_store

    url = f"sqlite:///{seeded / 'opsloop.db'}"
    store = open_store(url)
    deployments, monitors = DeploymentReads.open(url), MonitorReads.open(url)
    assert deployments is not None and monitors is not None
    with store.read() as s:
        assert deployments.list_deployments() == deployment_services.list_deployments(s)
        assert [d.name for d in deployments.list_deployments()] == ["a-canary", "b-single"]
        for name in ("a-canary", "b-single"):
            assert deployments.get_deployment(name) == deployment_services.get_deployment(s, name)
            events = deployments.deployment_events(name)
            assert events == deployment_services.deployment_events(s, name) and events
        for filter_ in (None, "a-canary", "b-single", "nope"):
            assert monitors.list_monitors(filter_) == monitor_services.list_monitors(s, filter_)
        assert len(monitors.list_monitors(None)) == 3
        for name in ("watch", "also", "third"):
            assert monitors.get_monitor(name) == monitor_services.get_monitor(s, name)
        for probe in ("nope", "Watch", "", "a-canary'--"):
            with pytest.raises(NotFound) as quick:
                monitors.get_monitor(probe)
            with pytest.raises(NotFound) as orm:
                monitor_services.get_monitor(s, probe)
            assert str(quick.value) == str(orm.value)
            with pytest.raises(NotFound) as quick:
                deployments.get_deployment(probe)
            with pytest.raises(NotFound) as orm:
                deployment_services.get_deployment(s, probe)
            assert str(quick.value) == str(orm.value)
            with pytest.raises(NotFound) as quick:
                deployments.deployment_events(probe)
            with pytest.raises(NotFound) as orm:
                deployment_services.deployment_events(s, probe)
            assert str(quick.value) == str(orm.value)
    store.dispose()
    deployments.close()
    monitors.close()


def test_listings_import_neither_sqlalchemy_nor_numpy(seeded: Path) -> None:
    source = (
        "import sys\n"
        "from opsloop.app.cli import main\n"
        "for argv in (['deployments', 'list'], ['monitors', 'list'], ['monitors', 'show', 'also'],"
        " ['deployments', 'show', 'a-canary']):\n"
        "    try:\n"
        "        main(argv)\n"
        "    except SystemExit as stop:\n"
        "        assert not stop.code, stop.code\n"
        "print(sorted(m for m in ('sqlalchemy', 'numpy', 'pandas') if m in sys.modules))\n"
    )
    env = {**os.environ, "OPSLOOP_DATABASE_URL": f"sqlite:///{seeded / 'opsloop.db'}",
           "OPSLOOP_BLOB_URL": str(seeded / "blobs"),
           "OPSLOOP_HOME": str(seeded / "home")}  # fmt: skip
    env.pop("OPSLOOP_SERVER_URL", None)
    done = subprocess.run([sys.executable, "-c", source], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    assert "a-canary" in done.stdout and "watch" in done.stdout
    assert done.stdout.strip().splitlines()[-1] == "[]"
