"""Tracking's everyday reads on the embedded store, in plain SQL on the standard ``sqlite3``.

``opsloop experiments list`` or ``runs list`` is a whole process for one or two queries, and
importing SQLAlchemy with its ORM and dialects cost more than half of such a process (0.3 s of
~0.6 s on a 2-core box). So, on the embedded store (a SQLite file at this version's schema),
:class:`~opsloop.tracking.local.LocalTrackingBackend` answers these reads here, on a bare
connection set up as the engine's are (:mod:`opsloop.store.quick_reads`), and opens the ORM store
only when something else is asked (a write, a filtered search, an artifact). A server,
PostgreSQL, a missing file or another schema revision: :func:`open_quick_reads` returns None and
every call goes the ORM way.

Each query is the one :mod:`~opsloop.tracking.experiments` and :mod:`~opsloop.tracking.search`
compile (same conditions, order, paging and entities); a test compares the two paths over
seeded stores.
"""

from __future__ import annotations

from typing import Any

from opsloop.errors import InvalidInput
from opsloop.errors import NotFound
from opsloop.kernel.paging import Page
from opsloop.kernel.paging import decode_page_token
from opsloop.kernel.paging import split_page
from opsloop.store.quick_reads import QUICK_PAGE_LIMIT
from opsloop.store.quick_reads import QuickConnection
from opsloop.store.sql import in_list
from opsloop.tracking.entities import Experiment
from opsloop.tracking.entities import Run
from opsloop.tracking.entities import RunData
from opsloop.tracking.entities import RunInfo
from opsloop.tracking.entities import RunStatus
from opsloop.tracking.validation import lifecycle_stages

__all__ = ["QUICK_PAGE_LIMIT", "QuickReads", "open_quick_reads"]

_IN_CHUNK = 500
_EXPERIMENT = "id, name, description, lifecycle_stage, created_at, updated_at"
_RUN = (
    "id, experiment_id, name, status, start_time, end_time, parent_run_id, user_id, notes, "
    "lifecycle_stage"
)


def open_quick_reads(database_url: str) -> QuickReads | None:
    """Reads on a bare connection to the store's SQLite file, or None when that cannot serve
    them as the ORM would (not a SQLite file, no file yet, another schema revision: opening the
    store creates or migrates it)."""
    return QuickReads.open(database_url)


class QuickReads(QuickConnection):
    """The reads, each in one snapshot. Thread-safe; a forked child opens its own connection."""

    # -- experiments ------------------------------------------------------------------------
    def _experiments(self, where: str, params: dict[str, Any]) -> list[Experiment]:
        with self.snapshot():
            rows = self.rows(f"SELECT {_EXPERIMENT} FROM experiments WHERE {where}", params)
            return [self._experiment(row) for row in rows]

    def _experiment(self, row: tuple[Any, ...]) -> Experiment:
        tags = dict(
            self.rows(
                'SELECT "key", value FROM experiment_tags WHERE experiment_id = :id', {"id": row[0]}
            )
        )
        return Experiment(
            experiment_id=row[0], name=row[1], description=row[2], lifecycle_stage=row[3],
            created_at=row[4], updated_at=row[5], tags=tags,
        )  # fmt: skip

    def get_experiment(self, experiment_id: str) -> Experiment:
        found = self._experiments("id = :id", {"id": experiment_id})
        if not found:
            raise NotFound(f"experiment {experiment_id!r} does not exist")
        return found[0]

    def get_experiment_by_name(self, name: str) -> Experiment:
        found = self._experiments("name = :name", {"name": name})
        if not found:
            raise NotFound(f"no experiment named {name!r}")
        return found[0]

    def list_experiments(
        self, view: str, max_results: int, page_token: str | None
    ) -> Page[Experiment]:
        offset = decode_page_token(page_token)
        stages, params = in_list("stage", lifecycle_stages(view))
        found = self._experiments(
            f"lifecycle_stage IN {stages} ORDER BY name LIMIT :limit OFFSET :offset",
            {**params, "limit": max_results + 1, "offset": offset},
        )
        items, token = split_page(found, offset, max_results)
        return Page[Experiment](items=items, next_page_token=token)

    # -- runs -------------------------------------------------------------------------------
    def search_runs(
        self, experiment_ids: list[str], max_results: int, page_token: str | None, view: str
    ) -> Page[Run]:
        """Runs of the experiments in the view, newest first (no filter, no order_by)."""
        offset = decode_page_token(page_token)
        if not experiment_ids:
            raise InvalidInput("search_runs needs at least one experiment id")
        experiments, params = in_list("experiment", experiment_ids)
        stages, stage_params = in_list("stage", lifecycle_stages(view))
        with self.snapshot():
            rows = self.rows(
                f"SELECT {_RUN} FROM runs WHERE experiment_id IN {experiments} AND "
                f"lifecycle_stage IN {stages} ORDER BY start_time DESC, id "
                "LIMIT :limit OFFSET :offset",
                {**params, **stage_params, "limit": max_results + 1, "offset": offset},
            )
            rows, token = split_page(rows, offset, max_results)
            return Page[Run](items=self._runs(rows), next_page_token=token)

    def _runs(self, rows: list[tuple[Any, ...]]) -> list[Run]:
        """Runs with their params, tags and latest metrics: three queries per 500 runs."""
        data: dict[str, tuple[dict[str, str], dict[str, str], dict[str, float]]] = {
            row[0]: ({}, {}, {}) for row in rows
        }
        ids = list(data)
        for start in range(0, len(ids), _IN_CHUNK):
            chunk, params = in_list("run", ids[start : start + _IN_CHUNK])
            for slot, table in enumerate(("params", "run_tags", "latest_metrics")):
                query = f'SELECT run_id, "key", value FROM {table} WHERE run_id IN {chunk}'
                for run_id, key, value in self.rows(query, params):
                    data[run_id][slot][key] = value
        runs = []
        for r in rows:
            run_params, tags, metrics = data[r[0]]
            info = RunInfo(
                run_id=r[0], experiment_id=r[1], run_name=r[2], status=RunStatus(r[3]),
                start_time=r[4], end_time=r[5], parent_run_id=r[6], user_id=r[7], notes=r[8],
                lifecycle_stage=r[9],
            )  # fmt: skip
            runs.append(Run(info=info, data=RunData(params=run_params, metrics=metrics, tags=tags)))
        return runs
