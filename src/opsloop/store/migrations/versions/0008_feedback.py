"""feedback: annotation queues and items

Revision ID: 0008_feedback
Revises: 0007_tracing
Create Date: 2026-11-24 10:25:29.964142
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008_feedback"
down_revision: str | None = "0007_tracing"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "annotation_queues",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=250), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("score_configs", sa.Text(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("created_by", sa.String(length=250), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_annotation_queues")),
        sa.UniqueConstraint("name", name=op.f("uq_annotation_queues_name")),
    )
    op.create_table(
        "annotation_items",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("queue_id", sa.String(length=32), nullable=False),
        sa.Column("trace_id", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("claimed_by", sa.String(length=250), nullable=True),
        sa.Column("claimed_at", sa.BigInteger(), nullable=True),
        sa.Column("completed_by", sa.String(length=250), nullable=True),
        sa.Column("completed_at", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["queue_id"],
            ["annotation_queues.id"],
            name=op.f("fk_annotation_items_queue_id_annotation_queues"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_annotation_items")),
        sa.UniqueConstraint(
            "queue_id", "trace_id", name=op.f("uq_annotation_items_queue_id_trace_id")
        ),
    )
    with op.batch_alter_table("annotation_items", schema=None) as batch_op:
        batch_op.create_index(
            "ix_annotation_items_queue_status", ["queue_id", "status", "created_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("annotation_items", schema=None) as batch_op:
        batch_op.drop_index("ix_annotation_items_queue_status")

    op.drop_table("annotation_items")
    op.drop_table("annotation_queues")
