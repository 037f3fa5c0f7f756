"""The pipelines tests' default client: its own SQLite file and blob folder, and the example
module's call log cleared (a test module that needs another client defines its own)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import opsloop
from tests.pipelines import example


@pytest.fixture
def client(tmp_path: Path) -> Iterator[Any]:
    made = opsloop.Client(database_url=f"sqlite:///{tmp_path / 'db.sqlite'}",
                          blob_url=str(tmp_path / "blobs"))  # fmt: skip
    example.CALLS.clear()
    yield made
    made.close()
