"""The gateway's wiring: its config file, the tracing store, keys, and the parts others build.

:func:`build_gateway` turns a checked config into a :class:`~opsloop.llm.gateway.proxy.Gateway`.
What a route adds beyond routing is handed in as factories, so the request path depends on the
small protocols of :mod:`opsloop.llm.gateway.ports` only:

- ``limiter_factory(config.limits)`` → a ``Limiter`` (or None), with ``limits_for(key_id)``
  giving each key's ``KeyLimits`` (cached by its provider: it is asked on every request);
- ``guard_factory(route)`` → the route's ``Guard`` (or None when it has no rules);
- ``cache_factory(route)`` → the route's ``ResponseCache`` (or None when it is off);
- ``local_models`` → ``LocalModels`` for ``kind: local`` targets.

:func:`standard_parts` gives the real ones (limits in-process or on Redis with each key's limits
from the store, the guardrails, the answer caches, registered models generated in-process; the
last only when a route has a local target, so torch is not imported otherwise). The gateway owns
what it is handed: :meth:`WiredGateway.aclose` closes the limiter, the local models and the
upstream connection pool after the spans are stored.

:func:`check_config` reads the file and checks every section, the ones the parts validate
themselves included, so a mistake anywhere stops ``opsloop gateway --check`` and the start of
either server with one line naming the field. :func:`mount_gateway` puts the routes in
``opsloop server`` behind its auth check (the key's id comes from the principal it resolves);
:func:`create_gateway_app` is ``opsloop gateway``'s app, with its own check (``auth: keys``
against the store's API keys, or ``open``). In both, the routes' requests are answered by
:class:`~opsloop.web.dispatch.RouteDispatch` inside the app's middlewares, before
FastAPI's routing (the same check and endpoint, at a fraction of the framework's CPU).
"""

from __future__ import annotations

import asyncio
import gc
import inspect
from collections.abc import AsyncIterator
from collections.abc import Awaitable
from collections.abc import Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
from fastapi import APIRouter
from fastapi import Depends
from fastapi import FastAPI
from fastapi import Request
from fastapi import Response
from pydantic import ValidationError
from sqlalchemy.engine import make_url

from opsloop.config import Settings
from opsloop.errors import InvalidInput
from opsloop.errors import PermissionDenied
from opsloop.errors import Unauthenticated
from opsloop.errors import validation_problems
from opsloop.llm.gateway.api import answered
from opsloop.llm.gateway.api import gateway_router
from opsloop.llm.gateway.config import GatewayConfig
from opsloop.llm.gateway.config import LimitsConfig
from opsloop.llm.gateway.config import RouteConfig
from opsloop.llm.gateway.config import load_config
from opsloop.llm.gateway.ports import Caller
from opsloop.llm.gateway.ports import Guard
from opsloop.llm.gateway.ports import KeyLimits
from opsloop.llm.gateway.ports import Limiter
from opsloop.llm.gateway.ports import LocalModels
from opsloop.llm.gateway.ports import ResponseCache
from opsloop.llm.gateway.proxy import Gateway
from opsloop.llm.gateway.rollout import RolloutController
from opsloop.llm.gateway.router import Route
from opsloop.llm.gateway.router import Router
from opsloop.llm.gateway.spans import SpanSink
from opsloop.llm.gateway.upstream import HttpTarget
from opsloop.llm.gateway.upstream import LocalTarget
from opsloop.llm.gateway.upstream import Target
from opsloop.llm.gateway.upstream import pool
from opsloop.llm.tracing.pricing import ModelPrice
from opsloop.llm.tracing.pricing import PriceTable
from opsloop.store.database import Store
from opsloop.web.dispatch import Check
from opsloop.web.dispatch import RouteDispatch

__all__ = [
    "LimitsLookup",
    "WiredGateway",
    "build_gateway",
    "check_config",
    "create_gateway_app",
    "mount_gateway",
    "server_caller",
    "standard_parts",
]

