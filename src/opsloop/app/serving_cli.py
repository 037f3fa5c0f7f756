"""``opsloop serve``: the inference server as its own process (see :mod:`opsloop.app.serving`)."""

from __future__ import annotations

from typing import Annotated

import typer

__all__ = ["serve"]


def serve(
    host: Annotated[
        str, typer.Option(envvar="OPSLOOP_SERVE_HOST", help="Interface to bind.")
    ] = "127.0.0.1",
    port: Annotated[
        int, typer.Option(envvar="OPSLOOP_SERVE_PORT", help="Port to listen on.")
    ] = 8080,
    workers: Annotated[int, typer.Option(help="Worker processes.")] = 1,
    metrics_token: Annotated[
        str | None,
        typer.Option(
            envvar="OPSLOOP_METRICS_TOKEN",
            help="A scrape token accepted on /metrics only (the server token is accepted too).",
        ),
    ] = None,
    deployment: Annotated[
        str | None,
        typer.Option(
            envvar="OPSLOOP_SERVE_DEPLOYMENT",
            help="The deployment POST /invocations answers for, and the only one loaded at "
            "start (default: all are loaded; /invocations answers if there is only one).",
        ),
    ] = None,
) -> None:
    """Run the inference server: POST /v1/deployments/NAME/predict, /feedback, GET /metrics.

    It also speaks MLflow's scoring protocol, as `mlflow models serve` does: POST /invocations
    (and /v1/deployments/NAME/invocations) with dataframe_split, dataframe_records, instances
    or inputs, answered {"predictions": [...]}; GET /ping, /health, /version.

    Every deployment's versions are loaded (and asked once) before the first request; on stop
    it drains: requests in flight finish, shadow copies finish, the prediction log is sealed.
    """
    import os
    from importlib.util import find_spec

    if find_spec("sklearn") is not None:
        # Before the server's modules (uvicorn's, the app's): at the first model load, skops
        # (the scikit-learn flavor) finds the module of each of SciPy's 230 ufuncs by scanning
        # sys.modules in import order until one holds it. Imported here, SciPy's modules sit
        # ~460 entries in, not ~1,100: the same names from shorter scans (serve's CPU to ready
        # 3.7 -> 3.2 s on a loaded 2-core box). Serving only other flavors, this import costs
        # ~0.4 s of CPU there (with NumPy's, which those flavors import anyway).
        import scipy.special  # noqa: F401

    import uvicorn

    from opsloop.config import load_settings

    settings = load_settings(metrics_token=metrics_token)
    os.environ["OPSLOOP_DATABASE_URL"] = settings.database_url
    os.environ["OPSLOOP_BLOB_URL"] = settings.blob_url
    if settings.metrics_token:  # the workers read their settings from the environment
        os.environ["OPSLOOP_METRICS_TOKEN"] = settings.metrics_token
    if deployment:  # opsloop.app.serving.DEPLOYMENT_ENV (not imported: it loads FastAPI)
        os.environ["OPSLOOP_SERVE_DEPLOYMENT"] = deployment
    typer.echo(f"opsloop serve on http://{host}:{port}  (POST /v1/deployments/NAME/predict)")
    uvicorn.run(
        "opsloop.app.serving:serving_app_from_env", host=host, port=port, workers=workers,
        factory=True, log_level="warning", timeout_graceful_shutdown=30,
    )  # fmt: skip
