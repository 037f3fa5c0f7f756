"""The authorization check in users mode: what it costs a request, measured in-process.

    .venv/bin/python bench/governance.py [--n 20000]

Builds the real server app in ``users`` mode on a fresh SQLite store (or ``--database-url``),
with a user and an API key, and times the auth dependency itself (``web.deps.require_token``)
on a request for ``PUT /api/models/{name}/aliases/{alias}`` (a route whose rule looks at a path
parameter), each call timed alone with ``perf_counter_ns``:

1. the role decision alone (route rule look-up, protected-alias check, role comparison);
2. the whole dependency with a cached key (bearer parsing, key resolution, role decision,
   recording the principal): what nearly every request pays;
3. a key resolution that misses the cache (one indexed query on the key's hash): what a
   request pays once per key per cache period (2 s);
4. token mode's dependency on the same request, for comparison.

5. the audit log's cost: ``POST /api/runs/{id}/batch`` (100 metric points a request) through
   the whole app in-process (``TestClient``), with the audit middleware and without it, in
   ``users`` and ``token`` mode, the two apps taking turns request by request, median
   requests/s over the rounds. An audited
   write adds three statements to the route's own transaction (no second commit).

Target (issue 23): authorization check p99 <= 0.2 ms; audit logging <= 5% of ``log_batch``
throughput. No peer runs alongside: MLflow's basic
auth and Langfuse's RBAC are checked inside their own servers' request stacks (a SQL query per
request in MLflow's case), so an in-process figure of theirs is not comparable.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import tempfile
import time
from collections.abc import Awaitable
from collections.abc import Callable
from pathlib import Path
from typing import Any


def _percentiles(samples_ns: list[int]) -> tuple[float, float, float]:
    ordered = sorted(samples_ns)
    p = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))] / 1e6  # noqa: E731
    return statistics.median(ordered) / 1e6, p(0.99), p(0.999)


def _request(app: Any, route: Any, key: str, method: str = "PUT") -> Any:
    from starlette.requests import Request

    scope = {
        "type": "http", "method": method, "path": "/api/models/churn/aliases/champion",
        "raw_path": b"/api/models/churn/aliases/champion", "query_string": b"",
        "headers": [(b"authorization", f"Bearer {key}".encode()), (b"host", b"bench")],
        "client": ("127.0.0.1", 1), "server": ("bench", 80), "scheme": "http", "app": app,
        "route": route, "path_params": {"name": "churn", "alias": "champion"},
    }  # fmt: skip
    return Request(scope)


def _time_async(n: int, call: Callable[[], Awaitable[None]]) -> list[int]:
    async def loop() -> list[int]:
        samples = []
        for _ in range(n):
            start = time.perf_counter_ns()
            await call()
            samples.append(time.perf_counter_ns() - start)
        return samples

    return asyncio.run(loop())


def _time_sync(n: int, call: Callable[[], Any]) -> list[int]:
    samples = []
    for _ in range(n):
        start = time.perf_counter_ns()
        call()
        samples.append(time.perf_counter_ns() - start)
    return samples


def _route(app: Any, template: str) -> Any:
    from fastapi.routing import APIRoute
    from fastapi.routing import iter_route_contexts

    for context in iter_route_contexts(app.routes):
        if context.path_format == template and isinstance(context.original_route, APIRoute):
            return context.original_route
    raise LookupError(template)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=20_000, help="timed calls per scenario")
    parser.add_argument("--database-url", default=None, help="default: a fresh SQLite file")
    parser.add_argument("--audit-requests", type=int, default=400, help="log_batch calls a round")
    parser.add_argument("--audit-rounds", type=int, default=5)
    args = parser.parse_args()

    from opsloop.app.server import create_app
    from opsloop.client import Client
    from opsloop.config import load_settings
    from opsloop.errors import PermissionDenied
    from opsloop.web.deps import require_token

    home = Path(tempfile.mkdtemp(prefix="opsloop-bench-governance-"))
    url = args.database_url or f"sqlite:///{home / 'opsloop.db'}"
    with Client(database_url=url, blob_url=str(home / "blobs")) as local:
        local.governance.create_user("mona", role="maintainer")
        key = local.governance.create_key("bench", user="mona").secret
        local.governance.create_user("eddie", role="editor")
        editor_key = local.governance.create_key("bench", user="eddie").secret

    def app_for(**overrides: Any) -> Any:
        settings = load_settings(home=str(home), database_url=url, blob_url=str(home / "blobs"),
                                 **overrides)  # fmt: skip
        return create_app(settings)

    users_app = app_for(auth="users")
    state = users_app.state.opsloop
    authorizer = state.authorizer
    route = _route(users_app, "/api/models/{name}/aliases/{alias}")
    request = _request(users_app, route, key)
    principal = authorizer.principal_for_key(key)[1]
    warm = max(1000, args.n // 10)

    async def decision() -> None:
        await authorizer.authorize(request, principal)

    async def dependency() -> None:
        await require_token(request)

    _time_async(warm, decision)
    _time_async(warm, dependency)
    rows = [
        ("role decision only", _time_async(args.n, decision)),
        ("auth dependency, cached key", _time_async(args.n, dependency)),
    ]

    def cold() -> None:
        authorizer.forget()
        authorizer.principal_for_key(key)

    _time_sync(200, cold)
    rows.append(("key resolution, cache miss (query)", _time_sync(max(1000, args.n // 10), cold)))

    denied_request = _request(users_app, route, editor_key)

    async def denied() -> None:
        with contextlib.suppress(PermissionDenied):
            await require_token(denied_request)

    _time_async(warm, denied)
    rows.append(("auth dependency, editor refused (403)", _time_async(args.n, denied)))

    token_app = app_for(token="bench-token")
    token_route = _route(token_app, "/api/models/{name}/aliases/{alias}")
    token_request = _request(token_app, token_route, "bench-token")

    async def token_dependency() -> None:
        await require_token(token_request)

    _time_async(warm, token_dependency)
    rows.append(("token mode dependency (comparison)", _time_async(args.n, token_dependency)))

    print(f"authorization check, {args.n} calls each, store {url.split(':')[0]}")
    print(f"{'scenario':40} {'p50 ms':>9} {'p99 ms':>9} {'p99.9 ms':>9}")
    for name, samples in rows:
        p50, p99, p999 = _percentiles(samples)
        print(f"{name:40} {p50:9.4f} {p99:9.4f} {p999:9.4f}")
    p99 = _percentiles(rows[1][1])[1]
    verdict = "met" if p99 <= 0.2 else "MISSED"
    print(f"target: auth dependency p99 <= 0.2 ms (cached key): {p99:.4f} ms, {verdict}")
    for app in (users_app, token_app):
        app.state.opsloop.store.dispose()
    audit_cost(args, key)


def _log_batch_app(home: Path, audited: bool, **overrides: Any) -> tuple[Any, str]:
    """An app on its own fresh store (``home``), with or without the audit middleware, and a
    run to log to."""
    from opsloop.app.server import create_app
    from opsloop.config import load_settings
    from opsloop.governance.audit_hook import AuditMiddleware

    url = f"sqlite:///{home / 'opsloop.db'}"
    settings = load_settings(home=str(home), database_url=url, blob_url=str(home / "blobs"),
                             **overrides)  # fmt: skip
    app = create_app(settings)
    if not audited:
        app.user_middleware = [m for m in app.user_middleware if m.cls is not AuditMiddleware]
    return app, url


def audit_cost(args: Any, _key: str) -> None:
    """Row 5: log_batch requests/s with and without the audit log (see the docstring)."""
    from fastapi.testclient import TestClient

    from opsloop.client import Client

    now = int(time.time() * 1000)
    series = {"values": [i * 0.5 for i in range(10)], "steps": list(range(10)),
              "timestamps": [now] * 10}  # fmt: skip
    body = {"metrics": {"series": {f"m{k}": series for k in range(10)}}}
    results: dict[str, dict[bool, list[float]]] = {}
    for mode in ("users", "token"):
        clients: dict[bool, tuple[Any, str]] = {}
        for audited in (True, False):
            home = Path(tempfile.mkdtemp(prefix=f"opsloop-bench-audit-{mode}-"))
            url = f"sqlite:///{home / 'opsloop.db'}"
            headers: dict[str, str]
            if mode == "users":
                with Client(database_url=url, blob_url=str(home / "blobs")) as local:
                    local.governance.create_user("eddie", role="editor")
                    secret = local.governance.create_key("bench", user="eddie").secret
                app, _ = _log_batch_app(home, audited, auth="users")
                headers = {"Authorization": f"Bearer {secret}"}
            else:
                app, _ = _log_batch_app(home, audited, token="bench-token")
                headers = {"Authorization": "Bearer bench-token"}
            http = TestClient(app, headers=headers)
            exp = http.post("/api/experiments", json={"name": "bench"}).json()["experiment_id"]
            run_id = http.post("/api/runs", json={"experiment_id": exp}).json()["info"]["run_id"]
            clients[audited] = (http, f"/api/runs/{run_id}/batch")
        rates: dict[bool, list[float]] = {True: [], False: []}
        for http, path in clients.values():  # warm up
            for _ in range(50):
                assert http.post(path, json=body).status_code == 200
        # The two apps take turns request by request, so a load change on the machine hits
        # both alike; each round's rate is requests over the time its own requests took.
        for _ in range(args.audit_rounds):
            spent = {True: 0.0, False: 0.0}
            for _ in range(args.audit_requests):
                for audited, (http, path) in clients.items():
                    start = time.perf_counter()
                    http.post(path, json=body)
                    spent[audited] += time.perf_counter() - start
            for audited in (True, False):
                rates[audited].append(args.audit_requests / spent[audited])
        for http, _ in clients.values():
            http.app.state.opsloop.store.dispose()
        results[mode] = rates
    print(f"\naudit cost: log_batch (100 points a request), {args.audit_rounds} rounds of "
          f"{args.audit_requests} requests, in-process, SQLite (synchronous=FULL)")  # fmt: skip
    print(f"{'mode':8} {'with audit req/s':>17} {'without req/s':>14} {'ratio':>7} {'cost':>7}")
    worst = 0.0
    for mode, rates in results.items():
        with_audit, without = statistics.median(rates[True]), statistics.median(rates[False])
        ratio = with_audit / without
        worst = max(worst, 1 - ratio)
        print(f"{mode:8} {with_audit:17.1f} {without:14.1f} {ratio:7.3f} {1 - ratio:7.1%}")
    verdict = "met" if worst <= 0.05 else "MISSED"
    print(f"target: audit logging <= 5% of log_batch throughput: worst {worst:.1%}, {verdict}")


if __name__ == "__main__":
    main()
