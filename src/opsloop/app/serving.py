"""The inference runtime of a server process, and ``opsloop serve``: its command and its lean app
(inference, ``/metrics`` and ``/healthz`` only; ``opsloop server`` mounts the same routes beside
the rest). Like ``mlflow models serve`` it also answers ``POST /invocations`` (for the deployment
it was started for, or the only one there is) and ``GET /ping``, ``/health``, ``/version``.
The command itself is in :mod:`opsloop.app.serving_cli`, which starts without FastAPI."""

from __future__ import annotations

import gc
import os
import time
from collections.abc import Callable
from typing import Any

from fastapi import Request

from opsloop.config import Settings

__all__ = [
    "DEPLOYMENT_ENV",
    "create_serving_app",
    "open_runtime",
    "serving_app_from_env",
    "start_controller",
]

DEPLOYMENT_ENV = "OPSLOOP_SERVE_DEPLOYMENT"  # `opsloop serve --deployment`, for its workers


def open_runtime(client: Any) -> Any:
    """A runtime reading deployments and models through ``client`` (over the server's own
    store), logging under ``$OPSLOOP_HOME/predictions``."""
    from opsloop.client import shared_stores
    from opsloop.governance.masker import IngestMasking
    from opsloop.serving.metrics import ServingMetrics
    from opsloop.serving.predlog import PredictionLog
    from opsloop.serving.predlog_shared import shared_log
    from opsloop.serving.runtime import ServingRuntime

    masking = IngestMasking(shared_stores(client.settings)[0])  # the workspace's, at ingest
    shared = shared_log(client.settings)  # every replica's log, when the settings share one
    log = PredictionLog(client.settings.predictions_folder, masking=masking, shared=shared)
    return ServingRuntime(client.deployments, client.models, log, ServingMetrics())


def start_controller(runtime: Any, store: Any, *, lease_s: float) -> Any:
    """The rollout controller of a server process, reading this server's prediction log: it
    ticks only while this process holds the ``rollouts`` lease, so of all the servers and
    ``opsloop serve`` processes on one store one steps the rollouts (``stop()`` lets it go).

    The controller is built at the first tick, on the ticker's thread, a second after the
    start: its module (the rollout services, the registry's aliases, the canary analysis) is
    ~0.1 s of CPU off the path to a server's first prediction."""
    from opsloop.store.leadership import Leadership
    from opsloop.store.leadership import LeaderTicker

    built: list[Any] = []

    def tick_all() -> None:
        if not built:
            from opsloop.serving.rollouts import RolloutController

            built.append(RolloutController(store, runtime.log.window))  # its tick, our thread
        built[0].tick_all()

    return LeaderTicker(Leadership(store, "rollouts", ttl_s=lease_s), tick_all).start()


def create_serving_app(
    settings: Settings,
    *,
    warm_up: bool = True,
    deployment: str | None = None,
    ready: Callable[[], None] | None = None,
) -> Any:
    """The lean inference app; ``deployment`` is the one ``/invocations`` answers for (and the
    only one warmed up), else the only deployment there is. ``ready`` is called once the app
    has started (models warmed up, controller started), before it serves."""
    from contextlib import asynccontextmanager

    from fastapi import Depends
    from fastapi import FastAPI

    from opsloop.client import Client
    from opsloop.client import shared_stores
    from opsloop.kernel import __version__
    from opsloop.serving.inference_api import BODY_LIMITS
    from opsloop.serving.inference_api import inference_router
    from opsloop.serving.inference_api import metrics_router
    from opsloop.serving.scoring import probe_router
    from opsloop.serving.scoring import root_invocations_router
    from opsloop.web.deps import AppState
    from opsloop.web.deps import require_token
    from opsloop.web.errors import install_error_handlers
    from opsloop.web.limits import install_body_limits
    from opsloop.web.openapi import error_response
    from opsloop.web.openapi import install_openapi

    client = Client(settings=settings)
    runtime = open_runtime(client)
    store, blobs = shared_stores(settings)  # the client uses the same pool

    @asynccontextmanager
    async def lifespan(_app: Any) -> Any:
        if warm_up:
            runtime.warm_up(only=deployment)
        controller = start_controller(runtime, store, lease_s=settings.leader_lease_seconds)
        app.state.leases = [controller.leadership]
        if ready is not None:
            ready()
        yield
        controller.stop()
        runtime.close()  # drain: shadow copies finish, the log is sealed

    app = FastAPI(title="opsloop serve", version=__version__, lifespan=lifespan)
    app.state.opsloop = AppState(
        settings=settings,
        store=store,
        blobs=blobs,
        client=client,
        serving=runtime,
    )
    install_error_handlers(app)
    install_openapi(app)

    down = {503: error_response("the store is down")}
    app.add_api_route("/healthz", _healthz, methods=["GET"], tags=["meta"], responses=down)
    app.include_router(probe_router)
    auth = [Depends(require_token)]
    app.include_router(inference_router, dependencies=auth)
    app.include_router(root_invocations_router(_scored_deployment(deployment)), dependencies=auth)
    # The server token or the scrape token; the alert gauges are registered at the first scrape.
    app.include_router(metrics_router, dependencies=[Depends(_alert_gauges)])
    install_body_limits(app, BODY_LIMITS)
    return app


def _healthz(request: Request) -> dict[str, Any]:
    """200 when the metadata store answers (deployments are read from it), else 503; which
    jobs this process leads (``leases``)."""
    from opsloop.app.health import lease_report
    from opsloop.kernel import __version__

    request.app.state.opsloop.store.ping()
    return {"status": "ok", "version": __version__, "leases": lease_report(request.app)}


def _alert_gauges() -> None:
    """Register the alerts' gauges (``opsloop_alert_firing``, ``opsloop_monitor_value``) with
    /metrics before it renders, as ``opsloop server`` has them from the start. Importing their
    module (its tables and entities: ~0.1 s of CPU) waits for the first scrape, off the path to
    the first prediction; ``opsloop serve`` runs no monitor, so they never hold a sample here."""
    from opsloop.monitoring.alerts import register_gauges

    register_gauges()


def _scored_deployment(named: str | None, ttl: float = 1.0) -> Callable[[Any], str]:
    """Which deployment ``POST /invocations`` answers for: ``named``, else the only one there
    is (looked up at most once per ``ttl`` seconds); ``NotFound`` saying what to do otherwise."""
    seen: list[tuple[float, str | None]] = []

    def deployment(state: Any) -> str:
        if named is not None:
            return named
        from opsloop.errors import NotFound

        if not seen or time.monotonic() - seen[0][0] > ttl:
            names = [d.name for d in state.serving.deployments.list()]
            seen[:] = [(time.monotonic(), names[0] if len(names) == 1 else None)]
        only = seen[0][1]
        if only is None:
            raise NotFound(
                "/invocations answers for one deployment: start with `opsloop serve "
                "--deployment NAME`, or POST /v1/deployments/NAME/invocations"
            )
        return only

    return deployment


def serving_app_from_env() -> Any:
    """The app for a uvicorn worker process (``opsloop serve --workers N``). Where the process
    paused the cyclic collector for its start (``opsloop serve`` with one worker does), the
    collector resumes once the app is ready."""
    from opsloop.config import load_settings

    deployment = os.environ.get(DEPLOYMENT_ENV) or None
    ready = None if gc.isenabled() else _resume_collector
    return create_serving_app(load_settings(), deployment=deployment, ready=ready)


def _resume_collector() -> None:
    """Collect cycles again, leaving out of every collection what the start made (it lives
    as long as the process: modules, routes, the models) by freezing it first."""
    gc.freeze()
    gc.enable()
