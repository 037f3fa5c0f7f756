"""``opsloop serve``: the inference server as its own process (see :mod:`opsloop.app.serving`)."""

from __future__ import annotations

from typing import Annotated
from typing import Any

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
    on: Annotated[
        str,
        typer.Option(
            help="uvicorn (this process and its --workers) or ray (a Ray Serve deployment on "
            "RAY_ADDRESS's cluster, else a local Ray; needs the ray-serve extra)."
        ),
    ] = "uvicorn",
    replicas: Annotated[
        int | None, typer.Option(help="With --on ray: this many replicas (default 1).")
    ] = None,
    autoscale: Annotated[
        str | None,
        typer.Option(help="With --on ray: MIN,MAX replicas, scaled by Ray Serve with load."),
    ] = None,
) -> None:
    """Run the inference server: POST /v1/deployments/NAME/predict, /feedback, GET /metrics.

    It also speaks MLflow's scoring protocol, as `mlflow models serve` does: POST /invocations
    (and /v1/deployments/NAME/invocations) with dataframe_split, dataframe_records, instances
    or inputs, answered {"predictions": [...]}; GET /ping, /health, /version.

    Every deployment's versions are loaded (and asked once) before the first request; on stop
    it drains: requests in flight finish, shadow copies finish, the prediction log is sealed.
    """
    import gc
    import os
    from importlib.util import find_spec

    scale = _ray_scale(on, workers, replicas, autoscale)  # None: uvicorn; checked before work
    if scale is None and workers == 1:
        # Until the app is ready (opsloop.app.serving.serving_app_from_env resumes it), the
        # cyclic collector is paused: the start makes ~230,000 objects that live as long as the
        # process, and the collector went over them all again at each full collection (4 of
        # them by the first prediction), finding a few dozen cycles of garbage.
        gc.disable()
    if find_spec("sklearn") is not None:
        # Before the server's modules (uvicorn's, the app's): at the first model load, skops
        # (the scikit-learn flavor) finds the module of each of SciPy's 230 ufuncs by scanning
        # sys.modules in import order until one holds it. Imported here, SciPy's modules sit
        # ~460 entries in, not ~1,100: the same names from shorter scans (serve's CPU to ready
        # 3.7 -> 3.2 s on a loaded 2-core box). Serving only other flavors, this import costs
        # ~0.4 s of CPU there (with NumPy's, which those flavors import anyway).
        from opsloop.registry.sklearn_imports import scipy_docs_as_written

        with scipy_docs_as_written():
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
    if scale is not None:
        _serve_on_ray(host, port, scale)
        return
    typer.echo(f"opsloop serve on http://{host}:{port}  (POST /v1/deployments/NAME/predict)")
    # ws="none": the inference app has no WebSocket route, and uvicorn's default ("auto")
    # imports the websockets library for one before it listens.
    uvicorn.run(
        "opsloop.app.serving:serving_app_from_env", host=host, port=port, workers=workers,
        factory=True, log_level="warning", timeout_graceful_shutdown=30, ws="none",
    )  # fmt: skip


def _ray_scale(on: str, workers: int, replicas: int | None, autoscale: str | None) -> Any:
    """The Ray Serve scale ``--on ray`` asks for (checked, with Ray Serve importable), or None
    for uvicorn; ``InvalidInput`` for options that do not go together."""
    if on == "uvicorn" and replicas is None and autoscale is None:
        return None
    from opsloop.errors import InvalidInput
    from opsloop.serving.ray_serve import import_serve
    from opsloop.serving.ray_serve import read_scale

    if on not in ("uvicorn", "ray"):
        raise InvalidInput(f"--on {on}: choose uvicorn or ray")
    if on != "ray":
        raise InvalidInput("--replicas and --autoscale scale a Ray Serve deployment: add --on ray")
    if workers != 1:
        raise InvalidInput("--workers is for uvicorn: with --on ray, use --replicas N")
    scale = read_scale(replicas, autoscale)
    import_serve()
    return scale


def _serve_on_ray(host: str, port: int, scale: Any) -> None:
    """``--on ray``: the same app, built by each Ray Serve replica from the same factory."""
    import os
    from pathlib import Path

    from opsloop.app.serving import serving_app_from_env
    from opsloop.config import home_dir
    from opsloop.serving.ray_serve import run_on_ray

    # What the replicas read their settings from, as uvicorn's workers do (they may start in
    # another working directory, so the home and the local opsloop.toml are named outright).
    environment = {k: v for k, v in os.environ.items() if k.startswith("OPSLOOP_")}
    environment["OPSLOOP_HOME"] = str(home_dir().resolve())
    config = Path(os.environ.get("OPSLOOP_CONFIG") or "opsloop.toml")
    if config.is_file():
        environment["OPSLOOP_CONFIG"] = str(config.resolve())
    run_on_ray(
        serving_app_from_env, host=host, port=port, scale=scale, environment=environment,
        ready=typer.echo,
    )  # fmt: skip
