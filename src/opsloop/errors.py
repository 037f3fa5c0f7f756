"""The one error tree of opsloop.

Every error opsloop raises on purpose is an ``OpsloopError``. Each class carries the HTTP
status and the CLI exit code it maps to, so the server's exception handler, the HTTP client
and the CLI translate errors in exactly one place each::

    OpsloopError (Exception)                 HTTP 500, exit 1
    ├── InvalidInput (ValueError)            HTTP 400, exit 2   bad names, values, filters, paths
    ├── NotFound (LookupError)               HTTP 404, exit 3   unknown ids, names, artifact paths
    ├── Conflict                             HTTP 409, exit 4   duplicate names, changed params,
    │                                                           writes to a finished run
    ├── Unauthenticated                      HTTP 401, exit 5   no token where one is required
    ├── PermissionDenied (PermissionError)   HTTP 403, exit 6   a token that is not allowed
    ├── StoreError                           HTTP 503, exit 7   the database or blob store failed
    ├── PayloadTooLarge                      HTTP 413, exit 8   a body over its route's limit
    ├── RateLimited                          HTTP 429, exit 9   over a key's rate, tokens or budget
    └── UpstreamFailed                       HTTP 502, exit 10  a model provider failed or hung

Foreign errors (SQLAlchemy, fsspec, httpx) are translated at the boundary that meets them,
``raise StoreError(...) from exc``, never deeper.
"""

from __future__ import annotations

from typing import Any
from typing import ClassVar

__all__ = [
    "Conflict",
    "InvalidInput",
    "NotFound",
    "OpsloopError",
    "PayloadTooLarge",
    "PermissionDenied",
    "RateLimited",
    "StoreError",
    "Unauthenticated",
    "UpstreamFailed",
    "error_class_for_code",
    "validation_problems",
]


class OpsloopError(Exception):
    """Base of every error opsloop raises on purpose.

    Args:
        message: One line saying what went wrong and, where it can, what to do instead.
        details: Machine-readable facts (the old and new value of a param, a filter's column).
    """

    code: ClassVar[str] = "INTERNAL"
    http_status: ClassVar[int] = 500
    exit_code: ClassVar[int] = 1

    def __init__(self, message: str, *, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or {}

    def to_dict(self) -> dict[str, Any]:
        """The JSON body the server sends and the HTTP client turns back into this error."""
        return {"error": {"code": self.code, "message": self.message, "details": self.details}}


class InvalidInput(OpsloopError, ValueError):
    """A value, name, path or filter that opsloop will not accept as given."""

    code = "INVALID_INPUT"
    http_status = 400
    exit_code = 2


class NotFound(OpsloopError, LookupError):
    """An id, name or path that does not exist (or was deleted)."""

    code = "NOT_FOUND"
    http_status = 404
    exit_code = 3


class Conflict(OpsloopError):
    """A request that contradicts what is already stored, such as changing a logged param."""

    code = "CONFLICT"
    http_status = 409
    exit_code = 4


class Unauthenticated(OpsloopError):
    """The server needs a token and the request carried none."""

    code = "UNAUTHENTICATED"
    http_status = 401
    exit_code = 5


class PermissionDenied(OpsloopError, PermissionError):
    """The request's token is not allowed to do this."""

    code = "PERMISSION_DENIED"
    http_status = 403
    exit_code = 6


class StoreError(OpsloopError):
    """The metadata database or the blob store failed; the request may be retried."""

    code = "STORE_ERROR"
    http_status = 503
    exit_code = 7


class PayloadTooLarge(OpsloopError):
    """A request body over the limit of the route it was sent to; nothing of it was stored."""

    code = "TOO_LARGE"
    http_status = 413
    exit_code = 8


class RateLimited(OpsloopError):
    """A key over its requests or tokens per minute, or its spend budget; nothing was sent on.

    ``details["retry_after_s"]`` says when the limit resets (the server also sends it as the
    ``Retry-After`` header).
    """

    code = "RATE_LIMITED"
    http_status = 429
    exit_code = 9


class UpstreamFailed(OpsloopError):
    """A model provider behind the gateway failed, hung or cut its answer, and no fallback
    answered; the request may be retried."""

    code = "UPSTREAM_FAILED"
    http_status = 502
    exit_code = 10


_BY_CODE: dict[str, type[OpsloopError]] = {
    cls.code: cls
    for cls in (
        OpsloopError,
        InvalidInput,
        NotFound,
        Conflict,
        Unauthenticated,
        PermissionDenied,
        StoreError,
        PayloadTooLarge,
        RateLimited,
        UpstreamFailed,
    )
}


def error_class_for_code(code: str) -> type[OpsloopError]:
    """The error class a server's error code stands for (``OpsloopError`` when unknown)."""
    return _BY_CODE.get(code, OpsloopError)


def validation_problems(exc: Any, limit: int = 8) -> list[str]:
    """A pydantic ``ValidationError`` as ``field.path: message`` lines for an ``InvalidInput``
    (pydantic's "Value error, " prefix dropped; the path left out when there is none)."""
    lines = []
    for error in exc.errors()[:limit]:
        where = ".".join(str(p) for p in error.get("loc", ()))
        message = str(error.get("msg", "")).removeprefix("Value error, ")
        lines.append(f"{where}: {message}" if where else message)
    return lines
