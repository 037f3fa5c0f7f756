"""``opsloop server`` and ``opsloop db-upgrade``."""

from __future__ import annotations

from typing import Annotated

import typer


def server(
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 5000,
    workers: Annotated[int, typer.Option(help="Worker processes.")] = 1,
    database_url: Annotated[
        str | None, typer.Option(help="Metadata store URL (default: settings).")
    ] = None,
    blob_url: Annotated[
        str | None, typer.Option(help="Blob store folder or URL (default: settings).")
    ] = None,
    token: Annotated[
        str | None, typer.Option(envvar="OPSLOOP_TOKEN", help="Require this bearer token.")
    ] = None,
) -> None:
    """Run the opsloop server: REST API under /api, docs at /docs, health at /healthz.

    Teams point the SDK and CLI at it with OPSLOOP_SERVER_URL=http://HOST:PORT.
    """
    import os

    import uvicorn

    from opsloop.config import load_settings

    settings = load_settings(database_url=database_url, blob_url=blob_url, token=token)
    # Workers re-create the app from settings in their own process: pass them by environment.
    os.environ["OPSLOOP_DATABASE_URL"] = settings.database_url
    os.environ["OPSLOOP_BLOB_URL"] = settings.blob_url
    if settings.token:
        os.environ["OPSLOOP_TOKEN"] = settings.token
    os.environ.pop("OPSLOOP_SERVER_URL", None)
    from opsloop.store.database import Store

    Store(settings.database_url)  # migrate once, before workers start
    typer.echo(
        f"opsloop server on http://{host}:{port}  (store: {settings.database_url}, blobs: {settings.blob_url})"
    )
    uvicorn.run(
        "opsloop.server.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="warning",
    )


def db_upgrade(
    database_url: Annotated[
        str | None, typer.Option(help="Metadata store URL (default: settings).")
    ] = None,
) -> None:
    """Bring the metadata store's schema up to date (the server and SDK also do this on open)."""
    from opsloop.config import load_settings
    from opsloop.store.database import Store
    from opsloop.store.migrate import SCHEMA_HEAD

    settings = load_settings(database_url=database_url)
    Store(settings.database_url)
    typer.echo(f"schema at {SCHEMA_HEAD}: {settings.database_url}")
