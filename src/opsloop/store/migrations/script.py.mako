## The revision ids are written once, in ``revision`` and ``down_revision`` below, and the date
## is git's to keep (a date typed into the file went stale when a revision was renumbered).
"""${message}"""

import sqlalchemy as sa
from alembic import op
${imports if imports else ""}
revision: str = ${repr(up_revision)}
down_revision: str | None = ${repr(down_revision)}


def upgrade() -> None:
    ${upgrades if upgrades else "pass"}


def downgrade() -> None:
    ${downgrades if downgrades else "pass"}
