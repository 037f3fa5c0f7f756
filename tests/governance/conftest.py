"""A server in ``users`` mode, with one user per role and a key each, made the way an operator
bootstraps one: on the server's database directly (the embedded store's owner is admin)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path

import httpx
import pytest

from tests.conftest import LiveServer

ROLE_USERS = {"root": "admin", "mona": "maintainer", "eddie": "editor", "vic": "viewer"}
ALLOWED_CODE = "tests.pipelines"  # the modules a users-mode test server may run pipelines from


@dataclass
class UsersServer:
    server: LiveServer
    database_url: str
    keys: dict[str, str] = field(default_factory=dict)  # user -> key secret

    @property
    def url(self) -> str:
        return self.server.url

    def http(self, user: str | None = None, key: str | None = None) -> httpx.Client:
        """An HTTP client sending ``user``'s key (or ``key``; neither: no key)."""
        secret = key if key is not None else self.keys.get(user or "")
        headers = {"Authorization": f"Bearer {secret}"} if secret else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30)


def bootstrap(database_url: str, blob_url: str) -> dict[str, str]:
    """Users of each role and a key each, created locally on the server's store."""
    from opsloop import Client

    keys = {}
    with Client(database_url=database_url, blob_url=blob_url) as local:
        for name, role in ROLE_USERS.items():
            local.governance.create_user(name, role=role)
            keys[name] = local.governance.create_key("test", user=name).secret
    return keys


@pytest.fixture
def users_server(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[UsersServer]:
    monkeypatch.setenv("OPSLOOP_AUTH", "users")
    monkeypatch.setenv("OPSLOOP_ALLOW_CODE", ALLOWED_CODE)
    blobs = str(tmp_path / "server-blobs")
    keys = bootstrap(database_url, blobs)
    with LiveServer(database_url, blobs) as server:
        yield UsersServer(server, database_url, keys)
