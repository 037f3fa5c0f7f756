"""The Prometheus registry of opsloop's own gauges beyond serving's request metrics (open
alerts, monitored values): any domain may add to it, and ``/metrics`` exposes it, so a server
shows what monitoring measured without serving importing monitoring."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

__all__ = ["REGISTRY"]

REGISTRY = CollectorRegistry()
