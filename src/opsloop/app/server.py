"""The FastAPI app factory: one app that mounts every domain's router.

``create_app(settings)`` opens the store (migrating it if needed) and the blob store, installs
the one exception handler that maps ``OpsloopError`` to HTTP (JSON for the API, an HTML page for
the web UI), and mounts each domain's REST router under ``/api`` and its pages at the root, all
under one auth check (``web.deps.require_token``). ``/healthz``, ``/docs`` and ``/login`` stay
open. The auth mode (``Settings.auth_mode``): ``token`` (one shared token), ``users`` (API keys
of built-in users, roles per route: the governance domain's authorizer is handed to the check
here), or open (no token set).
"""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from collections.abc import Callable
from contextlib import asynccontextmanager
from dataclasses import replace
from typing import Any

from fastapi import Depends
from fastapi import FastAPI

from opsloop.app.health import install_health
from opsloop.app.workspaces import WorkspaceStates
from opsloop.config import DEFAULT_WORKSPACE
from opsloop.config import Settings
from opsloop.config import load_settings
from opsloop.kernel import __version__
from opsloop.kernel.code_policy import server_code_policy
from opsloop.web.deps import AppState
from opsloop.web.deps import require_token
from opsloop.web.errors import install_error_handlers
from opsloop.web.limits import install_body_limits
from opsloop.web.mlflow import dispatch_mlflow_routes
from opsloop.web.mlflow import include_mlflow_router
from opsloop.web.mlflow import install_mlflow
from opsloop.web.openapi import install_openapi
from opsloop.web.routes import install_ui
from opsloop.web.workspace_prefix import WorkspacePrefix

