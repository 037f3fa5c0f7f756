"""``/healthz`` and ``/readyz``: is the server alive, and can it do its work.

``/healthz`` answers from the metadata store alone (one ``SELECT 1``), cheap enough for a load
balancer to ask every second. ``/healthz?deep=1`` and ``/readyz`` also prove the blob store:
they write and read back one tiny probe blob (content-addressed, so always the same one). That
is what the first ``data push`` or ``log_model`` needs, so a server whose S3 credentials,
bucket or permissions are wrong says so here instead of answering "ok" and failing later.
Each store is reported on its own; any failure is a 503. Both also say which of the jobs that
one server of several runs (the scheduler, the rollout controllers) this one leads: ``leases``,
each with ``leader``, this process's ``holder`` name, the ``epoch`` it leads at, the ``last_tick``
it ran and who ``held_by`` the lease when it last asked.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from fastapi import Request
from fastapi import Response

from opsloop.kernel import __version__
from opsloop.store.blobs import BlobStore
from opsloop.web.deps import State
from opsloop.web.openapi import error_response

__all__ = ["install_health", "lease_report"]

PROBE = b"opsloop blob store probe\n"


def _probe_blobs(blobs: BlobStore) -> None:
    digest = blobs.put_bytes(PROBE)
    if blobs.read_bytes(digest) != PROBE:
        raise OSError("the probe blob read back differs from what was written")


def _check(probe: Callable[[], None]) -> dict[str, str]:
    try:
        probe()
    except Exception as exc:  # any failure is the report's content, not the server's error
        return {"status": "error", "error": f"{type(exc).__name__}: {str(exc)[:300]}"}
    return {"status": "ok"}


def lease_report(app: Any) -> dict[str, Any]:
    """Each lease this process takes part in, by name (empty until the app has started)."""
    return {lease.name: lease.status() for lease in getattr(app.state, "leases", [])}


def _deep(state: Any, response: Response) -> dict[str, Any]:
    checks = {
        "metadata": _check(state.store.ping),
        "blobs": _check(lambda: _probe_blobs(state.blobs)),
    }
    healthy = all(c["status"] == "ok" for c in checks.values())
    if not healthy:
        response.status_code = 503
    return {"status": "ok" if healthy else "error", "version": __version__, "checks": checks}


def install_health(app: FastAPI) -> None:
    """Add ``/healthz`` and ``/readyz`` (open: no token, as probes expect)."""
    down = {503: error_response("a store is down")}

    @app.get("/healthz", tags=["meta"], responses=down)
    def healthz(
        state: State, request: Request, response: Response, deep: bool = False
    ) -> dict[str, Any]:
        """200 when the metadata store answers, 503 when it does not; with ``deep=1`` the
        blob store too (a probe written and read back), each store reported on its own;
        ``leases``: which jobs of one-server-of-several this process leads."""
        if deep:
            return {**_deep(state, response), "leases": lease_report(request.app)}
        state.store.ping()
        return {"status": "ok", "version": __version__, "leases": lease_report(request.app)}

    @app.get("/readyz", tags=["meta"], responses=down)
    def readyz(state: State, request: Request, response: Response) -> dict[str, Any]:
        """``/healthz?deep=1``: both stores, for a readiness probe."""
        return {**_deep(state, response), "leases": lease_report(request.app)}
