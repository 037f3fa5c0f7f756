"""serving: deployments, events, rollouts"""

from opsloop.store.migrations._ops import acted
from opsloop.store.migrations._ops import big_integer
from opsloop.store.migrations._ops import create_indexes
from opsloop.store.migrations._ops import create_named_table
from opsloop.store.migrations._ops import create_owned_table
from opsloop.store.migrations._ops import created_and_updated
from opsloop.store.migrations._ops import drop_indexed_table
from opsloop.store.migrations._ops import drop_tables
from opsloop.store.migrations._ops import integer
from opsloop.store.migrations._ops import string
from opsloop.store.migrations._ops import text

revision: str = "0010_serving"
down_revision: str | None = "0009_evals"


def upgrade() -> None:
    create_named_table(
        "deployments",
        string("model_name", 250),
        text("policy"),
        string("status", 16),
        integer("revision"),
        text("description", nullable=True),
        *created_and_updated(),
    )
    create_owned_table(
        "deployment_events",
        "deployment_id",
        "deployments",
        *acted(32),
        text("from_policy", nullable=True),
        text("to_policy", nullable=True),
        text("reason", nullable=True),
    )
    create_indexes(
        "deployment_events", {"ix_deployment_events_deployment": ["deployment_id", "at"]}
    )
    create_owned_table(
        "rollouts",
        "deployment_id",
        "deployments",
        text("spec"),
        string("status", 16),
        integer("step"),
        big_integer("step_started_at"),
        big_integer("window_started_at"),
        integer("failures"),
        text("analyses"),
        text("message", nullable=True),
        *created_and_updated(),
    )
    create_indexes("rollouts", {"ix_rollouts_deployment_status": ["deployment_id", "status"]})


def downgrade() -> None:
    drop_indexed_table("rollouts", "ix_rollouts_deployment_status")
    drop_indexed_table("deployment_events", "ix_deployment_events_deployment")
    drop_tables("deployments")
