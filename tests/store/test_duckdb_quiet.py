"""DuckDB never draws its progress bar into a command's output: every connection opsloop opens
comes from ``kernel.duckdb_conn`` with the bar off (DuckDB draws it on stdout past 2 s)."""

from __future__ import annotations

from pathlib import Path

import opsloop
from opsloop.kernel.duckdb_conn import duckdb_connection

SRC = Path(opsloop.__file__).parent


def test_the_connection_has_the_progress_bar_off():
    connection = duckdb_connection()
    assert connection.execute("SELECT current_setting('enable_progress_bar')").fetchone() == (
        False,
    )


def test_no_module_opens_duckdb_another_way():
    opened = [
        str(path.relative_to(SRC))
        for path in SRC.rglob("*.py")
        if "duckdb.connect(" in path.read_text() and path.name != "duckdb_conn.py"
    ]
    assert opened == []
