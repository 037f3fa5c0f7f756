"""tracing: spans, traces, tags, scores, prices

Revision ID: 0007_tracing
Revises: 0006_prompts
Create Date: 2026-11-24 09:59:41.531097
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007_tracing"
down_revision: str | None = "0006_prompts"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "model_prices",
        sa.Column("pattern", sa.String(length=250), nullable=False),
        sa.Column("input_per_mtok", sa.Float(), nullable=False),
        sa.Column("output_per_mtok", sa.Float(), nullable=False),
        sa.Column("per_request", sa.Float(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("pattern", name=op.f("pk_model_prices")),
    )
    op.create_table(
        "scores",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("trace_id", sa.String(length=32), nullable=False),
        sa.Column("span_id", sa.String(length=16), nullable=True),
        sa.Column("name", sa.String(length=250), nullable=False),
        sa.Column("data_type", sa.String(length=12), nullable=False),
        sa.Column("value", sa.Float(), nullable=True),
        sa.Column("string_value", sa.Text(), nullable=True),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("author", sa.String(length=250), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_scores")),
    )
    with op.batch_alter_table("scores", schema=None) as batch_op:
        batch_op.create_index("ix_scores_name", ["name"], unique=False)
        batch_op.create_index("ix_scores_trace", ["trace_id"], unique=False)

    op.create_table(
        "spans",
        sa.Column("trace_id", sa.String(length=32), nullable=False),
        sa.Column("span_id", sa.String(length=16), nullable=False),
        sa.Column("parent_span_id", sa.String(length=16), nullable=True),
        sa.Column("name", sa.String(length=500), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("start_ns", sa.BigInteger(), nullable=False),
        sa.Column("end_ns", sa.BigInteger(), nullable=False),
        sa.Column("duration_ms", sa.Float(), nullable=False),
        sa.Column("status", sa.String(length=8), nullable=False),
        sa.Column("status_message", sa.Text(), nullable=True),
        sa.Column("service", sa.String(length=250), nullable=True),
        sa.Column("model", sa.String(length=250), nullable=True),
        sa.Column("input_tokens", sa.Integer(), nullable=True),
        sa.Column("output_tokens", sa.Integer(), nullable=True),
        sa.Column("total_tokens", sa.Integer(), nullable=True),
        sa.Column("cost", sa.Float(), nullable=True),
        sa.Column("input", sa.Text(), nullable=True),
        sa.Column("output", sa.Text(), nullable=True),
        sa.Column("user_id", sa.String(length=250), nullable=True),
        sa.Column("session_id", sa.String(length=250), nullable=True),
        sa.Column("prompt_name", sa.String(length=250), nullable=True),
        sa.Column("prompt_version", sa.Integer(), nullable=True),
        sa.Column("attributes", sa.Text(), nullable=False),
        sa.Column("events", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("trace_id", "span_id", name=op.f("pk_spans")),
    )
    with op.batch_alter_table("spans", schema=None) as batch_op:
        batch_op.create_index("ix_spans_start", ["start_ns"], unique=False)

    op.create_table(
        "trace_tags",
        sa.Column("trace_id", sa.String(length=32), nullable=False),
        sa.Column("tag", sa.String(length=250), nullable=False),
        sa.PrimaryKeyConstraint("trace_id", "tag", name=op.f("pk_trace_tags")),
    )
    with op.batch_alter_table("trace_tags", schema=None) as batch_op:
        batch_op.create_index("ix_trace_tags_tag", ["tag"], unique=False)

    op.create_table(
        "traces",
        sa.Column("trace_id", sa.String(length=32), nullable=False),
        sa.Column("root_span_id", sa.String(length=16), nullable=True),
        sa.Column("name", sa.String(length=500), nullable=False),
        sa.Column("start_ns", sa.BigInteger(), nullable=False),
        sa.Column("end_ns", sa.BigInteger(), nullable=False),
        sa.Column("duration_ms", sa.Float(), nullable=False),
        sa.Column("span_count", sa.Integer(), nullable=False),
        sa.Column("error_count", sa.Integer(), nullable=False),
        sa.Column("input_tokens", sa.Integer(), nullable=False),
        sa.Column("output_tokens", sa.Integer(), nullable=False),
        sa.Column("cost", sa.Float(), nullable=False),
        sa.Column("user_id", sa.String(length=250), nullable=True),
        sa.Column("session_id", sa.String(length=250), nullable=True),
        sa.Column("input", sa.Text(), nullable=True),
        sa.Column("output", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("trace_id", name=op.f("pk_traces")),
    )
    with op.batch_alter_table("traces", schema=None) as batch_op:
        batch_op.create_index("ix_traces_session", ["session_id"], unique=False)
        batch_op.create_index("ix_traces_start", ["start_ns"], unique=False)
        batch_op.create_index("ix_traces_user", ["user_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("traces", schema=None) as batch_op:
        batch_op.drop_index("ix_traces_user")
        batch_op.drop_index("ix_traces_start")
        batch_op.drop_index("ix_traces_session")

    op.drop_table("traces")
    with op.batch_alter_table("trace_tags", schema=None) as batch_op:
        batch_op.drop_index("ix_trace_tags_tag")

    op.drop_table("trace_tags")
    with op.batch_alter_table("spans", schema=None) as batch_op:
        batch_op.drop_index("ix_spans_start")

    op.drop_table("spans")
    with op.batch_alter_table("scores", schema=None) as batch_op:
        batch_op.drop_index("ix_scores_trace")
        batch_op.drop_index("ix_scores_name")

    op.drop_table("scores")
    op.drop_table("model_prices")
