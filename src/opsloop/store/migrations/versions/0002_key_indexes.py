"""indexes on params.key and run_tags.key: distinct keys by skip-scan, key filters"""

from alembic import op

revision: str = "0002_key_indexes"
down_revision: str | None = "0001_tracking"


def upgrade() -> None:
    op.create_index("ix_params_key", "params", ["key"])
    op.create_index("ix_run_tags_key", "run_tags", ["key"])


def downgrade() -> None:
    op.drop_index("ix_run_tags_key", table_name="run_tags")
    op.drop_index("ix_params_key", table_name="params")
