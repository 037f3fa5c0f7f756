"""audit: the hash-chained audit log and its head row"""

from alembic import op

from opsloop.store.migrations._ops import big_integer
from opsloop.store.migrations._ops import create_indexes
from opsloop.store.migrations._ops import drop_indexed_table
from opsloop.store.migrations._ops import integer
from opsloop.store.migrations._ops import primary_key
from opsloop.store.migrations._ops import string

revision: str = "0016_audit"
down_revision: str | None = "0015_identity"


def upgrade() -> None:
    op.create_table(
        "audit_events",
        big_integer("seq", autoincrement=False),
        big_integer("at"),
        string("actor", 250),
        string("workspace", 64),
        string("action", 500),
        string("resource", 1000),
        string("request_id", 64),
        integer("outcome"),
        string("digest", 64, nullable=True),
        string("prev_hash", 64),
        string("hash", 64),
        primary_key("audit_events", "seq"),
    )
    create_indexes(
        "audit_events", {"ix_audit_events_actor": ["actor"], "ix_audit_events_at": ["at"]}
    )
    op.create_table(
        "audit_head",
        integer("id", autoincrement=False),
        big_integer("seq"),
        string("hash", 64),
        primary_key("audit_head", "id"),
    )


def downgrade() -> None:
    op.drop_table("audit_head")
    drop_indexed_table("audit_events", "ix_audit_events_at", "ix_audit_events_actor")
