"""A lean HTTP/1.1 client for the gateway's hot call: one POST, its whole answer back.

A non-streamed completion is the gateway's most frequent upstream call, and through httpx it
cost more CPU than everything else on the request path together (request and URL models,
auth and redirect layers, anyio streams, h11 in pure Python). Here a request is one
``transport.write`` of pre-built bytes on a kept-alive connection, and its answer is parsed by
httptools (llhttp, in C: content-length or chunked). Connections per origin are kept in a
stack, the most recently used taken first (constant time however many are open); one that
the upstream closed while idle is noticed on use and the request is sent again on a new
connection, once, provided no byte of an answer had come. Streams keep going through httpx
(:mod:`.pool`).
"""

from __future__ import annotations

import asyncio
import ssl
from urllib.parse import urlsplit

import certifi
import httptools

__all__ = ["Http1Pool", "UpstreamError"]


class UpstreamError(Exception):
    """The call could not be made or was cut: connection refused, closed, or not HTTP."""


class _Connection(asyncio.Protocol):
    """One kept-alive connection; :meth:`exchange` sends a request and awaits its answer."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.waiter: asyncio.Future[tuple[int, bytes]] | None = None
        self.body: list[bytes] = []
        self.answered = False  # a byte of the current answer has come
        self.closed = False
        self.reusable = True

    # -- asyncio.Protocol ---------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.answered = True
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(UpstreamError(f"answered something that is not HTTP: {exc}"))

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._fail(UpstreamError(f"the connection closed{f': {exc}' if exc else ''}"))

    # -- httptools callbacks ------------------------------------------------------------------
    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        self.reusable = self.parser.should_keep_alive()
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result((self.parser.get_status_code(), b"".join(self.body)))
        self.body = []

    # -- use ----------------------------------------------------------------------------------
    def _fail(self, exc: Exception) -> None:
        self.reusable = False
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)

    async def exchange(self, request: bytes) -> tuple[int, bytes]:
        assert self.transport is not None
        self.answered = False
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(request)
        return await self.waiter

    def close(self) -> None:
        self.reusable = False
        if self.transport is not None:
            self.transport.abort()


class Http1Pool:
    """Kept-alive connections to any number of upstreams; :meth:`post` is the one call.

    Args:
        max_connections: Calls in flight at once, all upstreams together; more wait their
            turn (inside the caller's timeout) rather than run out of file descriptors.
        max_idle: Idle connections kept per upstream; the surplus is closed.
    """

    def __init__(self, max_connections: int = 1000, max_idle: int = 100) -> None:
        self.max_connections = max_connections
        self.max_idle = max_idle
        self._slots = asyncio.Semaphore(max_connections)
        self._idle: dict[tuple[str, int, bool], list[_Connection]] = {}
        self._tls: ssl.SSLContext | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        # by URL: the headers the head was built with, the origin, and the head but for its
        # content-length (a target posts to one URL with the same headers every time)
        self._heads: dict[str, tuple[dict[str, str], tuple[str, int, bool], bytes]] = {}

    async def post(self, url: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        """POST ``body`` to ``url``; the answer's status and body (time it out around this).

        Raises:
            UpstreamError: No connection, or it broke before the whole answer came.
        """
        found = self._heads.get(url)
        if found is None or found[0] != headers:
            found = self._heads[url] = _head(url, headers)
        _, origin, head = found
        request = b"%scontent-length: %d\r\n\r\n%s" % (head, len(body), body)
        loop = asyncio.get_running_loop()
        if loop is not self._loop:  # connections live on the loop that opened them
            self.close()
            self._loop = loop
            self._slots = asyncio.Semaphore(self.max_connections)
        async with self._slots:
            return await self._post(origin, request)

    async def _post(self, origin: tuple[str, int, bool], request: bytes) -> tuple[int, bytes]:
        idle = self._idle.setdefault(origin, [])
        while idle:
            connection = idle.pop()
            if connection.closed or not connection.reusable:
                continue
            try:
                return self._keep(origin, connection, await connection.exchange(request))
            except UpstreamError:
                connection.close()
                if connection.answered:
                    raise
            except BaseException:  # a timeout or cancellation mid-answer: not reusable
                connection.close()
                raise
        connection = await self._open(origin)
        try:
            return self._keep(origin, connection, await connection.exchange(request))
        except BaseException:
            connection.close()
            raise

    def _keep(
        self, origin: tuple[str, int, bool], connection: _Connection, answer: tuple[int, bytes]
    ) -> tuple[int, bytes]:
        idle = self._idle[origin]
        if connection.reusable and not connection.closed and len(idle) < self.max_idle:
            idle.append(connection)
        else:
            connection.close()
        return answer

    async def _open(self, origin: tuple[str, int, bool]) -> _Connection:
        host, port, tls = origin
        context = None
        if tls:
            if self._tls is None:
                self._tls = ssl.create_default_context(cafile=certifi.where())
            context = self._tls
        loop = asyncio.get_running_loop()
        try:
            _, connection = await loop.create_connection(
                _Connection, host, port, ssl=context, server_hostname=host if tls else None
            )
        except OSError as exc:
            raise UpstreamError(f"could not connect: {type(exc).__name__} {exc}") from None
        return connection

    def close(self) -> None:
        """Close every idle connection."""
        idle, self._idle = self._idle, {}
        for connections in idle.values():
            for connection in connections:
                connection.close()


def _head(url: str, headers: dict[str, str]) -> tuple[dict[str, str], tuple[str, int, bool], bytes]:
    """``headers`` (a copy), the origin of ``url``, and a POST's head to it without its last
    line, ``content-length``."""
    parts = urlsplit(url)
    tls = parts.scheme == "https"
    origin = (parts.hostname or "", parts.port or (443 if tls else 80), tls)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    lines = [f"POST {path} HTTP/1.1", f"host: {parts.netloc}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return dict(headers), origin, ("\r\n".join(lines) + "\r\n").encode("latin-1")
