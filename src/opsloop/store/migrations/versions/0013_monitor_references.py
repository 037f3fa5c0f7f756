"""monitor reference history; why an alert resolved

Revision ID: 0013_monitor_references
Revises: 0012_triggers
Create Date: 2026-12-02 16:00:00.000000

Every existing monitor gets its first history entry (``created``) from its current profile and
baseline, so "revert" has something to go back to on an upgraded database as on a new one.
"""

import json
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013_monitor_references"
down_revision: str | None = "0012_triggers"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    references = op.create_table(
        "monitor_references",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("monitor_id", sa.String(length=32), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("reference", sa.String(length=300), nullable=False),
        sa.Column("model", sa.String(length=300), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("loop_id", sa.String(length=32), nullable=True),
        sa.Column("profile", sa.Text(), nullable=False),
        sa.Column("baseline", sa.Text(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("created_by", sa.String(length=250), nullable=False),
        sa.ForeignKeyConstraint(
            ["monitor_id"],
            ["monitors.id"],
            name=op.f("fk_monitor_references_monitor_id_monitors"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_monitor_references")),
        sa.UniqueConstraint(
            "monitor_id", "number", name=op.f("uq_monitor_references_monitor_id_number")
        ),
    )
    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("resolution", sa.Text(), nullable=True))

    monitors = sa.table(
        "monitors",
        sa.column("id", sa.String),
        sa.column("profile", sa.Text),
        sa.column("baseline", sa.Text),
        sa.column("created_at", sa.BigInteger),
        sa.column("created_by", sa.String),
    )
    rows = op.get_bind().execute(sa.select(monitors)).all()
    entries = []
    for row in rows:
        baseline = json.loads(row.baseline)
        entries.append({
            "id": row.id, "monitor_id": row.id, "number": 1, "action": "created",
            "reference": baseline["reference"], "model": baseline.get("model", ""),
            "reason": "the monitor was created", "loop_id": None, "profile": row.profile,
            "baseline": row.baseline, "created_at": row.created_at, "created_by": row.created_by,
        })  # fmt: skip
    if entries:
        op.bulk_insert(references, entries)


def downgrade() -> None:
    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.drop_column("resolution")
    op.drop_table("monitor_references")
