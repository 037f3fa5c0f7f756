"""gateway routes: each route's rollout state (the live share) and the history of its changes"""

import sqlalchemy as sa
from alembic import op

from opsloop.store.migrations._ops import acted
from opsloop.store.migrations._ops import big_integer
from opsloop.store.migrations._ops import create_indexes
from opsloop.store.migrations._ops import drop_indexed_table
from opsloop.store.migrations._ops import drop_tables
from opsloop.store.migrations._ops import floating
from opsloop.store.migrations._ops import id_column
from opsloop.store.migrations._ops import integer
from opsloop.store.migrations._ops import string
from opsloop.store.migrations._ops import text

revision: str = "0021_gateway_routes"
down_revision: str | None = "0020_ingest_masking"


def upgrade() -> None:
    op.create_table(
        "gateway_routes",
        string("route", 200),
        text("targets"),
        string("baseline", 100, nullable=True),
        string("candidate", 100, nullable=True),
        string("mode", 8, nullable=True),
        floating("share", nullable=True),
        integer("step"),
        string("status", 16, nullable=True),
        big_integer("step_started_at", nullable=True),
        big_integer("judged_at", nullable=True),
        text("verdict", nullable=True),
        big_integer("updated_at"),
        string("updated_by", 250),
        sa.PrimaryKeyConstraint("route"),  # unnamed: the database names it
    )
    op.create_table(
        "gateway_route_history",
        id_column(),
        string("route", 200),
        *acted(16),
        floating("share_before", nullable=True),
        floating("share_after", nullable=True),
        text("reason"),
        text("details"),
        sa.PrimaryKeyConstraint("id"),
    )
    create_indexes("gateway_route_history", {"ix_gateway_route_history_route": ["route", "at"]})


def downgrade() -> None:
    drop_indexed_table("gateway_route_history", "ix_gateway_route_history_route")
    drop_tables("gateway_routes")
