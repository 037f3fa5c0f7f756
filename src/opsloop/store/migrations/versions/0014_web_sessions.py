"""web UI sessions (the login cookie holds a session id, not the server token)"""

from alembic import op

from opsloop.store.migrations._ops import big_integer
from opsloop.store.migrations._ops import create_indexes
from opsloop.store.migrations._ops import drop_indexed_table
from opsloop.store.migrations._ops import primary_key
from opsloop.store.migrations._ops import string

revision: str = "0014_web_sessions"
down_revision: str | None = "0013_monitor_references"


def upgrade() -> None:
    op.create_table(
        "web_sessions",
        string("id", 64),
        string("subject", 250),
        big_integer("created_at"),
        big_integer("expires_at"),
        primary_key("web_sessions", "id"),
    )
    create_indexes("web_sessions", {"ix_web_sessions_expires_at": ["expires_at"]})


def downgrade() -> None:
    drop_indexed_table("web_sessions", "ix_web_sessions_expires_at")
