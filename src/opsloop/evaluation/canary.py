"""The verdict on a candidate's traffic: ``pass``, ``fail`` or ``inconclusive``, from the
window of its stats and a list of thresholds.

One implementation for every progressive rollout: the model deployments' controller
(:mod:`opsloop.serving.rollouts`) and the LLM gateway's (:mod:`opsloop.llm.gateway.rollout`)
both judge here, so a threshold means the same thing in both. Pure computation, no store.

A window is a dict of what the candidate did since its share last changed: ``requests``,
``errors``, latency percentiles (``latency_*`` keys, measured on the requests that did not fail),
quality metrics (any other key), and ``labeled``, how many requests carry a label or score for
the quality metrics. No traffic, or fewer samples than a check asks for, is *inconclusive*:
never a pass.
"""

from __future__ import annotations

from typing import Any
from typing import Protocol

__all__ = ["Threshold", "analyse"]


class Threshold(Protocol):
    """A bound on one metric of the window (serving's ``Check`` is one)."""

    @property
    def metric(self) -> str: ...
    @property
    def min(self) -> float | None: ...
    @property
    def max(self) -> float | None: ...
    @property
    def min_samples(self) -> int: ...


def _measure(check: Threshold, window: dict[str, Any]) -> tuple[float | None, int]:
    requests = int(window.get("requests", 0))
    if check.metric == "error_rate":
        return (window.get("errors", 0) / requests if requests else None), requests
    if check.metric.startswith("latency"):
        return window.get(check.metric), requests - int(window.get("errors", 0))
    return window.get(check.metric), int(window.get("labeled", 0))


def analyse(checks: list[Any], window: dict[str, Any]) -> tuple[str, list[str]]:
    """``pass``, ``fail`` or ``inconclusive`` for the window, with the reasons.

    ``checks`` are :class:`Threshold` objects; a failed bound wins over an unsure one.
    """
    if window.get("requests", 0) == 0:
        return "inconclusive", ["no traffic reached the candidate"]
    failed, unsure = [], []
    for check in checks:
        value, samples = _measure(check, window)
        if value is None or samples < check.min_samples:
            unsure.append(f"{check.metric}: {samples} of {check.min_samples} samples")
        elif check.max is not None and value > check.max:
            failed.append(f"{check.metric} {value:.4g} > max {check.max:g}")
        elif check.min is not None and value < check.min:
            failed.append(f"{check.metric} {value:.4g} < min {check.min:g}")
    if failed:
        return "fail", failed
    if unsure:
        return "inconclusive", unsure
    return "pass", []
