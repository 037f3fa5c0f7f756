"""feedback: annotation queues and items"""

from opsloop.store.migrations._ops import big_integer
from opsloop.store.migrations._ops import create_indexes
from opsloop.store.migrations._ops import create_named_table
from opsloop.store.migrations._ops import create_owned_table
from opsloop.store.migrations._ops import created
from opsloop.store.migrations._ops import drop_indexed_table
from opsloop.store.migrations._ops import drop_tables
from opsloop.store.migrations._ops import string
from opsloop.store.migrations._ops import text

revision: str = "0008_feedback"
down_revision: str | None = "0007_tracing"


def upgrade() -> None:
    create_named_table(
        "annotation_queues", text("description", nullable=True), text("score_configs"), *created()
    )
    create_owned_table(
        "annotation_items",
        "queue_id",
        "annotation_queues",
        string("trace_id", 32),
        string("status", 12),
        string("claimed_by", 250, nullable=True),
        big_integer("claimed_at", nullable=True),
        string("completed_by", 250, nullable=True),
        big_integer("completed_at", nullable=True),
        big_integer("created_at"),
        unique_on=[("queue_id", "trace_id")],
    )
    create_indexes(
        "annotation_items",
        {"ix_annotation_items_queue_status": ["queue_id", "status", "created_at"]},
    )


def downgrade() -> None:
    drop_indexed_table("annotation_items", "ix_annotation_items_queue_status")
    drop_tables("annotation_queues")
