"""Building a request model from an SDK call's arguments, a bad value told as ``InvalidInput``.

The SDKs take plain keyword arguments and build the pydantic model a backend takes; a value the
model refuses must reach the caller as the same ``InvalidInput`` (one line per problem) that the
server would send, not as pydantic's own error. The message reads ``<what>: <problems>``, or
the problems alone where ``what`` is empty.
"""

from __future__ import annotations

from typing import Any
from typing import TypeVar

from pydantic import BaseModel
from pydantic import ValidationError

from opsloop.errors import InvalidInput
from opsloop.errors import validation_problems

__all__ = ["validated"]

M = TypeVar("M", bound=BaseModel)


def validated(model: type[M], what: str = "", /, **fields: Any) -> M:
    """``model(**fields)``, or ``InvalidInput("<what>: field: problem; ...")`` when refused.

    Example:
        >>> validated(MonitorRevert, "invalid revert", to=0)
    """
    try:
        return model(**fields)
    except ValidationError as exc:
        problems = "; ".join(validation_problems(exc))
        raise InvalidInput(f"{what}: {problems}" if what else problems) from None
