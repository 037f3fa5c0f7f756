"""oidc: external identities (issuer, subject) of users, and disabled users"""

from alembic import op

from opsloop.store.migrations._ops import add_columns
from opsloop.store.migrations._ops import big_integer
from opsloop.store.migrations._ops import cascade
from opsloop.store.migrations._ops import create_indexes
from opsloop.store.migrations._ops import drop_columns
from opsloop.store.migrations._ops import drop_indexed_table
from opsloop.store.migrations._ops import primary_key
from opsloop.store.migrations._ops import string

revision: str = "0019_oidc"
down_revision: str | None = "0018_key_limits"


def upgrade() -> None:
    add_columns("users", big_integer("disabled_at", nullable=True))
    op.create_table(
        "user_identities",
        string("issuer", 500),
        string("subject", 250),
        string("user_id", 32),
        string("email", 320, nullable=True),
        big_integer("created_at"),
        big_integer("last_login_at"),
        cascade("user_identities", "user_id", "users"),
        primary_key("user_identities", "issuer", "subject"),
    )
    create_indexes("user_identities", {"ix_user_identities_user_id": ["user_id"]})


def downgrade() -> None:
    drop_indexed_table("user_identities", "ix_user_identities_user_id")
    drop_columns("users", "disabled_at")
