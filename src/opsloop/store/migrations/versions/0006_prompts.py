"""prompt registry: prompts, versions, labels"""

from opsloop.store.migrations._ops import create_alias_table
from opsloop.store.migrations._ops import create_named_table
from opsloop.store.migrations._ops import create_owned_table
from opsloop.store.migrations._ops import created
from opsloop.store.migrations._ops import created_and_updated
from opsloop.store.migrations._ops import drop_tables
from opsloop.store.migrations._ops import integer
from opsloop.store.migrations._ops import string
from opsloop.store.migrations._ops import text

revision: str = "0006_prompts"
down_revision: str | None = "0005_registry"


def upgrade() -> None:
    create_named_table("prompts", text("description", nullable=True), *created_and_updated())
    create_alias_table("prompt_labels", "prompt_id", "prompts", label="label")
    create_owned_table(
        "prompt_versions",
        "prompt_id",
        "prompts",
        integer("number"),
        string("type", 8),
        text("template"),
        text("config"),
        text("variables"),
        string("content_hash", 64),
        text("message", nullable=True),
        *created(),
        unique_on=[("prompt_id", "number")],
    )


def downgrade() -> None:
    drop_tables("prompt_versions", "prompt_labels", "prompts")
