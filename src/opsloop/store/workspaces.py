"""Where a workspace's objects live: a store of its own beside the root one.

A workspace is isolated by construction rather than by a filter on every query: its database
and blob store are other ones, so the same code runs against them and nothing (a name, an id,
a blob path, a cache, a prediction log) can cross between workspaces. ``default`` is the root
store itself; another workspace ``W`` lives at

- SQLite ``…/opsloop.db`` → ``…/opsloop.W.db`` (beside it);
- PostgreSQL: the same database, in a schema ``opsloop_ws_W`` (``-`` as ``_``; beside the root
  store's own schema when its URL sets one) selected by the connection's ``search_path``, so
  one server and one set of credentials serve them all;
- blobs under ``<blob_url>/workspaces/W``, local caches under ``<home>/workspaces/W``.

What is global stays in the root store: users, their keys and their role in each workspace,
web sessions, and the list of workspaces (:mod:`opsloop.governance.workspaces`), so that a
workspace must be created before it is used and a typo is an error, not a new empty store.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from opsloop.config import DEFAULT_WORKSPACE
from opsloop.config import Settings
from opsloop.config import check_workspace_name
from opsloop.errors import InvalidInput

__all__ = ["workspace_database_url", "workspace_schema", "workspace_settings"]

_SEARCH_PATH = "-csearch_path="


def workspace_schema(database_url: str, workspace: str) -> str:
    """The PostgreSQL schema that holds ``workspace``'s tables: beside the root store's own
    schema (``<root>_ws_<name>``, ``-`` as ``_``), or ``opsloop_ws_<name>`` when the root store
    is in the default one; so two opsloop stores in one database never share a workspace."""
    root = _search_path(_options(database_url))
    suffix = check_workspace_name(workspace).replace("-", "_")
    return f"{root}_ws_{suffix}" if root else f"opsloop_ws_{suffix}"


def workspace_database_url(database_url: str, workspace: str) -> str:
    """The database URL of ``workspace``'s store, given the root store's URL."""
    from sqlalchemy.engine import make_url

    if workspace == DEFAULT_WORKSPACE:
        return database_url
    url = make_url(database_url)
    backend = url.get_backend_name()
    if backend == "sqlite":
        database = url.database or ""
        if not database or database == ":memory:":
            raise InvalidInput(
                "workspaces need a store in a file or on PostgreSQL, not an in-memory SQLite one"
            )
        path = Path(database)
        moved = path.with_name(f"{path.stem}.{workspace}{path.suffix or '.db'}")
        return url.set(database=str(moved)).render_as_string(hide_password=False)
    if backend == "postgresql":
        kept = [o for o in _options(database_url).split() if not o.startswith(_SEARCH_PATH)]
        option = " ".join([*kept, _SEARCH_PATH + workspace_schema(database_url, workspace)])
        return url.update_query_dict({"options": option}).render_as_string(hide_password=False)
    raise InvalidInput(f"workspaces are kept on SQLite or PostgreSQL stores, not on {backend}")


def _options(database_url: str) -> str:
    from sqlalchemy.engine import make_url

    value = make_url(database_url).query.get("options", "")
    return value if isinstance(value, str) else " ".join(value)


def _search_path(options: str) -> str | None:
    """The first schema a ``-csearch_path=`` option names, if any."""
    for option in options.split():
        if option.startswith(_SEARCH_PATH):
            return option.removeprefix(_SEARCH_PATH).split(",")[0].strip('"') or None
    return None


def workspace_settings(settings: Settings) -> Settings:
    """``settings`` with the database, blob store and home of ``settings.workspace`` (the
    same settings for ``default``)."""
    workspace = settings.workspace
    if workspace == DEFAULT_WORKSPACE:
        return settings
    blob_url = settings.blob_url.rstrip("/")
    if "://" in blob_url:
        blobs = f"{blob_url}/workspaces/{workspace}"
    else:
        blobs = str(Path(blob_url) / "workspaces" / workspace)
    return replace(
        settings,
        database_url=workspace_database_url(settings.database_url, workspace),
        blob_url=blobs,
        home=settings.home / "workspaces" / workspace,
    )
