"""Calling one target: an OpenAI-compatible upstream over HTTP, or a local model in-process.

Both kinds answer the same two questions for the router (:mod:`.router`): the whole answer
(:meth:`Target.complete`, the upstream's JSON bytes kept as received, so the proxy can pass
them on without re-encoding), or a stream (:meth:`Target.stream`, the ``data:`` payload of each
server-sent event, ``b"[DONE]"`` last).

Whole answers go through a lean HTTP/1.1 client (:mod:`.http1`: pre-built request bytes, the
answer parsed by httptools, the whole call under the target's ``timeout_s``); streams go
through one pooled ``httpx.AsyncClient`` (:mod:`.pool`), whose timeouts are ``timeout_s`` per
read, so an upstream that stops sending mid-stream is noticed after ``timeout_s`` without a
timer per chunk. Both keep connections alive (no TCP or TLS set-up per request), and both
pools take and give back a connection in constant time however many are open.

Failures are sorted once, here: :class:`TargetFailed` (timeouts, connection errors, 5xx, 429,
invalid JSON, a cut stream: another target may answer) and :class:`ClientError` (the upstream
refused the request itself, 400/413/422: no other target would accept it either, so the
client gets the upstream's answer as it came).
"""

from __future__ import annotations

import asyncio
import json
import weakref
from abc import ABC
from abc import abstractmethod
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx

from opsloop.llm.gateway.config import TargetConfig
from opsloop.llm.gateway.http1 import Http1Pool
from opsloop.llm.gateway.http1 import UpstreamError
from opsloop.llm.gateway.pool import UpstreamTransport
from opsloop.llm.gateway.ports import LocalGenerator

__all__ = ["ClientError", "HttpTarget", "LocalTarget", "Reply", "Target", "TargetFailed", "pool"]

DONE = b"[DONE]"
_CLIENT_FAULTS = frozenset({400, 413, 422})


