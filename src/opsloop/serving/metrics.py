"""Prometheus metrics of the inference endpoint, per deployment and version.

Latency histograms are in seconds with sub-millisecond buckets, since a small model answers
in a fraction of a millisecond and the default buckets (5 ms and up) would hide it.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry
from prometheus_client import Counter
from prometheus_client import Gauge
from prometheus_client import Histogram
from prometheus_client import generate_latest

__all__ = ["ServingMetrics"]

LATENCY_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                   0.25, 0.5, 1.0, 2.5, 5.0)  # fmt: skip
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)


class ServingMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        labels = ["deployment", "version"]
        self.requests = Counter(
            "opsloop_predict_requests", "Prediction requests answered, by outcome",
            [*labels, "status"], registry=self.registry,
        )  # fmt: skip
        self.latency = Histogram(
            "opsloop_predict_latency_seconds", "Time to answer a prediction request",
            labels, buckets=LATENCY_BUCKETS, registry=self.registry,
        )  # fmt: skip
        self.in_flight = Gauge(
            "opsloop_predict_in_flight", "Prediction requests being answered now",
            ["deployment"], registry=self.registry,
        )  # fmt: skip
        self.batch_size = Histogram(
            "opsloop_predict_batch_rows", "Rows per model call (micro-batches merge requests)",
            labels, buckets=BATCH_BUCKETS, registry=self.registry,
        )  # fmt: skip
        self.shadow = Counter(
            "opsloop_shadow_requests", "Copies of requests sent to shadow versions, by outcome",
            [*labels, "status"], registry=self.registry,
        )  # fmt: skip

    def render(self) -> bytes:
        return generate_latest(self.registry)
