"""The playground in a real browser, through the real LLM gateway of ``opsloop server`` in
``users`` mode, in front of a loopback OpenAI-compatible upstream: an editor signed in with the
session cookie picks a route from ``/v1/models``, fills the prompt's variables, sees the answer
while it is still streaming, its tokens and latency, and saves the edited copy as the next
version with the route and parameters in its config."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
import yaml

from opsloop import Client
from tests.conftest import LiveServer
from tests.governance.conftest import bootstrap
from tests.ui.conftest import BrowserPage

CHAT = [
    {"role": "system", "content": "You are {{ persona }}."},
    {"role": "user", "content": "{{ question }}"},
]


class Upstream:
    """A loopback OpenAI-compatible upstream that answers ``echo: <last message>`` word by
    word, and holds a stream after its first word until ``release`` is set (so the test can
    see the page show a stream before it ends, with no clock involved)."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.release = threading.Event()
        self.socket = socket.socket()
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.socket.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.socket.getsockname()[1]}/v1"
        config = uvicorn.Config(self.app, log_level="warning", lifespan="off", interface="asgi3")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.socket]}, daemon=True
        )

    def __enter__(self) -> Upstream:
        self.thread.start()
        deadline = time.monotonic() + 15
        while not self.server.started and time.monotonic() < deadline:
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.release.set()
        self.server.should_exit = True
        self.thread.join(10)
        self.socket.close()

    async def app(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        raw = b""
        while True:
            message = await receive()
            raw += message.get("body", b"")
            if not message.get("more_body"):
                break
        body = json.loads(raw)
        self.requests.append(body)
        words = ("echo: " + body["messages"][-1]["content"]).split(" ")
        usage = {
            "prompt_tokens": 12,
            "completion_tokens": len(words),
            "total_tokens": 12 + len(words),
        }

        def event(data: dict[str, Any]) -> dict[str, Any]:
            chunk = b"data: " + json.dumps(data).encode() + b"\n\n"
            return {"type": "http.response.body", "body": chunk, "more_body": True}

        def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
            choice = {"index": 0, "delta": delta, "finish_reason": finish}
            return event({"id": "c1", "object": "chat.completion.chunk", "created": 1,
                          "model": body["model"], "choices": [choice]})  # fmt: skip

        kind = b"text/event-stream" if body.get("stream") else b"application/json"
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", kind)]})  # fmt: skip
        if not body.get("stream"):
            message = {"role": "assistant", "content": " ".join(words)}
            answer = {"id": "c1", "object": "chat.completion", "created": 1, "model": body["model"],
                      "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
                      "usage": usage}  # fmt: skip
            await send({"type": "http.response.body", "body": json.dumps(answer).encode()})
            return
        await send(chunk({"role": "assistant", "content": ""}))
        for i, word in enumerate(words):
            await send(chunk({"content": word if i == 0 else " " + word}))
            for _ in range(2000):  # after the first word, until released (20 s at most)
                if i > 0 or self.release.is_set():
                    break
                await asyncio.sleep(0.01)
        await send(chunk({}, "stop"))
        if (body.get("stream_options") or {}).get("include_usage"):
            await send(event({"id": "c1", "object": "chat.completion.chunk", "created": 1,
                              "model": body["model"], "choices": [], "usage": usage}))  # fmt: skip
        await send({"type": "http.response.body", "body": b"data: [DONE]\n\n"})


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[LiveServer, dict[str, str], Upstream]]:
    folder: Path = tmp_path_factory.mktemp("playground-ui")
    url, blobs = f"sqlite:///{folder / 'ui.db'}", str(folder / "blobs")
    keys = bootstrap(url, blobs)
    with Client(database_url=url, blob_url=blobs) as local:
        local.prompts.create("support", messages=CHAT, config={"model": "echo", "seed": 7})
    with Upstream() as upstream, pytest.MonkeyPatch.context() as patch:
        route = {"name": "echo", "targets": [{"name": "loop", "base_url": upstream.url}]}
        other = {"name": "other", "targets": [{"name": "loop", "base_url": upstream.url}]}
        config = folder / "gateway.yaml"
        config.write_text(yaml.safe_dump({"routes": [other, route]}))
        patch.setenv("OPSLOOP_AUTH", "users")
        patch.setenv("OPSLOOP_GATEWAY_CONFIG", str(config))
        with LiveServer(url, blobs) as live:
            yield live, keys, upstream


def test_send_through_the_gateway_and_save_as_a_version(
    ui: BrowserPage, server: tuple[LiveServer, dict[str, str], Upstream]
) -> None:
    live, keys, upstream = server
    page = ui.page
    ui.allow_console("status of 400")  # the render that names the missing variable
    page.goto(f"{live.url}/prompts/support/playground")
    page.fill('input[name="token"]', keys["eddie"])
    page.click('form[action="/login"] button[type="submit"]')
    page.wait_for_url("**/prompts/support/playground")
    page.wait_for_selector("#send:not([disabled])")
    assert page.eval_on_selector_all("#route option", "options => options.map(o => o.value)") == [
        "other",
        "echo",
    ]
    assert page.input_value("#route") == "echo"  # the version's own config.model
    page.fill('input[data-variable="persona"]', "kind")
    page.fill('input[data-variable="question"]', "Where is my order?")
    page.fill("#temperature", "0.4")
    page.click("#send")
    page.locator("#answer").filter(has_text="echo:").wait_for()
    assert "order?" not in page.inner_text("#answer")  # shown while the stream is held
    assert page.inner_text("#stat-latency") == ""
    upstream.release.set()
    page.locator("#answer").filter(has_text="Where is my order?").wait_for()
    assert page.inner_text("#answer") == "echo: Where is my order?"
    page.locator("#stat-latency").filter(has_text="ms").wait_for()
    assert page.inner_text("#stat-tokens") == "12 / 5" and page.inner_text("#stat-first").endswith(
        "ms"
    )
    assert page.inner_text("#stat-route") == "echo → loop"
    sent = upstream.requests[-1]
    assert sent["messages"] == [
        {"role": "system", "content": "You are kind."},
        {"role": "user", "content": "Where is my order?"},
    ]
    assert sent["stream"] is True and sent["temperature"] == 0.4

    # An edit that brings in a new variable asks for it, then the copy is saved.
    page.locator(".message-row textarea").first.fill("You are {{ persona }}, and {{ tone }}.")
    page.click("#send")
    page.locator("#send-error").filter(has_text="tone").wait_for()
    assert "give a value for: tone" in page.inner_text("#send-error")
    page.fill('input[data-variable="tone"]', "brief")
    page.uncheck("#stream")
    page.click("#send")
    page.locator("#answer").filter(has_text="echo: Where is my order?").wait_for()
    assert upstream.requests[-1]["messages"][0]["content"] == "You are kind, and brief."
    page.fill("#save-message", "a tone of voice")
    page.click("#save")
    page.locator("#save-result").filter(has_text="Saved as").wait_for()
    assert page.inner_text("#save-result") == "Saved as version 2."
    with Client(database_url=live.app.state.opsloop.settings.database_url) as local:
        saved = local.prompts.get_version("support@2")
    assert (
        saved.messages is not None
        and saved.messages[0].content == "You are {{ persona }}, and {{ tone }}."
    )
    assert saved.config == {"model": "echo", "seed": 7, "temperature": 0.4}
    assert (saved.message, saved.created_by) == ("a tone of voice", "eddie")
    page.click("#save")
    page.locator("#save-result").filter(has_text="Nothing changed").wait_for()
