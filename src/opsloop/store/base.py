"""The declarative base every domain's tables derive from.

Each domain owns its tables (``opsloop/<domain>/tables.py``); they all share this metadata so
one Alembic history covers the whole schema (``opsloop.schema`` gathers them). The naming
convention gives constraints stable names, which Alembic needs to alter them on SQLite and
PostgreSQL alike.
"""

from __future__ import annotations

from sqlalchemy import MetaData
from sqlalchemy.orm import DeclarativeBase

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Shared declarative base: one ``MetaData`` for the whole schema."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
