"""privacy: retention settings per workspace and kind of data"""

from alembic import op

from opsloop.store.migrations._ops import big_integer
from opsloop.store.migrations._ops import integer
from opsloop.store.migrations._ops import primary_key
from opsloop.store.migrations._ops import string

revision: str = "0017_privacy"
down_revision: str | None = "0016_audit"


def upgrade() -> None:
    op.create_table(
        "retention_policies",
        string("workspace", 64),
        string("kind", 16),
        integer("days", nullable=True),
        big_integer("swept_at", nullable=True),
        big_integer("updated_at"),
        string("updated_by", 250),
        primary_key("retention_policies", "workspace", "kind"),
    )


def downgrade() -> None:
    op.drop_table("retention_policies")
