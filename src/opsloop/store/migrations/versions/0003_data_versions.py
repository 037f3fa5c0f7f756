"""data versions (datasets, versions, tags, aliases) and the lineage graph"""

import sqlalchemy as sa
from alembic import op

from opsloop.store.migrations._ops import big_integer
from opsloop.store.migrations._ops import binary
from opsloop.store.migrations._ops import create_alias_table
from opsloop.store.migrations._ops import create_key_value_table
from opsloop.store.migrations._ops import create_named_table
from opsloop.store.migrations._ops import create_owned_table
from opsloop.store.migrations._ops import created
from opsloop.store.migrations._ops import drop_tables
from opsloop.store.migrations._ops import integer
from opsloop.store.migrations._ops import primary_key
from opsloop.store.migrations._ops import serial_id
from opsloop.store.migrations._ops import string
from opsloop.store.migrations._ops import text
from opsloop.store.migrations._ops import timestamps

revision: str = "0003_data_versions"
down_revision: str | None = "0002_key_indexes"


def upgrade() -> None:
    create_named_table("datasets", text("description", nullable=True), *timestamps())
    create_owned_table(
        "dataset_versions",
        "dataset_id",
        "datasets",
        integer("number"),
        string("version_id", 64),
        string("kind", 16),
        text("message", nullable=True),
        text("source", nullable=True),
        big_integer("file_count"),
        big_integer("total_bytes"),
        binary("manifest"),
        text("table_info", nullable=True),
        string("validation_status", 16, nullable=True),
        text("validation_report", nullable=True),
        *created(),
        unique_on=[("dataset_id", "number"), ("dataset_id", "version_id")],
    )
    create_key_value_table("dataset_version_tags", "version_pk", "dataset_versions")
    create_alias_table("dataset_aliases", "dataset_id", "datasets")
    op.create_table(
        "lineage_edges",
        serial_id(),
        string("source_type", 32),
        string("source_id", 250),
        string("target_type", 32),
        string("target_id", 250),
        string("relation", 32),
        big_integer("created_at"),
        primary_key("lineage_edges", "id"),
        sa.UniqueConstraint(
            "source_type",
            "source_id",
            "target_type",
            "target_id",
            "relation",
            name="uq_lineage_edges_edge",
        ),
    )
    op.create_index(
        "ix_lineage_edges_target", "lineage_edges", ["target_type", "target_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_lineage_edges_target", table_name="lineage_edges")
    drop_tables(
        "lineage_edges", "dataset_aliases", "dataset_version_tags", "dataset_versions", "datasets"
    )