__all__ = ["create_app"]


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the opsloop server app for ``settings`` (default: from env / opsloop.toml)."""
    settings = replace(settings or load_settings(), workspace=DEFAULT_WORKSPACE)  # it serves all

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        state = app.state.opsloop
        stop, leases = _start_background(state)
        app.state.leases = leases
        state.workspaces.start()
        gc.freeze()  # what the start made lives as long as the process (see app/gateway.py)
        yield  # every server ticks; only each lease's holder acts (shown on /healthz)
        state.workspaces.stop()
        for gateway in [state.gateway, *(ws.gateway for ws in state.workspaces.built())]:
            await gateway.aclose()  # spans queued by the LLM gateways are stored
        stop()

    app = FastAPI(
        lifespan=lifespan,
        title="opsloop",
        version=__version__,
        description=(
            "Experiments, runs, metrics and artifacts; dataset versions; the model registry, "
            "evaluations and gates; lineage; prompts; LLM traces (OTLP at /v1/traces) and scores."
        ),
    )
    from opsloop.app.serving import open_runtime
    from opsloop.client import Client
    from opsloop.client import shared_stores
    from opsloop.llm.tracing.api import open_spool
    from opsloop.schema import lineage_catalog

    store, blobs = shared_stores(settings)
    client = Client(settings=settings)  # the routes' client, over this server's own store
    app.state.opsloop = AppState(
        settings=settings,
        store=store,
        blobs=blobs,
        client=client,
        serving=open_runtime(client),
        lineage=lineage_catalog(),
    )
    app.state.opsloop.trace_spool = open_spool(app.state.opsloop)
    app.state.opsloop.authorizer = _authorizer(settings, store)
    app.state.opsloop.code = server_code_policy(settings)
    root = app.state.opsloop
    root.workspaces = WorkspaceStates(
        root,
        lambda name: _with_gateway(_workspace_state(root, name), gateway_for),
        lambda state: _start_background(state)[0],
    )
    root.global_paths = _global_paths()

    install_error_handlers(app)
    install_openapi(app)  # the errors it documents are the ones it answers

    install_health(app)

    from opsloop.data.api import router as data_router
    from opsloop.data.views import UI as DATA_UI
    from opsloop.data.views import router as data_views
    from opsloop.governance.api import router as governance_router
    from opsloop.governance.audit_hook import AuditMiddleware
    from opsloop.governance.views import UI as AUDIT_UI
    from opsloop.governance.views import router as audit_views
    from opsloop.lineage.api import router as lineage_router
    from opsloop.llm.evals.api import router as evals_router
    from opsloop.llm.evals.label_gate import LabelRuleGate
    from opsloop.llm.evals.metrics import embed
    from opsloop.llm.evals.views import UI as EVALS_UI
    from opsloop.llm.evals.views import router as eval_views
    from opsloop.llm.feedback.api import router as feedback_router
    from opsloop.llm.feedback.views import UI as FEEDBACK_UI
    from opsloop.llm.feedback.views import router as feedback_views
    from opsloop.llm.prompts.api import router as prompts_router
    from opsloop.llm.prompts.views import UI as PROMPTS_UI
    from opsloop.llm.prompts.views import router as prompt_views
    from opsloop.llm.tracing.api import BODY_LIMITS as OTLP_LIMITS
    from opsloop.llm.tracing.api import otlp_router
    from opsloop.llm.tracing.api import router as tracing_router
    from opsloop.llm.tracing.views import UI as TRACES_UI
    from opsloop.llm.tracing.views import router as trace_views
    from opsloop.monitoring.alerts import register_gauges
    from opsloop.monitoring.api import router as monitoring_router
    from opsloop.monitoring.views import UI as MONITORS_UI
    from opsloop.monitoring.views import router as monitor_views
    from opsloop.pipelines.api import router as pipelines_router
    from opsloop.pipelines.views import UI as PIPELINES_UI
    from opsloop.pipelines.views import router as pipeline_views
    from opsloop.registry.api import router as registry_router
    from opsloop.registry.compression_api import router as compression_router
    from opsloop.registry.mlflow_api import router as mlflow_registry_router
    from opsloop.registry.views import UI as REGISTRY_UI
    from opsloop.registry.views import router as registry_views
    from opsloop.serving.api import router as deployments_router
    from opsloop.serving.inference_api import BODY_LIMITS as INFERENCE_LIMITS
    from opsloop.serving.inference_api import inference_router
    from opsloop.serving.inference_api import metrics_router
    from opsloop.serving.views import UI as DEPLOYMENTS_UI
    from opsloop.serving.views import router as deployment_views
    from opsloop.tracking.api import BODY_LIMITS as BLOB_LIMITS
    from opsloop.tracking.api import router as tracking_router
    from opsloop.tracking.mlflow_api import logging_router as mlflow_logging_router
    from opsloop.tracking.mlflow_api import router as mlflow_tracking_router
    from opsloop.tracking.mlflow_artifacts import BODY_LIMITS as MLFLOW_ARTIFACT_LIMITS
    from opsloop.tracking.mlflow_artifacts import proxy_router as mlflow_artifacts_router
    from opsloop.tracking.views import UI as TRACKING_UI
    from opsloop.tracking.views import router as tracking_views
    from opsloop.workflows.privacy_api import router as privacy_router

    # Handed in as state, never as dependency_overrides: with any override set, FastAPI reads
    # every dependency's signature again on every request (a tenth of a logged metric's CPU).
    app.state.label_gate = LabelRuleGate()  # the prompts' label moves pass the evals' rules
    app.state.embedder = embed  # semantic dedup's MiniLM
    auth = [Depends(require_token)]
    # MLflow's REST API first: its clients log a metric a request, and routes are matched in
    # order (its paths, under /api/2.0/, cannot match opsloop's, nor opsloop's its own)
    dispatch_mlflow_routes(app, mlflow_logging_router, require_token)  # both prefixes
    include_mlflow_router(app, mlflow_tracking_router, auth)
    include_mlflow_router(app, mlflow_artifacts_router, auth, artifacts=True)
    include_mlflow_router(app, mlflow_registry_router, auth)  # registry and logged models
    api = "/api"  # the REST routes; OTLP and inference keep their standard paths
    for router, prefix in [
        (tracking_router, api), (data_router, api), (registry_router, api),
        (compression_router, api), (lineage_router, api),
        (prompts_router, api), (tracing_router, api), (otlp_router, ""), (feedback_router, api),
        (evals_router, api), (deployments_router, api), (monitoring_router, api),
        (pipelines_router, api), (inference_router, ""), (governance_router, api),
        (privacy_router, api),
    ]:  # fmt: skip
        app.include_router(router, prefix=prefix, dependencies=auth)
    install_mlflow(app, auth)  # after the MLflow routers: the rest of its API is ENDPOINT_NOT_FOUND
    from opsloop.app.gateway import mount_gateway

    # /v1/chat/completions …: settings.gateway_config's routes, a gateway per workspace
    gateway_for = mount_gateway(app, app.state.opsloop)
    app.include_router(metrics_router)  # the server token or the scrape token
    register_gauges()  # the scheduler's checks record the alerts' gauges for /metrics
    limits = [*BLOB_LIMITS, *OTLP_LIMITS, *INFERENCE_LIMITS, *MLFLOW_ARTIFACT_LIMITS]
    install_body_limits(app, limits)  # else 16 MiB
    install_ui(
        app,
        [
            (TRACKING_UI, tracking_views),
            (DATA_UI, data_views),
            (REGISTRY_UI, registry_views),
            (DEPLOYMENTS_UI, deployment_views),
            (PIPELINES_UI, pipeline_views),
            (MONITORS_UI, monitor_views),
            (PROMPTS_UI, prompt_views),
            (TRACES_UI, trace_views),
            (FEEDBACK_UI, feedback_views),
            (EVALS_UI, eval_views),
            (AUDIT_UI, audit_views),
        ],
    )
    from opsloop.governance.oidc_views import install_oidc

    install_oidc(app, settings)  # /login/oidc: single sign-on, when --oidc-issuer is set
    app.add_middleware(AuditMiddleware, store=store)  # sees every answer's status
    app.add_middleware(WorkspacePrefix)  # outermost: /w/NAME/... is a workspace's, for all
    return app


def _authorizer(settings: Settings, store: Any) -> Any:
    """The users-mode authorizer the auth check is handed (None in the other modes).

    Raises:
        InvalidInput: ``auth = "token"`` without a token to require.
    """
    from opsloop.errors import InvalidInput

    mode = settings.auth_mode
    if mode == "token" and not settings.token:
        raise InvalidInput("auth mode 'token' needs a token: pass --token or set OPSLOOP_TOKEN")
    if mode != "users":
        return None
    from opsloop.governance.authorizer import UserAuthorizer

    return UserAuthorizer(store)


def _workspace_state(root: AppState, workspace: str) -> AppState:
    """The state a workspace's requests are served from: its own store, blobs, client,
    serving runtime and trace spool; the root's auth, code policy and lineage catalog."""
    from opsloop.app.serving import open_runtime
    from opsloop.client import Client
    from opsloop.client import shared_stores
    from opsloop.llm.tracing.api import open_spool

    client = Client(settings=replace(root.settings, workspace=workspace))
    store, blobs = shared_stores(client.settings)
    state = AppState(
        settings=client.settings, store=store, blobs=blobs, client=client,
        serving=open_runtime(client), lineage=root.lineage, failures=root.failures,
        authorizer=root.authorizer, code=root.code,
    )  # fmt: skip
    state.trace_spool = open_spool(state)
    return state


