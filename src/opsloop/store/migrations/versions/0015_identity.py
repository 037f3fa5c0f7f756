"""identity: users, their role per workspace, API keys (stored hashed)"""

from alembic import op

from opsloop.store.migrations._ops import big_integer
from opsloop.store.migrations._ops import boolean
from opsloop.store.migrations._ops import cascade
from opsloop.store.migrations._ops import create_indexes
from opsloop.store.migrations._ops import create_named_table
from opsloop.store.migrations._ops import create_owned_table
from opsloop.store.migrations._ops import created
from opsloop.store.migrations._ops import drop_indexed_table
from opsloop.store.migrations._ops import drop_tables
from opsloop.store.migrations._ops import primary_key
from opsloop.store.migrations._ops import string

revision: str = "0015_identity"
down_revision: str | None = "0014_web_sessions"


def upgrade() -> None:
    create_named_table("users", boolean("is_service"), *created())
    op.create_table(
        "user_roles",
        string("user_id", 32),
        string("workspace", 64),
        string("role", 16),
        big_integer("granted_at"),
        string("granted_by", 250),
        cascade("user_roles", "user_id", "users"),
        primary_key("user_roles", "user_id", "workspace"),
    )
    create_owned_table(
        "api_keys",
        "user_id",
        "users",
        string("name", 250),
        string("prefix", 16),
        string("key_hash", 64),
        string("role", 16, nullable=True),
        big_integer("expires_at", nullable=True),
        big_integer("revoked_at", nullable=True),
        *created(),
        unique_on=[("key_hash",)],
    )
    create_indexes("api_keys", {"ix_api_keys_user_id": ["user_id"]})


def downgrade() -> None:
    drop_indexed_table("api_keys", "ix_api_keys_user_id")
    drop_tables("user_roles", "users")
