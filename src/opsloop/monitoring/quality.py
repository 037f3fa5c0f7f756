"""Model quality on a window: measured where ground truth has arrived, estimated where it has not.

Measured: accuracy, F1 and ROC AUC for classifiers, RMSE and MAE for regressors, over the rows
whose labels were joined. Estimated: confidence-based performance estimation (CBPE, as NannyML
does it) for classifiers. If the model's probabilities are calibrated, a row scored ``p`` is
right with probability ``p``; summing those gives the expected confusion matrix of the window,
and from it accuracy, precision, recall, F1 and ROC AUC, with no label at all. Calibration is
fitted once, on the labelled reference data (isotonic regression), and stored with the monitor.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["calibration", "estimate", "measured"]


def measured(
    predictions: list[Any], labels: list[Any], task: str, scores: np.ndarray | None = None
) -> dict[str, float]:
    """Realised quality over the labelled rows (``labelled`` counts them).

    Plain NumPy, as scikit-learn computes them (a test compares): importing ``sklearn.metrics``
    costs a check more than a second, more than everything else it does."""
    keep = [i for i, label in enumerate(labels) if label is not None]
    out: dict[str, float] = {"labelled": float(len(keep))}
    if not keep:
        return out
    y_true = [labels[i] for i in keep]
    y_pred = [predictions[i] for i in keep]
    if task == "regression":
        t, p = np.asarray(y_true, dtype=float), np.asarray(y_pred, dtype=float)
        out["rmse"] = float(np.sqrt(np.mean((t - p) ** 2)))
        out["mae"] = float(np.mean(np.abs(t - p)))
        return out
    out["accuracy"] = sum(bool(t == p) for t, p in zip(y_true, y_pred, strict=True)) / len(keep)
    true_s, pred_s = np.array(list(map(str, y_true))), np.array(list(map(str, y_pred)))
    classes = sorted({*true_s.tolist(), *pred_s.tolist()})
    binary = len(classes) == 2
    pos = classes[-1]
    out["f1"] = _f1(true_s, pred_s, pos) if binary else float(
        np.mean([_f1(true_s, pred_s, c) for c in classes])
    )  # fmt: skip
    if scores is not None and binary and len(set(true_s.tolist())) == 2:
        truth = (true_s == pos).astype(float)
        auc = _expected_auc(np.asarray(scores, dtype=float)[keep], truth)
        if auc is not None:
            out["roc_auc"] = auc
    return out


def _f1(true_s: np.ndarray, pred_s: np.ndarray, label: str) -> float:
    """F1 of one class (0 where it is never true nor predicted, sklearn's zero_division=0)."""
    tp = float(np.sum((true_s == label) & (pred_s == label)))
    wrong = float(np.sum((true_s == label) != (pred_s == label)))
    return 2 * tp / (2 * tp + wrong) if 2 * tp + wrong > 0 else 0.0


def calibration(scores: np.ndarray, truth: np.ndarray) -> dict[str, list[float]]:
    """An isotonic map from the model's positive-class score to the observed positive rate."""
    from sklearn.isotonic import IsotonicRegression

    fitted = IsotonicRegression(out_of_bounds="clip", y_min=0, y_max=1).fit(scores, truth)
    return {"x": fitted.X_thresholds_.tolist(), "y": fitted.y_thresholds_.tolist()}


def estimate(scores: np.ndarray, calibrated: dict[str, list[float]] | None) -> dict[str, float]:
    """CBPE of a binary classifier from its positive-class scores on unlabelled rows."""
    if len(scores) == 0:
        return {}
    p = np.interp(scores, calibrated["x"], calibrated["y"]) if calibrated else scores
    predicted = scores >= 0.5
    tp = float(np.sum(p * predicted))
    fp = float(np.sum((1 - p) * predicted))
    fn = float(np.sum(p * ~predicted))
    tn = float(np.sum((1 - p) * ~predicted))
    out = {"cbpe_accuracy": (tp + tn) / len(p)}
    if tp + fp > 0:
        out["cbpe_precision"] = tp / (tp + fp)
    if tp + fn > 0:
        out["cbpe_recall"] = tp / (tp + fn)
    if 2 * tp + fp + fn > 0:
        out["cbpe_f1"] = 2 * tp / (2 * tp + fp + fn)
    auc = _expected_auc(scores, p)
    if auc is not None:
        out["cbpe_roc_auc"] = auc
    return out


def _expected_auc(scores: np.ndarray, p: np.ndarray) -> float | None:
    """P(score of a positive > score of a negative), each row positive with probability p."""
    order = np.argsort(scores, kind="stable")
    s, q = scores[order], p[order]
    negatives_below = np.cumsum(1 - q) - (1 - q)  # negatives' weight strictly before each row
    # rows with equal scores count half: subtract the tie group's share above, add half back
    _, first, counts = np.unique(s, return_index=True, return_counts=True)
    group_neg = np.add.reduceat(1 - q, first)
    start_neg = np.repeat(negatives_below[first], counts)
    below = start_neg + 0.5 * np.repeat(group_neg, counts) - 0.5 * (1 - q)
    numerator = float(np.sum(q * below))
    denominator = float(np.sum(q) * np.sum(1 - q) - np.sum(q * (1 - q)))
    return numerator / denominator if denominator > 0 else None
