"""ingest masking: the masking setting beside retention, and spans by end user for erasure

Revision ID: 0020_ingest_masking
Revises: 0019_oidc
Create Date: 2026-12-12 10:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0020_ingest_masking"
down_revision: str | None = "0019_oidc"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("retention_policies", schema=None) as batch_op:
        batch_op.add_column(sa.Column("mask_entities", sa.String(length=500), nullable=True))
        batch_op.add_column(sa.Column("mask_mode", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("mask_key", sa.String(length=64), nullable=True))
    with op.batch_alter_table("spans", schema=None) as batch_op:
        batch_op.create_index("ix_spans_user", ["user_id", "trace_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("spans", schema=None) as batch_op:
        batch_op.drop_index("ix_spans_user")
    with op.batch_alter_table("retention_policies", schema=None) as batch_op:
        batch_op.drop_column("mask_key")
        batch_op.drop_column("mask_mode")
        batch_op.drop_column("mask_entities")
