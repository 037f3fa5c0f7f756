"""Each revision's schema, frozen: replaying history gives what it gave when it was written.

The revisions build their tables through ``store/migrations/_ops.py``, so a change to a helper
there would quietly rewrite every revision that calls it, and databases upgraded before and
after the change would differ. This test replays the revisions one at a time on SQLite and
compares a fingerprint of the schema after each with the one recorded here. A new revision adds
its line (the failure prints it); a changed line means history moved: undo the change and write
a new revision instead.
"""

from __future__ import annotations

import hashlib

from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import Engine
from sqlalchemy import inspect

from opsloop.store.database import Store
from opsloop.store.migrate import _MIGRATIONS
from opsloop.store.migrate import upgrade

FINGERPRINTS = {
    "0001_tracking": "1119aa25538a25ee",
    "0002_key_indexes": "4fe25df1b7d1a64f",
    "0003_data_versions": "3d4dc23f5f64058c",
    "0004_latest_metrics_clustered": "1cb16f7ac1631b2a",
    "0005_registry": "6876584aadf487b6",
    "0006_prompts": "3660b06e29e83d78",
    "0007_tracing": "2583a835c3ef7a1d",
    "0008_feedback": "242854bc8583a9f1",
    "0009_evals": "aeb70a50c9ab75b9",
    "0010_serving": "ed36ac866397d8ce",
    "0011_monitoring": "e78e92c6b54a69a0",
    "0012_triggers": "9f4f1e08ee44bd10",
    "0013_monitor_references": "e6e0ffbddcebf379",
    "0014_web_sessions": "5b07007454fee97a",
    "0015_identity": "0113e602c3845b35",
    "0016_audit": "3d38e4d210b2da3e",
    "0017_privacy": "a7fe120d37320acc",
    "0018_key_limits": "5fa880687353c5be",
    "0019_oidc": "224e26c17c0d30c0",
    "0020_ingest_masking": "72a904f9c26989ef",
    "0021_gateway_routes": "f3ba7f66a32486f2",
    "0022_leases": "b1529220c39d93af",
    "0023_workspaces": "4314edc0c302b31c",
}


def _revisions() -> list[str]:
    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    newest_first = ScriptDirectory.from_config(config).walk_revisions()
    return [script.revision for script in reversed(list(newest_first))]


def _fingerprint(engine: Engine) -> str:
    """Tables with their columns (name, type, nullable) in order, keys, constraints, indexes and
    ``WITHOUT ROWID``, independent of how SQLAlchemy happens to lay out the DDL text."""
    schema = inspect(engine)
    with engine.connect() as conn:
        without_rowid = {
            name
            for name, sql in conn.exec_driver_sql("SELECT name, sql FROM sqlite_master")
            if sql and "WITHOUT ROWID" in sql
        }
    tables = []
    for table in sorted(set(schema.get_table_names()) - {"alembic_version"}):
        primary_key = schema.get_pk_constraint(table)
        tables.append((
            table,
            [(c["name"], str(c["type"]), c["nullable"]) for c in schema.get_columns(table)],
            (primary_key["name"], primary_key["constrained_columns"]),
            sorted(
                (fk["name"], fk["constrained_columns"], fk["referred_table"],
                 fk["referred_columns"], fk["options"].get("ondelete"))
                for fk in schema.get_foreign_keys(table)
            ),
            sorted((u["name"], u["column_names"]) for u in schema.get_unique_constraints(table)),
            sorted((i["name"], i["column_names"], i["unique"]) for i in schema.get_indexes(table)),
            table in without_rowid,
        ))  # fmt: skip
    return hashlib.sha256(repr(tables).encode()).hexdigest()[:16]


def test_every_revision_still_builds_the_schema_it_was_written_for(sqlite_url: str) -> None:
    store = Store(sqlite_url)
    found = {}
    for revision in _revisions():
        upgrade(store.engine, revision)
        found[revision] = _fingerprint(store.engine)
    store.dispose()
    assert found == FINGERPRINTS, "\n".join(f'    "{r}": "{f}",' for r, f in found.items())
