"""Prometheus metrics of the inference endpoint, per deployment and version.

Latency histograms are in seconds with sub-millisecond buckets, since a small model answers
in a fraction of a millisecond and the default buckets (5 ms and up) would hide it.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Iterator
from typing import Protocol

from prometheus_client import CollectorRegistry
from prometheus_client import Counter
from prometheus_client import Gauge
from prometheus_client import Histogram
from prometheus_client import generate_latest
from prometheus_client.metrics_core import Metric

__all__ = ["SealedLog", "ServingMetrics", "watch_seals"]

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


class SealedLog(Protocol):
    """What the seal metrics read of a prediction log (``PredictionLog``)."""

    @property
    def seal_failures_total(self) -> int: ...

    @property
    def seal_failing_passes(self) -> int: ...

    def unsealed_age_s(self) -> float: ...


class _SealCollector:
    """The seal metrics of every open prediction log of this process, read at each scrape
    (so a log need not push them, and a closed one drops out with its last reference)."""

    def __init__(self) -> None:
        self.logs: weakref.WeakSet[SealedLog] = weakref.WeakSet()
        self.registered = False

    def collect(self) -> Iterator[Metric]:
        from prometheus_client.core import CounterMetricFamily
        from prometheus_client.core import GaugeMetricFamily

        logs = list(self.logs)
        yield CounterMetricFamily(
            "opsloop_prediction_seal_failures",
            "Seal passes of the prediction log that the shared store (or stream) refused",
            value=sum(log.seal_failures_total for log in logs),
        )
        yield GaugeMetricFamily(
            "opsloop_prediction_seal_failing_passes",
            "Seal passes failed in a row now (0: the last pass stored everything)",
            value=max((log.seal_failing_passes for log in logs), default=0),
        )
        yield GaugeMetricFamily(
            "opsloop_prediction_unsealed_age_seconds",
            "Age of the oldest prediction-log row not yet in the shared store (0: none)",
            value=max((log.unsealed_age_s() for log in logs), default=0.0),
        )


_SEALS = _SealCollector()
_REGISTERED = threading.Lock()


def watch_seals(log: SealedLog) -> None:
    """Expose ``log``'s seal health on the kernel registry (``/metrics`` of ``opsloop serve``
    and ``opsloop server``): failed passes in total and in a row, and the oldest unsealed
    row's age, which is what says a replica's rows are not reaching the other replicas."""
    from opsloop.kernel.metrics import REGISTRY

    with _REGISTERED:
        if not _SEALS.registered:
            REGISTRY.register(_SEALS)
            _SEALS.registered = True
        _SEALS.logs.add(log)
