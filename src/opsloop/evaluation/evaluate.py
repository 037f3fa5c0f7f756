"""Evaluating a model on a table: metrics, slices, confusion, calibration, latency and plots.

``evaluate_frame`` is pure computation over a loaded model and a DataFrame; the SDK and the
promotion gate call it and store its report. Predict latency is measured one row at a time
(what a serving request pays), on up to ``latency_samples`` rows, after a warm-up call.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from opsloop.errors import InvalidInput
from opsloop.evaluation.metrics import TASKS
from opsloop.evaluation.metrics import calibration
from opsloop.evaluation.metrics import classification_metrics
from opsloop.evaluation.metrics import confusion
from opsloop.evaluation.metrics import regression_metrics
from opsloop.evaluation.metrics import slice_metrics

__all__ = ["evaluate_frame"]


def _latency(model: Any, features: Any, samples: int) -> dict[str, float]:
    if samples <= 0 or len(features) == 0:
        return {}
    rows = features.iloc[: min(samples, len(features))]
    model.predict(rows.iloc[:1])  # warm-up: first-call costs are not serving latency
    timings = []
    for i in range(len(rows)):
        one = rows.iloc[i : i + 1]
        start = time.perf_counter()
        model.predict(one)
        timings.append((time.perf_counter() - start) * 1000)
    return {
        "latency_p50_ms": float(np.percentile(timings, 50)),
        "latency_p99_ms": float(np.percentile(timings, 99)),
    }


def evaluate_frame(
    model: Any,
    frame: Any,
    *,
    target: str,
    task: str | None = None,
    slices: list[str] | None = None,
    latency_samples: int = 200,
    plots: bool = True,
) -> dict[str, Any]:
    """Evaluate ``model`` (a ``LoadedModel`` or anything with ``predict``) on ``frame``.

    Returns the report as plain JSON-able data: ``task``, ``target``, ``rows``, ``metrics``,
    ``slices``, ``confusion_matrix`` and ``calibration`` (classification), ``plots`` (SVG text).

    Raises:
        InvalidInput: No ``target`` column, an unknown task, an empty table.
    """
    meta = getattr(model, "meta", None)
    task = task or (meta.task if meta is not None else None)
    if task not in TASKS:
        raise InvalidInput(
            f"pass task= one of {list(TASKS)} (the model does not say), got {task!r}"
        )
    if target not in frame.columns:
        raise InvalidInput(
            f"the data has no target column {target!r}; columns: {list(frame.columns)[:20]}"
        )
    if len(frame) == 0:
        raise InvalidInput("cannot evaluate on an empty table")
    features = frame.drop(columns=[target])
    truth = frame[target].to_numpy()
    predicted = np.asarray(model.predict(features))
    if predicted.ndim > 1 and predicted.shape[1] == 1:
        predicted = predicted.ravel()
    classes = getattr(model, "classes", None) or getattr(model, "classes_", None)
    classes = list(classes) if classes is not None else None
    report: dict[str, Any] = {"task": task, "target": target, "rows": len(frame)}
    proba = None
    if task == "classification":
        if hasattr(model, "predict_proba"):
            try:
                proba = np.asarray(model.predict_proba(features))
            except (InvalidInput, AttributeError):
                proba = None
        numbers = classification_metrics(truth, predicted, proba, classes)
        report["confusion_matrix"] = confusion(truth, predicted, classes)
        if proba is not None and proba.ndim == 2 and proba.shape[1] == 2:
            labels = classes or sorted(set(truth))
            report["calibration"] = calibration(truth == labels[1], proba[:, 1])
    else:
        numbers = regression_metrics(truth, predicted)
    numbers.update(_latency(model, features, latency_samples))
    report["metrics"] = numbers
    report["slices"] = slice_metrics(
        features, list(slices or []), truth, predicted, proba, task, classes
    )
    report["plots"] = _plots(report, truth, predicted) if plots else {}
    return report


def _plots(report: dict[str, Any], truth: Any, predicted: Any) -> dict[str, str]:
    """SVG figures: confusion matrix and reliability curve, or predicted-vs-actual."""
    from opsloop.evaluation.plots import calibration_svg
    from opsloop.evaluation.plots import confusion_svg
    from opsloop.evaluation.plots import predicted_vs_actual_svg

    if report["task"] == "classification":
        out = {"confusion_matrix": confusion_svg(report["confusion_matrix"])}
        if "calibration" in report:
            out["calibration"] = calibration_svg(report["calibration"])
        return out
    return {"predicted_vs_actual": predicted_vs_actual_svg(truth, predicted)}
