"""monitor reference history; why an alert resolved

Every existing monitor gets its first history entry (``created``) from its current profile and
baseline, so "revert" has something to go back to on an upgraded database as on a new one.
"""

import json

import sqlalchemy as sa
from alembic import op

from opsloop.store.migrations._ops import add_columns
from opsloop.store.migrations._ops import create_owned_table
from opsloop.store.migrations._ops import created
from opsloop.store.migrations._ops import drop_columns
from opsloop.store.migrations._ops import integer
from opsloop.store.migrations._ops import string
from opsloop.store.migrations._ops import text

revision: str = "0013_monitor_references"
down_revision: str | None = "0012_triggers"


def upgrade() -> None:
    references = create_owned_table(
        "monitor_references",
        "monitor_id",
        "monitors",
        integer("number"),
        string("action", 16),
        string("reference", 300),
        string("model", 300),
        text("reason"),
        string("loop_id", 32, nullable=True),
        text("profile"),
        text("baseline"),
        *created(),
        unique_on=[("monitor_id", "number")],
    )
    add_columns("alerts", text("resolution", nullable=True))

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
    drop_columns("alerts", "resolution")
    op.drop_table("monitor_references")
