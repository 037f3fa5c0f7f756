"""The bounds hostile input meets at the edge, stated once for every domain.

- Integers: the databases store 64-bit integers, so a number that does not fit is refused with
  the field's name (``InvalidInput``, a 400) before it reaches a driver, which would raise
  ``OverflowError`` (SQLite) or "bigint out of range" (PostgreSQL). The request schemas and
  query parameters use :data:`Int64`, :data:`NonNegativeInt64` and :data:`PositiveInt64`; a
  JSON ``true``/``false`` is not an integer there.
- Digits: ``str.isdigit()`` is true for ``"²"`` and ``"٣"``; numbers in paths, references and
  headers are ASCII digits only (:func:`is_ascii_int`).
- Filters: how deep a filter may nest and how many conditions it may hold, so a parser never
  runs out of stack and a database never rejects the query it compiles to as too large.
"""

from __future__ import annotations

from typing import Annotated
from typing import Any

from annotated_types import Ge
from annotated_types import Le
from pydantic import BeforeValidator

from opsloop.errors import InvalidInput

__all__ = [
    "INT64_MAX",
    "INT64_MIN",
    "MAX_FILTER_CLAUSES",
    "MAX_FILTER_DEPTH",
    "Int64",
    "Int64Item",
    "NonNegativeInt64",
    "PositiveInt64",
    "check_clause_count",
    "check_int64",
    "is_ascii_int",
]

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1

MAX_FILTER_DEPTH = 50
"""Nested parentheses and ``not`` a filter may hold (the SQL it compiles to nests as deep)."""

MAX_FILTER_CLAUSES = 200
"""Conditions (comparisons, ``in`` values, tags, scores) one filter may hold."""


def _not_bool(value: Any) -> Any:
    if isinstance(value, bool):
        raise ValueError("expected an integer, not a boolean")
    return value


# The validator comes last so it wraps the constrained integer: it runs first, and the bounds
# stay in the schema as OpenAPI's minimum and maximum.
_INT = BeforeValidator(_not_bool)
Int64 = Annotated[int, Ge(INT64_MIN), Le(INT64_MAX), _INT]
"""An integer the databases can store (a signed 64-bit integer); never a boolean."""
Int64Item = Annotated[int, Ge(INT64_MIN), Le(INT64_MAX)]
""":data:`Int64` for the items of long columns (metric steps, timestamps): the range only, as
pydantic checks it in Rust; a Python check per item would make logging metrics five times
slower to validate (and a ``true`` there reads as 1, which stores fine)."""
NonNegativeInt64 = Annotated[int, Ge(0), Le(INT64_MAX), _INT]
"""A count, a limit or a time since the epoch: 0 to 2**63 - 1."""
PositiveInt64 = Annotated[int, Ge(1), Le(INT64_MAX), _INT]
"""A version number: 1 to 2**63 - 1."""


def check_int64(value: int, what: str) -> int:
    """Return ``value`` if it fits a signed 64-bit integer, else raise ``InvalidInput``."""
    if not INT64_MIN <= value <= INT64_MAX:
        raise InvalidInput(
            f"{what} {value} is out of range: integers are between {INT64_MIN} and {INT64_MAX}",
            details={"field": what},
        )
    return value


def is_ascii_int(text: str) -> bool:
    """True when ``text`` is one or more ASCII digits (``"²"`` and ``"٣"`` are not)."""
    return text.isascii() and text.isdigit()


def check_clause_count(count: int, what: str) -> None:
    """Raise ``InvalidInput`` when a filter holds more than :data:`MAX_FILTER_CLAUSES`."""
    if count > MAX_FILTER_CLAUSES:
        raise InvalidInput(
            f"{what}: {count} given, at most {MAX_FILTER_CLAUSES} allowed",
            details={"limit": MAX_FILTER_CLAUSES},
        )
