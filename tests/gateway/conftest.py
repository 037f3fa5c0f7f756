"""A fault-injecting upstream on loopback, and the gateway served by uvicorn in front of it."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
import yaml

from tests.gateway.upstream_server import Upstream


@pytest.fixture(scope="module")
def upstream() -> Iterator[Upstream]:
    with Upstream() as server:
        yield server


class Served:
    """An ASGI app served by uvicorn in a thread on a free loopback port."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.socket = socket.socket(
            socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP
        )  # TCP_NODELAY
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.socket.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.socket.getsockname()[1]}"
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.socket]}, daemon=True
        )

    def __enter__(self) -> Served:
        self.thread.start()
        deadline = time.monotonic() + 15
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("gateway did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(15)
        self.socket.close()


def write_config(folder: Path, config: dict[str, Any]) -> str:
    path = folder / "gateway.yaml"
    path.write_text(yaml.safe_dump(config))
    return str(path)


def routes(upstream: Upstream) -> list[dict[str, Any]]:
    """One route per behaviour of the upstream; the failing ones fall back to ``ok``."""

    def target(mode: str, **extra: Any) -> dict[str, Any]:
        return {"name": mode, "base_url": upstream.url(mode), **extra}

    ok = [target("ok", model="gpt-4o-mini")]
    return [
        {"name": "ok", "targets": ok},
        {"name": "weighted", "targets": [target("wa", weight=3), target("wb", weight=1)]},
        {"name": "flaky", "targets": [target("500")], "retries": 1, "backoff_s": 0.01,
         "fallbacks": ["ok"]},
        {"name": "hangs", "targets": [target("hang", timeout_s=0.3)], "fallbacks": ["ok"]},
        {"name": "badjson", "targets": [target("badjson")], "fallbacks": ["ok"]},
        {"name": "cut-before", "targets": [target("cut0")], "fallbacks": ["ok"]},
        {"name": "cut-after", "targets": [target("cut1")], "fallbacks": ["ok"]},
        {"name": "stall-after", "targets": [target("stall1", timeout_s=0.3)],
         "fallbacks": ["ok"]},
        {"name": "dead", "targets": [target("500"), target("hang", timeout_s=0.2)],
         "retries": 1, "backoff_s": 0},
        {"name": "refuse", "targets": [target("refuse")], "fallbacks": ["ok"]},
    ]  # fmt: skip
