"""workspaces: the workspaces made besides ``default`` (each keeps its objects in its own store)"""

from alembic import op

from opsloop.store.migrations._ops import created
from opsloop.store.migrations._ops import drop_tables
from opsloop.store.migrations._ops import primary_key
from opsloop.store.migrations._ops import string

revision: str = "0023_workspaces"
down_revision: str | None = "0022_leases"


def upgrade() -> None:
    op.create_table(
        "workspaces",
        string("name", 64),
        *created(),
        primary_key("workspaces", "name"),
    )


def downgrade() -> None:
    drop_tables("workspaces")
