"""How large a request body may be: one ASGI middleware on every app, with a limit per route.

Every request gets ``DEFAULT_MAX_BODY`` (JSON API calls, form posts) unless its method and path
match a ``BodyLimit`` that its domain declares beside the route (blob batches and OTLP take
more, inference less, a streamed blob upload is never held whole and has none). A body over
its limit is refused with a 413 ``PayloadTooLarge`` naming the limit: from its
``Content-Length`` before any byte is read, else as soon as the streamed bytes pass it. The
route then fails while reading its body, before it writes anything, so a refused request
leaves the store as it was.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from fastapi.responses import JSONResponse

from opsloop.errors import PayloadTooLarge
from opsloop.kernel.bounds import is_ascii_int
from opsloop.kernel.routes import Route

__all__ = ["DEFAULT_MAX_BODY", "BodyLimit", "install_body_limits"]

DEFAULT_MAX_BODY = 16 << 20  # 16 MiB: any JSON API call
_PARAM = re.compile(r"\{\w+(:path)?\}")


@dataclass(frozen=True)
class BodyLimit:
    """``route`` called with ``method`` takes a body of at most ``max_bytes`` (None: no
    limit, for a route that streams its body to disk and never holds it whole)."""

    method: str
    route: Route
    max_bytes: int | None

    def pattern(self) -> re.Pattern[str]:
        parts, end = [], 0
        full = self.route.mount + self.route.template
        for match in _PARAM.finditer(full):
            parts += [re.escape(full[end : match.start()]), ".+" if match.group(1) else "[^/]+"]
            end = match.end()
        return re.compile("".join([*parts, re.escape(full[end:])]) + "$")


def install_body_limits(
    app: Any, limits: Sequence[BodyLimit], default: int = DEFAULT_MAX_BODY
) -> None:
    """Refuse bodies over their route's limit on ``app`` (the first matching limit wins; list
    fixed paths before templated ones that would also match them)."""
    app.add_middleware(_BodyLimitMiddleware, limits=list(limits), default=default)


def _too_large(scope: Any, limit: int, size: int | None = None) -> PayloadTooLarge:
    told = f"of {size:,} bytes " if size is not None else ""
    return PayloadTooLarge(
        f"the request body {told}is over the limit of {limit:,} bytes "
        f"({limit / (1 << 20):g} MiB) for {scope['method']} {scope['path']}; "
        "send it in smaller parts",
        details={"limit": limit},
    )


class _BodyLimitMiddleware:
    def __init__(self, app: Any, limits: list[BodyLimit], default: int) -> None:
        self.app = app
        self.default = default
        self.limits = [(rule.method.upper(), rule.pattern(), rule.max_bytes) for rule in limits]

    def limit_for(self, method: str, path: str) -> int | None:
        for rule_method, pattern, limit in self.limits:
            if rule_method == method and pattern.match(path):
                return limit
        return self.default

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope["method"], scope["path"])
        if limit is None:
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length", b"").decode("latin-1")
        if is_ascii_int(declared) and int(declared) > limit:
            if int(declared) <= _DRAIN_BYTES:  # a larger one is answered from its headers alone
                await _drain(receive)
            await _refuse(_too_large(scope, limit, int(declared)), scope, receive, send)
            return
        received = 0
        refused: PayloadTooLarge | None = None
        started = False
        body_done = False

        async def counted() -> Any:
            nonlocal received, refused, body_done
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                body_done = not message.get("more_body", False)
                if received > limit:
                    refused = _too_large(scope, limit)
                    raise refused
            return message

        async def guarded(message: Any) -> None:
            # Whatever the app answers once its body read failed (FastAPI turns a failed
            # read into a 400), the caller gets the 413.
            nonlocal started
            if refused is not None:
                if message["type"] == "http.response.start" and not started:
                    started = True
                    if not body_done:
                        await _drain(receive)
                    await _refuse(refused, scope, receive, send)
                return
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, guarded)
        except PayloadTooLarge as exc:
            if started:
                raise
            started = True
            if not body_done:
                await _drain(receive)
            await _refuse(exc, scope, receive, send)


_DRAIN_BYTES = 64 << 20


async def _drain(receive: Any) -> None:
    """Read and drop what the client is still sending (up to 64 MiB, kept nowhere), so that it
    reads the 413 instead of a connection reset mid-upload; a larger rest is cut off by the
    close that follows."""
    dropped = 0
    while dropped <= _DRAIN_BYTES:
        message = await receive()
        if message["type"] != "http.request":
            return
        dropped += len(message.get("body", b""))
        if not message.get("more_body", False):
            return


async def _refuse(error: PayloadTooLarge, scope: Any, receive: Any, send: Any) -> None:
    # Connection: close, so the unread rest of the body is not taken for the next request.
    response = JSONResponse(error.to_dict(), status_code=error.http_status)
    response.headers["connection"] = "close"
    await response(scope, receive, send)
