"""``opsloop serve --on ray``: the inference app as a Ray Serve deployment.

Each replica is a Ray actor (a process of its own) that builds the very app ``opsloop serve``
runs under uvicorn, from the factory it is handed, so traffic policies, micro-batching,
canary / shadow / A-B, metrics and the prediction log behave the same; Ray Serve's proxy
answers HTTP on the host and port ``opsloop serve`` takes and spreads requests over the
replicas (a fixed number, or between a minimum and a maximum as load asks).

The replicas share ``$OPSLOOP_HOME``: each appends to its own prediction journal (the file
names the writer's pid), so several writers never share a file; a rollout or monitor reading
the log sees every replica's rows on this host. The app's lifespan runs in each replica: it
warms its models up before Ray Serve counts it ready, and on shutdown it drains and seals its
journal. A Ray cluster of several hosts gives each host its own home, so there a reader sees
only its host's replicas.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import signal
import socket
import threading
from collections.abc import Callable
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from opsloop.errors import InvalidInput
from opsloop.kernel.ray_cluster import connect_ray

__all__ = ["APP_NAME", "Scale", "import_serve", "read_scale", "run_on_ray"]

APP_NAME = "opsloop"  # the Ray Serve application (and deployment) name
# Requests one replica takes at once: Ray Serve's default (5) would starve micro-batching,
# which shares one ``predict`` among the requests in flight; 100 was Ray's own default before.
MAX_ONGOING_REQUESTS = 100
_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)  # Ctrl-C, or a service manager's stop


@dataclass(frozen=True)
class Scale:
    """How many replicas: ``replicas`` fixed, or ``autoscale`` as (min, max)."""

    replicas: int = 1
    autoscale: tuple[int, int] | None = None

    def options(self) -> dict[str, Any]:
        """The scale as ``serve.deployment`` options."""
        if self.autoscale is None:
            return {"num_replicas": self.replicas}
        low, high = self.autoscale
        return {"autoscaling_config": {"min_replicas": low, "max_replicas": high}}

    def describe(self) -> str:
        if self.autoscale is None:
            return f"{self.replicas} replica{'s' if self.replicas != 1 else ''}"
        return f"{self.autoscale[0]} to {self.autoscale[1]} replicas"


def read_scale(replicas: int | None, autoscale: str | None) -> Scale:
    """The scale ``--replicas N`` or ``--autoscale MIN,MAX`` asks for (1 replica by default).

    Raises:
        InvalidInput: both given, a count below 1, or a range that is not ``MIN,MAX`` with
            ``1 <= MIN <= MAX``.
    """
    if replicas is not None and autoscale is not None:
        raise InvalidInput("give --replicas N or --autoscale MIN,MAX, not both")
    if autoscale is None:
        if replicas is not None and replicas < 1:
            raise InvalidInput(f"--replicas must be at least 1, got {replicas}")
        return Scale(replicas=replicas or 1)
    low, _, high = autoscale.partition(",")
    try:
        bounds = int(low), int(high)
    except ValueError:
        raise InvalidInput(
            f"--autoscale takes MIN,MAX replicas (e.g. 1,4), got {autoscale!r}"
        ) from None
    if not 1 <= bounds[0] <= bounds[1]:
        raise InvalidInput(
            f"--autoscale {autoscale}: needs 1 <= MIN <= MAX (at least one replica stays up "
            "to warm models and log predictions)"
        )
    return Scale(autoscale=bounds)


def import_serve() -> Any:
    """``ray.serve``, or ``InvalidInput`` naming the extra that installs it (Ray alone, without
    Serve's packages, fails the same way)."""
    try:
        serve = importlib.import_module("ray.serve")
    except ImportError:
        raise InvalidInput(
            "opsloop serve --on ray needs Ray Serve: pip install 'opsloop[ray-serve]'"
        ) from None
    return serve


def _deployment(serve: Any, factory: Callable[[], Any], environment: Mapping[str, str]) -> Any:
    """The Ray Serve deployment whose replicas each build their app with ``factory``, after
    taking ``environment`` (the settings the app reads) into their own process."""
    environment = dict(environment)

    def build() -> Any:  # runs in each replica, when it starts
        os.environ.update(environment)
        return factory()

    return serve.deployment(serve.ingress(build)())


def run_on_ray(
    factory: Callable[[], Any],
    *,
    host: str,
    port: int,
    scale: Scale,
    environment: Mapping[str, str],
    ready: Callable[[str], None] = print,
) -> None:
    """Serve ``factory``'s app on Ray Serve at ``host:port`` until SIGINT or SIGTERM, then
    drain the replicas (each seals its prediction journal) and let Ray go.

    ``factory`` must be importable by name (a module-level function): Ray sends it to the
    replicas by reference. The Ray instance is ``RAY_ADDRESS``'s, else a local one started
    here; on a cluster this started nothing on, only this application is deleted.

    Raises:
        InvalidInput: Ray Serve is not installed, or ``host:port`` is taken.
    """
    serve = import_serve()
    owns_ray = not os.environ.get("RAY_ADDRESS")
    if owns_ray:  # Serve's proxy listens here: say so now, not in a traceback from its actor
        _check_free(host, port)
    ray = connect_ray("opsloop serve --on ray")
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in _STOP_SIGNALS}
    logging.getLogger("ray.serve").setLevel(logging.WARNING)  # its INFO lines per replica
    try:
        serve.start(http_options={"host": host, "port": port})
        options = {"name": APP_NAME, "max_ongoing_requests": MAX_ONGOING_REQUESTS}
        deployment = _deployment(serve, factory, environment).options(**options, **scale.options())
        serve.run(deployment.bind(), name=APP_NAME, route_prefix="/", blocking=False)
        ready(f"opsloop serve on http://{host}:{port}  ({scale.describe()} on Ray Serve)")
        while not stop.wait(1.0):
            pass
    finally:
        with contextlib.suppress(Exception):  # Serve already gone: Ray still stops
            if owns_ray:
                serve.shutdown()  # each replica's lifespan ends: drained, journal sealed
            else:
                serve.delete(APP_NAME)
        ray.shutdown()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _check_free(host: str, port: int) -> None:
    """``InvalidInput`` when nothing can listen on ``host:port`` (taken, or not this host's)."""
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind((host, port))
    except OSError as exc:
        raise InvalidInput(
            f"cannot listen on {host}:{port} ({exc.strerror or exc}): choose another --port"
        ) from None
