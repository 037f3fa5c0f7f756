"""Trace ids as the tool prints them: a unique prefix of at least 6 characters stands for the
full id (local and HTTP, SQLite and PostgreSQL)."""

from __future__ import annotations

from typing import Any

import pytest

from opsloop.errors import InvalidInput
from opsloop.errors import NotFound


def test_trace_prefix_is_accepted(client: Any) -> None:
    traces = client.traces
    with traces.tracer.span("root", kind="chain", input="q") as span:
        span.update(output="a")
    traces.flush()
    full = span.trace_id
    assert traces.get(full[:8]).trace.trace_id == full
    with pytest.raises(InvalidInput, match="at least 6"):
        traces.get(full[:5])
    other = "0" * 31 + "1" if not full.startswith("0" * 8) else "f" * 32
    with pytest.raises(NotFound):
        traces.get(other[:8])
