"""tracing: spans, traces, tags, scores, prices"""

from alembic import op

from opsloop.store.migrations._ops import big_integer
from opsloop.store.migrations._ops import create_indexes
from opsloop.store.migrations._ops import drop_indexed_table
from opsloop.store.migrations._ops import drop_tables
from opsloop.store.migrations._ops import floating
from opsloop.store.migrations._ops import id_column
from opsloop.store.migrations._ops import integer
from opsloop.store.migrations._ops import primary_key
from opsloop.store.migrations._ops import string
from opsloop.store.migrations._ops import text

revision: str = "0007_tracing"
down_revision: str | None = "0006_prompts"


def upgrade() -> None:
    op.create_table(
        "model_prices",
        string("pattern", 250),
        floating("input_per_mtok"),
        floating("output_per_mtok"),
        floating("per_request"),
        big_integer("created_at"),
        primary_key("model_prices", "pattern"),
    )
    op.create_table(
        "scores",
        id_column(),
        string("trace_id", 32),
        string("span_id", 16, nullable=True),
        string("name", 250),
        string("data_type", 12),
        floating("value", nullable=True),
        text("string_value", nullable=True),
        text("comment", nullable=True),
        string("source", 16),
        string("author", 250),
        big_integer("created_at"),
        primary_key("scores", "id"),
    )
    create_indexes("scores", {"ix_scores_name": ["name"], "ix_scores_trace": ["trace_id"]})
    op.create_table(
        "spans",
        string("trace_id", 32),
        string("span_id", 16),
        string("parent_span_id", 16, nullable=True),
        string("name", 500),
        string("kind", 16),
        big_integer("start_ns"),
        big_integer("end_ns"),
        floating("duration_ms"),
        string("status", 8),
        text("status_message", nullable=True),
        string("service", 250, nullable=True),
        string("model", 250, nullable=True),
        integer("input_tokens", nullable=True),
        integer("output_tokens", nullable=True),
        integer("total_tokens", nullable=True),
        floating("cost", nullable=True),
        text("input", nullable=True),
        text("output", nullable=True),
        string("user_id", 250, nullable=True),
        string("session_id", 250, nullable=True),
        string("prompt_name", 250, nullable=True),
        integer("prompt_version", nullable=True),
        text("attributes"),
        text("events"),
        primary_key("spans", "trace_id", "span_id"),
    )
    create_indexes("spans", {"ix_spans_start": ["start_ns"]})
    op.create_table(
        "trace_tags",
        string("trace_id", 32),
        string("tag", 250),
        primary_key("trace_tags", "trace_id", "tag"),
    )
    create_indexes("trace_tags", {"ix_trace_tags_tag": ["tag"]})
    op.create_table(
        "traces",
        string("trace_id", 32),
        string("root_span_id", 16, nullable=True),
        string("name", 500),
        big_integer("start_ns"),
        big_integer("end_ns"),
        floating("duration_ms"),
        integer("span_count"),
        integer("error_count"),
        integer("input_tokens"),
        integer("output_tokens"),
        floating("cost"),
        string("user_id", 250, nullable=True),
        string("session_id", 250, nullable=True),
        text("input", nullable=True),
        text("output", nullable=True),
        primary_key("traces", "trace_id"),
    )
    create_indexes(
        "traces",
        {
            "ix_traces_session": ["session_id"],
            "ix_traces_start": ["start_ns"],
            "ix_traces_user": ["user_id"],
        },
    )


def downgrade() -> None:
    drop_indexed_table("traces", "ix_traces_user", "ix_traces_start", "ix_traces_session")
    drop_indexed_table("trace_tags", "ix_trace_tags_tag")
    drop_indexed_table("spans", "ix_spans_start")
    drop_indexed_table("scores", "ix_scores_trace", "ix_scores_name")
    drop_tables("model_prices")
