"""tracking: experiments, runs, params, tags, metrics, artifacts"""

from alembic import op

from opsloop.store.migrations._ops import big_integer
from opsloop.store.migrations._ops import cascade
from opsloop.store.migrations._ops import create_indexes
from opsloop.store.migrations._ops import create_key_value_table
from opsloop.store.migrations._ops import create_named_table
from opsloop.store.migrations._ops import double
from opsloop.store.migrations._ops import drop_indexed_table
from opsloop.store.migrations._ops import drop_tables
from opsloop.store.migrations._ops import id_column
from opsloop.store.migrations._ops import primary_key
from opsloop.store.migrations._ops import string
from opsloop.store.migrations._ops import text
from opsloop.store.migrations._ops import timestamps

revision: str = "0001_tracking"
down_revision: str | None = None


def upgrade() -> None:
    create_named_table(
        "experiments",
        text("description", nullable=True),
        string("lifecycle_stage", 16),
        *timestamps(),
    )
    create_key_value_table("experiment_tags", "experiment_id", "experiments")
    op.create_table(
        "runs",
        id_column(),
        string("experiment_id", 32),
        string("name", 250),
        string("status", 16),
        big_integer("start_time"),
        big_integer("end_time", nullable=True),
        string("parent_run_id", 32, nullable=True),
        string("user_id", 250),
        text("notes", nullable=True),
        string("lifecycle_stage", 16),
        cascade("runs", "experiment_id", "experiments"),
        primary_key("runs", "id"),
    )
    create_indexes(
        "runs",
        {
            "ix_runs_experiment_id_start_time": ["experiment_id", "start_time"],
            "ix_runs_parent_run_id": ["parent_run_id"],
        },
    )
    op.create_table(
        "artifacts",
        string("run_id", 32),
        string("path", 1024),
        string("digest", 64),
        big_integer("size"),
        big_integer("created_at"),
        cascade("artifacts", "run_id", "runs"),
        primary_key("artifacts", "run_id", "path"),
    )
    create_indexes("artifacts", {"ix_artifacts_digest": ["digest"]})
    op.create_table(
        "latest_metrics",
        string("run_id", 32),
        string("key", 250),
        double("value"),
        big_integer("step"),
        big_integer("timestamp"),
        cascade("latest_metrics", "run_id", "runs"),
        primary_key("latest_metrics", "run_id", "key"),
    )
    create_indexes("latest_metrics", {"ix_latest_metrics_key_value": ["key", "value"]})
    op.create_table(
        "metrics",
        string("run_id", 32),
        string("key", 250),
        big_integer("step"),
        big_integer("timestamp"),
        double("value"),
        cascade("metrics", "run_id", "runs"),
        primary_key("metrics", "run_id", "key", "step", "timestamp", "value"),
        sqlite_with_rowid=False,
    )
    create_key_value_table("params", "run_id", "runs")
    create_key_value_table("run_tags", "run_id", "runs")


def downgrade() -> None:
    drop_tables("run_tags", "params", "metrics")
    drop_indexed_table("latest_metrics", "ix_latest_metrics_key_value")
    drop_indexed_table("artifacts", "ix_artifacts_digest")
    drop_indexed_table("runs", "ix_runs_parent_run_id", "ix_runs_experiment_id_start_time")
    drop_tables("experiment_tags", "experiments")
