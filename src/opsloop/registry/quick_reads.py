"""The registry's everyday reads on the embedded store, in plain SQL on the standard ``sqlite3``.

``opsloop models list``, ``models show churn@3`` and ``models history churn`` are whole
processes for a few queries, and SQLAlchemy's import was most of them. On the embedded store at
this version's schema, :class:`~opsloop.registry.local.LocalRegistryBackend` answers these reads
here (on a :class:`~opsloop.store.quick_reads.QuickConnection`) and opens the ORM store only for
anything else; elsewhere :func:`open_quick_reads` returns None and every call goes the ORM way.

Each read is what :mod:`~opsloop.registry.models`, :mod:`~opsloop.registry.versions` and
:mod:`~opsloop.registry.aliases` return: the same rows in the same order and paging, the same
entities, the same errors with the same messages (which part of a reference is missing). A test
compares the two paths over a seeded store.
"""

from __future__ import annotations

import json
from typing import Any

from opsloop.data.manifest import Manifest
from opsloop.errors import NotFound
from opsloop.kernel.paging import Page
from opsloop.kernel.paging import decode_page_token
from opsloop.kernel.paging import split_page
from opsloop.kernel.refs import LATEST
from opsloop.kernel.refs import check_name
from opsloop.kernel.refs import parse_ref
from opsloop.registry.entities import AliasEvent
from opsloop.registry.entities import ModelVersion
from opsloop.registry.entities import RegisteredModel
from opsloop.registry.entities import version_from_row
from opsloop.store.quick_reads import QUICK_PAGE_LIMIT
from opsloop.store.quick_reads import QuickConnection
from opsloop.store.quick_reads import named
from opsloop.store.rows import from_row
from opsloop.store.sql import in_list

__all__ = ["QUICK_PAGE_LIMIT", "QuickReads", "open_quick_reads"]

_NOUN = "model"
_IN_CHUNK = 500
_MODEL = "id, name, description, gate_policy, created_at, updated_at, created_by"
_VERSION = (  # every column but the manifest
    "id, model_id, number, package_id, file_count, total_bytes, flavor, package, source, "
    "run_id, description, card, created_at, created_by"
)
_EVENT = "alias, kind, from_number, to_number, moved, reason, verdict, created_at, created_by"


def open_quick_reads(database_url: str) -> QuickReads | None:
    """Reads on a bare connection to the store's SQLite file, or None when that cannot serve
    them as the ORM would (not a SQLite file, no file yet, another schema revision)."""
    return QuickReads.open(database_url)


