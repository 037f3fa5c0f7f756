"""leases: which process of several on one store runs the scheduler and the rollout controllers"""

from alembic import op

from opsloop.store.migrations._ops import big_integer
from opsloop.store.migrations._ops import drop_tables
from opsloop.store.migrations._ops import primary_key
from opsloop.store.migrations._ops import string

revision: str = "0022_leases"
down_revision: str | None = "0021_gateway_routes"


def upgrade() -> None:
    op.create_table(
        "leases",
        string("name", 100),
        string("holder", 250),
        big_integer("epoch"),
        big_integer("expires_at_ms"),
        big_integer("ticks"),
        primary_key("leases", "name"),
    )


def downgrade() -> None:
    drop_tables("leases")
