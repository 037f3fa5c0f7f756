"""model registry (models, versions, tags, aliases, alias history) and evaluations"""

from alembic import op

from opsloop.store.migrations._ops import big_integer
from opsloop.store.migrations._ops import binary
from opsloop.store.migrations._ops import boolean
from opsloop.store.migrations._ops import cascade
from opsloop.store.migrations._ops import create_alias_table
from opsloop.store.migrations._ops import create_indexes
from opsloop.store.migrations._ops import create_key_value_table
from opsloop.store.migrations._ops import create_named_table
from opsloop.store.migrations._ops import create_owned_table
from opsloop.store.migrations._ops import created
from opsloop.store.migrations._ops import created_and_updated
from opsloop.store.migrations._ops import drop_indexed_table
from opsloop.store.migrations._ops import drop_tables
from opsloop.store.migrations._ops import id_column
from opsloop.store.migrations._ops import integer
from opsloop.store.migrations._ops import primary_key
from opsloop.store.migrations._ops import serial_id
from opsloop.store.migrations._ops import string
from opsloop.store.migrations._ops import text

revision: str = "0005_registry"
down_revision: str | None = "0004_latest_metrics_clustered"


def upgrade() -> None:
    op.create_table(
        "evaluations",
        id_column(),
        string("model_version_id", 32, nullable=True),
        string("model_ref", 300, nullable=True),
        string("dataset_version_id", 32, nullable=True),
        string("dataset_ref", 300, nullable=True),
        string("task", 32),
        string("target", 250, nullable=True),
        text("report"),
        *created(),
        primary_key("evaluations", "id"),
    )
    create_indexes("evaluations", {"ix_evaluations_model_version_id": ["model_version_id"]})
    create_named_table(
        "registered_models",
        text("description", nullable=True),
        text("gate_policy", nullable=True),
        *created_and_updated(),
    )
    op.create_table(
        "model_alias_events",
        serial_id(),
        string("model_id", 32),
        string("alias", 64),
        string("kind", 16),
        integer("from_number", nullable=True),
        integer("to_number", nullable=True),
        boolean("moved"),
        text("reason", nullable=True),
        text("verdict", nullable=True),
        *created(),
        cascade("model_alias_events", "model_id", "registered_models"),
        primary_key("model_alias_events", "id"),
    )
    create_indexes(
        "model_alias_events", {"ix_model_alias_events_model_id_alias": ["model_id", "alias"]}
    )
    create_alias_table("model_aliases", "model_id", "registered_models")
    create_owned_table(
        "model_versions",
        "model_id",
        "registered_models",
        integer("number"),
        string("package_id", 64),
        binary("manifest"),
        integer("file_count"),
        big_integer("total_bytes"),
        string("flavor", 32),
        text("package"),
        text("source", nullable=True),
        string("run_id", 32, nullable=True),
        text("description", nullable=True),
        text("card", nullable=True),
        *created(),
        unique_on=[("model_id", "number")],
    )
    create_indexes(
        "model_versions",
        {
            "ix_model_versions_run_id": ["run_id"],
            "ix_model_versions_package_id": ["package_id"],
        },
    )
    create_key_value_table("registered_model_tags", "model_id", "registered_models")
    create_key_value_table("model_version_tags", "version_pk", "model_versions")


def downgrade() -> None:
    drop_tables("model_version_tags", "registered_model_tags")
    drop_indexed_table("model_versions", "ix_model_versions_run_id", "ix_model_versions_package_id")
    drop_tables("model_aliases")
    drop_indexed_table("model_alias_events", "ix_model_alias_events_model_id_alias")
    drop_tables("registered_models")
    drop_indexed_table("evaluations", "ix_evaluations_model_version_id")
