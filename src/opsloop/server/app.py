"""The FastAPI app factory: one app that mounts every domain's router.

``create_app(settings)`` opens the store (migrating it if needed) and the blob store, installs
the one exception handler that maps ``OpsloopError`` to HTTP, and mounts each domain's router
under token auth. ``/healthz`` and ``/docs`` stay open.
"""

from __future__ import annotations

from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from opsloop import __version__
from opsloop.config import Settings, load_settings
from opsloop.errors import InvalidInput, OpsloopError
from opsloop.server.deps import AppState, State, require_token
from opsloop.store.blobs import open_blob_store
from opsloop.store.database import Store

__all__ = ["create_app"]


def _validation_message(exc: RequestValidationError) -> str:
    parts = []
    for error in exc.errors()[:5]:
        where = ".".join(str(p) for p in error.get("loc", ()) if p != "body")
        parts.append(f"{where or 'body'}: {error.get('msg')}")
    return "invalid request: " + "; ".join(parts)


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the opsloop server app for ``settings`` (default: from env / opsloop.toml)."""
    settings = settings or load_settings()
    app = FastAPI(
        title="opsloop",
        version=__version__,
        description="Experiments, runs, metrics and artifacts; more domains as they land.",
    )
    app.state.opsloop = AppState(
        settings=settings,
        store=Store(settings.database_url),
        blobs=open_blob_store(settings.blob_url, settings.storage_options),
    )

    @app.exception_handler(OpsloopError)
    async def _opsloop_error(_request: Request, exc: OpsloopError) -> JSONResponse:
        return JSONResponse(exc.to_dict(), status_code=exc.http_status)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        error = InvalidInput(_validation_message(exc), details={"errors": _jsonable(exc.errors())})
        return JSONResponse(error.to_dict(), status_code=error.http_status)

    @app.get("/healthz", tags=["meta"])
    def healthz(state: State) -> dict[str, Any]:
        """200 when the metadata store answers, 503 (StoreError) when it does not."""
        state.store.ping()
        return {"status": "ok", "version": __version__}

    from opsloop.tracking.api import router as tracking_router

    auth = [Depends(require_token)]
    app.include_router(tracking_router, prefix="/api", dependencies=auth)
    return app


def _jsonable(errors: Any) -> Any:
    from fastapi.encoders import jsonable_encoder

    return jsonable_encoder(errors, custom_encoder={Exception: str})
