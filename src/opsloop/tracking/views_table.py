"""The runs table's parts that are not routes: nested runs under their parent, the column
groups a user may pick from, sort links, and dates as people read them.

Nested runs: the table pages over top-level runs only (a sweep of 500 trials is one row, not ten
pages), then fetches the children of the page's runs in one query per nesting level, so a first
render costs two or three indexed queries whatever the experiment's size.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC
from datetime import datetime
from urllib.parse import urlencode

from sqlalchemy.orm import Session

from opsloop.kernel.bounds import MAX_FILTER_CLAUSES
from opsloop.tracking import search
from opsloop.tracking.entities import Run

__all__ = [
    "DEFAULT_PAGE_SIZE",
    "MAX_NESTED_ROWS",
    "REPRO_PREFIX",
    "TableRow",
    "ago",
    "column_groups",
    "field",
    "full_time",
    "nest",
    "runs_url",
    "sort_state",
    "sort_url",
    "table_url",
]

DEFAULT_PAGE_SIZE = 50  # about two screens: the table renders in the time of one round trip
MAX_NESTED_ROWS = 1000  # children shown under one page's runs; the parent's page lists them all
MAX_DEPTH = 4  # a sweep of sweeps of sweeps; deeper runs are one click away on their parent
REPRO_PREFIX = "opsloop."  # reproducibility tags: the run page's own section, not table columns
_PER_QUERY = MAX_FILTER_CLAUSES - 1  # parent ids per ``IN (...)``


@dataclass(frozen=True)
class TableRow:
    """A run as the table shows it: how deep it nests, under which runs, with how many below."""

    run: Run
    ancestors: tuple[str, ...] = ()
    children: int = 0

    @property
    def depth(self) -> int:
        return len(self.ancestors)


def nest(session: Session, experiment_id: str, top: list[Run], order: str) -> list[TableRow]:
    """``top`` with each run's descendants right after it, in the table's order.

    Raises:
        InvalidInput: ``order`` is malformed (the caller already ran it for ``top``).
    """
    below: dict[str, list[Run]] = {}
    level = [r.info.run_id for r in top]
    budget = MAX_NESTED_ROWS
    for _ in range(MAX_DEPTH):
        found: list[Run] = []
        for start in range(0, len(level), _PER_QUERY):
            if budget <= len(found):
                break
            chunk = level[start : start + _PER_QUERY]
            ids = ", ".join(f"'{run_id}'" for run_id in chunk if "'" not in run_id)
            found += search.search_runs(
                session,
                [experiment_id],
                filter=f"attributes.parent_run_id IN ({ids})",
                order_by=[order] if order else None,
                max_results=budget - len(found),
            ).items
        for child in found:
            below.setdefault(str(child.info.parent_run_id), []).append(child)
        budget -= len(found)
        level = [r.info.run_id for r in found]
        if not level or budget <= 0:
            break
    rows: list[TableRow] = []

    def visit(run: Run, ancestors: tuple[str, ...]) -> None:
        children = below.get(run.info.run_id, [])
        rows.append(TableRow(run, ancestors, len(children)))
        for child in children:
            visit(child, (*ancestors, run.info.run_id))

    for run in top:
        visit(run, ())
    return rows


def column_groups(keys: dict[str, list[str]]) -> list[tuple[str, str, list[str]]]:
    """``(group, filter entity, keys)`` for params, metrics and tags; tags the user set, not
    the reproducibility ones opsloop records."""
    tags = [k for k in keys.get("tags", []) if not k.startswith(REPRO_PREFIX)]
    return [
        ("Params", "params", keys.get("params", [])),
        ("Metrics", "metrics", keys.get("metrics", [])),
        ("Tags", "tags", tags),
    ]


def ago(ms: int | None, now_ms: int) -> str:
    """``just now``, ``5 min ago``, ``3 h ago``, ``2 d ago``, then the date: what a column of
    start times is scanned for. The full timestamp is the cell's tooltip."""
    if ms is None:
        return ""
    seconds = max(0, (now_ms - ms) // 1000)
    if seconds < 60:
        return "just now"
    if seconds < 3600:
        return f"{seconds // 60} min ago"
    if seconds < 86400:
        return f"{seconds // 3600} h ago"
    if seconds < 7 * 86400:
        return f"{seconds // 86400} d ago"
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d")


def full_time(ms: int | None) -> str:
    """The tooltip of a date cell: to the millisecond, with its zone."""
    if ms is None:
        return ""
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%A %Y-%m-%d %H:%M:%S.%f")[:-3] + " UTC"


def table_url(experiment_id: str, query: dict[str, str]) -> str:
    """The runs table with this query (empty values left out): every view is a deep link."""
    kept = urlencode({k: v for k, v in query.items() if v})
    return f"/experiments/{experiment_id}" + (f"?{kept}" if kept else "")


def runs_url(experiment_id: str, base: dict[str, str], page: str | None) -> str | None:
    """The table's page at ``page`` (a page token), or None when there is no such page."""
    return None if page is None else table_url(experiment_id, {**base, "page": page})


def field(entity: str, key: str) -> str:
    """``metrics.`val loss``` as the filter language spells a key (quoted, whatever it holds)."""
    quote = '"' if "`" in key else "`"
    return f"{entity}.{quote}{key}{quote}"


def sort_state(order: str, key: str) -> str:
    """``desc``/``asc`` when the table is sorted by ``key``, else empty."""
    column, _, direction = order.strip().rpartition(" ")
    if column != key:
        return ""
    return "asc" if direction.upper() == "ASC" else "desc"


def sort_url(experiment_id: str, base: dict[str, str], key: str, order: str) -> str:
    """Clicking a header sorts by it, descending first; a second click flips to ascending."""
    direction = "ASC" if sort_state(order, key) == "desc" else "DESC"
    return table_url(experiment_id, {**base, "order": f"{key} {direction}"})
