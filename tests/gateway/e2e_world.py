"""What the end-to-end gateway tests share: a store with users, keys and their limits (set with
``opsloop keys limit``, as an admin would), a tiny chat model registered as
``chat-bot@champion``, and one gateway config that uses every part of the gateway.

The config is written the way a user writes it (YAML on disk); only the upstream's loopback
port and the Redis key prefix are filled in per run.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tests.gateway import chat_lm
from tests.gateway.upstream_server import Upstream

__all__ = ["OPSLOOP", "REDIS_URL", "World", "gateway_yaml", "make_world", "span_where", "spans_of"]

OPSLOOP = str(Path(sys.executable).with_name("opsloop"))
REDIS_URL = "redis://127.0.0.1:6379/0"

CONFIG = """\
routes:
  - name: support
    targets:
      - {{name: primary, base_url: "{ok}", model: gpt-4o-mini}}
    guardrails:
      - {{rule: pii, action: redact}}
      - {{rule: injection, action: block}}
      - {{rule: grounded, action: flag}}
    cache: {{exact: true, ttl_s: 600}}
  - name: structured
    targets: [{{name: primary, base_url: "{ok}", model: gpt-4o-mini}}]
    guardrails:
      - {{rule: json_schema, schema: {{type: object, required: [answer]}}, action: block}}
  - name: flaky
    targets: [{{name: down, base_url: "{down}"}}]
    fallbacks: [local-small]
  - name: local-small
    targets: [{{name: champion, kind: local, model: chat-bot@champion}}]
limits: {{{limits}}}
auth: keys
"""


def gateway_yaml(upstream: Upstream, limits: str) -> str:
    """The config above for this upstream; ``limits`` is the inside of the limits section."""
    return CONFIG.format(ok=upstream.url("ok"), down=upstream.url("500"), limits=limits)


def redis_limits() -> tuple[str, str]:
    """A limits section on the real Redis under a prefix no other test uses, and the prefix."""
    prefix = f"opsloop-test-{uuid.uuid4().hex[:12]}:"
    return f'redis_url: "{REDIS_URL}", key_prefix: "{prefix}"', prefix


def drop_redis_keys(prefix: str) -> None:
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    try:
        keys = list(client.scan_iter(f"{prefix}*"))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


@dataclass
class World:
    home: Path
    settings: Any
    env: dict[str, str]
    keys: dict[str, str]  # name -> secret
    key_ids: dict[str, str]  # name -> id


def make_world(home: Path) -> World:
    """Users and keys in a fresh SQLite store, limits set through the CLI, the chat model
    registered and aliased ``champion``."""
    import numpy as np

    from opsloop import Client
    from opsloop.config import load_settings

    database_url, blob_url = f"sqlite:///{home / 'opsloop.db'}", str(home / "blobs")
    settings = load_settings(home=str(home), database_url=database_url, blob_url=blob_url)
    keys, ids = {}, {}
    with Client(settings=settings) as client:
        client.governance.create_user("ann", role="viewer")
        client.governance.create_user("bob", role="viewer")
        for name, user in [("main", "ann"), ("tight", "bob"), ("thrifty", "bob")]:
            key = client.governance.create_key(name, user=user)
            keys[name], ids[name] = key.secret, key.key.id
        tokenizer, model = chat_lm.trained()
        client.models.register("chat-bot", model, input_example=np.array([[1, 2, 3]]),
                               flavor_options={"tokenizer": tokenizer})  # fmt: skip
        client.models.set_alias("chat-bot@1", "champion")
    env = {**os.environ, "OPSLOOP_HOME": str(home), "OPSLOOP_DATABASE_URL": database_url,
           "OPSLOOP_BLOB_URL": blob_url, "COLUMNS": "200"}  # fmt: skip
    env.pop("OPSLOOP_SERVER_URL", None)
    for name, flags in [
        ("main", ["--rpm", "1000", "--budget", "10", "--per", "day"]),
        ("tight", ["--rpm", "2"]),
        ("thrifty", ["--budget", "0.001", "--per", "day"]),
    ]:
        run = subprocess.run([OPSLOOP, "keys", "limit", ids[name], *flags], env=env,
                             capture_output=True, text=True, timeout=120)  # fmt: skip
        assert run.returncode == 0, run.stderr
    return World(home, settings, env, keys, ids)


def spans_of(store: Any, match: Callable[[Any], bool] = bool, timeout_s: float = 30) -> list[Any]:
    """Every span in ``store``, oldest first, once one of them ``match``es (spans are written
    in the background)."""
    from opsloop.llm.tracing.entities import TraceFilter
    from opsloop.llm.tracing.local import LocalTracingBackend

    backend = LocalTracingBackend(store)
    deadline = time.monotonic() + timeout_s
    while True:
        traces = backend.list_traces(TraceFilter(), 500, None).items
        spans = [s for t in traces for s in backend.get_trace(t.trace_id).spans]
        if any(match(s) for s in spans) or time.monotonic() > deadline:
            return sorted(spans, key=lambda s: s.start_ns)
        time.sleep(0.1)


def span_where(store: Any, match: Callable[[Any], bool], timeout_s: float = 30) -> Any:
    """The latest span that ``match``es, waiting for it to be stored."""
    found = [s for s in spans_of(store, match, timeout_s) if match(s)]
    assert found, "no such span was stored"
    return found[-1]


def write(path: Path, text: str) -> str:
    path.write_text(text)
    assert yaml.safe_load(text)  # what the user wrote is YAML
    return str(path)
