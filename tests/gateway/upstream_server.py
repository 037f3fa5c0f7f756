"""A loopback OpenAI-compatible upstream that misbehaves on request, for the gateway's tests.

Its behaviour is the first path segment of the target's ``base_url``
(``http://127.0.0.1:PORT/<mode>/v1``): ``ok`` answers (whole or streamed), ``hang`` never
answers, ``500`` fails, ``badjson`` answers 200 with a body that is not JSON, ``cut0`` starts
a stream and closes it before any event, ``cut1`` closes it after the first content event,
``stall1`` stops sending after the first content event, ``refuse`` answers 400 as OpenAI does
to a malformed request. Every request's mode and JSON body is kept in ``requests``.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from typing import Any

import uvicorn

__all__ = ["Upstream"]

_WORDS = ["Hello", " from", " upstream"]


def _completion(mode: str, body: dict[str, Any]) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": f"answer from {mode}"}
    if body.get("tools"):
        call = {
            "id": "call_1",
            "type": "function",
            "function": {"name": body["tools"][0]["function"]["name"], "arguments": "{}"},
        }
        message = {"role": "assistant", "content": None, "tool_calls": [call]}
    elif (body.get("response_format") or {}).get("type") == "json_object" or (
        body["messages"][-1].get("content") == "Answer with JSON only."  # a guardrail's re-ask
    ):
        message["content"] = json.dumps({"mode": mode})
    return {
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "created": 1,
        "model": body["model"],
        "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18},
    }


def _chunk(body: dict[str, Any], delta: dict[str, Any], finish: str | None = None) -> bytes:
    data = {
        "id": "chatcmpl-test",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": body["model"],
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    return b"data: " + json.dumps(data).encode() + b"\n\n"


class Upstream:
    """The app (raw ASGI) served by uvicorn in a thread on a free loopback port."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, dict[str, Any]]] = []
        self.socket = socket.socket(
            socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP
        )  # TCP_NODELAY
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.socket.bind(("127.0.0.1", 0))
        self.port = self.socket.getsockname()[1]
        self.server = uvicorn.Server(
            uvicorn.Config(
                self.app, log_level="warning", interface="asgi3", timeout_graceful_shutdown=1
            )
        )
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.socket]}, daemon=True
        )

    def url(self, mode: str) -> str:
        return f"http://127.0.0.1:{self.port}/{mode}/v1"

    def modes(self) -> list[str]:
        return [mode for mode, _ in self.requests]

    def __enter__(self) -> Upstream:
        self.thread.start()
        deadline = time.monotonic() + 15
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("upstream did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)
        self.socket.close()

    async def app(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        raw = b""
        while True:
            message = await receive()
            raw += message.get("body", b"")
            if not message.get("more_body"):
                break
        mode = scope["path"].strip("/").split("/")[0]
        body = json.loads(raw) if raw else {}
        self.requests.append((mode, body))

        async def start(status: int, kind: bytes = b"application/json") -> None:
            await send(
                {
                    "type": "http.response.start",
                    "status": status,
                    "headers": [(b"content-type", kind)],
                }
            )

        async def finish(content: bytes = b"") -> None:
            await send({"type": "http.response.body", "body": content})

        if mode == "hang":
            await asyncio.sleep(60)
        if mode == "500":
            await start(500)
            return await finish(b'{"error": {"message": "boom"}}')
        if mode == "badjson":
            await start(200)
            return await finish(b"{not json")
        if mode == "refuse":
            await start(400)
            error = {
                "message": "messages: bad",
                "type": "invalid_request_error",
                "param": "messages",
                "code": None,
            }
            return await finish(json.dumps({"error": error}).encode())
        if scope["path"].endswith("/embeddings"):
            await start(200)
            data = {
                "object": "list",
                "model": body["model"],
                "data": [{"object": "embedding", "index": 0, "embedding": [0.1, 0.2]}],
                "usage": {"prompt_tokens": 3, "total_tokens": 3},
            }
            return await finish(json.dumps(data).encode())
        if not body.get("stream"):
            await start(200)
            return await finish(json.dumps(_completion(mode, body)).encode())
        await start(200, b"text/event-stream")
        more = {"type": "http.response.body", "more_body": True}
        if mode == "cut0":
            return await finish()
        await send({**more, "body": _chunk(body, {"role": "assistant", "content": ""})})
        for i, word in enumerate(_WORDS):
            await send({**more, "body": _chunk(body, {"content": word})})
            if i == 0 and mode == "cut1":
                return await finish()
            if i == 0 and mode == "stall1":
                await asyncio.sleep(60)
        await send({**more, "body": _chunk(body, {}, "stop")})
        if (body.get("stream_options") or {}).get("include_usage"):
            usage = {
                "id": "chatcmpl-test",
                "object": "chat.completion.chunk",
                "created": 1,
                "model": body["model"],
                "choices": [],
                "usage": {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8},
            }
            await send({**more, "body": b"data: " + json.dumps(usage).encode() + b"\n\n"})
        await finish(b"data: [DONE]\n\n")
