"""Ray for whatever runs on it (pipeline steps and tuning trials, batch inference): the cluster
``RAY_ADDRESS`` names, else a local instance started on first use, one per process.

Ray is an optional extra, so its absence is an ``InvalidInput`` that says what to install.
"""

from __future__ import annotations

import os
from typing import Any

from opsloop.errors import InvalidInput

__all__ = ["connect_ray"]


def connect_ray(needs: str = "the ray executor") -> Any:
    """The ``ray`` module, connected. ``needs`` names what asked, for the message when Ray is
    not installed (``"<needs> needs Ray: pip install 'opsloop[ray]'"``)."""
    try:
        import ray
    except ImportError:
        raise InvalidInput(f"{needs} needs Ray: pip install 'opsloop[ray]'") from None
    if not ray.is_initialized():
        ray.init(
            address=os.environ.get("RAY_ADDRESS") or None,
            include_dashboard=False,
            log_to_driver=False,
        )
    return ray