class QuickReads(QuickConnection):
    """The reads, each in one snapshot. Thread-safe; a forked child opens its own connection."""

    # -- models -----------------------------------------------------------------------------
    def _model_row(self, name: str) -> tuple[Any, ...]:
        return self.first(
            f"SELECT {_MODEL} FROM registered_models WHERE name = :name",
            {"name": check_name(name, _NOUN)},
            f"model {name!r} is not registered",
        )

    def get_model(self, name: str) -> RegisteredModel:
        with self.snapshot():
            return self._models([self._model_row(name)])[0]

    def list_models(self, max_results: int, page_token: str | None) -> Page[RegisteredModel]:
        """Registered models by name."""
        offset = decode_page_token(page_token)
        with self.snapshot():
            rows = self.rows(
                f"SELECT {_MODEL} FROM registered_models ORDER BY name LIMIT :limit OFFSET :offset",
                {"limit": max_results + 1, "offset": offset},
            )
            rows, token = split_page(rows, offset, max_results)
            return Page[RegisteredModel](items=self._models(rows), next_page_token=token)

    def _models(self, rows: list[tuple[Any, ...]]) -> list[RegisteredModel]:
        """Models with their tags, aliases (by alias) and latest version: three queries per
        500 models."""
        tags: dict[str, dict[str, str]] = {row[0]: {} for row in rows}
        held: dict[str, dict[str, int]] = {row[0]: {} for row in rows}
        latest: dict[str, tuple[int | None, int | None]] = {}  # number, created_at
        ids = list(tags)
        for start in range(0, len(ids), _IN_CHUNK):
            chunk, params = in_list("model", ids[start : start + _IN_CHUNK])
            for model_id, key, value in self.rows(
                'SELECT model_id, "key", value FROM registered_model_tags '
                f"WHERE model_id IN {chunk}",
                params,
            ):
                tags[model_id][key] = value
            for model_id, alias, number in self.rows(
                f"SELECT model_id, alias, number FROM model_aliases WHERE model_id IN {chunk} "
                "ORDER BY alias",
                params,
            ):
                held[model_id][alias] = number
            for model_id, number, created_at in self.rows(
                "SELECT model_id, max(number), max(created_at) FROM model_versions "
                f"WHERE model_id IN {chunk} GROUP BY model_id",
                params,
            ):
                latest[model_id] = (number, created_at)
        models = []
        for r in rows:
            latest_number, newest = latest.get(r[0], (None, None))
            models.append(
                RegisteredModel(
                    name=r[1],
                    description=r[2],
                    tags=tags[r[0]],
                    aliases=held[r[0]],
                    latest_version=latest_number,
                    gate_policy=json.loads(r[3]) if r[3] else None,
                    created_at=r[4],
                    updated_at=max(r[5], newest or 0),  # a new version is an update
                    created_by=r[6],
                )
            )
        return models

    # -- versions ---------------------------------------------------------------------------
    def get_version(self, ref: str) -> ModelVersion:
        """The version ``NAME@N``, ``NAME@alias`` or ``NAME`` (latest) names; ``NotFound``
        says what is missing (the model, any version, the alias, the number)."""
        with self.snapshot():
            return self._version(ref)

    def get_manifest(self, ref: str) -> tuple[ModelVersion, Manifest]:
        """The version ``ref`` names and its package's manifest, read in one snapshot (a model
        load: the ORM's path imports the tracking and data tables with it)."""
        with self.snapshot():
            version = self._version(ref)
            ((blob,),) = self.rows(
                "SELECT manifest FROM model_versions WHERE id = :id", {"id": version.version_id}
            )
        return version, Manifest.from_compressed(blob)

    def _version(self, ref: str) -> ModelVersion:
        parsed = parse_ref(ref, _NOUN)
        model = self._model_row(parsed.name)
        number = parsed.number
        if parsed.alias == LATEST:
            (number,) = self.rows(
                "SELECT max(number) FROM model_versions WHERE model_id = :model",
                {"model": model[0]},
            )[0]
            if number is None:
                raise NotFound(f"model {parsed.name!r} has no versions")
        elif parsed.alias is not None:
            (number,) = self.first(
                "SELECT number FROM model_aliases WHERE model_id = :model AND alias = :alias",
                {"model": model[0], "alias": parsed.alias},
                f"model {parsed.name!r} has no alias {parsed.alias!r}",
            )
        found = self.first(
            f"SELECT {_VERSION} FROM model_versions WHERE model_id = :model AND number = :number",
            {"model": model[0], "number": number},
            f"model version {parsed.name}@{number} does not exist",
        )
        return self._versions(model, [found])[0]

    def list_versions(
        self, name: str, max_results: int, page_token: str | None
    ) -> Page[ModelVersion]:
        """A model's versions, newest first."""
        with self.snapshot():
            model = self._model_row(name)
            offset = decode_page_token(page_token)
            rows = self.rows(
                f"SELECT {_VERSION} FROM model_versions WHERE model_id = :model "
                "ORDER BY number DESC LIMIT :limit OFFSET :offset",
                {"model": model[0], "limit": max_results + 1, "offset": offset},
            )
            rows, token = split_page(rows, offset, max_results)
            return Page[ModelVersion](items=self._versions(model, rows), next_page_token=token)

    def _versions(self, model: tuple[Any, ...], rows: list[tuple[Any, ...]]) -> list[ModelVersion]:
        """Versions of ``model`` with their tags and aliases (sorted): one query for the
        model's aliases, one for the tags of each 500 versions."""
        aliases: dict[int, list[str]] = {}
        for alias, number in self.rows(
            "SELECT alias, number FROM model_aliases WHERE model_id = :model", {"model": model[0]}
        ):
            aliases.setdefault(number, []).append(alias)
        tags: dict[str, dict[str, str]] = {row[0]: {} for row in rows}
        ids = list(tags)
        for start in range(0, len(ids), _IN_CHUNK):
            chunk, params = in_list("version", ids[start : start + _IN_CHUNK])
            query = (
                'SELECT version_pk, "key", value FROM model_version_tags '
                f"WHERE version_pk IN {chunk}"
            )
            for version_id, key, value in self.rows(query, params):
                tags[version_id][key] = value
        return [
            version_from_row(named(_VERSION, r), model[1], tags[r[0]], aliases.get(r[2], []))
            for r in rows
        ]

    # -- aliases ----------------------------------------------------------------------------
    def alias_history(self, name: str, alias: str | None) -> list[AliasEvent]:
        """Every decision about the model's aliases (or one alias), newest first."""
        with self.snapshot():
            model = self._model_row(name)
            where, params = "model_id = :model", {"model": model[0]}
            if alias is not None:
                where, params = f"{where} AND alias = :alias", {**params, "alias": alias}
            rows = self.rows(
                f"SELECT {_EVENT} FROM model_alias_events WHERE {where} ORDER BY id DESC", params
            )
        return [
            from_row(
                AliasEvent,
                named(_EVENT, r),
                name=model[1],
                moved=bool(r[4]),
                verdict=json.loads(r[6]) if r[6] else None,
            )
            for r in rows
        ]
