"""evals: runs, results, prompt label rules"""

from alembic import op

from opsloop.store.migrations._ops import big_integer
from opsloop.store.migrations._ops import boolean
from opsloop.store.migrations._ops import cascade
from opsloop.store.migrations._ops import create_indexes
from opsloop.store.migrations._ops import created
from opsloop.store.migrations._ops import drop_indexed_table
from opsloop.store.migrations._ops import drop_tables
from opsloop.store.migrations._ops import floating
from opsloop.store.migrations._ops import id_column
from opsloop.store.migrations._ops import integer
from opsloop.store.migrations._ops import primary_key
from opsloop.store.migrations._ops import string
from opsloop.store.migrations._ops import text

revision: str = "0009_evals"
down_revision: str | None = "0008_feedback"


def upgrade() -> None:
    op.create_table(
        "eval_runs",
        id_column(),
        string("suite", 250),
        text("description", nullable=True),
        *created(),
        floating("threshold"),
        integer("total"),
        integer("passed_count"),
        floating("pass_rate"),
        boolean("passed"),
        floating("duration_ms"),
        primary_key("eval_runs", "id"),
    )
    create_indexes("eval_runs", {"ix_eval_runs_suite_created": ["suite", "created_at"]})
    op.create_table(
        "prompt_label_rules",
        string("prompt_name", 250),
        string("label", 64),
        string("suite", 250),
        floating("min_pass_rate"),
        big_integer("created_at"),
        primary_key("prompt_label_rules", "prompt_name", "label"),
    )
    op.create_table(
        "eval_results",
        string("run_id", 32),
        integer("idx"),
        string("prompt", 300),
        string("prompt_name", 250, nullable=True),
        integer("prompt_version", nullable=True),
        string("provider", 300),
        string("case", 64),
        text("description"),
        text("vars"),
        text("output", nullable=True),
        boolean("passed"),
        floating("score"),
        floating("latency_ms"),
        floating("cost", nullable=True),
        text("error", nullable=True),
        text("assertions"),
        string("trace_id", 32, nullable=True),
        cascade("eval_results", "run_id", "eval_runs"),
        primary_key("eval_results", "run_id", "idx"),
    )
    create_indexes("eval_results", {"ix_eval_results_prompt": ["prompt_name", "prompt_version"]})


def downgrade() -> None:
    drop_indexed_table("eval_results", "ix_eval_results_prompt")
    drop_tables("prompt_label_rules")
    drop_indexed_table("eval_runs", "ix_eval_runs_suite_created")