def _with_gateway(state: AppState, gateway_for: Callable[[AppState], Any]) -> AppState:
    state.gateway = gateway_for(state)  # the workspace's LLM gateway routes
    return state


def _start_background(state: AppState) -> tuple[Callable[[], None], list[Any]]:
    """Start what a server runs by itself for one workspace's store (the deployment rollout
    controller, the LLM gateway's rollout controller, the scheduler, the launcher of ad hoc
    pipeline runs); returns what stops them and their leases (only each lease's holder acts,
    whatever the number of servers)."""
    from opsloop.app.serving import start_controller
    from opsloop.llm.gateway.rollout import RolloutController
    from opsloop.pipelines.launcher import Launcher
    from opsloop.registry.promotion import PromotionContext
    from opsloop.store.leadership import Leadership
    from opsloop.workflows.scheduler import Scheduler

    lease_s = state.settings.leader_lease_seconds
    controller = start_controller(state.serving, state.store, lease_s=lease_s)
    promotions = PromotionContext(state.store, state.blobs, state.settings.home / "cache")
    scheduler = Scheduler(
        state.client, state.store, promotions, state.serving.log,
        leadership=Leadership(state.store, "scheduler", ttl_s=lease_s), code=state.code,
    ).start()  # fmt: skip
    state.launcher = Launcher(state.client, code=state.code)
    rollouts = RolloutController(  # canary and A/B between a gateway route's targets
        state.store, state.gateway.router.routes,
        leadership=Leadership(state.store, "gateway-rollouts", ttl_s=lease_s),
    ).start()  # fmt: skip

    def stop() -> None:
        rollouts.stop()
        state.launcher.close()
        scheduler.stop()
        controller.stop()
        state.serving.close()  # shadow copies finish, the prediction log is sealed

    return stop, [scheduler.leadership, controller.leadership, rollouts.leadership]


def _global_paths() -> tuple[str, ...]:
    """Paths that act on the root store whatever workspace a request names: the users, keys
    and workspaces routes (under ``/api``) and signing in and out."""
    from opsloop.governance.routes import GLOBAL

    return (*(f"/api{route.template}" for route in GLOBAL), "/login", "/logout", "/auth/")
