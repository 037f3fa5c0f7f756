"""pipeline triggers and firings"""

from opsloop.store.migrations._ops import create_indexes
from opsloop.store.migrations._ops import create_named_table
from opsloop.store.migrations._ops import create_owned_table
from opsloop.store.migrations._ops import created
from opsloop.store.migrations._ops import drop_indexed_table
from opsloop.store.migrations._ops import drop_tables
from opsloop.store.migrations._ops import integer
from opsloop.store.migrations._ops import string
from opsloop.store.migrations._ops import text
from opsloop.store.migrations._ops import timestamps

revision: str = "0012_triggers"
down_revision: str | None = "0011_monitoring"


def upgrade() -> None:
    create_named_table(
        "pipeline_triggers",
        string("pipeline", 500),
        text("params"),
        string("kind", 16),
        text("spec"),
        integer("enabled"),
        string("cursor", 250, nullable=True),
        *created(),
    )
    create_owned_table(
        "pipeline_firings",
        "trigger_id",
        "pipeline_triggers",
        string("key", 250),
        text("reason"),
        text("params"),
        string("status", 16),
        string("run_id", 32, nullable=True),
        text("message", nullable=True),
        *timestamps(),
        unique_on=[("trigger_id", "key")],
    )
    create_indexes("pipeline_firings", {"ix_pipeline_firings_status": ["status", "created_at"]})


def downgrade() -> None:
    drop_indexed_table("pipeline_firings", "ix_pipeline_firings_status")
    drop_tables("pipeline_triggers")
