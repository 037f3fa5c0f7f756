"""Entities read from table rows: a column copied into the entity field of the same name.

Every domain turns its rows into pydantic entities (an experiment, a run, a dataset or model
version, an alias event...). Written once here, each conversion lists only what differs from
the columns (decoded JSON, joined values, a renamed column), and a column added to both a table
and its entity is read without touching the conversion. Plain Python: importing it does not
import SQLAlchemy, so the quick read paths may use it too.
"""

from __future__ import annotations

from typing import Any
from typing import TypeVar

from pydantic import BaseModel

__all__ = ["from_row"]

M = TypeVar("M", bound=BaseModel)


def from_row(entity: type[M], row: object, **given: Any) -> M:
    """``entity`` from ``row``: the ``given`` fields as given, every other field the row has
    an attribute for copied from it (a field it lacks keeps its default, or is missing)."""
    copied = {f: getattr(row, f) for f in entity.model_fields if f not in given and hasattr(row, f)}
    return entity(**copied, **given)
