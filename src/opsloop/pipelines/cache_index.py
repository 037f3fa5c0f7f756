"""What a pipeline's cache knows: the experiment's finished step runs, by cache key and by step.

The cache is the tracking store itself: a finished step run carries its cache key and the
parts it was made of as tags (``opsloop.cache.key``, ``.code``, ``.params``, ``.inputs``,
``.env``) and its outputs described by the ``opsloop.outputs`` tag, so a hit is a lookup here
and a miss can name the part that differs from the step's last run.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

__all__ = [
    "DIGEST_TAG", "INDEX_TAGS", "MODEL_TAG", "OUTPUTS_TAG", "PARTS", "CacheIndex", "Seen",
    "index_of", "miss_reason",
]  # fmt: skip

PARTS = ("code", "params", "inputs", "env", "data")  # "data" only for steps that read versions
OUTPUTS_TAG = "opsloop.outputs"  # JSON: output name -> {"file", "kind", "digest"}
DIGEST_TAG = "opsloop.output.digest"  # all of a step's outputs as one digest
MODEL_TAG = "opsloop.model.version"  # what a register= step registered: NAME@N


def _quote(text: str) -> str:
    return "'" + text.replace("'", "\\'") + "'"


@dataclass(frozen=True)
class Seen:
    """An earlier step run, as far as the cache needs it."""

    run_id: str
    tags: dict[str, str]


INDEX_TAGS = (
    "opsloop.step", "opsloop.cache.key", "opsloop.cache.source", OUTPUTS_TAG, DIGEST_TAG,
    MODEL_TAG, *(f"opsloop.cache.{p}" for p in PARTS),
)  # fmt: skip


def _last_run(client: Any, experiment: str, tag: str, value: str) -> Seen | None:
    page = client.search_runs(
        experiment,
        f"tags.`{tag}` = {_quote(value)} and attributes.status = 'FINISHED'"
        f" and tags.`{OUTPUTS_TAG}` != ''",
        order_by=["attributes.start_time DESC"],
        max_results=1,
    )
    return Seen(page.items[0].info.run_id, page.items[0].data.tags) if page.items else None


@dataclass
class _Known:
    """What this process knows of one experiment's finished step runs (shared by its runs)."""

    by_key: dict[str, Seen]
    by_step: dict[str, Seen]
    complete: bool
    loaded_at: float


_KNOWN: dict[tuple[str, str], _Known] = {}  # (database URL, experiment id) -> index
KNOWN_FOR_S = 60.0  # read again after this: runs that other processes finished become hits


@dataclass
class CacheIndex:
    """The experiment's finished step runs, read once when the pipeline starts: each step's
    cache lookup is then a dictionary read, not a search (a per-step query was most of a
    cached step's time). On a store in this process only the tags the cache uses are read,
    and the index is kept for the process's next pipeline runs, which add their own steps to
    it: reading it grew with the history (9 ms for 220 step runs, more than the ten cached
    steps it served). It is read again after :data:`KNOWN_FOR_S`, so steps other processes
    finished become hits by then; until then they are recomputed, never wrongly reused. A
    history longer than one page falls back to searching."""

    client: Any
    experiment: str
    known: _Known

    @classmethod
    def load(cls, client: Any, experiment: Any, page: int = 1000) -> CacheIndex:
        # imported here: SQLAlchemy stays off the fully cached path
        from opsloop.tracking.local import LocalTrackingBackend

        backend = client.tracking_backend
        if not isinstance(backend, LocalTrackingBackend):
            found = client.search_runs(
                experiment.name, "attributes.status = 'FINISHED'",
                order_by=["attributes.start_time DESC"], max_results=page,
            )  # fmt: skip
            seen = [(r.info.run_id, r.data.tags) for r in found.items]
            known = index_of(seen, found.next_page_token is None)
            return cls(client, experiment.name, known)
        where = (client.settings.database_url, experiment.experiment_id)
        known = _KNOWN.get(where)
        if known is None or time.monotonic() - known.loaded_at > KNOWN_FOR_S:
            from opsloop.store.sql import SessionSql
            from opsloop.tracking.run_records import recent_run_tags

            with backend.store.read() as session:
                seen, complete = recent_run_tags(
                    SessionSql(session), experiment.experiment_id, INDEX_TAGS, nested=True,
                    limit=page,
                )  # fmt: skip
            known = _KNOWN[where] = index_of(seen, complete)
        return cls(client, experiment.name, known)

    def add(self, run_id: str, tags: dict[str, str]) -> None:
        """A step run this pipeline finished (once its records are written)."""
        seen = Seen(run_id, tags)
        self.known.by_step[tags["opsloop.step"]] = seen
        self.known.by_key.setdefault(tags["opsloop.cache.key"], seen)

    def hit(self, key: str) -> Seen | None:
        if key in self.known.by_key or self.known.complete:
            return self.known.by_key.get(key)
        return _last_run(self.client, self.experiment, "opsloop.cache.key", key)

    def last(self, step: str) -> Seen | None:
        if step in self.known.by_step or self.known.complete:
            return self.known.by_step.get(step)
        return _last_run(self.client, self.experiment, "opsloop.step", step)


def index_of(seen: list[tuple[str, dict[str, str]]], complete: bool) -> _Known:
    by_key: dict[str, Seen] = {}
    by_step: dict[str, Seen] = {}
    for run_id, tags in seen:  # newest first: the first seen is the latest
        if "opsloop.step" in tags:
            by_step.setdefault(tags["opsloop.step"], Seen(run_id, tags))
            if OUTPUTS_TAG in tags:
                by_key.setdefault(tags.get("opsloop.cache.key", ""), Seen(run_id, tags))
    return _Known(by_key, by_step, complete, time.monotonic())


def miss_reason(previous: Seen | None, parts: dict[str, str]) -> str:
    if previous is None:
        return "first run of this step"
    changed = [p for p in PARTS if p in parts or f"opsloop.cache.{p}" in previous.tags
               if previous.tags.get(f"opsloop.cache.{p}") != parts.get(p)]  # fmt: skip
    return f"{' and '.join(changed) or 'key'} changed since run {previous.run_id[:8]}"
