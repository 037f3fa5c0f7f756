"""Ray for whatever runs on it (pipeline steps and tuning trials, batch inference): the cluster
``RAY_ADDRESS`` names, else a local instance started on first use, one per process.

Ray is an optional extra, so its absence is an ``InvalidInput`` that says what to install.
``ray.init`` waits minutes on an address nobody answers, so a ``host:port`` address is tried
first: ``UpstreamFailed`` in seconds, naming it.
"""

from __future__ import annotations

import os
import socket
from typing import Any

from opsloop.errors import InvalidInput
from opsloop.errors import UpstreamFailed

__all__ = ["connect_ray"]

PROBE_SECONDS = 5.0


def connect_ray(needs: str = "the ray executor") -> Any:
    """The ``ray`` module, connected. ``needs`` names what asked, for the message when Ray is
    not installed (``"<needs> needs Ray: pip install 'opsloop[ray]'"``)."""
    try:
        import ray
    except ImportError:
        raise InvalidInput(f"{needs} needs Ray: pip install 'opsloop[ray]'") from None
    if not ray.is_initialized():
        _probe(os.environ.get("RAY_ADDRESS") or "")
        ray.init(
            address=os.environ.get("RAY_ADDRESS") or None,
            include_dashboard=False,
            log_to_driver=False,
        )
    return ray


def _probe(address: str) -> None:
    """Raise ``UpstreamFailed`` when ``address`` (``[ray://]host:port``) does not answer."""
    host, _, port = address.split("://")[-1].rpartition(":")
    if not (host and port.isdigit()):
        return
    try:
        socket.create_connection((host, int(port)), timeout=PROBE_SECONDS).close()
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise UpstreamFailed(
            f"Ray at {address} (RAY_ADDRESS) cannot be reached: {reason}"
        ) from None
