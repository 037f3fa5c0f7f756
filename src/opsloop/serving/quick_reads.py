"""Deployments' everyday reads on the embedded store, in plain SQL on the standard ``sqlite3``.

``opsloop deployments list`` is a whole process for one query, and importing SQLAlchemy with its
ORM took most of it. As tracking and the registry do (:mod:`opsloop.store.quick_reads`), on the
embedded store at this version's schema
:class:`~opsloop.serving.local.LocalDeploymentBackend` answers its listing and lookups here and
opens the ORM store only for anything else; elsewhere ``open`` returns None.

Each read returns what :mod:`~opsloop.serving.services` returns (same rows, order, entities and
errors); a test compares the two paths over a seeded store.
"""

from __future__ import annotations

from opsloop.serving.entities import Deployment
from opsloop.serving.entities import DeploymentEvent
from opsloop.serving.entities import deployment_from_row
from opsloop.serving.entities import event_from_row
from opsloop.store.quick_reads import QuickConnection
from opsloop.store.quick_reads import named

__all__ = ["DeploymentReads"]

_COLUMNS = ("name", "model_name", "policy", "status", "revision", "description", "created_at",
            "updated_at", "created_by")  # fmt: skip
_SELECT = f"SELECT {', '.join(_COLUMNS)} FROM deployments"
_EVENT = ("at", "actor", "action", "from_policy", "to_policy", "reason")
_EVENTS = (
    f"SELECT {', '.join(_EVENT)} FROM deployment_events WHERE deployment_id = "
    "(SELECT id FROM deployments WHERE name = :name) ORDER BY at"
)


class DeploymentReads(QuickConnection):
    """The reads, each in one snapshot. Thread-safe; a forked child opens its own connection."""

    def get_deployment(self, name: str) -> Deployment:
        with self.snapshot():
            row = self.first(f"{_SELECT} WHERE name = :name", {"name": name}, _missing(name))
        return _deployment(row)

    def deployment_events(self, name: str) -> list[DeploymentEvent]:
        with self.snapshot():
            self.first(
                "SELECT 1 FROM deployments WHERE name = :name", {"name": name}, _missing(name)
            )
            rows = self.rows(_EVENTS, {"name": name})
        return [event_from_row(named(_EVENT, row)) for row in rows]

    def list_deployments(self) -> list[Deployment]:
        with self.snapshot():
            rows = self.rows(f"{_SELECT} ORDER BY name")
        return [_deployment(row) for row in rows]


def _deployment(row: tuple[object, ...]) -> Deployment:
    return deployment_from_row(named(_COLUMNS, row))


def _missing(name: str) -> str:
    return f"deployment {name!r} does not exist"
