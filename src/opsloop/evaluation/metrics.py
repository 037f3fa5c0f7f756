"""The numbers an evaluation reports, computed with scikit-learn.

Classification: accuracy, precision, recall and F1 (binary for two classes, macro-averaged
otherwise), ROC AUC, log loss and Brier score when probabilities exist, the confusion matrix
and a calibration curve with its expected calibration error. Regression: RMSE, MAE, R²,
MAPE and max error. ``slice_metrics`` repeats them per value of a column (numeric columns with
many values are cut into quartiles). Every metric's direction is known, so gates can say
"better" without being told.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from opsloop.errors import InvalidInput

__all__ = [
    "CLASSIFICATION_METRICS",
    "LOWER_IS_BETTER",
    "REGRESSION_METRICS",
    "TASKS",
    "calibration",
    "classification_metrics",
    "confusion",
    "known_metrics",
    "regression_metrics",
    "slice_metrics",
]

TASKS = ("classification", "regression")
CLASSIFICATION_METRICS = (
    "accuracy",
    "precision",
    "recall",
    "f1",
    "roc_auc",
    "log_loss",
    "brier",
    "ece",
)
REGRESSION_METRICS = ("rmse", "mae", "r2", "mape", "max_error")
LATENCY_METRICS = ("latency_p50_ms", "latency_p99_ms")
LOWER_IS_BETTER = frozenset(
    {"log_loss", "brier", "ece", "rmse", "mae", "mape", "max_error", *LATENCY_METRICS}
)
_SLICE_BINS = 4
_MAX_SLICE_VALUES = 20


def known_metrics(task: str) -> tuple[str, ...]:
    """Every metric an evaluation of ``task`` reports (what a gate may name)."""
    if task == "classification":
        return (*CLASSIFICATION_METRICS, *LATENCY_METRICS)
    if task == "regression":
        return (*REGRESSION_METRICS, *LATENCY_METRICS)
    raise InvalidInput(f"unknown task {task!r}; one of {list(TASKS)}")


def _finite(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None


def classification_metrics(
    y_true: Any, y_pred: Any, proba: Any = None, classes: list[Any] | None = None
) -> dict[str, float | None]:
    from sklearn import metrics

    labels = list(classes) if classes is not None else sorted(set(y_true) | set(y_pred))
    binary = len(labels) == 2
    average = "binary" if binary else "macro"
    kw: dict[str, Any] = {"average": average, "zero_division": 0}
    if binary:
        kw["pos_label"] = labels[1]
    out: dict[str, float | None] = {
        "accuracy": float(metrics.accuracy_score(y_true, y_pred)),
        "precision": float(metrics.precision_score(y_true, y_pred, **kw)),
        "recall": float(metrics.recall_score(y_true, y_pred, **kw)),
        "f1": float(metrics.f1_score(y_true, y_pred, **kw)),
        "roc_auc": None,
        "log_loss": None,
        "brier": None,
        "ece": None,
    }
    if proba is not None and len(set(y_true)) > 1:
        proba = np.asarray(proba, dtype=float)
        if binary:
            positive = proba[:, 1] if proba.ndim == 2 else proba
            truth = (np.asarray(y_true) == labels[1]).astype(int)
            out["roc_auc"] = float(metrics.roc_auc_score(truth, positive))
            out["brier"] = float(metrics.brier_score_loss(truth, positive))
            out["ece"] = calibration(truth, positive)["ece"]
        else:
            out["roc_auc"] = float(
                metrics.roc_auc_score(y_true, proba, multi_class="ovr", labels=labels)
            )
        out["log_loss"] = _finite(metrics.log_loss(y_true, proba, labels=labels))
    return out


def regression_metrics(y_true: Any, y_pred: Any) -> dict[str, float | None]:
    from sklearn import metrics

    truth = np.asarray(y_true, dtype=float)
    pred = np.asarray(y_pred, dtype=float)
    return {
        "rmse": float(np.sqrt(metrics.mean_squared_error(truth, pred))),
        "mae": float(metrics.mean_absolute_error(truth, pred)),
        "r2": _finite(metrics.r2_score(truth, pred)) if len(truth) > 1 else None,
        "mape": _finite(metrics.mean_absolute_percentage_error(truth, pred)),
        "max_error": float(metrics.max_error(truth, pred)),
    }


def confusion(y_true: Any, y_pred: Any, classes: list[Any] | None = None) -> dict[str, Any]:
    from sklearn.metrics import confusion_matrix

    labels = list(classes) if classes is not None else sorted(set(y_true) | set(y_pred))
    matrix = confusion_matrix(y_true, y_pred, labels=labels)
    return {"labels": [_jsonable(v) for v in labels], "matrix": matrix.tolist()}


def calibration(truth: Any, positive: Any, bins: int = 10) -> dict[str, Any]:
    """Reliability curve over equal-width bins and the expected calibration error."""
    truth = np.asarray(truth, dtype=float)
    positive = np.clip(np.asarray(positive, dtype=float), 0.0, 1.0)
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(positive, edges[1:-1]), 0, bins - 1)
    counts = np.bincount(which, minlength=bins)
    predicted = np.bincount(which, weights=positive, minlength=bins)
    observed = np.bincount(which, weights=truth, minlength=bins)
    filled = counts > 0
    mean_predicted = np.where(filled, predicted / np.maximum(counts, 1), np.nan)
    fraction_positive = np.where(filled, observed / np.maximum(counts, 1), np.nan)
    ece = float(
        np.sum(counts[filled] * np.abs(mean_predicted[filled] - fraction_positive[filled]))
        / max(len(truth), 1)
    )
    return {
        "bin_edges": edges.tolist(),
        "count": counts.tolist(),
        "mean_predicted": [None if np.isnan(v) else float(v) for v in mean_predicted],
        "fraction_positive": [None if np.isnan(v) else float(v) for v in fraction_positive],
        "ece": ece,
    }


def _jsonable(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value


def _slice_keys(column: Any) -> tuple[Any, list[str]]:
    """Group labels for a column: its values, or quartile ranges for a many-valued number."""
    import pandas as pd

    if pd.api.types.is_numeric_dtype(column.dtype) and column.nunique() > _MAX_SLICE_VALUES:
        binned = pd.qcut(column, _SLICE_BINS, duplicates="drop")
        names = {c: f"({c.left:.4g}, {c.right:.4g}]" for c in binned.cat.categories}
        return binned.map(names).astype(str), list(names.values())
    values = column.astype(str)
    order = list(values.value_counts().index[:_MAX_SLICE_VALUES])
    return values, order


def slice_metrics(
    frame: Any,
    columns: list[str],
    y_true: Any,
    y_pred: Any,
    proba: Any,
    task: str,
    classes: list[Any] | None = None,
) -> dict[str, dict[str, dict[str, Any]]]:
    """``{column: {slice label: {"rows": n, metric: value, ...}}}`` for each slicing column."""
    truth = np.asarray(y_true)
    pred = np.asarray(y_pred)
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for name in columns:
        if name not in frame.columns:
            raise InvalidInput(f"cannot slice by {name!r}: the data has no such column")
        keys, order = _slice_keys(frame[name])
        keys = np.asarray(keys)
        per: dict[str, dict[str, Any]] = {}
        for label in order:
            mask = keys == label
            if not mask.any():
                continue
            if task == "classification":
                numbers = classification_metrics(
                    truth[mask],
                    pred[mask],
                    None if proba is None else np.asarray(proba)[mask],
                    classes,
                )
            else:
                numbers = regression_metrics(truth[mask], pred[mask])
            per[label] = {"rows": int(mask.sum()), **numbers}
        out[name] = per
    return out
