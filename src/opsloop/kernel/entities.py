"""The base of every entity a backend returns: a frozen pydantic model.

Each backend contract promises that what it returns is immutable (safe to share between threads
and to cache); deriving from :class:`Entity` keeps that promise in one place instead of a
``model_config`` line in every class.
"""

from __future__ import annotations

from pydantic import BaseModel
from pydantic import ConfigDict

__all__ = ["Entity"]


class Entity(BaseModel):
    """A frozen model: assigning to a field raises ``ValidationError``."""

    model_config = ConfigDict(frozen=True)
