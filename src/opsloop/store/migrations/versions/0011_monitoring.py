"""monitoring: monitors, runs, alerts, loop runs"""

from opsloop.store.migrations._ops import big_integer
from opsloop.store.migrations._ops import create_indexes
from opsloop.store.migrations._ops import create_named_table
from opsloop.store.migrations._ops import create_owned_table
from opsloop.store.migrations._ops import created
from opsloop.store.migrations._ops import drop_indexed_table
from opsloop.store.migrations._ops import floating
from opsloop.store.migrations._ops import integer
from opsloop.store.migrations._ops import string
from opsloop.store.migrations._ops import text
from opsloop.store.migrations._ops import timestamps

revision: str = "0011_monitoring"
down_revision: str | None = "0010_serving"


def upgrade() -> None:
    create_named_table(
        "monitors",
        string("deployment", 250),
        text("spec"),
        text("profile"),
        text("baseline"),
        integer("enabled"),
        big_integer("next_run_at"),
        big_integer("last_window_end", nullable=True),
        *created(),
    )
    create_indexes("monitors", {"ix_monitors_deployment": ["deployment"]})
    create_owned_table(
        "alerts",
        "monitor_id",
        "monitors",
        string("deployment", 250),
        string("rule", 250),
        string("severity", 16),
        string("status", 16),
        string("metric", 250),
        floating("value", nullable=True),
        text("message"),
        integer("count"),
        big_integer("first_at"),
        big_integer("last_at"),
        string("run_id", 32, nullable=True),
        string("acknowledged_by", 250, nullable=True),
        big_integer("acknowledged_at", nullable=True),
        string("resolved_by", 250, nullable=True),
        big_integer("resolved_at", nullable=True),
        text("deliveries"),
    )
    create_indexes(
        "alerts",
        {
            "ix_alerts_deployment": ["deployment"],
            "ix_alerts_monitor_rule_status": ["monitor_id", "rule", "status"],
        },
    )
    create_owned_table(
        "loop_runs",
        "monitor_id",
        "monitors",
        string("deployment", 250),
        string("alert_id", 32),
        string("stage", 16),
        string("pipeline_run_id", 32, nullable=True),
        integer("candidate", nullable=True),
        string("rollout_id", 32, nullable=True),
        string("data_ref", 300, nullable=True),
        text("message", nullable=True),
        text("history"),
        *timestamps(),
        unique_on=[("alert_id",)],
    )
    create_indexes("loop_runs", {"ix_loop_runs_deployment": ["deployment"]})
    create_owned_table(
        "monitor_runs",
        "monitor_id",
        "monitors",
        big_integer("started_at"),
        big_integer("window_start", nullable=True),
        big_integer("window_end", nullable=True),
        integer("rows"),
        string("status", 16),
        text("metrics"),
        text("report"),
        text("message", nullable=True),
    )
    create_indexes("monitor_runs", {"ix_monitor_runs_monitor_at": ["monitor_id", "started_at"]})


def downgrade() -> None:
    drop_indexed_table("monitor_runs", "ix_monitor_runs_monitor_at")
    drop_indexed_table("loop_runs", "ix_loop_runs_deployment")
    drop_indexed_table("alerts", "ix_alerts_monitor_rule_status", "ix_alerts_deployment")
    drop_indexed_table("monitors", "ix_monitors_deployment")
