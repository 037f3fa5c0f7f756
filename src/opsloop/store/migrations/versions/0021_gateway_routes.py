"""gateway routes: each route's rollout state (the live share) and the history of its changes

Revision ID: 0021_gateway_routes
Revises: 0020_ingest_masking
Create Date: 2026-12-14 10:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0021_gateway_routes"
down_revision: str | None = "0020_ingest_masking"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "gateway_routes",
        sa.Column("route", sa.String(length=200), nullable=False),
        sa.Column("targets", sa.Text(), nullable=False),
        sa.Column("baseline", sa.String(length=100), nullable=True),
        sa.Column("candidate", sa.String(length=100), nullable=True),
        sa.Column("mode", sa.String(length=8), nullable=True),
        sa.Column("share", sa.Float(), nullable=True),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=True),
        sa.Column("step_started_at", sa.BigInteger(), nullable=True),
        sa.Column("judged_at", sa.BigInteger(), nullable=True),
        sa.Column("verdict", sa.Text(), nullable=True),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_by", sa.String(length=250), nullable=False),
        sa.PrimaryKeyConstraint("route"),
    )
    op.create_table(
        "gateway_route_history",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("route", sa.String(length=200), nullable=False),
        sa.Column("at", sa.BigInteger(), nullable=False),
        sa.Column("actor", sa.String(length=250), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("share_before", sa.Float(), nullable=True),
        sa.Column("share_after", sa.Float(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("details", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("gateway_route_history", schema=None) as batch_op:
        batch_op.create_index("ix_gateway_route_history_route", ["route", "at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("gateway_route_history", schema=None) as batch_op:
        batch_op.drop_index("ix_gateway_route_history_route")
    op.drop_table("gateway_route_history")
    op.drop_table("gateway_routes")