LimitsLookup = Callable[[str], Awaitable[KeyLimits]]
SpentSince = Callable[[str, int], Awaitable[float]]
LimiterFactory = Callable[[LimitsConfig], Limiter | None]
GuardFactory = Callable[[RouteConfig], Guard | None]
CacheFactory = Callable[[RouteConfig], ResponseCache | None]


class WiredGateway(Gateway):
    """A :class:`Gateway` that also closes what was built for it, once its spans are stored."""

    def __init__(self, *args: Any, closers: list[Callable[[], Any]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._closers = closers

    async def aclose(self) -> None:
        """Settle the calls in flight and store the spans, then close the limiter (the Redis
        pool), the local models (their worker threads finish what they generate) and the
        upstream connection pool."""
        await super().aclose()
        for close in self._closers:
            if inspect.iscoroutinefunction(close):
                await close()
            else:
                await asyncio.to_thread(close)


def check_config(path: str | Path) -> GatewayConfig:
    """Read the gateway's YAML and check every section: routes and targets
    (:func:`~opsloop.llm.gateway.config.load_config`), each route's ``guardrails`` and ``cache``,
    and ``limits``. Builds nothing that connects or loads a model.

    Raises:
        InvalidInput: One line: the file, then the field's path and what to write instead.
    """
    from opsloop.llm.gateway.cache import build_cache
    from opsloop.llm.gateway.guardrails import build_guard
    from opsloop.llm.gateway.limits import LimitsSettings

    config = load_config(path)
    try:
        for route in config.routes:
            build_guard(route.name, route.guardrails)  # rules are built lazily: cheap
            build_cache(route.name, route.cache)
        LimitsSettings.model_validate(config.limits.model_dump(exclude_none=True))
    except InvalidInput as exc:
        raise InvalidInput(f"{path}: {exc.message}") from None
    except ValidationError as exc:
        problems = "; ".join(f"limits.{p}" for p in validation_problems(exc))
        raise InvalidInput(f"{path}: {problems}") from None
    return config


def standard_parts(
    config: GatewayConfig, store: Store | None, client: Any, spent_since: SpentSince | None = None
) -> dict[str, Any]:
    """The real parts for :func:`build_gateway` (``client``: an ``opsloop.Client``, whose
    registry serves local targets; ``spent_since``: what a key spent, by default read from
    ``store``'s gateway spans)."""
    from opsloop.llm.gateway.cache import build_cache
    from opsloop.llm.gateway.guardrails import build_guard
    from opsloop.llm.gateway.limits import build_limiter
    from opsloop.llm.gateway.limits_store import store_spend

    if spent_since is None and store is not None:
        spent_since = store_spend(store)
    parts: dict[str, Any] = {
        "limiter_factory": lambda limits: build_limiter(limits, spent_since=spent_since),
        "guard_factory": lambda route: build_guard(route.name, route.guardrails),
        "cache_factory": lambda route: build_cache(route.name, route.cache),
    }
    if any(t.kind == "local" for r in config.routes for t in r.targets):
        from opsloop.registry.causal_lm import RegistryLocalModels

        parts["local_models"] = RegistryLocalModels(client.models)
    return parts


def build_gateway(
    config: GatewayConfig,
    *,
    store: Store | None = None,
    spool_folder: Any = None,
    prompts: Any = None,
    limiter_factory: LimiterFactory | None = None,
    guard_factory: GuardFactory | None = None,
    cache_factory: CacheFactory | None = None,
    local_models: LocalModels | None = None,
    client: httpx.AsyncClient | None = None,
    limiter: Limiter | None = None,
    span_thread: bool = False,
) -> Gateway:
    """A gateway for ``config``; spans go to ``store``'s traces through a span journal in
    ``spool_folder``/journal, stored by a writer process (no store or folder: not traced), or
    with ``span_thread`` by a thread of this process (a one-process tool, such as the
    quickstart, that stores its spans before each read: no writer process to start each time).
    The parts handed in are the gateway's from then on: its ``aclose`` closes those that have
    a ``close``; but for ``limiter``, a limiter shared with another gateway (which closes it),
    used instead of one from ``limiter_factory``.

    Raises:
        InvalidInput: A ``kind: local`` target without ``local_models`` to serve it.
        NotFound: A local target's model version is not registered.
    """
    closers: list[Callable[[], Any]] = []
    if client is None:
        client = pool()
        closers.append(client.aclose)
    if local_models is not None and callable(getattr(local_models, "close", None)):
        closers.append(local_models.close)  # type: ignore[attr-defined]
    routes: dict[str, Route] = {}
    for route in config.routes:
        targets: list[Target] = []
        for target in route.targets:
            if target.kind == "openai":
                targets.append(HttpTarget(target, route.name, client))
                continue
            if local_models is None:
                raise InvalidInput(
                    f"route '{route.name}' target '{target.name}' is kind: local, but this "
                    "gateway was started without local models"
                )
            generator = local_models.generator(target.model or "")
            targets.append(LocalTarget(target, route.name, generator))
        routes[route.name] = Route(route, targets)
    guards = _built(config.routes, guard_factory)
    caches = _built(config.routes, cache_factory)
    if limiter is None and limiter_factory is not None:
        limiter = limiter_factory(config.limits)
        if limiter is not None and callable(getattr(limiter, "close", None)):
            closers.insert(0, limiter.close)  # type: ignore[attr-defined]
    sink = prices = None
    if store is not None:
        from opsloop.llm.tracing.local import LocalTracingBackend

        backend = LocalTracingBackend(store)
        if spool_folder:
            sink = _span_sink(Path(spool_folder) / "journal", store, backend, span_thread)
        user = [p for p in backend.list_prices() if p.source == "user"]
        prices = PriceTable([ModelPrice(**p.model_dump()) for p in user])
    return WiredGateway(
        Router(routes), sink=sink, limiter=limiter, guards=guards, caches=caches,
        prompts=prompts, prices=prices, closers=closers,
    )  # fmt: skip


def _span_sink(folder: Path, store: Store, backend: Any, thread: bool) -> SpanSink:
    """Spans journaled in ``folder``, stored by a writer process over ``store``'s URL; by a
    thread through ``backend`` when asked or when no other process can open it (in-memory
    SQLite)."""
    if thread or (store.is_sqlite and make_url(store.url).database in (None, "", ":memory:")):
        return SpanSink(folder, ingest=backend.ingest)
    return SpanSink(folder, database_url=store.url)


def _built(routes: list[RouteConfig], factory: Callable[[RouteConfig], Any] | None) -> Any:
    if factory is None:
        return {}
    built = {route.name: factory(route) for route in routes}
    return {name: part for name, part in built.items() if part is not None}


def server_caller(limits_for: LimitsLookup | None = None) -> Callable[[Request], Awaitable[Caller]]:
    """Who sent a request, once the server's auth check (``require_token``) has run: the key
    and user it resolved in ``users`` mode, else nobody in particular (no limits apply)."""

    async def caller_of(request: Request) -> Caller:
        principal = getattr(request.state, "principal", None)
        if principal is None:
            return Caller(user=str(getattr(request.state, "actor", "") or ""))
        key_id = principal.key_id
        limits = await limits_for(key_id) if limits_for is not None and key_id else KeyLimits()
        return Caller(key_id=key_id, user=principal.name, limits=limits)

    return caller_of


def mount_gateway(
    app: FastAPI, state: Any, *, limits_for: LimitsLookup | None = None, **parts: Any
) -> Callable[[Any], Gateway]:
    """Mount the gateway's routes on ``app`` behind the server's auth check, each request
    served by the gateway of its workspace, and build the root state's (``state.gateway``).
    Returns what builds another workspace's gateway from its state: the routes of that
    workspace in ``state.settings.gateway_config`` (no file: no routes, and every model is a
    404 that says how to configure one), spans to its store (masked by its policy), its
    registry's models and its prompts. One limiter serves them all, so a key's rates and budget
    count its calls in every workspace. ``parts`` go to :func:`build_gateway`, over
    :func:`standard_parts`; ``limits_for`` defaults to the limits stored with each key.
    """
    from opsloop.llm.gateway.limits_store import KeyLimitsLookup
    from opsloop.web.deps import get_state
    from opsloop.web.deps import require_token

    path = state.settings.gateway_config
    config = check_config(path) if path else GatewayConfig()
    root = state
    shared: dict[str, Any] = {}

    def gateway_for(ws: Any) -> Gateway:
        routes = config.for_workspace(ws.settings.workspace)
        ws_parts = {**standard_parts(routes, ws.store, ws.client, _spend_everywhere(root)),
                    **parts}  # fmt: skip
        if "limiter" in shared:
            ws_parts["limiter"] = shared["limiter"]
        gateway = build_gateway(
            routes, store=ws.store, spool_folder=ws.settings.home / "spool" / "traces",
            prompts=ws.client.prompts if ws.client is not None else None, **ws_parts,
        )  # fmt: skip
        shared.setdefault("limiter", gateway.limiter)
        return gateway

    state.gateway = gateway_for(state)
    limits_for = limits_for or KeyLimitsLookup(state.store)
    router = gateway_router(lambda request: get_state(request).gateway, server_caller(limits_for))
    _serve_routes(app, router, require_token)
    from opsloop.llm.gateway.rollout_api import router as rollouts_router

    app.include_router(rollouts_router, prefix="/api", dependencies=[Depends(require_token)])
    app.state.gateway = state.gateway
    return gateway_for


def _serve_routes(app: FastAPI, router: APIRouter, check: Check) -> None:
    """``router`` on ``app`` behind ``check``: included (documented, and answering what the
    dispatcher leaves), and answered first by :class:`RouteDispatch`, which the middlewares
    added to ``app`` after this call wrap (the server's request id, audit check and body limit;
    those added before, such as the MLflow alias, never rewrite the gateway's paths)."""
    app.include_router(router, dependencies=[Depends(check)])
    app.add_middleware(RouteDispatch, routes=router.routes, check=check, answer=answered)


def _spend_everywhere(root: Any) -> SpentSince:
    """What a key spent through the gateways of every workspace the server has opened (all
    of them once it runs): the sum over their stores' spans."""
    from opsloop.llm.gateway.limits_store import store_spend

    async def spent_since(key_id: str, since_ms: int) -> float:
        states = [root, *(root.workspaces.built() if root.workspaces is not None else [])]
        spent = await asyncio.gather(*(store_spend(s.store)(key_id, since_ms) for s in states))
        return float(sum(spent))

    return spent_since


def create_gateway_app(
    config_path: str, settings: Settings, *, limits_for: LimitsLookup | None = None, **parts: Any
) -> FastAPI:
    """``opsloop gateway``'s app: the three OpenAI routes, ``/healthz`` and ``/metrics``,
    nothing else; ``parts`` and ``limits_for`` as for :func:`mount_gateway`.

    It serves the routes of one workspace, ``settings.workspace`` (``opsloop --workspace W
    gateway``), and sends their spans to that workspace's store (its traces page shows them).
    With ``auth: keys`` callers send an opsloop API key (``opsloop keys create``), resolved
    through the same cached authorizer as the server's, and need a role in that workspace.

    ``/metrics`` (the Prometheus text of this process's registry: spans dropped, ...) follows
    the server's rule with the gateway's auth: with ``auth: keys`` the scrape token
    (``metrics_token``) or a key the routes accept, as the server in ``users`` mode; else, as
    ``opsloop serve``, the server token or the scrape token, and open when neither is set.
    """
    from opsloop.client import Client
    from opsloop.client import shared_stores
    from opsloop.llm.gateway.limits_store import KeyLimitsLookup
    from opsloop.web.deps import authenticate_key
    from opsloop.web.deps import require_metrics_token
    from opsloop.web.deps import token_matches
    from opsloop.web.errors import install_error_handlers
    from opsloop.web.limits import install_body_limits

    config = check_config(config_path).for_workspace(settings.workspace)
    store, blobs = shared_stores(settings)  # the root store: keys and their limits
    client = Client(settings=settings)  # the workspace's registry and prompts
    traces, _ = shared_stores(client.settings)  # the workspace's store
    parts = {**standard_parts(config, traces, client), **parts}
    gateway = build_gateway(
        config, store=traces, spool_folder=client.settings.home / "spool" / "traces",
        prompts=client.prompts, **parts,
    )  # fmt: skip
    limits_for = limits_for or KeyLimitsLookup(store)
    authorizer = None
    if config.auth == "keys":
        from opsloop.governance.authorizer import UserAuthorizer

        authorizer = UserAuthorizer(store)

    def bearer(request: Request) -> str:
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        return given.strip() if scheme.lower() == "bearer" else ""

    async def check_key(request: Request) -> None:
        if authorizer is None:
            return
        key = bearer(request)
        if not key:
            raise Unauthenticated(
                "this gateway requires an API key: send 'Authorization: Bearer <key>' "
                "(opsloop keys create)"
            )
        _, principal = await authenticate_key(request, app.state.opsloop, authorizer, key)
        acting = principal.in_workspace(settings.workspace)
        if acting is None:
            raise PermissionDenied(
                f"{principal.name} has no role in workspace '{settings.workspace}', whose "
                f"routes this gateway serves: an admin gives one with `opsloop users set-role "
                f"{principal.name} viewer --workspace {settings.workspace}`"
            )
        request.state.principal = acting

    async def check_scrape(request: Request) -> None:
        if authorizer is None:  # the server token or the scrape token; none set: open
            await require_metrics_token(request, app.state.opsloop)
            return
        given, scrape = bearer(request), settings.metrics_token
        if not (given and scrape and token_matches(given, scrape)):
            await check_key(request)

    from opsloop.store.leadership import Leadership

    lease = Leadership(traces, "gateway-rollouts", ttl_s=settings.leader_lease_seconds)
    rollouts = RolloutController(  # canary and A/B, judged by the gateway holding the lease
        traces, gateway.router.routes, leadership=lease
    )

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        rollouts.start()
        if gateway.sink is not None:
            gateway.sink.start()  # the span writer starts with the server, not on a request
        # What the start made (modules, routes, the store's and the validators' objects) lives
        # as long as the process; left in the collector's generations, the first full
        # collection went over all of it: one 110 ms pause at 500 req/s, most of the p99.
        gc.freeze()
        yield
        rollouts.stop()
        await gateway.aclose()
        client.close()

    app = FastAPI(lifespan=lifespan, title="opsloop gateway", docs_url="/docs")
    from opsloop.web.deps import AppState

    app.state.opsloop = AppState(settings=settings, store=store, blobs=blobs)  # failure limits
    app.state.gateway = gateway
    install_error_handlers(app)
    router = gateway_router(lambda _request: gateway, server_caller(limits_for))
    _serve_routes(app, router, check_key)
    install_body_limits(app, [])  # 16 MiB, as the server's (whose own wraps its gateway's)

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, Any]:
        return {"status": "ok", "routes": len(config.routes)}

    @app.get("/metrics", include_in_schema=False, dependencies=[Depends(check_scrape)])
    def metrics() -> Response:  # through FastAPI, in its thread pool: off the routes' paths
        from prometheus_client import generate_latest

        from opsloop.kernel.metrics import REGISTRY

        return Response(generate_latest(REGISTRY), media_type="text/plain; version=0.0.4")

    return app
