"""Time at the edges: UTC milliseconds since the epoch in storage, ISO 8601 for people."""

from __future__ import annotations

import time
from datetime import UTC
from datetime import datetime

__all__ = ["iso_utc", "ms_to_iso", "now_ms"]


def now_ms() -> int:
    """Milliseconds since the epoch, UTC: the one timestamp unit stored anywhere in opsloop."""
    return time.time_ns() // 1_000_000


def ms_to_iso(ms: int | None) -> str | None:
    """ISO 8601 (UTC, millisecond precision) for a stored timestamp, or None."""
    if ms is None:
        return None
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat(timespec="milliseconds")


def iso_utc(text: str) -> datetime | None:
    """An ISO 8601 date or time a person typed (``2026-12-01``, ``2026-12-01T08:00``) as an
    aware datetime, UTC unless it names a zone; None when ``text`` is not ISO, so that each
    caller can say in its own words what it takes instead."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
