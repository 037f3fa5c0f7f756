"""Fixtures for the CI tests: the loopback GitHub / GitLab comment APIs."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .fake_hosts import FakeHost
from .fake_hosts import serve


@pytest.fixture
def fake_host() -> Iterator[FakeHost]:
    host, server = serve()
    yield host
    server.shutdown()
    server.server_close()
