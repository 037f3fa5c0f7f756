"""Time at the edges: UTC milliseconds since the epoch in storage, ISO 8601 for people."""

from __future__ import annotations

import time
from datetime import UTC, datetime

__all__ = ["ms_to_iso", "now_ms"]


def now_ms() -> int:
    """Milliseconds since the epoch, UTC: the one timestamp unit stored anywhere in opsloop."""
    return time.time_ns() // 1_000_000


def ms_to_iso(ms: int | None) -> str | None:
    """ISO 8601 (UTC, millisecond precision) for a stored timestamp, or None."""
    if ms is None:
        return None
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat(timespec="milliseconds")
