"""Fixtures with real components: SQLite files, a PostgreSQL schema per test, a real HTTP
server on loopback (uvicorn in a thread), and moto_server as the S3-compatible store."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

PG_BASE = os.environ.get("OPSLOOP_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def pytest_configure(config: pytest.Config) -> None:
    """A home for what runs before the per-test one exists (module-scoped servers and their
    clients), so a test run never writes to the developer's ~/.opsloop."""
    import tempfile

    os.environ["OPSLOOP_HOME"] = tempfile.mkdtemp(prefix="opsloop-test-home-")
    _patient_http()


def _patient_http() -> None:
    """httpx's calls without a timeout of their own wait 60 s, not 5: on a loaded 2-core CI box
    (load 10+) a server's cold first answer has taken over 5 s, and these tests check what is
    answered, never how fast. httpx binds one ``Timeout`` object as every default, so it is
    changed in place (this process only; the commands the tests start keep theirs)."""
    import httpx

    default = httpx._config.DEFAULT_TIMEOUT_CONFIG
    for phase in ("connect", "read", "write", "pool"):
        setattr(default, phase, 60.0)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every test gets its own OPSLOOP_HOME and a fresh default client."""
    monkeypatch.setenv("OPSLOOP_HOME", str(tmp_path / "home"))
    for name in ("OPSLOOP_SERVER_URL", "OPSLOOP_DATABASE_URL", "OPSLOOP_BLOB_URL", "OPSLOOP_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    from opsloop import fluent

    fluent._reset_default_client()
    yield
    fluent._reset_default_client()
    _release_shared_stores()


def _release_shared_stores() -> None:
    """Close the pooled connections of every store this test opened: each test has its own
    database or schema, and a pool left open per test would exhaust PostgreSQL's clients."""
    from opsloop.client import _STORES
    from opsloop.client import _STORES_LOCK

    with _STORES_LOCK:
        stores = list(_STORES.values())
        _STORES.clear()
    for store, _ in stores:
        store.dispose()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'opsloop.db'}"


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh PostgreSQL schema for this test only, dropped afterwards."""
    import sqlalchemy as sa

    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(PG_BASE)
    try:
        with admin.begin() as conn:
            conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    except sa.exc.OperationalError as exc:
        pytest.fail(f"PostgreSQL is not reachable at {PG_BASE}: {exc}")
    yield f"{PG_BASE}?options=-csearch_path%3D{schema}"
    with admin.begin() as conn:
        conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}_optuna" CASCADE'))  # tuning
    admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest) -> str:
    fixture = "sqlite_url" if request.param == "sqlite" else "pg_url"
    return str(request.getfixturevalue(fixture))


@pytest.fixture
def store(database_url: str) -> Iterator[Any]:
    """The metadata store, migrated, on ``database_url`` (SQLite, then PostgreSQL)."""
    from opsloop.schema import open_store

    opened = open_store(database_url)
    yield opened
    opened.dispose()


class LiveServer:
    """``opsloop server``'s app served by uvicorn in a thread, on a free loopback port."""

    def __init__(
        self,
        database_url: str,
        blob_url: str,
        token: str | None = None,
        storage_options: dict[str, object] | None = None,
    ) -> None:
        import uvicorn

        from opsloop.app.server import create_app
        from opsloop.config import load_settings

        # Its own home (trace spool, prediction log): a module-scoped server is built before the
        # per-test OPSLOOP_HOME exists, and must never write to the user's ~/.opsloop.
        if "://" in blob_url:
            home = Path(tempfile.mkdtemp(prefix="opsloop-server-home-"))
        else:
            home = Path(blob_url).parent / f"server-home-{uuid.uuid4().hex[:8]}"
        settings = load_settings(
            database_url=database_url,
            blob_url=blob_url,
            token=token,
            home=str(home),
            storage_options=storage_options,
        )
        self.app = create_app(settings)
        # Bind first and hand uvicorn the socket: no window for another test to take the port.
        self.socket = socket.socket()
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.socket.bind(("127.0.0.1", 0))
        self.port = self.socket.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(self.app, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.socket]}, daemon=True
        )

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 60  # a loaded CI box has taken over 15 s
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("test server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)
        self.socket.close()
        self.app.state.opsloop.store.dispose()


@pytest.fixture
def live_server(database_url: str, tmp_path: Path) -> Iterator[LiveServer]:
    with LiveServer(database_url, str(tmp_path / "server-blobs")) as server:
        yield server


@pytest.fixture(params=["local", "http"])
def client(request: pytest.FixtureRequest, database_url: str, tmp_path: Path) -> Iterator[object]:
    """An ``opsloop.Client`` in local mode or in HTTP mode against a live server."""
    from opsloop import Client

    if request.param == "local":
        c = Client(database_url=database_url, blob_url=str(tmp_path / "blobs"))
        yield c
        c.close()
    else:
        with LiveServer(database_url, str(tmp_path / "server-blobs")) as server:
            c = Client(server_url=server.url)
            yield c
            c.close()


@pytest.fixture(scope="session")
def local_ray() -> Iterator[object]:
    """One local Ray instance (2 CPUs) for this test process: started by the first test that
    asks, shut down when the session ends. A start takes seconds, and starting and shutting
    down again in one process is what Ray does worst: once a worker died inside
    ``ray.shutdown()`` (the core worker's threads outliving it), and its tests with it."""
    ray = pytest.importorskip("ray")
    if not ray.is_initialized():
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """moto_server (a real S3-compatible HTTP server) on loopback, for the whole session."""
    port = free_port()
    exe = Path(sys.executable).with_name("moto_server")
    proc = subprocess.Popen(
        [str(exe), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                break
        except OSError:
            if time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError("moto_server did not start") from None
            time.sleep(0.1)
    yield url
    proc.terminate()
    proc.wait(10)


@pytest.fixture
def s3_blob_url(moto_endpoint: str) -> tuple[str, dict[str, object]]:
    """A fresh bucket on moto_server: (blob URL, fsspec storage options)."""
    import httpx

    options = {
        "key": "testing",
        "secret": "testing",
        "client_kwargs": {"endpoint_url": moto_endpoint, "region_name": "us-east-1"},
    }
    bucket = f"opsloop-{uuid.uuid4().hex[:12]}"
    httpx.put(f"{moto_endpoint}/{bucket}").raise_for_status()  # moto needs no signature
    return f"s3://{bucket}/blobs", options
