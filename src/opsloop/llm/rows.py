"""An entity read from its table row: every column the entity names is copied, the rest given.

The llm domains turn rows into their pydantic entities the same way (a trace, a span, a score, an
eval result, an annotation item...); written once here, a column added to both a table and its
entity is read without touching the conversion, and each caller lists only what differs (decoded
JSON, joined values, a renamed column).
"""

from __future__ import annotations

from typing import Any
from typing import TypeVar

from pydantic import BaseModel

__all__ = ["from_row"]

M = TypeVar("M", bound=BaseModel)


def from_row(entity: type[M], row: object, **given: Any) -> M:
    """``entity`` with each field that ``row`` has an attribute of the same name for copied from
    it; ``given`` fields (and fields the row lacks, which keep their defaults) are not read."""
    copied = {f: getattr(row, f) for f in entity.model_fields if f not in given and hasattr(row, f)}
    return entity(**copied, **given)
