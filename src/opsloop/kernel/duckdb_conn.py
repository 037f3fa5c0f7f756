"""DuckDB connections as every opsloop command needs them.

DuckDB draws a progress bar on stdout when a query runs past two seconds (a large window, a
slow machine), which would land in the middle of a command's ``--json`` output or a table.
Every connection opsloop opens is made here, with the bar off.
"""

from __future__ import annotations

from typing import Any

__all__ = ["duckdb_connection"]


def duckdb_connection() -> Any:
    """An in-memory DuckDB connection that never writes a progress bar."""
    import duckdb  # 0.45G instructions to import: only when a command reads a table

    connection = duckdb.connect()
    connection.execute("SET enable_progress_bar = false")
    return connection
