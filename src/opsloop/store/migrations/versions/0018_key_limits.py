"""key limits: requests and tokens per minute and a spend budget per API key"""

from opsloop.store.migrations._ops import add_columns
from opsloop.store.migrations._ops import big_integer
from opsloop.store.migrations._ops import drop_columns
from opsloop.store.migrations._ops import floating
from opsloop.store.migrations._ops import integer
from opsloop.store.migrations._ops import string

revision: str = "0018_key_limits"
down_revision: str | None = "0017_privacy"


def upgrade() -> None:
    add_columns(
        "api_keys",
        integer("rpm", nullable=True),
        big_integer("tpm", nullable=True),
        floating("budget_usd", nullable=True),
        string("budget_period", 8, nullable=True),
    )


def downgrade() -> None:
    drop_columns("api_keys", "budget_period", "budget_usd", "tpm", "rpm")
