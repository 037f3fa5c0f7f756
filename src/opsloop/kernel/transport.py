"""The SDK's HTTP transport: one place for auth, retries and mapping errors back to classes.

The server sends errors as ``{"error": {"code", "message", "details"}}``; this turns them back
into the same ``OpsloopError`` subclass the local backend would have raised, so code written
against the local store behaves the same against a server. Idempotent requests are retried
with exponential backoff on connection failures and 502/503/504; opsloop's writes are designed
to be idempotent (client-chosen run ids, metric history keyed by every column).
"""

from __future__ import annotations

import functools
import time
from pathlib import Path
from typing import TYPE_CHECKING
from typing import Any
from typing import TypeVar

import httpx

from opsloop.errors import Conflict
from opsloop.errors import InvalidInput
from opsloop.errors import NotFound
from opsloop.errors import OpsloopError
from opsloop.errors import PermissionDenied
from opsloop.errors import StoreError
from opsloop.errors import Unauthenticated
from opsloop.errors import error_class_for_code

if TYPE_CHECKING:
    from pydantic import BaseModel
    from pydantic import TypeAdapter

T = TypeVar("T")

__all__ = ["HttpTransport"]

_RETRY_STATUSES = {502, 503, 504}
_BY_STATUS: dict[int, type[OpsloopError]] = {
    400: InvalidInput,
    401: Unauthenticated,
    403: PermissionDenied,
    404: NotFound,
    409: Conflict,
    422: InvalidInput,
}


class HttpTransport:
    """An ``httpx.Client`` bound to one opsloop server.

    Args:
        base_url: The server, e.g. ``http://127.0.0.1:5000``.
        token: Sent as ``Authorization: Bearer <token>``.
        timeout: Seconds per request.
        retries: Extra attempts for idempotent requests on transient failures.
        workspace: Sent as ``X-Opsloop-Workspace`` (unless ``default``): the server serves
            that workspace's objects, under the caller's role there.
    """

    def __init__(
        self, base_url: str, token: str | None = None, *, timeout: float = 60.0, retries: int = 4,
        workspace: str = "default",
    ) -> None:  # fmt: skip
        headers = {"User-Agent": "opsloop-sdk"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        if workspace != "default":
            headers["X-Opsloop-Workspace"] = workspace
        self.base_url = base_url.rstrip("/")
        self.retries = retries
        self._client = httpx.Client(base_url=self.base_url, headers=headers, timeout=timeout)

    def request(
        self, method: str, path: str, *, idempotent: bool = True, **kwargs: Any
    ) -> httpx.Response:
        """Send a request; return the response or raise the ``OpsloopError`` it stands for."""
        attempts = 1 + (self.retries if idempotent else 0)
        for attempt in range(attempts):
            last = attempt == attempts - 1
            try:
                response = self._client.request(method, path, **kwargs)
            except httpx.TransportError as exc:
                if last:
                    raise StoreError(
                        f"cannot reach the opsloop server at {self.base_url}: {exc}"
                    ) from exc
            else:
                if response.status_code not in _RETRY_STATUSES or last:
                    return _raise_for_error(response)
            time.sleep(min(0.2 * 2**attempt, 5.0))
        raise AssertionError("unreachable")

    def send(self, method: str, path: str, body: BaseModel | None = None, **kwargs: Any) -> bytes:
        """Send a request with ``body`` as its JSON (``None`` fields left out); return the
        response's bytes, for the caller's entity to validate."""
        if body is not None:
            kwargs["content"] = body.model_dump_json(exclude_none=True)
            kwargs["headers"] = {"Content-Type": "application/json"}
        return self.request(method, path, **kwargs).content

    def json(self, method: str, path: str, **kwargs: Any) -> Any:
        """Send a request and decode its JSON body."""
        return self.request(method, path, **kwargs).json()

    def fetch(self, kind: type[T], method: str, path: str, **kwargs: Any) -> T:
        """Send a request and validate its JSON body as ``kind`` (``Alert``, ``list[Alert]``)."""
        validated: T = _adapter(kind).validate_python(self.json(method, path, **kwargs))
        return validated

    def download(self, path: str, dest: Path) -> None:
        """Stream a response body to ``dest`` through a temp file, renamed when complete."""
        tmp = dest.with_name(f".{dest.name}.part")
        dest.parent.mkdir(parents=True, exist_ok=True)
        try:
            with self._client.stream("GET", path) as response:
                if response.status_code >= 400:
                    response.read()
                    _raise_for_error(response)
                with open(tmp, "wb") as out:
                    for chunk in response.iter_bytes(1 << 20):
                        out.write(chunk)
            tmp.replace(dest)
        except httpx.TransportError as exc:
            raise StoreError(f"download from {self.base_url}{path} failed: {exc}") from exc
        finally:
            tmp.unlink(missing_ok=True)

    def close(self) -> None:
        self._client.close()


@functools.cache
def _adapter(kind: Any) -> TypeAdapter[Any]:
    """One adapter per type a response is read as (building one costs a schema build)."""
    from pydantic import TypeAdapter  # as for BaseModel above: not loaded by this import

    return TypeAdapter(kind)


def _raise_for_error(response: httpx.Response) -> httpx.Response:
    if response.status_code < 400:
        return response
    try:
        error = response.json()["error"]
        cls, message, details = (
            error_class_for_code(error["code"]),
            error["message"],
            error.get("details"),
        )
    except (ValueError, KeyError, TypeError):
        pass
    else:
        raise cls(message, details=details or {})
    cls = _BY_STATUS.get(
        response.status_code, StoreError if response.status_code >= 500 else OpsloopError
    )
    raise cls(f"HTTP {response.status_code} from {response.request.url}: {response.text[:300]}")
