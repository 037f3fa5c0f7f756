"""ingest masking: the masking setting beside retention, and spans by end user for erasure"""

from opsloop.store.migrations._ops import add_columns
from opsloop.store.migrations._ops import create_indexes
from opsloop.store.migrations._ops import drop_columns
from opsloop.store.migrations._ops import drop_indexes
from opsloop.store.migrations._ops import string

revision: str = "0020_ingest_masking"
down_revision: str | None = "0019_oidc"


def upgrade() -> None:
    add_columns(
        "retention_policies",
        string("mask_entities", 500, nullable=True),
        string("mask_mode", 16, nullable=True),
        string("mask_key", 64, nullable=True),
    )
    create_indexes("spans", {"ix_spans_user": ["user_id", "trace_id"]})


def downgrade() -> None:
    drop_indexes("spans", "ix_spans_user")
    drop_columns("retention_policies", "mask_key", "mask_mode", "mask_entities")
