"""The upstream connection pool: keep-alive connections per origin, taken and given back in
constant time.

httpcore's own pool (httpx's default) re-examines every connection it holds twice per
request: each idle one's socket is polled, and for each idle one the idle ones are counted
again (quadratic). With the tens to hundreds of connections a gateway holds once a burst has
passed, or many calls to a slow upstream are in flight, that cost milliseconds of CPU per
request: the gateway slowed, its backlog grew, more connections opened, and upstream calls
finally timed out (the 502s seen at 500 requests/s). Here a request takes the most recently
used idle connection of its origin (one socket check: the upstream may have closed it), opens
one when none is idle, and gives it back when its response is closed; past ``max_idle`` idle
connections per origin the surplus is closed.

Each connection is httpcore's own (HTTP/1.1, TLS, keep-alive expiry) and errors are mapped
to httpx's exceptions by :class:`httpx.AsyncHTTPTransport`, which this pool sits under.
"""

from __future__ import annotations

import asyncio
import functools
import os
import ssl
from collections.abc import AsyncIterator

import certifi
import httpcore
import httpx

__all__ = ["UpstreamTransport"]

_Key = tuple[bytes, bytes, int]  # an origin: scheme, host, port


@functools.cache
def verifying_context() -> ssl.SSLContext:
    """The process's one client TLS context (``SSL_CERT_FILE``, else certifi's bundle), shared
    by every pool: loading the bundle costs ~60 ms, and a server builds a gateway, so a pool,
    per workspace, and a test suite one per app, most of them never calling an upstream."""
    return ssl.create_default_context(cafile=os.environ.get("SSL_CERT_FILE") or certifi.where())


class _Pool:
    """What ``httpx.AsyncHTTPTransport`` expects of its ``_pool``: ``handle_async_request``,
    ``aclose`` and the async context manager."""

    def __init__(self, max_connections: int, max_idle: int, keepalive_expiry: float) -> None:
        self._idle: dict[_Key, list[httpcore.AsyncHTTPConnection]] = {}
        self._slots = asyncio.Semaphore(max_connections)
        self._max_idle = max_idle
        self._expiry = keepalive_expiry
        self._ssl = verifying_context()

    async def handle_async_request(self, request: httpcore.Request) -> httpcore.Response:
        wait = (request.extensions.get("timeout") or {}).get("pool")
        try:
            async with asyncio.timeout(wait):
                await self._slots.acquire()
        except TimeoutError:
            raise httpcore.PoolTimeout("no free connection to the upstream in time") from None
        origin = request.url.origin
        key = (origin.scheme, origin.host, origin.port)
        connection = self._take(key)
        try:
            if connection is None:
                connection = httpcore.AsyncHTTPConnection(
                    origin, ssl_context=self._ssl, keepalive_expiry=self._expiry
                )
            response = await connection.handle_async_request(request)
        except BaseException:
            self._slots.release()
            if connection is not None:
                await connection.aclose()
            raise
        stream = _Returning(response.stream, self, key, connection)  # type: ignore[arg-type]
        return httpcore.Response(
            response.status, headers=response.headers, content=stream,
            extensions=response.extensions,
        )  # fmt: skip

    def _take(self, key: _Key) -> httpcore.AsyncHTTPConnection | None:
        idle = self._idle.get(key)
        while idle:
            connection = idle.pop()
            if connection.is_idle() and not connection.has_expired():
                return connection
            _close_soon(connection)
        return None

    async def _give_back(self, key: _Key, connection: httpcore.AsyncHTTPConnection) -> None:
        self._slots.release()
        idle = self._idle.setdefault(key, [])
        if connection.is_idle() and len(idle) < self._max_idle:
            idle.append(connection)
        else:
            await connection.aclose()

    async def aclose(self) -> None:
        idle, self._idle = self._idle, {}
        for connections in idle.values():
            for connection in connections:
                await connection.aclose()

    async def __aenter__(self) -> _Pool:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()


class _Returning:
    """A response's body that gives its connection back to the pool once closed."""

    def __init__(
        self,
        stream: AsyncIterator[bytes],
        pool: _Pool,
        key: _Key,
        connection: httpcore.AsyncHTTPConnection,
    ) -> None:
        self._stream = stream
        self._pool: _Pool | None = pool
        self._key = key
        self._connection = connection

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._stream:
            yield chunk

    async def aclose(self) -> None:
        pool, self._pool = self._pool, None
        if pool is None:
            return
        try:
            await self._stream.aclose()  # type: ignore[attr-defined]
        finally:
            await pool._give_back(self._key, self._connection)


def _close_soon(connection: httpcore.AsyncHTTPConnection) -> None:
    """Close a connection found expired without making the request wait for it."""
    task = asyncio.get_running_loop().create_task(connection.aclose())
    _closing.add(task)
    task.add_done_callback(_closing.discard)


_closing: set[asyncio.Task[None]] = set()


class UpstreamTransport(httpx.AsyncHTTPTransport):
    """httpx's transport (its exception mapping and streams) over :class:`_Pool`."""

    def __init__(
        self, *, max_connections: int = 1000, max_idle: int = 100, keepalive_expiry: float = 30.0
    ) -> None:
        # httpx's own pool, replaced below, would load the CA bundle again without the context
        super().__init__(verify=verifying_context(), trust_env=False)
        self._pool = _Pool(max_connections, max_idle, keepalive_expiry)  # type: ignore[assignment]