class TargetFailed(Exception):
    """One attempt at one target failed; the router may retry or fall back."""

    def __init__(self, reason: str, *, status: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


class ClientError(Exception):
    """The upstream refused the request as malformed: its status and body go to the client."""

    def __init__(self, status: int, content: bytes) -> None:
        super().__init__(f"upstream answered {status}")
        self.status = status
        self.content = content


@dataclass(slots=True)
class Reply:
    """A whole answer: ``content`` as the target sent it, ``data`` parsed from it."""

    content: bytes
    data: dict[str, Any]


class Target(ABC):
    """One target of a route, as the router calls it."""

    def __init__(self, config: TargetConfig, route: str) -> None:
        self.config = config
        self.name = config.name
        self.route = route
        self.model = config.model or route  # the name sent upstream
        self.weight = config.weight
        self.timeout_s = config.timeout_s

    @abstractmethod
    async def complete(self, body: dict[str, Any], *, embeddings: bool = False) -> Reply:
        """The whole answer to ``body`` (its ``model`` already this target's).

        Raises:
            TargetFailed: Another target may answer.
            ClientError: The request itself was refused.
        """

    @abstractmethod
    def stream(self, body: dict[str, Any]) -> AsyncIterator[bytes]:
        """The answer's server-sent events' payloads, ``[DONE]`` last when it ends well.

        Raises:
            TargetFailed: While opening or mid-stream.
            ClientError: The request itself was refused.
        """


def pool(max_connections: int = 1000, max_idle: int = 100) -> httpx.AsyncClient:
    """The one HTTP client every upstream call goes through (timeouts are set per call): at
    most ``max_connections`` calls in flight, ``max_idle`` kept-alive connections per upstream
    (:mod:`.pool`, whose cost per request does not grow with either). ``trust_env`` is off:
    no proxy variable or .netrc is read per request."""
    transport = UpstreamTransport(max_connections=max_connections, max_idle=max_idle)
    return httpx.AsyncClient(
        transport=transport, timeout=None, follow_redirects=False, trust_env=False
    )


class HttpTarget(Target):
    """An OpenAI-compatible upstream at ``base_url``."""

    def __init__(self, config: TargetConfig, route: str, client: httpx.AsyncClient) -> None:
        super().__init__(config, route)
        base = (config.base_url or "").rstrip("/")
        self.chat_url = f"{base}/chat/completions"
        self.embeddings_url = f"{base}/embeddings"
        self.client = client  # streams
        self.whole = _whole_pool(client)  # whole answers: the lean client, shared as ``client`` is
        self.headers = {"content-type": "application/json", "accept-encoding": "identity"}
        key = config.api_key()
        if key:
            self.headers["authorization"] = f"Bearer {key}"
        t = config.timeout_s
        self.timeout = httpx.Timeout(t, connect=min(t, 10.0))

    async def complete(self, body: dict[str, Any], *, embeddings: bool = False) -> Reply:
        url = self.embeddings_url if embeddings else self.chat_url
        content = json.dumps(body, ensure_ascii=False).encode()
        try:
            async with asyncio.timeout(self.timeout_s):
                status, answer = await self.whole.post(url, content, self.headers)
        except TimeoutError:
            raise TargetFailed(f"no answer within {self.timeout_s:g}s") from None
        except UpstreamError as exc:
            raise TargetFailed(f"could not reach {url}: {exc}") from None
        _check_status(status, answer)
        try:
            data = json.loads(answer)
        except ValueError:
            raise TargetFailed("answered invalid JSON", status=status) from None
        expected = "data" if embeddings else "choices"
        if not isinstance(data, dict) or not isinstance(data.get(expected), list):
            raise TargetFailed(f"answered JSON without a '{expected}' list")
        return Reply(answer, data)

    async def stream(self, body: dict[str, Any]) -> AsyncIterator[bytes]:
        content = json.dumps(body, ensure_ascii=False).encode()
        request = self.client.build_request(
            "POST", self.chat_url, content=content, headers=self.headers, timeout=self.timeout
        )
        try:
            response = await self.client.send(request, stream=True)
        except httpx.TimeoutException:
            raise TargetFailed(f"no answer within {self.timeout_s:g}s") from None
        except httpx.HTTPError as exc:
            raise TargetFailed(f"could not reach {self.chat_url}: {exc!r}") from None
        try:
            if response.status_code != 200:
                _check_status(response.status_code, await response.aread())
            async for payload in _sse_payloads(response, self.timeout_s):
                yield payload
        finally:
            await response.aclose()


_WHOLE: weakref.WeakKeyDictionary[httpx.AsyncClient, Http1Pool] = weakref.WeakKeyDictionary()


def _whole_pool(client: httpx.AsyncClient) -> Http1Pool:
    """The lean client (:mod:`.http1`) beside ``client``: one per httpx client, so targets
    that share one share the other's connections too."""
    found = _WHOLE.get(client)
    if found is None:
        found = _WHOLE[client] = Http1Pool()
    return found


def _check_status(status: int, content: bytes) -> None:
    if status == 200:
        return
    if status in _CLIENT_FAULTS:
        raise ClientError(status, content)
    snippet = content[:200].decode("utf-8", "replace").replace("\n", " ")
    raise TargetFailed(f"HTTP {status}: {snippet}", status=status)


async def _sse_payloads(response: httpx.Response, timeout_s: float) -> AsyncIterator[bytes]:
    """The ``data:`` payload of each event (multi-line data joined), comments and empty
    keep-alives skipped. A read that waits past ``timeout_s`` or a broken connection is a
    :class:`TargetFailed`; an end without ``[DONE]`` is judged by the router."""
    buffer = b""
    try:
        async for chunk in response.aiter_bytes():
            buffer += chunk.replace(b"\r\n", b"\n") if b"\r" in chunk else chunk
            while True:
                end = buffer.find(b"\n\n")
                if end < 0:
                    break
                event, buffer = buffer[:end], buffer[end + 2 :]
                data = [line[5:].strip() for line in event.split(b"\n") if line[:5] == b"data:"]
                if data:
                    yield b"\n".join(data)
    except httpx.TimeoutException:
        raise TargetFailed(f"stream stalled: nothing for {timeout_s:g}s") from None
    except httpx.HTTPError as exc:
        raise TargetFailed(f"stream broke: {type(exc).__name__} {exc}") from None
    tail = buffer.strip()
    if tail.startswith(b"data:"):  # a last event without its blank line
        yield tail[5:].strip()


class LocalTarget(Target):
    """A registered model generating in this process (``kind: local``)."""

    def __init__(self, config: TargetConfig, route: str, generator: LocalGenerator) -> None:
        super().__init__(config, route)
        self.generator = generator

    async def complete(self, body: dict[str, Any], *, embeddings: bool = False) -> Reply:
        if embeddings:
            raise TargetFailed("a local target answers chat completions, not embeddings")
        try:
            async with asyncio.timeout(self.timeout_s):
                data = await self.generator.complete(body)
        except TimeoutError:
            raise TargetFailed(f"no answer within {self.timeout_s:g}s") from None
        except Exception as exc:  # the model's own failure: a fallback may still answer
            raise TargetFailed(f"local model failed: {type(exc).__name__}: {exc}") from None
        return Reply(json.dumps(data, ensure_ascii=False).encode(), data)

    async def stream(self, body: dict[str, Any]) -> AsyncIterator[bytes]:
        chunks = self.generator.stream(body).__aiter__()
        while True:
            try:
                async with asyncio.timeout(self.timeout_s):
                    chunk = await chunks.__anext__()
            except StopAsyncIteration:
                break
            except TimeoutError:
                raise TargetFailed(f"stream stalled: nothing for {self.timeout_s:g}s") from None
            except Exception as exc:
                raise TargetFailed(f"local model failed: {type(exc).__name__}: {exc}") from None
            yield json.dumps(chunk, ensure_ascii=False).encode()
        yield DONE
