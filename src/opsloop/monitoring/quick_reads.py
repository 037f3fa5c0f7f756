"""Monitors' everyday reads on the embedded store, in plain SQL on the standard ``sqlite3``.

``opsloop monitors list`` is a whole process for one query, and importing SQLAlchemy with its
ORM (and the monitoring services with NumPy) took most of it. As tracking and the registry do
(:mod:`opsloop.store.quick_reads`), on the embedded store at this version's schema
:class:`~opsloop.monitoring.local.LocalMonitorBackend` answers the listing and lookups here and
opens the ORM store only for anything else; elsewhere ``open`` returns None.

A monitor's reference profile can be megabytes (it keeps a reference's distinct values), and a
listing shows only its column names, so SQLite's JSON functions pick those out of it. Each read
returns what :mod:`~opsloop.monitoring.services` returns (same rows, order, entities, errors);
a test compares the two paths over a seeded store.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from opsloop.monitoring.entities import Monitor
from opsloop.monitoring.entities import MonitorSpec
from opsloop.monitoring.entities import monitor_from_row
from opsloop.store.quick_reads import QuickConnection
from opsloop.store.quick_reads import named

if TYPE_CHECKING:
    from opsloop.monitoring.measure import CheckInputs

__all__ = ["MonitorReads"]

_COLUMNS = ("id", "name", "deployment", "spec", "baseline", "enabled", "next_run_at",
            "created_at", "created_by")  # fmt: skip
_SELECT = (
    f"SELECT {', '.join(_COLUMNS)}, (SELECT json_group_array(json_extract(value, '$.name')) "
    "FROM json_each(profile, '$.columns')) FROM monitors"
)


class MonitorReads(QuickConnection):
    """The reads, each in one snapshot. Thread-safe; a forked child opens its own connection."""

    def get_monitor(self, name: str) -> Monitor:
        with self.snapshot():
            row = self.first(
                f"{_SELECT} WHERE name = :name", {"name": name}, f"monitor {name!r} does not exist"
            )
        return _monitor(row)

    def check_inputs(self, name: str) -> CheckInputs:
        """What a check reads of monitor ``name``, as ``services.check_inputs`` reads it."""
        from opsloop.monitoring.measure import CheckInputs

        with self.snapshot():
            row = self.first(
                "SELECT deployment, spec, baseline, profile, last_window_end FROM monitors "
                "WHERE name = :name", {"name": name}, f"monitor {name!r} does not exist",
            )  # fmt: skip
        deployment, spec, baseline, profile, last_window_end = row
        return CheckInputs.of(
            deployment, MonitorSpec.model_validate_json(spec), baseline, profile, last_window_end
        )

    def list_monitors(self, deployment: str | None) -> list[Monitor]:
        where = "" if deployment is None else " WHERE deployment = :deployment"
        with self.snapshot():
            rows = self.rows(f"{_SELECT}{where} ORDER BY name", {"deployment": deployment})
        return [_monitor(row) for row in rows]


def _monitor(row: tuple[object, ...]) -> Monitor:
    *values, names = row
    columns = json.loads(str(names))
    return monitor_from_row(named(_COLUMNS, values), columns)
