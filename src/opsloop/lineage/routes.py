"""The lineage REST path, written once (see :mod:`opsloop.kernel.routes`)."""

from __future__ import annotations

from opsloop.kernel.routes import Route

__all__ = ["LINEAGE"]

LINEAGE = Route("/lineage")
